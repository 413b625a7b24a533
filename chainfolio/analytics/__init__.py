"""chainfolio.analytics."""
