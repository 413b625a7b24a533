// The wallets panel: the tracked wallets, adding and removing one.
import { ApiError } from "./api.js";
import * as fmt from "./format.js";
import { $, session } from "./page.js";

const ADD_WALLET = `mutation($chainId: Int!, $address: String!, $label: String) {
  addWallet(chainId: $chainId, address: $address, label: $label) { id } }`;
const REMOVE_WALLET = `mutation($id: ID!) { removeWallet(id: $id) }`;

// Reloads the portfolio after a change (given by main.js: the portfolio load renders this panel).
let refreshPortfolio = async () => {};

export function renderWallets(wallets) {
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
  (session.portfolio?.chains || []).forEach((c) => known.add(c.chainId));
  $("known-chains").replaceChildren(...[...known].sort((a, b) => a - b).map((id) => {
    const option = document.createElement("option");
    option.value = id;
    return option;
  }));
}

async function addWallet(event) {
  event.preventDefault();
  const error = $("wallet-error");
  error.hidden = true;
  try {
    await session.client.gql(ADD_WALLET, {
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
    await session.client.gql(REMOVE_WALLET, { id });
    await refreshPortfolio();
  } catch (err) {
    $("wallet-error").hidden = false;
    $("wallet-error").textContent = err.message;
  }
}

export function bindWallets(refresh) {
  refreshPortfolio = refresh;
  $("wallet-form").addEventListener("submit", addWallet);
}
