#!/usr/bin/env bash
# Rebuilds the dashboard's vendored files from npm (pinned in scripts/dashboard/package-lock.json)
# into chainfolio/dashboard/static/vendor/. The output is committed: installing or running
# chainfolio needs no Node.js for the dashboard.
set -euo pipefail
cd "$(dirname "$0")/dashboard"
npm ci --no-audit --no-fund --loglevel=error
vendor=../../chainfolio/dashboard/static/vendor
mkdir -p "$vendor"
cp node_modules/echarts/dist/echarts.esm.min.js "$vendor/echarts.esm.min.js"
cp node_modules/echarts/LICENSE "$vendor/echarts.LICENSE.txt"
echo "vendored echarts $(node -p "require('./node_modules/echarts/package.json').version") into $vendor"
