"""Versioned, idempotent schema migrations with a TimescaleDB path and a plain-PostgreSQL path.

Why this is long: the migrations are one append-only list, applied in order; a shipped
migration is never edited, so each stays here as it ran, followed by `migrate` and the
snapshot-partition helpers the migrations and the retention job share.

`migrate()` is the one entry point. It takes an advisory lock (several processes may start at
once), applies each missing version in its own transaction and records it in
`schema_migrations`. A database whose schema is newer than this code is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chainfolio.core.errors import ChainfolioError

log = logging.getLogger(__name__)

_MIGRATION_LOCK = 0x63686E66  # "chnf": advisory lock id shared by every chainfolio process


class SchemaTooNew(ChainfolioError):
    """The database was migrated by a newer chainfolio than this one."""

    code = "SCHEMA_TOO_NEW"
    status = 503


@dataclass(frozen=True, slots=True)
class StorageOptions:
    """Knobs of the time-series layout (from settings)."""

    retention_days: int = 90
    compress_after_days: int = 7


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema version."""

    version: int
    name: str
    apply: Callable[[AsyncConnection, bool, StorageOptions], Awaitable[None]]


async def _exec(conn: AsyncConnection, *statements: str) -> None:
    for statement in statements:
        await conn.execute(text(statement))


async def _v1_core(conn: AsyncConnection, _timescale: bool, _opts: StorageOptions) -> None:
    await _exec(
        conn,
        """CREATE TABLE users (
            id uuid PRIMARY KEY,
            subject text NOT NULL UNIQUE,
            created_at timestamptz NOT NULL DEFAULT now())""",
        """CREATE TABLE wallets (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            chain_id integer NOT NULL CHECK (chain_id > 0),
            address varchar(42) NOT NULL CHECK (address ~ '^0x[0-9a-fA-F]{40}$'),
            label text,
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (user_id, chain_id, address))""",
        "CREATE INDEX idx_wallets_chain ON wallets(chain_id, address)",
        """CREATE TABLE assets (
            id bigserial PRIMARY KEY,
            chain_id integer NOT NULL,
            contract varchar(42) NOT NULL,
            symbol varchar(100) NOT NULL,
            name text,
            decimals smallint NOT NULL CHECK (decimals BETWEEN 0 AND 77),
            kind text NOT NULL CHECK (kind IN ('native', 'erc20', 'erc721', 'position')),
            UNIQUE (chain_id, contract))""",
        # The seed's columns first, then what a serious tracker needs beside them.
        """CREATE TABLE portfolio_assets (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            chain varchar(50) NOT NULL,
            asset varchar(100) NOT NULL,
            balance numeric,
            value_usd numeric,
            updated_at timestamptz NOT NULL DEFAULT now(),
            wallet_id uuid NOT NULL REFERENCES wallets(id) ON DELETE CASCADE,
            chain_id integer NOT NULL,
            contract varchar(42) NOT NULL,
            kind text NOT NULL,
            category text NOT NULL,
            decimals smallint NOT NULL,
            amount numeric(78, 0),
            price numeric,
            price_source text,
            price_updated_at timestamptz,
            block_number bigint,
            stale boolean NOT NULL DEFAULT false,
            error text,
            UNIQUE (wallet_id, contract, category))""",
        "CREATE INDEX idx_portfolio_assets_user_id ON portfolio_assets(user_id)",
        """CREATE TABLE prices (
            time timestamptz NOT NULL,
            symbol varchar(100) NOT NULL,
            price numeric NOT NULL,
            source text NOT NULL,
            PRIMARY KEY (symbol, time, source))""",
        """CREATE TABLE cash_flows (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            wallet_id uuid REFERENCES wallets(id) ON DELETE SET NULL,
            chain_id integer NOT NULL,
            time timestamptz NOT NULL,
            symbol varchar(100) NOT NULL,
            contract varchar(42) NOT NULL,
            amount numeric(78, 0) NOT NULL,
            decimals smallint NOT NULL,
            value_usd numeric,
            tx_hash varchar(66),
            log_index integer NOT NULL DEFAULT -1,
            UNIQUE (user_id, chain_id, tx_hash, log_index, contract))""",
        "CREATE INDEX idx_cash_flows_user_time ON cash_flows(user_id, time)",
        """CREATE TABLE allocation_targets (
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            key varchar(100) NOT NULL,
            weight numeric NOT NULL CHECK (weight >= 0 AND weight <= 1),
            members jsonb NOT NULL DEFAULT '[]',
            PRIMARY KEY (user_id, key))""",
        """CREATE TABLE allocation_settings (
            user_id uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            band numeric NOT NULL DEFAULT 0.05,
            min_trade_usd numeric NOT NULL DEFAULT 50)""",
    )


_SNAPSHOT_COLUMNS = """
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    "timestamp" timestamptz NOT NULL,
    total_value numeric NOT NULL,
    chain_breakdown jsonb NOT NULL,
    asset_breakdown jsonb NOT NULL,
    category_breakdown jsonb NOT NULL,
    UNIQUE (user_id, "timestamp")"""


async def _v2_snapshots(conn: AsyncConnection, timescale: bool, opts: StorageOptions) -> None:
    if timescale:
        await _exec(
            conn,
            f"CREATE TABLE portfolio_snapshots ({_SNAPSHOT_COLUMNS})",
            "SELECT create_hypertable('portfolio_snapshots', 'timestamp')",
            f"SELECT add_retention_policy('portfolio_snapshots', "
            f"INTERVAL '{int(opts.retention_days)} days')",
            """ALTER TABLE portfolio_snapshots SET (
                timescaledb.compress, timescaledb.compress_segmentby = 'user_id')""",
            f"SELECT add_compression_policy('portfolio_snapshots', "
            f"INTERVAL '{int(opts.compress_after_days)} days')",
            # The daily rollup outlives raw retention: the refresh window stops before it.
            """CREATE MATERIALIZED VIEW portfolio_snapshots_daily
                WITH (timescaledb.continuous) AS
                SELECT user_id, time_bucket('1 day', "timestamp") AS bucket,
                       max("timestamp") AS last_timestamp,
                       last(total_value, "timestamp") AS total_value,
                       last(chain_breakdown, "timestamp") AS chain_breakdown,
                       last(asset_breakdown, "timestamp") AS asset_breakdown,
                       last(category_breakdown, "timestamp") AS category_breakdown
                FROM portfolio_snapshots GROUP BY user_id, bucket WITH NO DATA""",
            f"""SELECT add_continuous_aggregate_policy('portfolio_snapshots_daily',
                start_offset => INTERVAL '{int(opts.retention_days) - 1} days',
                end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour')""",
        )
        return
    await _exec(
        conn,
        f'CREATE TABLE portfolio_snapshots ({_SNAPSHOT_COLUMNS}) PARTITION BY RANGE ("timestamp")',
        """CREATE TABLE portfolio_snapshots_daily (
            user_id uuid NOT NULL,
            bucket timestamptz NOT NULL,
            last_timestamp timestamptz NOT NULL,
            total_value numeric NOT NULL,
            chain_breakdown jsonb NOT NULL,
            asset_breakdown jsonb NOT NULL,
            category_breakdown jsonb NOT NULL,
            PRIMARY KEY (user_id, bucket))""",
    )
    now = datetime.now(UTC)
    await ensure_snapshot_partitions(conn, now - timedelta(days=31), now + timedelta(days=62))


async def _v3_meta(conn: AsyncConnection, timescale: bool, _opts: StorageOptions) -> None:
    await _exec(
        conn,
        "CREATE TABLE chainfolio_meta (key text PRIMARY KEY, value text NOT NULL)",
        f"INSERT INTO chainfolio_meta VALUES ('timescale', '{str(timescale).lower()}')",
    )


async def _v4_transfer_cursors(
    conn: AsyncConnection, _timescale: bool, _opts: StorageOptions
) -> None:
    # A cursor per wallet: a wallet added later starts at the block it was first read at, and
    # several workers (each with its own wallets) never move each other's cursors.
    await _exec(
        conn,
        """CREATE TABLE transfer_cursors (
            wallet_id uuid PRIMARY KEY REFERENCES wallets(id) ON DELETE CASCADE,
            chain_id integer NOT NULL,
            block_number bigint NOT NULL,
            block_hash varchar(66),
            updated_at timestamptz NOT NULL DEFAULT now())""",
        # The block lets a reorg (or a restarted devnet) drop the flows it orphaned.
        "ALTER TABLE cash_flows ADD COLUMN block_number bigint",
        "CREATE INDEX idx_cash_flows_wallet_block ON cash_flows(wallet_id, block_number)",
    )


async def _v5_rollup_edge(conn: AsyncConnection, timescale: bool, _opts: StorageOptions) -> None:
    if timescale:  # the continuous aggregate keeps itself
        return
    # Until now every write updated the daily rollup, so it is complete for the days before
    # today. From here on days are folded in when they leave raw retention (or at once when a
    # write lands below this edge); see `chainfolio.storage.timeseries.roll_up_days`.
    await _exec(
        conn,
        """INSERT INTO chainfolio_meta SELECT 'rollup_until',
            to_char(date_trunc('day', now() AT TIME ZONE 'UTC'), 'YYYY-MM-DD')
            || 'T00:00:00+00:00'""",
    )


async def _v6_position_legs(conn: AsyncConnection, _timescale: bool, _opts: StorageOptions) -> None:
    # A DEX position is stored as legs keyed "<position manager>#<token id>/<leg>": longer than
    # an address. `details` keeps what groups legs into their position (id, leg, in range…).
    await _exec(
        conn,
        "ALTER TABLE portfolio_assets ALTER COLUMN contract TYPE varchar(120)",
        "ALTER TABLE portfolio_assets ADD COLUMN details jsonb",
    )


async def _v7_discovered_tokens(
    conn: AsyncConnection, _timescale: bool, _opts: StorageOptions
) -> None:
    # Token discovery (chainfolio.storage.tokens): metadata read once per token, candidates per
    # wallet with their first-seen block, each wallet's discovery progress, per-user visibility.
    await _exec(
        conn,
        """CREATE TABLE token_metadata (
            chain_id integer NOT NULL,
            contract varchar(42) NOT NULL,
            symbol text,
            name text,
            decimals smallint CHECK (decimals BETWEEN 0 AND 255),
            unreadable text,
            spam text,
            read_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (chain_id, contract))""",
        """CREATE TABLE wallet_tokens (
            wallet_id uuid NOT NULL REFERENCES wallets(id) ON DELETE CASCADE,
            chain_id integer NOT NULL,
            contract varchar(42) NOT NULL,
            first_block bigint NOT NULL,
            first_tx varchar(66),
            PRIMARY KEY (wallet_id, contract))""",
        """CREATE TABLE wallet_sync (
            wallet_id uuid PRIMARY KEY REFERENCES wallets(id) ON DELETE CASCADE,
            state text NOT NULL CHECK (state IN ('scanning', 'synced', 'failed')),
            first_block bigint NOT NULL,
            last_block bigint NOT NULL,
            scanned_blocks bigint NOT NULL,
            total_blocks bigint NOT NULL,
            error text,
            updated_at timestamptz NOT NULL DEFAULT now())""",
        """CREATE TABLE token_visibility (
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            chain_id integer NOT NULL,
            contract varchar(42) NOT NULL,
            hidden boolean NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (user_id, chain_id, contract))""",
    )


async def _v8_asset_movements(
    conn: AsyncConnection, _timescale: bool, _opts: StorageOptions
) -> None:
    # Every change of a wallet's balance the transfer scan sees (own-wallet moves and wraps
    # too, which are not cash flows): the history cost basis and P&L are computed from.
    await _exec(
        conn,
        """CREATE TABLE asset_movements (
            id bigserial PRIMARY KEY,
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            wallet_id uuid REFERENCES wallets(id) ON DELETE SET NULL,
            chain_id integer NOT NULL,
            block_number bigint NOT NULL,
            time timestamptz NOT NULL,
            tx_hash varchar(66),
            log_index integer NOT NULL DEFAULT -1,
            contract varchar(120) NOT NULL,  -- a DEX position leg's key is longer than an address
            symbol varchar(100) NOT NULL,
            asset varchar(100) NOT NULL,
            decimals smallint NOT NULL,
            amount numeric(78, 0) NOT NULL,
            price_usd numeric,
            value_usd numeric,
            kind text NOT NULL
                CHECK (kind IN ('external', 'opening', 'own', 'wrap', 'position')),
            counterparty varchar(42))""",
        """CREATE UNIQUE INDEX idx_asset_movements_unique ON asset_movements
            (wallet_id, chain_id, coalesce(tx_hash, ''), log_index, contract, kind)""",
        "CREATE INDEX idx_asset_movements_user_time ON asset_movements(user_id, time, id)",
        "CREATE INDEX idx_asset_movements_wallet_block ON asset_movements(wallet_id, block_number)",
        """CREATE TABLE pnl_settings (
            user_id uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            method text NOT NULL DEFAULT 'average' CHECK (method IN ('average', 'fifo')))""",
    )


async def _v9_user_issuer(conn: AsyncConnection, _timescale: bool, _opts: StorageOptions) -> None:
    # Users are keyed by the exact (issuer, subject) of their tokens. Existing users keep
    # their ids, under the empty issuer, marked `unclaimed`: the issuer was never read so far,
    # and the first token with that exact subject and an `iss` claims the row for its issuer
    # (`accounts.ensure_user`).
    await _exec(
        conn,
        "ALTER TABLE users ADD COLUMN issuer text NOT NULL DEFAULT ''",
        "ALTER TABLE users ADD COLUMN unclaimed boolean NOT NULL DEFAULT false",
        "UPDATE users SET unclaimed = true",
        "ALTER TABLE users DROP CONSTRAINT users_subject_key",
        "ALTER TABLE users ADD CONSTRAINT users_issuer_subject_key UNIQUE (issuer, subject)",
    )


async def _v10_token_pools(conn: AsyncConnection, _timescale: bool, _opts: StorageOptions) -> None:
    # Pricing by address (issue 12): the Uniswap pools the factories named for each token,
    # kept across restarts (chainfolio.storage.pools); [] = none found when checked.
    await _exec(
        conn,
        """CREATE TABLE token_pools (
            chain_id integer NOT NULL,
            token varchar(42) NOT NULL,
            pools jsonb NOT NULL,
            checked_at timestamptz NOT NULL,
            PRIMARY KEY (chain_id, token))""",
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "core tables", _v1_core),
    Migration(
        2, "portfolio snapshots (hypertable or range partitions) and daily rollup", _v2_snapshots
    ),
    Migration(3, "storage metadata", _v3_meta),
    Migration(4, "transfer scan cursors; cash flow block numbers", _v4_transfer_cursors),
    Migration(5, "daily rollup edge: days before it are folded in", _v5_rollup_edge),
    Migration(6, "DEX position legs: longer contract keys, details", _v6_position_legs),
    Migration(
        7,
        "discovered tokens, token metadata, discovery progress, visibility",
        _v7_discovered_tokens,
    ),
    Migration(8, "asset movements and cost-basis settings (P&L)", _v8_asset_movements),
    Migration(9, "users keyed by the exact (issuer, subject)", _v9_user_issuer),
    Migration(10, "Uniswap pools found per token (pricing by address)", _v10_token_pools),
)
LATEST_VERSION = MIGRATIONS[-1].version


def _month_start(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def _next_month(moment: datetime) -> datetime:
    return datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(month: datetime) -> str:
    """`portfolio_snapshots_y2026m01` for the month starting at `month`."""
    return f"portfolio_snapshots_y{month.year:04d}m{month.month:02d}"


async def ensure_snapshot_partitions(
    conn: AsyncConnection, start: datetime, end: datetime
) -> list[str]:
    """Create the monthly partitions covering [start, end] (plain PostgreSQL path only)."""
    created: list[str] = []
    month = _month_start(start.astimezone(UTC))
    while month <= end:
        following = _next_month(month)
        name = partition_name(month)
        await conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF portfolio_snapshots "
                f"FOR VALUES FROM ('{month.isoformat()}') TO ('{following.isoformat()}')"
            )
        )
        created.append(name)
        month = following
    return created


async def drop_expired_partitions(conn: AsyncConnection, *, before: datetime) -> list[str]:
    """Drop monthly partitions whose whole range ends on or before `before` (retention)."""
    rows = await conn.execute(
        text(
            """SELECT c.relname FROM pg_inherits i
               JOIN pg_class c ON c.oid = i.inhrelid
               JOIN pg_class p ON p.oid = i.inhparent
               WHERE p.relname = 'portfolio_snapshots'"""
        )
    )
    dropped: list[str] = []
    for (name,) in rows:
        year, month = int(name[-7:-3]), int(name[-2:])
        if _next_month(datetime(year, month, 1, tzinfo=UTC)) <= before:
            await conn.execute(text(f"DROP TABLE {name}"))
            dropped.append(name)
    return dropped


async def timescale_available(conn: AsyncConnection) -> bool:
    """True when the server can load the timescaledb extension."""
    row = await conn.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    )
    return row.first() is not None


async def current_version(conn: AsyncConnection) -> int:
    """The highest applied migration, 0 on an empty database."""
    exists = await conn.scalar(text("SELECT to_regclass('schema_migrations') IS NOT NULL"))
    if not exists:
        return 0
    return int(await conn.scalar(text("SELECT coalesce(max(version), 0) FROM schema_migrations")))


async def check_version(conn: AsyncConnection) -> int:
    """Raise SchemaTooNew when the database is ahead of this code; return its version."""
    version = await current_version(conn)
    if version > LATEST_VERSION:
        raise SchemaTooNew(
            f"database schema is at version {version} but this chainfolio knows only "
            f"{LATEST_VERSION}: upgrade chainfolio (never run an older build on a newer database)"
        )
    return version


async def migrate(engine: AsyncEngine, options: StorageOptions | None = None) -> list[int]:
    """Apply every missing migration; return the versions applied (empty when current)."""
    opts = options or StorageOptions()
    applied: list[int] = []
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
        try:
            await conn.commit()
            version = await check_version(conn)
            await conn.commit()
            if version == 0:
                async with conn.begin():
                    await _exec(
                        conn,
                        """CREATE TABLE IF NOT EXISTS schema_migrations (
                            version integer PRIMARY KEY, name text NOT NULL,
                            applied_at timestamptz NOT NULL DEFAULT now())""",
                    )
            timescale = await _enable_timescale(conn)
            for migration in MIGRATIONS:
                if migration.version <= version:
                    continue
                async with conn.begin():
                    await migration.apply(conn, timescale, opts)
                    await conn.execute(
                        text("INSERT INTO schema_migrations (version, name) VALUES (:v, :n)"),
                        {"v": migration.version, "n": migration.name},
                    )
                log.info("applied migration %d: %s", migration.version, migration.name)
                applied.append(migration.version)
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
            await conn.commit()
    return applied


async def _enable_timescale(conn: AsyncConnection) -> bool:
    meta = await conn.scalar(text("SELECT to_regclass('chainfolio_meta') IS NOT NULL"))
    if meta:  # the layout was chosen once, when the snapshots table was created
        value = await conn.scalar(text("SELECT value FROM chainfolio_meta WHERE key='timescale'"))
        await conn.commit()
        return bool(value == "true")
    if not await timescale_available(conn):
        await conn.commit()
        return False
    async with conn.begin():
        await conn.execute(text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
    return True
