// The total and holdings panels: the headline value with its 24 h change, and one row per
// holding with its unrealized P&L in the selected currency.
import * as fmt from "./format.js";
import { $ } from "./page.js";

export function renderTotal(total, change, changePercent, updatedAt) {
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

export function renderHoldings(holdings) {
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
    // P&L in the selected currency, after Value (no data-value: the Value columns stay USD)
    const pnl = document.createElement("td");
    pnl.className = "num";
    pnl.dataset.pnl = h.unrealizedPnl ?? "";
    pnl.textContent = h.unrealizedPnl == null ? "—"
      : `${fmt.money(h.unrealizedPnl, $("currency").value)} (${fmt.percent(h.unrealizedPnlPercent, 1)})`;
    pnl.title = h.costBasis == null ? "cost basis unknown" : `cost basis ${fmt.money(h.costBasis, $("currency").value)}`;
    for (const [text, cls, raw] of cells) {
      const td = document.createElement("td");
      td.textContent = text ?? "—";
      if (cls) td.className = cls;
      if (raw !== undefined) td.dataset.value = raw ?? "";
      tr.append(td);
    }
    tr.insertBefore(pnl, tr.lastChild); // before Age
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
