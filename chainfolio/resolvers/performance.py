"""Performance over a period: gain, ROI, TWR, MWR, risk, drawdown, attribution by asset.

Returns are linked over every stored valuation of the period (not the chart's buckets), from
the value as of the window start to the live valuation at request time, with each cash flow
at its own time; risk figures read that series on a regular grid (`analytics.bucket_samples`).
docs/METRICS.md gives the conventions.
"""

from __future__ import annotations

import asyncio
import functools
import math
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.analytics import SECONDS_PER_YEAR, NotEnoughData, PerformanceSummary, summarize
from chainfolio.core.domain import plain
from chainfolio.core.errors import InsufficientData, InvalidInput
from chainfolio.core.periods import INTERVALS, Window, default_interval, parse_period
from chainfolio.resolvers.portfolio import summarize_holdings
from chainfolio.storage.flows import CashFlow, cash_flows_between
from chainfolio.storage.history import LONG_SERIES, Valuation, from_seconds, valuations_between
from chainfolio.storage.holdings import current_holdings
from chainfolio.storage.timeseries import BUCKET_ORIGIN, snapshot_at_or_before

SNAPSHOT_INTERVAL = "1h"
"""The worker's snapshot cadence: a risk grid finer than this would hold no complete step."""


@dataclass(frozen=True, slots=True, eq=False)
class PeriodSeries:
    """A period's valuations at full resolution (floats for the analytics), the exact first
    and last of them, its flows, and the asset breakdowns at both ends."""

    window: Window
    times: np.ndarray
    values: np.ndarray
    first: Valuation | None
    last: Valuation | None
    flows: list[CashFlow]
    unvalued_flows: int
    start_assets: Mapping[str, Decimal]
    end_assets: Mapping[str, Decimal]
    started_later: bool
    live_end: bool

    @property
    def count(self) -> int:
        """How many valuations the series holds."""
        return int(self.times.size)

    def moment(self, point: int) -> datetime:
        """The time of one valuation (exact: stored times are whole microseconds)."""
        return from_seconds(float(self.times[point]))

    def flow_times(self) -> np.ndarray:
        """Flow times as POSIX seconds."""
        return np.array([f.time.timestamp() for f in self.flows])

    def flow_amounts(self) -> np.ndarray:
        """Flow values in USD as floats."""
        return np.array([float(f.value_usd or 0) for f in self.flows])


async def period_series(
    db: AsyncConnection, *, user_id: uuid.UUID, window: Window, raw_since: datetime
) -> PeriodSeries:
    """The valuation as of the window start (or the first after it), every stored one after
    it, and the live holdings' total at the window's end (request time) when any is priced."""
    start = await snapshot_at_or_before(db, user_id=user_id, moment=window.start)
    stored = await valuations_between(
        db, user_id=user_id, start=window.start, end=window.end, raw_since=raw_since
    )
    times = stored.times.tolist()
    values = stored.values.tolist()
    opening = start
    if start is not None:
        times.insert(0, start.timestamp.timestamp())
        values.insert(0, float(start.total_value))
    elif times:
        opening = await snapshot_at_or_before(db, user_id=user_id, moment=from_seconds(times[0]))
    first = Valuation(opening.timestamp, opening.total_value) if opening else None
    start_assets: Mapping[str, Decimal] = opening.asset_breakdown if opening else {}
    last = None
    holdings = await current_holdings(db, user_id=user_id)
    live = any(h.holding.value_usd is not None for h in holdings) and (
        not times or from_seconds(times[-1]) < window.end
    )
    end_assets: Mapping[str, Decimal] = {}
    if live:
        total, _, by_asset, _ = summarize_holdings(holdings)
        last = Valuation(window.end, total)
        times.append(window.end.timestamp())
        values.append(float(total))
        end_assets = by_asset
    elif times:
        found = await snapshot_at_or_before(db, user_id=user_id, moment=from_seconds(times[-1]))
        if found is not None:
            last = Valuation(found.timestamp, found.total_value)
            end_assets = found.asset_breakdown
    if first is None and live:  # nothing stored yet: the live valuation is all there is
        first, start_assets = last, end_assets
    flows: list[CashFlow] = []
    if first is not None and last is not None and len(times) > 1:
        flows = await cash_flows_between(
            db, user_id=user_id, start=first.timestamp, end=last.timestamp
        )
    valued = [f for f in flows if f.value_usd is not None]
    return PeriodSeries(
        window=window,
        times=np.array(times, dtype=np.float64),
        values=np.array(values, dtype=np.float64),
        first=first,
        last=last,
        flows=valued,
        unvalued_flows=len(flows) - len(valued),
        start_assets=start_assets,
        end_assets=end_assets,
        started_later=start is None,
        live_end=live,
    )


def no_valuation(window: Window) -> InsufficientData:
    """The error for a period with nothing to compute on."""
    return InsufficientData(
        f"not enough history for {window.period}: 0 valuations stored up to "
        f"{window.end.isoformat()} and no priced holdings"
    )


@dataclass(frozen=True, slots=True)
class Money:
    """The period's money figures, exact (Decimal sums of the stored numerics)."""

    start_value: Decimal
    end_value: Decimal
    deposits: Decimal
    withdrawals: Decimal
    net_flows: Decimal
    absolute_gain: Decimal
    flows_by_asset: Mapping[str, Decimal]
    gains: Mapping[str, Decimal]


def exact_money(first: Valuation, last: Valuation, series: PeriodSeries) -> Money:
    """Start, end, flows and gain of the series, and the gain per asset, in exact decimals."""
    amounts = [f.value_usd for f in series.flows if f.value_usd is not None]
    deposits = sum((a for a in amounts if a > 0), Decimal(0))
    withdrawals = sum((a for a in amounts if a < 0), Decimal(0))
    start, end = first.total_value, last.total_value
    by_asset: dict[str, Decimal] = defaultdict(Decimal)
    for flow in series.flows:
        by_asset[flow.symbol] += flow.value_usd or 0
    zero = Decimal(0)
    gains = {
        k: series.end_assets.get(k, zero) - series.start_assets.get(k, zero) - by_asset[k]
        for k in {*series.start_assets, *series.end_assets, *by_asset}
    }
    return Money(
        start_value=start,
        end_value=end,
        deposits=deposits,
        withdrawals=withdrawals,
        net_flows=deposits + withdrawals,
        absolute_gain=end - start - deposits - withdrawals,
        flows_by_asset=dict(by_asset),
        gains=gains,
    )


@dataclass(frozen=True, slots=True)
class PerformanceView:
    """A period's summary with the window and the risk grid it was computed on."""

    period: str
    interval: str
    start: datetime
    end: datetime
    summary: PerformanceSummary
    money: Money
    unvalued_flows: int
    started_later: bool
    live_end: bool
    annualise: bool


def parse_mar(value: str | float | None) -> float | None:
    """Sortino's annual target as a fraction (`0.05` = 5 %); 400 unless finite and > -1."""
    if value is None or value == "":
        return None
    try:
        rate = float(value)
    except ValueError:
        rate = math.nan
    if not (math.isfinite(rate) and rate > -1):
        raise InvalidInput(
            f"invalid mar {value!r}: want an annual rate as a fraction above -1 (0.05 = 5 %)",
            code="INVALID_MAR",
        )
    return rate


def parse_flag(value: str | None, *, name: str) -> bool:
    """A query-string boolean: true/false/1/0 (absent: false); 400 otherwise."""
    text = (value or "false").strip().lower()
    if text not in {"true", "false", "1", "0"}:
        raise InvalidInput(f"invalid {name} {value!r}: want true or false", code="BAD_REQUEST")
    return text in {"true", "1"}


def risk_interval(window: Window) -> str:
    """The period's default interval, but no finer than the snapshots are taken."""
    name = default_interval(window)
    return name if INTERVALS[name] >= INTERVALS[SNAPSHOT_INTERVAL] else SNAPSHOT_INTERVAL


async def resolve_performance(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    period: str,
    now: datetime,
    retention_days: int,
    risk_free_rate: float,
    mar: float | None = None,
    annualise: bool = False,
) -> PerformanceView:
    """Flow-neutral performance of the user's portfolio over `period`, ending at `now`.

    Cash flows (deposits and withdrawals) are taken out of every return, so they are never
    gains. `mar` is Sortino's annual target (default: the risk-free rate). Annualised TWR and
    MWR of periods shorter than a year are given only with `annualise`.
    """
    window = parse_period(period, now=now)
    target = parse_mar(mar)
    interval = risk_interval(window)
    series = await period_series(
        db, user_id=user_id, window=window, raw_since=now - timedelta(days=retention_days)
    )
    if series.first is None or series.last is None:
        raise no_valuation(window)
    money = exact_money(series.first, series.last, series)
    compute = functools.partial(
        summarize,
        times=series.times,
        values=series.values,
        flow_times=series.flow_times(),
        flow_amounts=series.flow_amounts(),
        risk_free_rate=risk_free_rate,
        target_return=target,
        risk_step=INTERVALS[interval].total_seconds(),
        origin=BUCKET_ORIGIN.timestamp(),
        start_values_by_key=series.start_assets,
        end_values_by_key=series.end_assets,
        flows_by_key=money.flows_by_asset,
    )
    try:
        # a long series (performance(all) of 5-minute snapshots: ~10,000) in a thread: numpy
        # lets the event loop run meanwhile (issue 21; seen once holding it over 50 ms)
        long = len(series.times) > LONG_SERIES
        summary = await asyncio.to_thread(compute) if long else compute()
    except NotEnoughData as exc:
        raise InsufficientData(f"not enough history for {window.period}: {exc}") from exc
    first, last = series.first.timestamp, series.last.timestamp
    return PerformanceView(
        window.period,
        interval,
        first,
        last,
        summary,
        money,
        unvalued_flows=series.unvalued_flows,
        started_later=series.started_later,
        live_end=series.live_end,
        annualise=annualise or (last - first).total_seconds() >= SECONDS_PER_YEAR,
    )


def clean(value: float | None, digits: int) -> float | None:
    """`value` rounded to `digits` places, never -0.0; None stays None."""
    return None if value is None else round(value, digits) + 0.0


def percent(rate: float | None) -> float | None:
    """A fraction as a percentage (4 decimals), None stays None, never -0."""
    return None if rate is None else clean(rate * 100, 4)


def _exact(amount: Decimal) -> str:
    """An exact decimal string without trailing zeros (a live total carries price times balance
    digits: 22005.5000000000000000000 is 22005.5)."""
    return plain(amount.normalize())


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


_CAMEL = {
    "gain_rate": "percentageGain",
    "roi": "roi",
    "twr": "twr",
    "twr_annualised": "twrAnnualised",
    "mwr": "mwr",
    "mwr_annualised": "mwrAnnualised",
    "volatility": "volatility",
    "sharpe_ratio": "sharpeRatio",
    "sortino_ratio": "sortinoRatio",
    "max_drawdown": "maxDrawdown",
    "best_interval": "bestInterval",
    "worst_interval": "worstInterval",
}


def null_reasons(view: PerformanceView) -> dict[str, str]:
    """Why each null rate is null, keyed by the API's field name."""
    reasons = {_CAMEL[k]: v for k, v in view.summary.reasons.items() if k in _CAMEL}
    if not view.annualise:
        short = "period shorter than a year: its rate is not annualised unless asked (annualise)"
        reasons.setdefault("twrAnnualised", short)
        reasons.setdefault("mwrAnnualised", short)
    if view.summary.best_interval_return is None:
        few = f"no complete {view.interval} step with capital at risk"
        reasons.setdefault("bestInterval", few)
        reasons.setdefault("worstInterval", few)
    return reasons


def performance_fields(view: PerformanceView) -> dict[str, object]:
    """The API's performance object (rates in percent), shared by REST and GraphQL."""
    s, m = view.summary, view.money
    gains = {c.key: c for c in (s.attribution.contributions if s.attribution else ())}
    return {
        "period": view.period,
        "interval": view.interval,
        "start": view.start.isoformat(),
        "end": view.end.isoformat(),
        "startValue": float(m.start_value),
        "endValue": float(m.end_value),
        "deposits": float(m.deposits),
        "withdrawals": float(m.withdrawals),
        "netFlows": float(m.net_flows),
        "absoluteGain": float(m.absolute_gain),
        "startValueExact": _exact(m.start_value),
        "endValueExact": _exact(m.end_value),
        "depositsExact": _exact(m.deposits),
        "withdrawalsExact": _exact(m.withdrawals),
        "netFlowsExact": _exact(m.net_flows),
        "absoluteGainExact": _exact(m.absolute_gain),
        "percentageGain": percent(s.gain_rate),
        "roi": percent(s.roi),
        "twr": percent(s.twr),
        "twrAnnualised": percent(s.twr_annualised) if view.annualise else None,
        "mwr": percent(s.mwr),
        "mwrAnnualised": percent(s.mwr_annualised) if view.annualise else None,
        "volatility": percent(s.volatility),
        "sharpeRatio": clean(s.sharpe_ratio, 4),
        "sortinoRatio": clean(s.sortino_ratio, 4),
        "maxDrawdown": percent(s.max_drawdown),
        "maxDrawdownPeak": _iso(s.drawdown_peak_time),
        "maxDrawdownTrough": _iso(s.drawdown_trough_time),
        "bestInterval": percent(s.best_interval_return),
        "bestIntervalEnd": _iso(s.best_interval_end_time),
        "worstInterval": percent(s.worst_interval_return),
        "worstIntervalEnd": _iso(s.worst_interval_end_time),
        "unvaluedFlows": view.unvalued_flows,
        "valuations": s.valuations,
        "startedLater": view.started_later,
        "endIsLive": view.live_end,
        "nullReasons": null_reasons(view),
        "attribution": [
            {
                "asset": key,
                "gain": float(gain),
                "gainExact": _exact(gain),
                "shareOfGain": percent(gains[key].share_of_gain) if key in gains else None,
            }
            for key, gain in sorted(m.gains.items(), key=lambda item: (-item[1], item[0]))
        ],
    }
