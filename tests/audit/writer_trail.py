"""An anchored trail of order_failed records, as the writer-side tamper tests write it
(tests/audit/test_tamper_writer.py): in the test's process, and in a subprocess it kills with
`kill -9`, which imports it from here.
"""
from __future__ import annotations

from pathlib import Path

from audit.records import OrderFailed
from audit.trail import AuditTrail
from tests.fakes import FakeClock, at, utc

KEY = b"test-audit-key-0123456789"


def make(tmp: Path, **kw) -> AuditTrail:
    return AuditTrail(tmp / "logs", FakeClock(utc(2025, 3, 3, 15)), durable=kw.pop("durable", True),
                      key=kw.pop("key", KEY), data_dir=tmp / "data", **kw)


def err(i: int) -> OrderFailed:
    return OrderFailed(symbol="SPY", side="buy", quantity=1.0 + i, error=f"refused {i}",
                       order_data={"n": i}, model="M", order_id=f"tb-{i}",
                       cycle_timestamp=at("2025-03-03T15:00:00+00:00"))


def write(t: AuditTrail, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        t.record(err(i))
