// The positions panel: DEX liquidity positions (Uniswap V3 NFTs, V2 LP tokens), one row each,
// with what withdrawing would return (the DEPOSIT legs) and the uncollected fees (REWARD legs).
import * as fmt from "./format.js";

export const POSITIONS_FIELDS = `positions { id protocol chainId chain wallet pool inRange valueUsd
  legs { asset category balance valueUsd positionLeg } }`;

function legsText(legs, category) {
  const parts = legs
    .filter((l) => l.category === category)
    .sort((a, b) => (a.positionLeg ?? 0) - (b.positionLeg ?? 0))
    .map((l) => `${fmt.amount(l.balance)} ${l.asset}`);
  return parts.length ? parts.join(" + ") : "—";
}

function rangeBadge(position) {
  const span = document.createElement("span");
  if (position.inRange === null) {
    span.className = "badge";
    span.textContent = "—";
  } else {
    span.className = position.inRange ? "badge up" : "badge stale";
    span.textContent = position.inRange ? "in range" : "out of range";
    span.title = position.inRange
      ? "the pool's price is inside the position's range: it earns fees"
      : "the pool's price is outside the range: one token only, no fees";
  }
  return span;
}

function row(position) {
  const tr = document.createElement("tr");
  tr.dataset.key = `${position.chainId}:${position.wallet}:${position.id}`;
  const tokenId = position.id.includes("#") ? `#${position.id.split("#")[1]}` : fmt.shortAddress(position.id);
  const cells = [
    [position.chain], [fmt.shortAddress(position.wallet)], [`${position.protocol} ${tokenId}`],
    [null, "", undefined, rangeBadge(position)], [legsText(position.legs, "DEPOSIT")],
    [legsText(position.legs, "REWARD")], [fmt.usd(position.valueUsd), "num", position.valueUsd],
  ];
  for (const [text, cls, raw, node] of cells) {
    const td = document.createElement("td");
    if (node) td.append(node);
    else td.textContent = text ?? "—";
    if (cls) td.className = cls;
    if (raw !== undefined) td.dataset.value = raw ?? "";
    tr.append(td);
  }
  return tr;
}

export function renderPositions(positions, setState) {
  if (!positions || !positions.length) {
    setState("panel-positions", "empty", "No liquidity positions in these wallets.");
    return;
  }
  const body = document.getElementById("positions-table").querySelector("tbody");
  body.replaceChildren(...positions.map(row));
  setState("panel-positions", "ok");
}
