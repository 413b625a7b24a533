"""chainfolio.storage."""
