"""What durability costs per live cycle: the same cycles with the fsync policy on and off.

Runs N cycles of the real `run_cycle` on a durable paper account and a durable trail (as
`tradebot run` does), once as shipped and once with Python's fsync/fdatasync (the trail's and
its chain's; SQLite syncs its own) turned into no-ops in this process only, and prints the mean
and median time per cycle and the difference. Every cycle trades (rebalance band 0, prices
moving each simulated minute), so order and trade lines are synced too. Run by hand:
`python benchmarks/bench_fsync.py [--cycles 200]`.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.core.clock import SimulatedClock
from bot.core.cycle import run_cycle
from bot.settings import load_settings
from bot.wiring import build_bot


def run(cycles: int, fsync: bool) -> tuple[list[float], int, int]:
    real = (os.fsync, os.fdatasync)
    if not fsync:
        os.fsync = os.fdatasync = lambda fd: None  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            s = load_settings(data_dir=Path(tmp) / "data", log_dir=Path(tmp) / "logs",
                              audit_key="bench-audit-key-0123456789", rebalance_band=0,
                              min_trade_value=0,
                              models="SectorRotationModel_v1=0.5,EqualWeightModel_v1=0.5")
            start = datetime(2025, 3, 3, 14, 45, tzinfo=timezone.utc)
            clock = SimulatedClock(start)
            bot = build_bot(s, clock, live=True)
            times, orders, fills = [], 0, 0
            for i in range(cycles):
                slot = start + timedelta(minutes=i)
                clock.set(slot)
                t0 = time.perf_counter()
                out = run_cycle(bot, slot)
                times.append(time.perf_counter() - t0)
                orders += out.orders
                fills += out.fills
            bot.deps.trail.close()
            bot.deps.journal.close()
            bot.deps.broker.close()
            return times, orders, fills
    finally:
        os.fsync, os.fdatasync = real


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=200)
    args = ap.parse_args()
    with_sync, orders, fills = run(args.cycles, True)
    without, _, _ = run(args.cycles, False)
    print(f"{args.cycles} live cycles, {orders} orders and {fills} fills (each run)")
    for name, t in (("fsync policy on (shipped)", with_sync), ("fsync off (for comparison)", without)):
        print(f"  {name:<28} mean {statistics.mean(t) * 1e3:7.2f} ms   median "
              f"{statistics.median(t) * 1e3:7.2f} ms per cycle")
    diff = statistics.mean(with_sync) - statistics.mean(without)
    print(f"  durability costs {diff * 1e3:.2f} ms per cycle "
          f"({statistics.mean(with_sync) / statistics.mean(without):.1f}x the cycle without it)")


if __name__ == "__main__":
    main()
