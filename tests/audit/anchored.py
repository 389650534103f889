"""What the writer does to the anchor, for states verify's tests build by hand (a seal or an
archive record appended to a chain, a line written but not signed, as after a crash): the trails
themselves are written by `AuditTrail` with its anchor.

`fill_anchor` fills each stream's head as the writer keeps it: the SIGNED slot from the chain's
last checkpoint or seal, the WRITTEN slot from the active file's last line; `written_line` appends
a line as the writer does (WRITTEN first) without signing it.

`make_trail` writes a closed live trail of a few cycles (rotated or not) with its anchor, signed
with `KEY`: the trail that verify's tamper tests damage, and restore's tests back up.
"""
from __future__ import annotations

from pathlib import Path

from audit.anchor import SIGNED, WRITTEN, Anchor
from audit.chain import CHAIN_SUFFIX, next_hash, read_chain, resume
from audit.records import ManualCycle, OrderSubmitted, TradeExecuted
from audit.trail import AuditTrail
from audit.verify import ALL_STREAMS
from tests.fakes import FakeClock, at, utc

KEY = b"test-audit-key-0123456789-tamper"
SLOT = "2025-03-03T15:00:00+00:00"


def fill_anchor(anchor: Anchor, log_dir: Path) -> None:
    """After the trail is closed: every stream's SIGNED and WRITTEN slots, as the writer keeps
    them."""
    for name in ALL_STREAMS:
        records = read_chain(log_dir / (name + CHAIN_SUFFIX))
        head = anchor.head(name, create=True)
        try:
            last = next((r for r in reversed(records) if r.get("type") in ("checkpoint", "seal")), None)
            if last is not None:
                head.write(SIGNED, {k: last[k] for k in ("type", "segment", "lines", "bytes", "hash", "mac")})
            state = resume(records)
            active = log_dir / name
            lines = active.read_bytes().splitlines(keepends=True) if active.exists() else []
            if lines:
                h, before, offset = state.h0, state.h0, 0
                for line in lines:
                    before, h = h, next_hash(h, line)
                    offset += len(line)
                head.write(WRITTEN, {"segment": state.segment, "line": len(lines),
                                     "offset": offset - len(lines[-1]), "before": before.hex(),
                                     "after": h.hex()})
        finally:
            head.close()


def written_line(anchor: Anchor, log_dir: Path, name: str, line: bytes) -> None:
    """Append `line` to the active file of `name` as the writer does: WRITTEN first, then the
    line (no checkpoint: it stays unsigned, as after a crash)."""
    active = log_dir / name
    lines = active.read_bytes().splitlines(keepends=True) if active.exists() else []
    state = resume(read_chain(log_dir / (name + CHAIN_SUFFIX)))
    h = state.h0
    for old in lines:
        h = next_hash(h, old)
    head = anchor.head(name, create=True)
    try:
        head.write(WRITTEN, {"segment": state.segment, "line": len(lines) + 1,
                             "offset": sum(map(len, lines)), "before": h.hex(),
                             "after": next_hash(h, line).hex()})
    finally:
        head.close()
    with open(active, "ab") as f:
        f.write(line)


def order(i: int) -> OrderSubmitted:
    return OrderSubmitted(order_id=f"tb-{i}", symbol="SPY", side="buy", quantity=1.0 + i,
                          price=500.0, order_type="market", status="accepted", nav=100000.0,
                          model="M", broker_order_id="b", cycle_timestamp=at(SLOT))


def trade(i: int) -> TradeExecuted:
    return TradeExecuted(order_id=f"tb-{i}", symbol="SPY", side="buy", quantity=1.0 + i,
                         price=500.0, value=500.0 * (1 + i), new_position=1.0 + i, nav=100000.0,
                         model="M", fill_id=f"f-{i}", cycle_timestamp=at(SLOT))


def write_cycles(t: AuditTrail, clock: FakeClock, cycles: int, start: int = 0) -> None:
    for c in range(start, start + cycles):
        clock.advance(60)
        t.record(order(c))
        t.record(trade(c))
        t.record(ManualCycle(message=f"cycle {c}", cycle_timestamp=at(SLOT)))
        t.checkpoint()


def make_trail(base: Path, *, cycles: int = 3, rotations: int = 0, anchor: bool = True) -> tuple[Path, Path]:
    """A closed live trail in base/logs with its anchor in base/data."""
    logs, data = base / "logs", base / "data"
    data.mkdir(parents=True, exist_ok=True)
    clock = FakeClock(utc(2025, 3, 3, 15))
    t = AuditTrail(logs, clock, durable=True, key=KEY, data_dir=data if anchor else None)
    for r in range(rotations):
        write_cycles(t, clock, cycles, start=r * cycles)
        t.rotate()
    write_cycles(t, clock, cycles, start=rotations * cycles)
    t.close()
    return logs, data
