// Display formatting. Values arrive as exact decimal strings; Number is fine for display only.

const usdFormat = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 2 });
const compactUsd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", notation: "compact", maximumFractionDigits: 1 });

export function usd(value) {
  if (value === null || value === undefined || value === "") return "—";
  return usdFormat.format(Number(value));
}

export function usdCompact(value) {
  return value === null || value === undefined ? "—" : compactUsd.format(Number(value));
}

export function signedUsd(value) {
  if (value === null || value === undefined) return "—";
  const n = Number(value);
  return (n > 0 ? "+" : n < 0 ? "−" : "") + usdFormat.format(Math.abs(n));
}

export function percent(value, digits = 2) {
  if (value === null || value === undefined) return "—";
  const n = Number(value);
  return (n > 0 ? "+" : "") + n.toFixed(digits) + " %";
}

export function plain(value, digits = 2) {
  return value === null || value === undefined ? "—" : Number(value).toFixed(digits);
}

export function amount(value) {
  if (value === null || value === undefined) return "—";
  const n = Number(value);
  return n.toLocaleString("en-US", { maximumFractionDigits: Math.abs(n) >= 1 ? 4 : 8 });
}

export function age(iso, now = Date.now()) {
  if (!iso) return "—";
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

export function shortAddress(address) {
  return address && address.length > 12 ? `${address.slice(0, 6)}…${address.slice(-4)}` : address || "";
}

export function trend(value) {
  const n = Number(value);
  return n > 0 ? "up" : n < 0 ? "down" : "";
}

const moneyFormats = new Map();

// Money in a display currency: fiat with its symbol, ETH/BTC as a number and the code.
export function money(value, currency = "USD") {
  if (value === null || value === undefined || value === "") return "—";
  const n = Number(value);
  if (currency === "ETH" || currency === "BTC") return `${n.toFixed(6)} ${currency}`;
  if (!moneyFormats.has(currency)) {
    moneyFormats.set(currency, new Intl.NumberFormat("en-US", { style: "currency", currency, maximumFractionDigits: 2 }));
  }
  return moneyFormats.get(currency).format(n);
}
