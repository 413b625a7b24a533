// The allocation panel: three donuts (by asset, chain and category) of the priced holdings.
import { ApiError } from "./api.js";
import { donut } from "./charts.js";
import { $, session, setState } from "./page.js";

const ALLOCATION = `{ allocation { totalValue unpricedCount
  byAsset { key label valueUsd weight } byChain { key label valueUsd weight }
  byCategory { key label valueUsd weight } } }`;

// Started beside the portfolio query; its failure is handled by renderDonuts (or unused).
export function loadAllocation() {
  const load = session.client.gql(ALLOCATION);
  load.catch(() => {});
  return load;
}

export async function renderDonuts(portfolio, allocationLoad) {
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
