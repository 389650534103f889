"""Benchmark: `tradebot simulate` over 20 years of daily cycles with full audit logging.

Prints simulated days per second for the whole process (start-up and imports included, best of
N runs) and for the cycle loop alone (as `simulate` measures it), plus backtrader and bt on a
comparable monthly-ish rotation when they are installed. Run by hand or with `make bench`;
never part of the test suite.

    python benchmarks/bench_simulate.py [--runs 3] [--start 2005-01-01] [--end 2024-12-31]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def whole_process(start: str, end: str, runs: int) -> tuple[float, int, str]:
    best, days, summary = float("inf"), 0, ""
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
            env["BOT_DATA_DIR"] = str(Path(tmp) / "data")
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "bot", "simulate", "--start", start,
                                   "--end", end, "--out", str(Path(tmp) / "logs")],
                                  env=env, cwd=tmp, capture_output=True, text=True, check=True)
            best = min(best, time.perf_counter() - t0)
            summary = proc.stdout
            days = int(summary.split("simulated ")[1].split()[0])
    return best, days, summary


def loop_only(start: str, end: str, runs: int) -> tuple[float, int]:
    sys.path.insert(0, str(ROOT))
    from bot.app.simulate import simulate
    from bot.settings import load_settings

    best, days = float("inf"), 0
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            r = simulate(load_settings(data_dir=Path(tmp) / "data"), date.fromisoformat(start),
                         date.fromisoformat(end), Path(tmp) / "logs", progress=None)
            best, days = min(best, r.loop_seconds), r.days
    return best, days


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--start", default="2005-01-01")
    ap.add_argument("--end", default="2024-12-31")
    args = ap.parse_args()
    whole, days, summary = whole_process(args.start, args.end, args.runs)
    loop, _ = loop_only(args.start, args.end, args.runs)
    print(summary.strip())
    print()
    print(f"{'what':<42}{'seconds':>9}{'days/s':>10}")
    print(f"{'tradebot simulate, whole process':<42}{whole:>9.3f}{days / whole:>10.0f}")
    print(f"{'tradebot cycle loop alone':<42}{loop:>9.3f}{days / loop:>10.0f}")
    try:
        from benchmarks.baselines import run_baselines
    except ImportError:
        sys.path.insert(0, str(ROOT))
        from benchmarks.baselines import run_baselines
    for name, seconds, n in run_baselines(args.start, args.end):
        if seconds is None:
            print(f"{name:<42}{'not installed':>19}")
        else:
            print(f"{name:<42}{seconds:>9.3f}{n / seconds:>10.0f}   ratio ours/{name.split()[0]}: "
                  f"{(days / whole) / (n / seconds):.2f}x whole process")


if __name__ == "__main__":
    main()
