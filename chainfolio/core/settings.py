"""Settings from the environment / `.env` (prefix CHAINFOLIO_), secrets as secret types."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from chainfolio.core.cache import CacheBounds


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("chainfolio"))


class Settings(BaseSettings):
    """Every knob of chainfolio; each field is `CHAINFOLIO_<NAME>` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="CHAINFOLIO_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: SecretStr | None = Field(
        default=None,
        description="postgresql://… ; empty = embedded PostgreSQL under data_dir",
    )
    data_dir: Path = Field(default_factory=_default_data_dir)
    keep_db: bool = Field(
        default=False,
        description="leave the embedded PostgreSQL running when the last process using it exits",
    )
    redis_url: str = Field(default="memory://", description="bus/cache: memory:// or redis://")
    jwt_secret: SecretStr = SecretStr("change-me-dev-secret-at-least-32-bytes!")
    jwt_algorithm: str = "HS256"
    jwt_jwks_url: str | None = Field(default=None, description="RS256 via JWKS when set")
    jwt_audience: str | None = None
    jwt_issuer: str | None = Field(
        default=None, description="when set, tokens must carry this `iss` claim"
    )
    chains_file: Path | None = Field(default=None, description="chain config TOML")
    refresh_interval_s: float = Field(default=30.0, gt=0, le=60)
    block_poll_s: float = Field(
        default=1.0, ge=0, description="poll chain heads this often; a new block refreshes sooner"
    )
    refresh_touched: bool = Field(
        default=True, description="re-read the wallets a new block touched at once"
    )
    refresh_min_interval_s: float = Field(
        default=10.0, gt=0, le=60, description="a new block refreshes no sooner than this"
    )
    snapshot_retention_days: int = Field(default=90, ge=1)
    snapshot_compress_after_days: int = Field(default=7, ge=1)
    risk_free_rate: float = Field(default=0.0, description="annual, for Sharpe/Sortino")
    max_wallets_per_user: int = Field(default=100, ge=1)
    max_tokens_per_chain: int = Field(
        default=1_000, ge=1, description="tokens a chain may list in the chains file"
    )
    graphql_max_depth: int = Field(default=12, ge=2)
    graphql_max_cost: int = Field(default=500, ge=10, description="fields + root weights")
    graphql_introspection: bool = True
    graphql_allowlist: Path | None = Field(
        default=None, description="JSON file of the only GraphQL documents to run"
    )
    run_worker: bool = Field(default=False, description="run the refresh worker in the API")
    backfill_hours: int = Field(
        default=48, ge=0, le=24 * 31, description="missed snapshot hours filled on worker start"
    )
    rate_limit_per_minute: int = Field(
        default=1200, ge=0, description="requests per user (token subject) a minute; 0 = off"
    )
    rate_limit_per_ip_per_minute: int = Field(
        default=6000, ge=0, description="requests per client IP a minute; 0 = off"
    )
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="HTTP body cap (413)")
    ws_max_message_bytes: int = Field(default=64 * 1024, ge=1024, description="websocket cap")
    ws_max_sockets_per_user: int = Field(
        default=10,
        ge=1,
        description="open websockets per user, across API processes with Redis (4429 past it)",
    )
    ws_max_subscriptions_per_socket: int = Field(
        default=20, ge=1, description="operations in flight per GraphQL websocket"
    )
    cache_ttl_s: float = Field(
        default=60.0,
        ge=0,
        description="per-user answer cache: seconds an answer may be served (0 turns it off); "
        "dropped earlier by every refresh and mutation of the user",
    )
    cache_near_ttl_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="with a Redis cache: seconds an API process may serve its own copy of an "
        "answer read from Redis (dropped at once by any invalidation; 0 = off)",
    )
    cache_max_users: int = Field(
        default=4_000, ge=1, description="users holding cached answers (least recent out)"
    )
    cache_max_entries_per_user: int = Field(default=16, ge=1, description="answers per user")
    cache_max_bytes_per_user: int = Field(
        default=256 * 1024,
        ge=1024,
        description="bytes of answers per user (the cache holds "
        "at most cache_max_users times this)",
    )
    metrics_enabled: bool = Field(default=True, description="serve /metrics (unauthenticated)")
    header_timeout_s: float = Field(
        default=10.0, ge=0, description="a request's headers must arrive within this (0: off)"
    )
    body_timeout_s: float = Field(
        default=30.0, ge=0, description="a request's body must arrive within this of its headers"
    )
    shutdown_timeout_s: int = Field(
        default=30,
        gt=0,
        description="on SIGTERM, how long in-flight requests may take before they are cut",
    )
    log_format: Literal["text", "json"] = "text"
    cors_origins: str = Field(
        default="",
        description="origins (comma-separated, e.g. https://app.example) allowed to call the "
        "API from a browser; empty: none; '*': any (never with credentials)",
    )

    def configured_database_url(self) -> str | None:
        """The database URL from the environment, or None for the embedded server."""
        return self.database_url.get_secret_value() if self.database_url else None

    @property
    def embedded_pgdata(self) -> Path:
        """Where the embedded PostgreSQL keeps its data (survives restarts)."""
        return self.data_dir / "pgdata"

    @property
    def cors_origin_list(self) -> list[str]:
        """`cors_origins` as a list, without trailing slashes (browsers send none)."""
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def cache_bounds(self) -> CacheBounds:
        """The answer cache's bounds."""
        return CacheBounds(
            entries=self.cache_max_entries_per_user,
            bytes=self.cache_max_bytes_per_user,
            users=self.cache_max_users,
        )
