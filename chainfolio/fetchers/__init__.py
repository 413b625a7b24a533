"""chainfolio.fetchers."""
