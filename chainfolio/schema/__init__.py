"""chainfolio.schema."""
