"""The operations behind both the GraphQL schema and the REST routes.

Resolvers read storage, call fetchers (through loaders) and analytics, and build the plain
results that `schema` and `api` serialise.

May import: `analytics`, `storage`, `fetchers`, `bus`, `core`. Never `schema` or `api`.
"""
