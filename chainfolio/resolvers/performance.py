"""Performance over a period: gain, ROI, TWR, MWR, risk, drawdown, attribution by asset/chain."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.analytics import NotEnoughData, PerformanceSummary, summarize
from chainfolio.core.errors import InsufficientData
from chainfolio.core.periods import INTERVALS, default_interval, parse_period
from chainfolio.storage.timeseries import bucketed_history, cash_flows_between


@dataclass(frozen=True, slots=True)
class PerformanceView:
    """A period's summary with the window and the sampling interval it was computed on."""

    period: str
    interval: str
    start: datetime
    end: datetime
    summary: PerformanceSummary
    unvalued_flows: int


async def resolve_performance(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    period: str,
    now: datetime,
    retention_days: int,
    risk_free_rate: float,
) -> PerformanceView:
    """Flow-neutral performance of the user's portfolio over `period`.

    The value series is the bucketed snapshot history at the period's default interval; cash
    flows (deposits and withdrawals) are taken out of every return, so they are never gains.
    """
    window = parse_period(period, now=now)
    interval = default_interval(window)
    points = await bucketed_history(
        db,
        user_id=user_id,
        start=window.start,
        end=window.end,
        interval=INTERVALS[interval],
        raw_since=now - timedelta(days=retention_days),
        breakdowns=True,
    )
    if len(points) < 2:
        raise InsufficientData(
            f"not enough history for {window.period}: {len(points)} snapshot(s) in the period"
        )
    first, last = points[0].timestamp, points[-1].timestamp
    flows = await cash_flows_between(db, user_id=user_id, start=first, end=last)
    valued = [f for f in flows if f.value_usd is not None]
    start_assets = {k: float(v) for k, v in (points[0].asset_breakdown or {}).items()}
    end_assets = {k: float(v) for k, v in (points[-1].asset_breakdown or {}).items()}
    flows_by_asset: dict[str, float] = {}
    for flow in valued:
        flows_by_asset[flow.symbol] = flows_by_asset.get(flow.symbol, 0.0) + float(
            flow.value_usd or 0
        )
    try:
        summary = summarize(
            times=np.array([p.timestamp.timestamp() for p in points]),
            values=np.array([float(p.total_value) for p in points]),
            flow_times=np.array([f.time.timestamp() for f in valued]),
            flow_amounts=np.array([float(f.value_usd or 0) for f in valued]),
            risk_free_rate=risk_free_rate,
            start_values_by_key=start_assets,
            end_values_by_key=end_assets,
            flows_by_key=flows_by_asset,
        )
    except NotEnoughData as exc:
        raise InsufficientData(f"not enough history for {window.period}: {exc}") from exc
    return PerformanceView(
        window.period, interval, first, last, summary, unvalued_flows=len(flows) - len(valued)
    )


def percent(rate: float | None) -> float | None:
    """A fraction as a percentage (4 decimals), None stays None."""
    return None if rate is None else round(rate * 100, 4)


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


def performance_fields(view: PerformanceView) -> dict[str, object]:
    """The API's performance object (rates in percent), shared by REST and GraphQL."""
    s = view.summary
    return {
        "period": view.period,
        "interval": view.interval,
        "start": view.start.isoformat(),
        "end": view.end.isoformat(),
        "startValue": s.start_value,
        "endValue": s.end_value,
        "deposits": s.deposits,
        "withdrawals": s.withdrawals,
        "netFlows": s.net_flows,
        "absoluteGain": s.absolute_gain,
        "percentageGain": percent(s.gain_rate),
        "roi": percent(s.roi),
        "twr": percent(s.twr),
        "twrAnnualised": percent(s.twr_annualised),
        "mwr": percent(s.mwr),
        "mwrAnnualised": percent(s.mwr_annualised),
        "volatility": percent(s.volatility),
        "sharpeRatio": None if s.sharpe_ratio is None else round(s.sharpe_ratio, 4),
        "sortinoRatio": None if s.sortino_ratio is None else round(s.sortino_ratio, 4),
        "maxDrawdown": percent(s.max_drawdown),
        "maxDrawdownPeak": _iso(s.drawdown_peak_time),
        "maxDrawdownTrough": _iso(s.drawdown_trough_time),
        "bestInterval": percent(s.best_interval_return),
        "bestIntervalEnd": _iso(s.best_interval_end_time),
        "worstInterval": percent(s.worst_interval_return),
        "worstIntervalEnd": _iso(s.worst_interval_end_time),
        "unvaluedFlows": view.unvalued_flows,
        "attribution": [
            {"asset": c.key, "gain": c.gain, "shareOfGain": percent(c.share_of_gain)}
            for c in (s.attribution.contributions if s.attribution else ())
        ],
    }
