// The dashboard: log in with a token, load every panel over GraphQL, stay live by subscription.
// Each panel lives in its own module; this one signs in and out and starts them.
import { createClient } from "./api.js";
import { bindHistory, loadHistory } from "./history.js";
import { subscribeUpdates } from "./live.js";
import { $, failed, onRejected, session } from "./page.js";
import { bindPerformance, loadCompare, loadPerformance } from "./performance.js";
import { bindCurrency, loadPortfolio, refreshPortfolio } from "./portfolio.js";
import { bindRebalance, loadRebalance } from "./rebalance.js";
import { bindWallets } from "./wallets.js";

// sessionStorage, not localStorage: the token leaves with the tab (issue 21), and the page
// runs under a CSP allowing its own scripts only, so no injected script can read it.
const TOKEN_KEY = "chainfolio.token";

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
  clearInterval(session.poll);
  if (session.live) session.live.close();
  session.live = null;
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin(message);
}

async function start(token) {
  session.client = createClient(token);
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
  if (session.client) session.live = subscribeUpdates(session.client);
  // Pushes carry value changes; a chain turning stale (values kept) shows on the next poll.
  clearInterval(session.poll);
  session.poll = setInterval(() => { if (!document.hidden && session.live) refreshPortfolio(); }, 30000);
}

function boot() {
  onRejected(logout);
  bindCurrency();
  bindHistory();
  bindPerformance();
  bindRebalance();
  bindWallets(refreshPortfolio);
  $("logout").addEventListener("click", () => logout());
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    start(token);
  });
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    sessionStorage.setItem(TOKEN_KEY, fromHash);
    history.replaceState(null, "", location.pathname);
  }
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) start(token);
  else showLogin();
}

boot();
