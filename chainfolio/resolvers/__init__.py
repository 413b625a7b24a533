"""chainfolio.resolvers."""
