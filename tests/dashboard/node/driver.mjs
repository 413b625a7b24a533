// Drives the system Chromium with playwright-core for the Python tests: one JSON command per
// stdin line, one JSON answer per stdout line ({"ok": true, "value": …} or {"ok": false, "error"}).
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const executablePath = process.env.CHAINFOLIO_CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
const context = await browser.newContext({ viewport: { width: 1440, height: 1800 } });
const page = await context.newPage();
const consoleErrors = [];
page.on("console", (msg) => { if (msg.type() === "error") consoleErrors.push(msg.text()); });
page.on("pageerror", (err) => consoleErrors.push(String(err)));

const commands = {
  // A fresh document every time (a hash-only change of URL would not reload the page).
  async open({ url, timeoutMs = 60000, waitReady = true }) {
    await page.goto("about:blank");
    await page.goto(url, { waitUntil: "load", timeout: timeoutMs });
    if (!waitReady) return null;
    await page.waitForSelector("body[data-ready='true']", { timeout: timeoutMs });
    return page.evaluate(() => {
      const nav = performance.getEntriesByType("navigation")[0];
      return {
        readyMs: window.chainfolioReadyMs,
        domContentLoadedMs: nav.domContentLoadedEventEnd,
        loadMs: nav.loadEventEnd,
      };
    });
  },
  // `expr` is the source of a function taking no argument.
  async eval({ expr }) {
    return page.evaluate(`(${expr})()`);
  },
  // Polled from here with page.evaluate: page.waitForFunction compiles a string predicate
  // inside the page, which the dashboard's CSP (script-src 'self', no 'unsafe-eval') refuses.
  async waitFor({ expr, timeoutMs = 60000 }) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await page.evaluate(`(${expr})()`);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`waitFor: still false after ${timeoutMs} ms: ${expr}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  },
  async fill({ selector, value }) {
    await page.fill(selector, String(value));
    return true;
  },
  async click({ selector }) {
    await page.click(selector);
    return true;
  },
  async select({ selector, value }) {
    await page.selectOption(selector, value);
    return true;
  },
  async viewport({ width, height }) {
    await page.setViewportSize({ width, height });
    return true;
  },
  async screenshot({ path }) {
    await page.screenshot({ path, fullPage: true });
    return path;
  },
  async errors() {
    return consoleErrors;
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const { cmd, ...args } = JSON.parse(line);
  if (cmd === "close") break;
  try {
    const value = await commands[cmd](args);
    process.stdout.write(JSON.stringify({ ok: true, value: value ?? null }) + "\n");
  } catch (err) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(err && err.message || err) }) + "\n");
  }
}
lines.close();
await browser.close();
process.exit(0);
