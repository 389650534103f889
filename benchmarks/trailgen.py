"""Write big trail files of the guide's shapes (our records), for the query benchmark.

`write_trail(dir, lines)` writes orders, trades, performance and errors .jsonl with `lines`
lines each (about 280-400 bytes a line), deterministic, timestamps one minute apart.
"""
from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

SYMBOLS = ("SPY", "QQQ", "TLT", "XLB", "XLC", "XLE", "XLF", "XLI", "XLK", "XLP", "XLRE", "XLU",
           "XLV", "XLY")
MODELS = ("SectorRotationModel_v1", "EqualWeightModel_v1")
START = datetime(2020, 1, 2, 14, 30, tzinfo=timezone.utc)


def _ts(i: int, us: int) -> tuple[str, str]:
    t = START + timedelta(minutes=i)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{us:06d}+00:00", t.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def write_trail(out: Path, lines: int, seed: int = 7) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with open(out / "orders.jsonl", "wb") as o, open(out / "trades.jsonl", "wb") as t, \
            open(out / "performance.jsonl", "wb") as p, open(out / "errors.jsonl", "wb") as e:
        pos: dict[str, float] = {}
        marks: dict[str, float] = {}
        cash = 100_000.0
        for i in range(lines):
            ts, cts = _ts(i, rng.randrange(1, 999_999))
            sym = SYMBOLS[i % len(SYMBOLS)]
            side = "buy" if rng.random() < 0.55 else "sell"
            qty = round(rng.uniform(1, 500), 9)
            price = round(rng.uniform(20, 700), 4)
            model = MODELS[i % 2]
            oid = f"tb-{cts[:19].replace('-', '').replace(':', '')}Z-{model}-{sym}-{side}"
            # a NAV of the guide's magnitude (about 100,000) that wanders, never drifting away
            nav = round(100_000 * math.exp(0.3 * math.sin(i / 25_000)) * (1 + rng.gauss(0, 0.002)), 2)
            o.write(orjson.dumps({
                "timestamp": ts, "event_type": "order_submitted", "order_id": oid, "symbol": sym,
                "side": side, "quantity": qty, "price": price, "order_type": "market",
                "status": "accepted", "nav": nav, "model": model,
                "broker_order_id": f"{rng.getrandbits(128):032x}", "cycle_timestamp": cts}) + b"\n")
            fill = round(price * (1 + rng.uniform(-5e-4, 5e-4)), 4)
            signed = qty if side == "buy" else -qty
            pos[sym] = round(pos.get(sym, 0.0) + signed, 9)
            marks[sym] = fill
            trade = {"timestamp": ts, "event_type": "trade_executed", "order_id": oid,
                     "symbol": sym, "side": side, "quantity": qty, "price": fill,
                     "value": round(qty * fill, 2), "new_position": pos[sym], "nav": nav}
            if side == "sell":
                trade["pnl"] = round(rng.gauss(5, 120), 2)
            trade.update({"model": model, "fill_id": oid + "-1", "cycle_timestamp": cts})
            t.write(orjson.dumps(trade) + b"\n")
            cash = round(cash - signed * fill, 2)
            held = {s: q for s, q in list(pos.items())[:4]}
            p.write(orjson.dumps({
                "timestamp": ts, "event_type": "cycle_complete", "nav": nav, "cash": cash,
                "positions_count": len(held), "positions": held, "buying_power": cash,
                "cycle_timestamp": cts, "orders": 1, "fills": 1, "errors": 0,
                "prices": {s: marks[s] for s in held}}) + b"\n")
            kind = ("order_error", "price_error", "cycle_error")[i % 3]
            err = {"timestamp": ts, "event_type": kind}
            if kind == "order_error":
                err.update({"symbol": sym, "side": side, "quantity": qty,
                            "error": "insufficient buying power\tfor \"order\"",
                            "order_data": {"order_id": oid, "symbol": sym, "side": side,
                                           "quantity": qty, "order_type": "market"},
                            "model": model, "order_id": oid, "cycle_timestamp": cts})
            else:
                err.update({"error": f"no usable price for {sym}: stale quote", "cycle_timestamp": cts,
                            "symbol": sym})
            e.write(orjson.dumps(err) + b"\n")


if __name__ == "__main__":
    import sys
    write_trail(Path(sys.argv[1]), int(sys.argv[2]))
