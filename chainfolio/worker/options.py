"""The worker's knobs beyond the refresh interval."""

from __future__ import annotations

from dataclasses import dataclass, field

from chainfolio.fetchers.transfers import ScanLimits


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """The worker's knobs beyond the refresh interval."""

    scan: ScanLimits = field(default_factory=ScanLimits)
    max_scan_blocks: int = 10_000
    """A wallet whose cursor lags more is scanned from head - this (older flows are missed)."""
    reorg_depth: int = 12
    """Blocks rescanned when a cursor's block was replaced or is beyond the head."""
    backfill_hours: int = 48
    retention_days: int = 90
    retention_every_s: float = 3600.0
    block_poll_s: float = 1.0
    """How often `run` polls each chain's head; 0 = no block following (interval only)."""
    reread_touched: bool = True
    """Re-read the wallets each new block touched at once (block to update in about a poll)."""
    min_interval_s: float = 10.0
    """A new block brings the next cycle forward, to no sooner than this after the last."""
