"""The only code that speaks SQL: SQLAlchemy 2 + asyncpg, migrations, COPY bulk writes.

Tables of accounts, holdings, snapshots (hypertable or monthly partitions), cash flows and
prices; TimescaleDB-aware where the extension exists.

May import: `chainfolio.core` only.
"""
