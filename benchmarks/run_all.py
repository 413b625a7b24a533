"""Every benchmark, one after another: `python benchmarks/run_all.py [--quick] [--only NAME ...]`.

Each script prints its own figures and the baseline it measures in the same run; this runner
adds a header per benchmark, the machine's load average before each, and a summary of exit
codes and durations at the end (exit 1 if any failed). The full sizes are the ones recorded
in docs/BENCHMARKS.md and take about 25 minutes on 2 cores; `--quick` runs every benchmark
at a small size (a few minutes) to check that they all still work — its figures are not the
goals' figures. Needs what the scripts need: PostgreSQL and Redis on localhost, Node.js for
the Hardhat chains, `wrk` (bench_graphql) and Chromium + playwright-core (bench_dashboard,
`scripts/install-browser.sh`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name: (full-size arguments, quick arguments)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "analytics": ([], ["--repeat", "5"]),
    "balances": ([], ["--wallets", "50", "--extra-tokens", "5", "--repeats", "1"]),
    "chains": ([], ["--wallets", "20", "--rounds", "1"]),
    "snapshots": (
        ["--users", "125000", "--rounds", "5", "--prefill-hours", "24"],
        ["--users", "5000", "--rounds", "1", "--prefill-hours", "1"],
    ),
    "history": ([], ["--users", "20", "--runs", "5"]),
    "subscriptions": ([], ["--clients", "300", "--rounds", "1"]),
    "graphql": ([], ["--duration", "2", "--rest-connections", "20"]),
    "dashboard": ([], ["--runs", "2"]),
    "tokens": ([], ["--blocks", "100000", "--rounds", "2"]),
    "pricing": ([], ["--tokens", "10", "--rounds", "1"]),
    "healthz_under_load": ([], ["--rounds", "1"]),
    "pnl": ([], ["--transfers", "2000", "--rows", "10000", "--runs", "5"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="these only")
    args = parser.parse_args()
    results: list[tuple[str, int, float]] = []
    for name in args.only or list(BENCHMARKS):
        full, quick = BENCHMARKS[name]
        argv = [sys.executable, str(HERE / f"bench_{name}.py"), *(quick if args.quick else full)]
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"\n=== {name}: {' '.join(argv[1:])}  (load average {load})", flush=True)
        started = time.monotonic()
        code = subprocess.run(argv, check=False).returncode
        results.append((name, code, time.monotonic() - started))
    print("\n=== summary")
    for name, code, seconds in results:
        print(f"  {name:<14} {'ok' if code == 0 else f'FAILED ({code})':<12} {seconds:7.1f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
