"""How fast `tradebot audit check` checks the benchmark trail (lines per second).

Writes the query benchmark's trail (benchmarks/trailgen.py: orders, trades, performance and
errors .jsonl with --lines lines each, about 1.5 GB at a million) plus empty decisions and events
streams and a production.log into a temporary directory, which is removed afterwards. Then runs
`python -m bot audit check --logs-dir DIR` as a whole process (start-up, imports and every worker
included), checks that it passed every line, and prints lines per second against the target of
200,000. Exit 1 when the check did not pass or was slower than the target. Not a test: the
figure depends on the machine and its load. Run by hand: `make bench-check` or
`python benchmarks/bench_check.py [--lines 1000000]`.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.trailgen import write_trail  # noqa: E402 - once the repository is on sys.path

TARGET = 200_000  # lines per second, the whole process


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help="lines per stream file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tradebot-check-bench-") as tmp:
        logs = Path(tmp) / "logs"
        t0 = time.perf_counter()
        write_trail(logs, args.lines)
        for name in ("decisions.jsonl", "events.jsonl"):
            (logs / name).touch()
        (logs / "production.log").write_text("2020-01-02T14:30:00.000000+00:00 INFO  benchmark trail\n")
        size = sum(p.stat().st_size for p in logs.iterdir())
        print(f"wrote 4 x {args.lines:,} lines ({size / 1e6:,.0f} MB) in {time.perf_counter() - t0:.0f}s")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "bot", "audit", "check", "--logs-dir", str(logs)],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr.strip()
    m = re.fullmatch(r"(\d+) passed, (\d+) failed", summary)
    lines = 4 * args.lines
    rate = lines / seconds
    print(f"tradebot audit check: {lines:,} lines in {seconds:.2f}s = {rate:,.0f} lines/s "
          f"(target {TARGET:,}); exit {proc.returncode}: {summary}")
    passed = proc.returncode == 0 and m is not None and int(m.group(1)) == lines + 1
    if not passed:
        print("the check did not pass every line of the benchmark trail", file=sys.stderr)
    return 0 if passed and rate >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
