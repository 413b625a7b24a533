// What every panel shares: the signed-in session, the panel states, and how a failure shows.
import { ApiError } from "./api.js";

export const $ = (id) => document.getElementById(id);

// The signed-in client and live connection, and the last portfolio the panels derive from.
export const session = {
  client: null, live: null, portfolio: null, wallets: [], dayAgoValue: null, loadSeq: 0, poll: null,
};

// The token was rejected: main.js signs out (set once there, so panels need not import it).
let rejectedHandler = () => {};
export function onRejected(handler) {
  rejectedHandler = handler;
}
export function rejected(message) {
  rejectedHandler(message);
}

// --- panel states: loading | ok | empty | stale | error | unavailable -----------------------

export function setState(panelId, state, message = "") {
  const panel = $(panelId);
  const box = panel.querySelector(".state");
  box.dataset.state = state;
  box.textContent = message;
  panel.dataset.state = state;
  panel.querySelector(".body").hidden = !(state === "ok" || state === "stale");
}

export function failed(panelId, err, retry = null) {
  if (err instanceof ApiError && (err.code === "UNAUTHENTICATED" || err.status === 401)) {
    rejected(`The token was rejected: ${err.message}`);
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
export function isMissingField(err) {
  return err instanceof ApiError && /Cannot query field/.test(err.message);
}
