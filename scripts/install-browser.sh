#!/usr/bin/env bash
# Installs what the dashboard browser tests need: Debian's Chromium (apt) and playwright-core
# (npm ci from tests/dashboard/node/package-lock.json). playwright-core downloads no browser;
# it drives /usr/bin/chromium. Idempotent; exits 0 with a message when it cannot install
# (no root, no apt, offline) so the tests can skip with that reason.
set -uo pipefail
cd "$(dirname "$0")/.."

chromium="${CHAINFOLIO_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "install-browser: apt-get install chromium"
    (apt-get install -y -q --no-install-recommends chromium >/dev/null ||
      { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }) ||
      echo "install-browser: apt-get could not install chromium" >&2
  else
    echo "install-browser: $chromium missing and apt-get unavailable (needs root): browser tests will skip" >&2
  fi
fi

if command -v npm >/dev/null 2>&1; then
  (cd tests/dashboard/node && npm ci --no-audit --no-fund --loglevel=error) ||
    echo "install-browser: npm ci failed: browser tests will skip" >&2
else
  echo "install-browser: npm missing: browser tests will skip" >&2
fi
exit 0
