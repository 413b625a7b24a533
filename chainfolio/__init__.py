"""chainfolio: a self-hosted, real-time, multi-chain crypto portfolio tracker."""

__version__ = "0.1.0"
