"""The refresh worker: reads tracked wallets, stores holdings, publishes changes, snapshots.

Split by concern:

- `cycle`: the `Worker` and its cycle (read, store, publish, snapshot) and run loop;
- `leases`: shards held with PostgreSQL advisory locks (several workers share the users);
- `heads`: following the chains' heads and the users whose wallets changed, between cycles;
- `flows`: cash flows from transfers since each wallet's cursor, valued at their block time;
- `backfill`: the hours a user missed, from balances at historic blocks;
- `snapshots`: a user's hourly valuation, and retention of old partitions;
- `options`: the worker's knobs.

May import: `resolvers`, `storage`, `fetchers`, `bus`, `core`. Never `schema` or `api`.
"""
