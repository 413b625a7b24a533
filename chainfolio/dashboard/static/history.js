// The history panel: the portfolio's value over a period, one point per interval.
import { clearChart, valueChart } from "./charts.js";
import { $, failed, session, setState } from "./page.js";

const HISTORY = `query($period: String!, $interval: String!) {
  history(period: $period, interval: $interval) { timestamps values gaps } }`;

export async function loadHistory({ quiet = false } = {}) {
  const period = $("history-period").value;
  const interval = $("history-interval").value;
  if (!quiet) setState("panel-history", "loading", "Loading…");
  try {
    const { history } = await session.client.gql(HISTORY, { period, interval });
    if (!history.timestamps.length) {
      clearChart($("history-chart"));
      setState("panel-history", "empty", "No history for this period yet.");
      return;
    }
    // A gap bucket becomes a null point so the line breaks there instead of bridging it.
    const points = history.timestamps.map((t, i) => [t, history.values[i]]);
    history.gaps.forEach((t) => points.push([t, null]));
    points.sort((a, b) => Date.parse(a[0]) - Date.parse(b[0]));
    setState("panel-history", "ok");
    const panel = $("panel-history");
    panel.dataset.points = history.timestamps.length;
    panel.dataset.last = history.values[history.values.length - 1];
    await valueChart($("history-chart"), points.map((p) => p[0]), points.map((p) => p[1]));
  } catch (err) {
    failed("panel-history", err, loadHistory);
  }
}

export function bindHistory() {
  $("history-period").addEventListener("change", () => loadHistory());
  $("history-interval").addEventListener("change", () => loadHistory());
}
