// The rebalancing panel: the target weights (edited and saved here) and the trades that
// would reach them, with their estimated gas.
import { ApiError } from "./api.js";
import * as fmt from "./format.js";
import { $, failed, isMissingField, session, setState } from "./page.js";

const TARGETS = `{ allocationTargets { targets { key weight members } band minTradeUsd } }`;
const REBALANCE = `{ rebalance { withinBands totalGasUsd
  trades { side asset chainId valueUsd amount position }
  gas { chainId trades gasUnits costUsd }
  currentWeights { key label weight } resultingWeights { key label weight } } }`;
const SET_TARGETS = `mutation($targets: [TargetInput!]!, $band: Decimal!, $minTradeUsd: Decimal!) {
  setAllocationTargets(targets: $targets, band: $band, minTradeUsd: $minTradeUsd) { key } }`;

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
  const assets = (session.portfolio?.assets || []).filter((a) => Number(a.value) > 0).slice(0, 5);
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

export async function loadRebalance({ reloadTargets = true, portfolioLoad = Promise.resolve() } = {}) {
  // Targets and trades load together; suggested targets wait for the portfolio only if needed.
  const trades = session.client.gql(REBALANCE);
  trades.catch(() => {});
  try {
    if (reloadTargets) {
      const { allocationTargets: policy } = await session.client.gql(TARGETS);
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
    await session.client.gql(SET_TARGETS, {
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

export function bindRebalance() {
  $("targets-form").addEventListener("submit", saveTargets);
  $("target-add").addEventListener("click", () => {
    $("targets-table").querySelector("tbody").append(targetRow());
    updateTargetSum();
  });
}
