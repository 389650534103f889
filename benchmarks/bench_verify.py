"""How fast `tradebot audit verify` checks a large trail (lines per second).

Writes a trail of N guide-shaped order records (plus their chain, checkpointed every 1,000
lines) into a temporary directory, then verifies it and prints lines per second. Run by hand:
`python benchmarks/bench_verify.py [--lines 1000000]`.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.records import OrderSubmitted  # noqa: E402
from audit.trail import AuditTrail  # noqa: E402
from audit.verify import verify  # noqa: E402
from bot.core.clock import SimulatedClock  # noqa: E402
from tests.fakes import at

KEY = b"bench-audit-key-0123456789"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clock = SimulatedClock(datetime(2025, 1, 2, 15, tzinfo=timezone.utc))
        trail = AuditTrail(Path(tmp), clock, durable=False, key=KEY)
        t0 = time.perf_counter()
        for i in range(args.lines):
            trail.record(OrderSubmitted(order_id=f"tb-20250102T150000Z-SectorRotationModel_v1-X{i}-buy",
                                        symbol="SPY", side="buy", quantity=10.0 + i % 7,
                                        price=666.23, order_type="market", status="accepted",
                                        nav=100000.0, model="SectorRotationModel_v1",
                                        broker_order_id="b",
                                        cycle_timestamp=at("2025-01-02T15:00:00+00:00")))
        trail.close()
        written = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
        report = verify(Path(tmp), KEY)
        print(f"wrote {args.lines:,} order records ({size / 1e6:.0f} MB with production.log and "
              f"chains) in {written:.1f}s")
        print(f"verify: {report.lines:,} lines in {report.seconds:.2f}s = "
              f"{report.lines / report.seconds:,.0f} lines/s, exit code {report.exit_code}")


if __name__ == "__main__":
    main()
