#!/usr/bin/env bash
# Rebuilds the dashboard's vendored ECharts from npm (pinned in scripts/dashboard/package-lock.json)
# into chainfolio/dashboard/static/vendor/: esbuild bundles only the parts the dashboard uses
# (line and pie charts, grid, legend, tooltip, canvas) into one minified ES module. The output
# is committed: installing or running chainfolio needs no Node.js for the dashboard.
set -euo pipefail
cd "$(dirname "$0")/dashboard"
npm ci --no-audit --no-fund --loglevel=error
vendor=../../chainfolio/dashboard/static/vendor
mkdir -p "$vendor"
npx --no-install esbuild echarts-entry.js --bundle --format=esm --minify --legal-comments=none \
  --outfile="$vendor/echarts.min.js"
for package in echarts zrender tslib; do  # everything the bundle contains, with its licence
  cp "node_modules/$package/LICENSE.txt" "$vendor/$package.LICENSE.txt" 2>/dev/null ||
    cp "node_modules/$package/LICENSE" "$vendor/$package.LICENSE.txt"
done
echo "vendored echarts $(node -p "require('./node_modules/echarts/package.json').version") into $vendor"
