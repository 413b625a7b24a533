"""Dashboard page load in a real Chromium against `chainfolio demo` (still chains).

For each load: navigation start → DOMContentLoaded (HTML, CSS and modules, ECharts included),
→ the last GraphQL answer of the page (the data floor, measured in the same load), → every
panel drawn (`body[data-ready]`, charts included). The first load has an empty browser cache.

    python benchmarks/bench_dashboard.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from tests.dashboard.harness import (
    Browser,
    browser_unavailable,
    start_demo,
    stop_demo,
)

LAST_GRAPHQL = """() => Math.max(...performance.getEntriesByType("resource")
  .filter((e) => e.name.endsWith("/graphql")).map((e) => e.responseEnd))"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    reason = browser_unavailable()
    if reason is not None:
        print(f"cannot run: {reason}")
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        demo = start_demo(Path(tmp), "--tick", "0")
        browser = Browser()
        try:
            url = f"{demo.url}/#token={demo.token}"
            loads = []
            for _ in range(args.runs + 1):
                timing = browser.call("open", url=url)
                timing["dataMs"] = browser.eval(LAST_GRAPHQL)
                loads.append(timing)
        finally:
            browser.close()
            stop_demo(demo)
    cold, warm = loads[0], loads[1:]
    print(
        f"cold (empty cache): DOMContentLoaded {cold['domContentLoadedMs']:.0f} ms, "
        f"data {cold['dataMs']:.0f} ms, ready {cold['readyMs']:.0f} ms"
    )
    for key, label in (
        ("domContentLoadedMs", "DOMContentLoaded"),
        ("dataMs", "last GraphQL answer (data floor)"),
        ("readyMs", "ready: every panel and chart drawn"),
    ):
        values = [load[key] for load in warm]
        print(
            f"warm x{len(values)} {label:<36} median {statistics.median(values):6.0f} ms  "
            f"p90 {sorted(values)[int(0.9 * (len(values) - 1))]:6.0f} ms  max {max(values):6.0f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
