"""chainfolio.devnet."""
