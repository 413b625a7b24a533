#!/usr/bin/env bash
# Refreshes the token list chainfolio ships (npm @uniswap/default-token-list, pinned in
# scripts/tokenlist/package-lock.json) and the Token Lists JSON schema user lists are checked
# against (npm @uniswap/token-lists) into chainfolio/fetchers/data/. The output is committed:
# installing or running chainfolio needs no Node.js. To move to a newer list, bump the version
# in scripts/tokenlist/package.json, run `npm install --package-lock-only` there, then this.
set -euo pipefail
cd "$(dirname "$0")/tokenlist"
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
data=../../chainfolio/fetchers/data
mkdir -p "$data"
cp node_modules/@uniswap/default-token-list/build/uniswap-default.tokenlist.json \
  "$data/uniswap-default.tokenlist.json"
cp node_modules/@uniswap/token-lists/src/tokenlist.schema.json "$data/tokenlist.schema.json"
cp node_modules/@uniswap/default-token-list/LICENSE "$data/uniswap-default.tokenlist.LICENSE.txt" 2>/dev/null || true
echo "shipped @uniswap/default-token-list $(node -p "require('./node_modules/@uniswap/default-token-list/package.json').version") into $data"
