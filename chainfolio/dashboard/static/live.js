// The live connection: pushed totals flash the headline value and schedule a quiet reload.
import { loadHistory } from "./history.js";
import { renderTotal } from "./holdings.js";
import { $, rejected, session } from "./page.js";
import { refreshPortfolio } from "./portfolio.js";

const UPDATES = `subscription { portfolioUpdates { totalValue change changePercent timestamp staleChains } }`;

let refreshTimer = null;
let historyRefreshedAt = 0;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    refreshPortfolio();
    // New hourly snapshots reach the chart without a reload (checked at most every 15 s).
    if (Date.now() - historyRefreshedAt > 15000 && $("panel-history").dataset.state === "ok") {
      historyRefreshedAt = Date.now();
      loadHistory({ quiet: true });
    }
  }, 800);
}

function onUpdate(data) {
  const update = data && data.portfolioUpdates;
  if (!update) return;
  const before = Number($("total-value").dataset.value || 0);
  const total = Number(update.totalValue);
  const change = session.dayAgoValue === null ? null : total - session.dayAgoValue;
  const pct = change === null || !session.dayAgoValue ? null : (change / session.dayAgoValue) * 100;
  renderTotal(update.totalValue, change === null ? null : change.toFixed(2), pct, update.timestamp);
  const big = $("total-value");
  big.classList.remove("flash-up", "flash-down");
  void big.offsetWidth; // restart the transition
  big.classList.add(total >= before ? "flash-up" : "flash-down");
  setTimeout(() => big.classList.remove("flash-up", "flash-down"), 900);
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  refreshSoon();
}

function onLiveStatus(state, message) {
  const badge = $("live-status");
  badge.dataset.state = state;
  badge.textContent = { live: "live", connecting: "connecting…", off: "offline", error: "error", unauthorized: "rejected" }[state] || state;
  badge.title = message || "";
  if (state === "unauthorized") rejected("The token was rejected by the live connection.");
}

export function subscribeUpdates(client) {
  return client.subscribe(UPDATES, { onData: onUpdate, onStatus: onLiveStatus });
}
