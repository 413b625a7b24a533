// The dashboard: log in with a token, load every panel over GraphQL, stay live by subscription.
import { ApiError, createClient } from "./api.js";
import { clearChart, compareChart, donut, valueChart } from "./charts.js";
import * as fmt from "./format.js";
import { POSITIONS_FIELDS, renderPositions } from "./positions.js";

const TOKEN_KEY = "chainfolio.token";
const $ = (id) => document.getElementById(id);

const PORTFOLIO = `{
  portfolio { totalValue change24h changePercent24h stale updatedAt unpricedCount
    chains { chainId chain value stale } assets { asset balance value } categories { category value }
    holdings { chainId chain wallet asset category amount balance price priceSource valueUsd
               updatedAt stale error position }
    ${POSITIONS_FIELDS} }
  wallets { id chainId address label createdAt }
}`;
const ALLOCATION = `{ allocation { totalValue unpricedCount
  byAsset { key label valueUsd weight } byChain { key label valueUsd weight }
  byCategory { key label valueUsd weight } } }`;
const HISTORY = `query($period: String!, $interval: String!) {
  history(period: $period, interval: $interval) { timestamps values gaps } }`;
const PERFORMANCE = `query($period: String!) { performance(period: $period) {
  period start end startValue endValue deposits withdrawals netFlows absoluteGain percentageGain
  roi twr mwr volatility sharpeRatio maxDrawdown } }`;
const COMPARE = `query($period: String!, $benchmark: String!) {
  compare(period: $period, benchmark: $benchmark) { benchmark timestamps portfolio benchmarkValues
    portfolioReturn benchmarkReturn excessReturn beta alpha correlation trackingError
    informationRatio } }`;
const TARGETS = `{ allocationTargets { targets { key weight members } band minTradeUsd } }`;
const REBALANCE = `{ rebalance { withinBands totalGasUsd
  trades { side asset chainId valueUsd amount position }
  gas { chainId trades gasUnits costUsd }
  currentWeights { key label weight } resultingWeights { key label weight } } }`;
const SET_TARGETS = `mutation($targets: [TargetInput!]!, $band: Decimal!, $minTradeUsd: Decimal!) {
  setAllocationTargets(targets: $targets, band: $band, minTradeUsd: $minTradeUsd) { key } }`;
const ADD_WALLET = `mutation($chainId: Int!, $address: String!, $label: String) {
  addWallet(chainId: $chainId, address: $address, label: $label) { id } }`;
const REMOVE_WALLET = `mutation($id: ID!) { removeWallet(id: $id) }`;
const UPDATES = `subscription { portfolioUpdates { totalValue change changePercent timestamp staleChains } }`;

let client = null;
let live = null;
const view = { portfolio: null, wallets: [], dayAgoValue: null, loadSeq: 0, poll: null };

// --- panel states: loading | ok | empty | stale | error | unavailable -----------------------

function setState(panelId, state, message = "") {
  const panel = $(panelId);
  const box = panel.querySelector(".state");
  box.dataset.state = state;
  box.textContent = message;
  panel.dataset.state = state;
  panel.querySelector(".body").hidden = !(state === "ok" || state === "stale");
}

function failed(panelId, err, retry = null) {
  if (err instanceof ApiError && (err.code === "UNAUTHENTICATED" || err.status === 401)) {
    logout(`The token was rejected: ${err.message}`);
    return;
  }
  const code = err instanceof ApiError ? ` (${err.code})` : "";
  setState(panelId, "error", `Could not load: ${err.message}${code} `);
  if (retry) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "retry";
    button.textContent = "Retry";
    button.addEventListener("click", () => retry());
    $(panelId).querySelector(".state").append(button);
  }
}

// An older server's schema lacks a field: GraphQL validation says so; the panel says "not available".
function isMissingField(err) {
  return err instanceof ApiError && /Cannot query field/.test(err.message);
}

// --- total, holdings, donuts, wallets ------------------------------------------------------

function renderTotal(total, change, changePercent, updatedAt) {
  const value = $("total-value");
  value.dataset.value = total;
  value.textContent = fmt.usd(total);
  const changeEl = $("total-change");
  changeEl.dataset.value = change ?? "";
  changeEl.dataset.percent = changePercent ?? "";
  changeEl.className = `change ${fmt.trend(change)}`;
  changeEl.textContent = change === null || change === undefined
    ? "24 h change: not enough history"
    : `${fmt.signedUsd(change)} (${fmt.percent(changePercent)}) in 24 h`;
  $("total-updated").textContent = updatedAt ? `updated ${new Date(updatedAt).toLocaleTimeString()}` : "";
}

function renderHoldings(holdings) {
  const body = $("holdings-table").querySelector("tbody");
  const rows = [...holdings].sort((a, b) => Math.abs(Number(b.valueUsd ?? 0)) - Math.abs(Number(a.valueUsd ?? 0)));
  body.replaceChildren(...rows.map((h) => {
    const tr = document.createElement("tr");
    tr.dataset.key = `${h.chainId}:${h.wallet}:${h.asset}:${h.category}${h.position ? `:${h.position}` : ""}`;
    tr.classList.toggle("is-stale", h.stale);
    const cells = [
      [h.chain], [fmt.shortAddress(h.wallet)], [h.asset], [h.category],
      [fmt.amount(h.balance), "num", h.balance], [fmt.usd(h.price), "num", h.price], [h.priceSource ?? "—"],
      [fmt.usd(h.valueUsd), "num", h.valueUsd], [fmt.age(h.updatedAt)],
    ];
    for (const [text, cls, raw] of cells) {
      const td = document.createElement("td");
      td.textContent = text ?? "—";
      if (cls) td.className = cls;
      if (raw !== undefined) td.dataset.value = raw ?? "";
      tr.append(td);
    }
    const badge = document.createElement("td");
    if (h.stale || h.error) {
      const span = document.createElement("span");
      span.className = h.error && !h.stale ? "badge error" : "badge stale";
      span.textContent = h.stale ? "stale" : "error";
      span.title = h.error || "last known value: the chain could not be read";
      badge.append(span);
    }
    tr.append(badge);
    return tr;
  }));
}

function renderWallets(wallets) {
  const list = $("wallet-list");
  list.replaceChildren(...wallets.map((w) => {
    const li = document.createElement("li");
    li.dataset.id = w.id;
    li.dataset.address = w.address;
    const chain = document.createElement("span");
    chain.className = "badge";
    chain.textContent = `chain ${w.chainId}`;
    const text = document.createElement("span");
    text.className = "grow";
    text.innerHTML = `<span class="addr"></span> <span class="muted"></span>`;
    text.querySelector(".addr").textContent = fmt.shortAddress(w.address);
    text.querySelector(".addr").title = w.address;
    text.querySelector(".muted").textContent = w.label || "";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "Remove";
    remove.addEventListener("click", () => removeWallet(w.id));
    li.append(chain, text, remove);
    return li;
  }));
  const known = new Set(wallets.map((w) => w.chainId));
  (view.portfolio?.chains || []).forEach((c) => known.add(c.chainId));
  $("known-chains").replaceChildren(...[...known].sort((a, b) => a - b).map((id) => {
    const option = document.createElement("option");
    option.value = id;
    return option;
  }));
}

async function renderDonuts(portfolio, allocationLoad) {
  let slices;
  try {
    const { allocation } = await allocationLoad;
    const pick = (list) => list.filter((s) => Number(s.valueUsd) > 0).map((s) => ({ label: s.label, value: s.valueUsd }));
    slices = { asset: pick(allocation.byAsset), chain: pick(allocation.byChain), category: pick(allocation.byCategory) };
  } catch (err) {
    if (!(err instanceof ApiError) || err.code === "UNAUTHENTICATED") throw err;
  }
  if (!slices) { // the portfolio's own breakdowns (older servers, or a net value <= 0)
    const positive = (list, label, value) => list.filter((x) => Number(x[value]) > 0).map((x) => ({ label: x[label], value: x[value] }));
    slices = {
      asset: positive(portfolio.assets, "asset", "value"),
      chain: positive(portfolio.chains, "chain", "value"),
      category: positive(portfolio.categories, "category", "value"),
    };
  }
  if (!slices.asset.length) {
    setState("panel-allocation", "empty", "Nothing priced to allocate yet.");
    return;
  }
  setState("panel-allocation", "ok");
  const panel = $("panel-allocation");
  panel.dataset.assets = JSON.stringify(slices.asset.map((s) => s.label));
  await Promise.all([
    donut($("donut-asset"), slices.asset),
    donut($("donut-chain"), slices.chain),
    donut($("donut-category"), slices.category),
  ]);
}

async function loadPortfolio() {
  const seq = ++view.loadSeq;
  const allocationLoad = client.gql(ALLOCATION); // in parallel; awaited by the donuts
  allocationLoad.catch(() => {}); // its failure is handled there (or the panel has no wallets)
  const { portfolio, wallets } = await client.gql(PORTFOLIO);
  if (seq !== view.loadSeq) return; // a newer load is under way
  view.portfolio = portfolio;
  view.wallets = wallets;
  view.dayAgoValue = portfolio.change24h === null ? null : Number(portfolio.totalValue) - Number(portfolio.change24h);
  renderWallets(wallets);
  setState("panel-wallets", "ok");
  if (!wallets.length) {
    setState("panel-total", "empty", "No wallets yet: add one in the Wallets panel.");
    setState("panel-holdings", "empty", "No wallets yet.");
    setState("panel-allocation", "empty", "No wallets yet.");
    setState("panel-positions", "empty", "No wallets yet.");
    return;
  }
  renderTotal(portfolio.totalValue, portfolio.change24h, portfolio.changePercent24h, portfolio.updatedAt);
  const chainCount = new Set(wallets.map((w) => w.chainId)).size;
  $("total-summary").textContent = `${wallets.length} wallet(s) on ${chainCount} chain(s) · `
    + `${portfolio.holdings.length} holdings`
    + (portfolio.unpricedCount ? ` · ${portfolio.unpricedCount} without a price (not counted)` : "");
  const staleChains = portfolio.chains.filter((c) => c.stale).map((c) => c.chain);
  $("total-stale").hidden = !staleChains.length;
  $("total-stale").textContent = staleChains.length
    ? `Stale: ${staleChains.join(", ")} could not be read; last known values are shown.` : "";
  setState("panel-total", staleChains.length ? "stale" : "ok");
  if (!portfolio.holdings.length) {
    setState("panel-holdings", "empty", "Waiting for the first refresh of your wallets…");
  } else {
    renderHoldings(portfolio.holdings);
    setState("panel-holdings", portfolio.stale ? "stale" : "ok",
      portfolio.stale ? "Some chains are stale: their rows show the last known values." : "");
  }
  renderPositions(portfolio.positions, setState);
  await renderDonuts(portfolio, allocationLoad);
}

async function refreshPortfolio() {
  try {
    await loadPortfolio();
  } catch (err) {
    failed("panel-total", err, refreshPortfolio);
  }
}

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

// --- history, performance, comparison ------------------------------------------------------

async function loadHistory({ quiet = false } = {}) {
  const period = $("history-period").value;
  const interval = $("history-interval").value;
  if (!quiet) setState("panel-history", "loading", "Loading…");
  try {
    const { history } = await client.gql(HISTORY, { period, interval });
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

async function loadPerformance() {
  setState("panel-performance", "loading", "Loading…");
  try {
    const { performance: p } = await client.gql(PERFORMANCE, { period: $("performance-period").value });
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

async function loadCompare() {
  setState("panel-compare", "loading", "Loading…");
  try {
    const { compare: c } = await client.gql(COMPARE, {
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

// --- rebalancing -----------------------------------------------------------------------------

function targetRow(target = { key: "", weight: "", members: [] }) {
  const tr = document.createElement("tr");
  tr.innerHTML = `<td><input class="t-key" required></td>
    <td><input class="t-weight num" type="number" step="0.01" min="0" max="100" required></td>
    <td><input class="t-members" placeholder="e.g. USDC, USDT, DAI"></td>
    <td><button type="button" class="t-remove" title="remove">✕</button></td>`;
  tr.querySelector(".t-key").value = target.key;
  tr.querySelector(".t-weight").value = target.weight === "" ? "" : Number(target.weight);
  tr.querySelector(".t-members").value = (target.members || []).join(", ");
  tr.querySelector(".t-remove").addEventListener("click", () => { tr.remove(); updateTargetSum(); });
  tr.querySelector(".t-weight").addEventListener("input", updateTargetSum);
  return tr;
}

function targetRows() {
  return [...$("targets-table").querySelectorAll("tbody tr")].map((tr) => ({
    key: tr.querySelector(".t-key").value.trim(),
    weight: tr.querySelector(".t-weight").value,
    members: tr.querySelector(".t-members").value.split(",").map((m) => m.trim()).filter(Boolean),
  }));
}

function updateTargetSum() {
  const sum = targetRows().reduce((acc, t) => acc + Number(t.weight || 0), 0);
  $("targets-sum").textContent = `Weights add up to ${sum.toFixed(2)} % (must be 100 %).`;
}

// Suggested starting targets: the current weights by asset, rounded, summing to 100.
function suggestedTargets() {
  const assets = (view.portfolio?.assets || []).filter((a) => Number(a.value) > 0).slice(0, 5);
  const total = assets.reduce((acc, a) => acc + Number(a.value), 0);
  if (!total) return [];
  const targets = assets.map((a) => ({ key: a.asset, weight: Math.floor((Number(a.value) / total) * 100), members: [] }));
  targets[0].weight += 100 - targets.reduce((acc, t) => acc + t.weight, 0);
  return targets;
}

function renderTrades(rebalance) {
  const box = $("rebalance-trades");
  if (rebalance.withinBands || !rebalance.trades.length) {
    box.innerHTML = `<p class="up" data-within-bands="true">Within the bands: no trade needed.</p>`;
    return;
  }
  const table = document.createElement("table");
  table.innerHTML = `<thead><tr><th>Side</th><th>Asset</th><th>Chain</th><th class="num">Value</th><th class="num">Amount</th></tr></thead><tbody></tbody>`;
  table.querySelector("tbody").replaceChildren(...rebalance.trades.map((t) => {
    const tr = document.createElement("tr");
    tr.dataset.asset = t.asset;
    tr.dataset.value = t.valueUsd;
    const side = t.position ? `REDUCE position ${t.position.includes("#") ? `#${t.position.split("#")[1]}` : fmt.shortAddress(t.position)}` : t.side;
    for (const [text, cls] of [[side, t.side === "BUY" ? "up" : "down"], [t.asset], [t.chainId ?? "—"],
      [fmt.usd(t.valueUsd), "num"], [fmt.amount(t.amount), "num"]]) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      tr.append(td);
    }
    return tr;
  }));
  const gas = document.createElement("p");
  gas.className = "muted";
  gas.textContent = `Estimated gas: ${rebalance.totalGasUsd === null ? "unknown" : fmt.usd(rebalance.totalGasUsd)}`
    + ` over ${rebalance.gas.map((g) => `${g.trades} trade(s) on chain ${g.chainId}`).join(", ")}`;
  box.replaceChildren(table, gas);
}

async function loadRebalance({ reloadTargets = true, portfolioLoad = Promise.resolve() } = {}) {
  // Targets and trades load together; suggested targets wait for the portfolio only if needed.
  const trades = client.gql(REBALANCE);
  trades.catch(() => {});
  try {
    if (reloadTargets) {
      const { allocationTargets: policy } = await client.gql(TARGETS);
      let targets = policy.targets;
      if (!targets.length) {
        await portfolioLoad;
        targets = suggestedTargets();
      }
      $("targets-table").querySelector("tbody").replaceChildren(...targets.map(targetRow));
      $("targets-band").value = Number(policy.band);
      $("targets-min-trade").value = Number(policy.minTradeUsd);
      $("panel-rebalance").dataset.saved = policy.targets.length ? "true" : "false";
      updateTargetSum();
    }
    setState("panel-rebalance", "ok");
    try {
      renderTrades((await trades).rebalance);
    } catch (err) {
      if (!(err instanceof ApiError) || !["NO_TARGETS", "INSUFFICIENT_DATA"].includes(err.code)) throw err;
      $("rebalance-trades").innerHTML = `<p class="muted"></p>`;
      $("rebalance-trades").firstChild.textContent = err.code === "NO_TARGETS"
        ? "Save targets to see the trades that would reach them." : err.message;
    }
  } catch (err) {
    if (isMissingField(err)) {
      setState("panel-rebalance", "unavailable", "Rebalancing is not available on this server.");
    } else {
      failed("panel-rebalance", err, () => loadRebalance());
    }
  }
}

async function saveTargets(event) {
  event.preventDefault();
  const error = $("targets-error");
  error.hidden = true;
  try {
    await client.gql(SET_TARGETS, {
      targets: targetRows().map((t) => ({ key: t.key, weight: String(t.weight), members: t.members.length ? t.members : null })),
      band: String($("targets-band").value || 5),
      minTradeUsd: String($("targets-min-trade").value || 50),
    });
    $("panel-rebalance").dataset.saved = "true";
    await loadRebalance({ reloadTargets: false });
  } catch (err) {
    error.hidden = false;
    error.textContent = err.message;
  }
}

// --- wallets ---------------------------------------------------------------------------------

async function addWallet(event) {
  event.preventDefault();
  const error = $("wallet-error");
  error.hidden = true;
  try {
    await client.gql(ADD_WALLET, {
      chainId: Number($("wallet-chain").value),
      address: $("wallet-address").value.trim(),
      label: $("wallet-label").value.trim() || null,
    });
    $("wallet-form").reset();
    await refreshPortfolio();
  } catch (err) {
    error.hidden = false;
    error.textContent = err instanceof ApiError ? `${err.message} (${err.code})` : err.message;
  }
}

async function removeWallet(id) {
  try {
    await client.gql(REMOVE_WALLET, { id });
    await refreshPortfolio();
  } catch (err) {
    $("wallet-error").hidden = false;
    $("wallet-error").textContent = err.message;
  }
}

// --- live updates ------------------------------------------------------------------------------

function onUpdate(data) {
  const update = data && data.portfolioUpdates;
  if (!update) return;
  const before = Number($("total-value").dataset.value || 0);
  const total = Number(update.totalValue);
  const change = view.dayAgoValue === null ? null : total - view.dayAgoValue;
  const pct = change === null || !view.dayAgoValue ? null : (change / view.dayAgoValue) * 100;
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
  if (state === "unauthorized") logout("The token was rejected by the live connection.");
}

// --- login and start ---------------------------------------------------------------------------

async function showLogin(message = "") {
  $("dashboard").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").hidden = !message;
  $("login-error").textContent = message;
  const input = $("token-input");
  if (!input.value) {
    try { // demo mode pre-fills the demo user's token
      const response = await fetch("/demo-token");
      if (response.ok) {
        const demo = await response.json();
        input.value = demo.token;
        $("login-hint").textContent = `Demo mode: the "${demo.subject}" user's token is filled in.`;
      }
    } catch { /* not in demo mode */ }
  }
}

function logout(message = "") {
  clearInterval(view.poll);
  if (live) live.close();
  live = null;
  localStorage.removeItem(TOKEN_KEY);
  showLogin(message);
}

async function start(token) {
  client = createClient(token);
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("logout").hidden = false;
  const portfolioLoad = loadPortfolio().catch((err) => failed("panel-total", err, refreshPortfolio));
  await Promise.allSettled([
    portfolioLoad, loadRebalance({ portfolioLoad }), loadHistory(), loadPerformance(), loadCompare(),
  ]);
  document.body.dataset.ready = "true";
  window.chainfolioReadyMs = performance.now();
  performance.mark("chainfolio-ready");
  if (client) live = client.subscribe(UPDATES, { onData: onUpdate, onStatus: onLiveStatus });
  // Pushes carry value changes; a chain turning stale (values kept) shows on the next poll.
  clearInterval(view.poll);
  view.poll = setInterval(() => { if (!document.hidden && live) refreshPortfolio(); }, 30000);
}

function boot() {
  $("history-period").addEventListener("change", () => loadHistory());
  $("history-interval").addEventListener("change", () => loadHistory());
  $("performance-period").addEventListener("change", loadPerformance);
  $("compare-period").addEventListener("change", loadCompare);
  $("compare-benchmark").addEventListener("change", loadCompare);
  $("targets-form").addEventListener("submit", saveTargets);
  $("target-add").addEventListener("click", () => {
    $("targets-table").querySelector("tbody").append(targetRow());
    updateTargetSum();
  });
  $("wallet-form").addEventListener("submit", addWallet);
  $("logout").addEventListener("click", () => logout());
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim();
    localStorage.setItem(TOKEN_KEY, token);
    start(token);
  });
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    localStorage.setItem(TOKEN_KEY, fromHash);
    history.replaceState(null, "", location.pathname);
  }
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) start(token);
  else showLogin();
}

boot();
