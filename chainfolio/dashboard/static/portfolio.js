// Loads the portfolio once for the total, holdings, positions, allocation and wallets panels.
import { loadAllocation, renderDonuts } from "./allocation.js";
import { renderHoldings, renderTotal } from "./holdings.js";
import { $, failed, session, setState } from "./page.js";
import { POSITIONS_FIELDS, renderPositions } from "./positions.js";
import { renderWallets } from "./wallets.js";

const PORTFOLIO = `query($currency: String!) {
  portfolio(currency: $currency) { totalValue change24h changePercent24h stale updatedAt unpricedCount
    chains { chainId chain value stale } assets { asset balance value } categories { category value }
    holdings { chainId chain wallet asset category amount balance price priceSource valueUsd
               updatedAt stale error position costBasis unrealizedPnl unrealizedPnlPercent }
    ${POSITIONS_FIELDS} }
  wallets { id chainId address label createdAt }
}`;

export async function loadPortfolio() {
  const seq = ++session.loadSeq;
  const allocationLoad = loadAllocation(); // in parallel; awaited by the donuts
  const { portfolio, wallets } = await session.client.gql(PORTFOLIO, { currency: $("currency").value });
  if (seq !== session.loadSeq) return; // a newer load is under way
  session.portfolio = portfolio;
  session.wallets = wallets;
  session.dayAgoValue = portfolio.change24h === null ? null : Number(portfolio.totalValue) - Number(portfolio.change24h);
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

export async function refreshPortfolio() {
  try {
    await loadPortfolio();
  } catch (err) {
    failed("panel-total", err, refreshPortfolio);
  }
}

// The currency selector: P&L and cost basis are shown in it (values stay USD).
export function bindCurrency() {
  $("currency").value = localStorage.getItem("chainfolio.currency") || "USD";
  $("currency").addEventListener("change", () => {
    localStorage.setItem("chainfolio.currency", $("currency").value);
    loadPortfolio().catch((err) => failed("panel-total", err, refreshPortfolio));
  });
}
