// The performance and comparison panels: return metrics over a period, and the portfolio
// against a benchmark (chart and statistics).
import { ApiError } from "./api.js";
import { compareChart } from "./charts.js";
import * as fmt from "./format.js";
import { $, failed, isMissingField, session, setState } from "./page.js";

const PERFORMANCE = `query($period: String!) { performance(period: $period) {
  period start end startValue endValue deposits withdrawals netFlows absoluteGain percentageGain
  roi twr mwr volatility sharpeRatio maxDrawdown } }`;
const COMPARE = `query($period: String!, $benchmark: String!) {
  compare(period: $period, benchmark: $benchmark) { benchmark timestamps portfolio benchmarkValues
    portfolioReturn benchmarkReturn excessReturn beta alpha correlation trackingError
    informationRatio } }`;

function metricList(element, entries) {
  element.replaceChildren(...entries.flatMap(([name, text, raw, cls]) => {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = text;
    dd.dataset.metric = name;
    dd.dataset.value = raw ?? "";
    if (cls) dd.className = cls;
    return [dt, dd];
  }));
}

export async function loadPerformance() {
  setState("panel-performance", "loading", "Loading…");
  try {
    const { performance: p } = await session.client.gql(PERFORMANCE, { period: $("performance-period").value });
    setState("panel-performance", "ok");
    metricList($("performance-metrics"), [
      ["Gain", fmt.signedUsd(p.absoluteGain), p.absoluteGain, fmt.trend(p.absoluteGain)],
      ["ROI", fmt.percent(p.roi), p.roi, fmt.trend(p.roi)],
      ["TWR", fmt.percent(p.twr), p.twr, fmt.trend(p.twr)],
      ["MWR", fmt.percent(p.mwr), p.mwr, fmt.trend(p.mwr)],
      ["Sharpe", fmt.plain(p.sharpeRatio), p.sharpeRatio],
      ["Max drawdown", fmt.percent(p.maxDrawdown), p.maxDrawdown],
      ["Volatility", fmt.percent(p.volatility), p.volatility],
      ["Net flows", fmt.signedUsd(p.netFlows), p.netFlows],
    ]);
  } catch (err) {
    if (err instanceof ApiError && err.code === "INSUFFICIENT_DATA") {
      setState("panel-performance", "empty", "Not enough history for this period yet.");
    } else {
      failed("panel-performance", err, loadPerformance);
    }
  }
}

export async function loadCompare() {
  setState("panel-compare", "loading", "Loading…");
  try {
    const { compare: c } = await session.client.gql(COMPARE, {
      period: $("compare-period").value, benchmark: $("compare-benchmark").value,
    });
    setState("panel-compare", "ok");
    metricList($("compare-metrics"), [
      ["Portfolio", fmt.percent(c.portfolioReturn), c.portfolioReturn, fmt.trend(c.portfolioReturn)],
      [c.benchmark, fmt.percent(c.benchmarkReturn), c.benchmarkReturn, fmt.trend(c.benchmarkReturn)],
      ["Excess", fmt.percent(c.excessReturn), c.excessReturn, fmt.trend(c.excessReturn)],
      ["Beta", fmt.plain(c.beta), c.beta],
      ["Alpha", fmt.percent(c.alpha), c.alpha],
      ["Correlation", fmt.plain(c.correlation), c.correlation],
      ["Tracking error", fmt.percent(c.trackingError), c.trackingError],
      ["Information ratio", fmt.plain(c.informationRatio), c.informationRatio],
    ]);
    await compareChart($("compare-chart"), c);
  } catch (err) {
    if (isMissingField(err)) {
      setState("panel-compare", "unavailable", "Comparison is not available on this server.");
    } else if (err instanceof ApiError && err.code === "INSUFFICIENT_DATA") {
      setState("panel-compare", "empty", "Not enough history to compare over this period.");
    } else {
      failed("panel-compare", err, loadCompare);
    }
  }
}

export function bindPerformance() {
  $("performance-period").addEventListener("change", loadPerformance);
  $("compare-period").addEventListener("change", loadCompare);
  $("compare-benchmark").addEventListener("change", loadCompare);
}
