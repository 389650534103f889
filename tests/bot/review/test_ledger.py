"""The books rebuilt from the trail: unit cases, invariants (hypothesis) and a simulated trail."""
from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.records import ModelDecided
from bot.review.ledger import EXTERNAL, replay
from tests.fakes import at


def _write(d, name, records):
    with open(d / name, "ab") as f:
        for r in records:
            f.write(orjson.dumps(r) + b"\n")


def _decision(model, share):
    """A model_decision line's fields: only the model and its capital share matter here."""
    return ModelDecided(model=model, cycle_timestamp=at("2024-01-02T20:45:00+00:00"),
                        capital_share=share, as_of=None, symbols=(), input_sha256="", scores={},
                        target_weights={}, final_weights={}, risk_checks=(), reason="", hold=True,
                        ).to_dict()


class Trail:
    """A hand-made trail: timestamps one microsecond apart, in the order records are added."""

    def __init__(self, d, shares=None):
        self.d, self.n = d, 0
        for m, share in (shares or {}).items():
            self.add("decisions.jsonl", **_decision(m, share))

    def ts(self):
        self.n += 1
        return f"2024-01-02T20:45:00.{self.n:06d}+00:00"

    def add(self, name, **rec):
        _write(self.d, name, [{"timestamp": self.ts(), **rec}])

    def open(self, cash, positions=None, prices=None):
        self.add("events.jsonl", event_type="account_checked", message="", nav=cash, cash=cash,
                 buying_power=cash, positions=positions or {}, prices=prices or {})

    def fill(self, model, symbol, side, qty, price, fee=0.0, new_position=0.0):
        self.add("trades.jsonl", event_type="trade_executed", order_id=f"o{self.n}", symbol=symbol,
                 side=side, quantity=qty, price=price, value=round(qty * price, 2),
                 new_position=new_position, nav=0.0, commission=fee, model=model,
                 fill_id=f"f{self.n}", cycle_timestamp="2024-01-02T20:45:00+00:00")

    def snapshot(self, nav, cash, positions, prices):
        self.add("performance.jsonl", event_type="cycle_complete", nav=nav, cash=cash,
                 positions_count=len(positions), positions=positions, buying_power=cash,
                 cycle_timestamp="2024-01-02T20:45:00+00:00", orders=0, fills=0, errors=0,
                 prices=prices)


def test_average_cost_includes_commission_and_a_sale_realizes_against_it(tmp_path):
    t = Trail(tmp_path, {"A": 1.0})
    t.open(10_000.0)
    t.fill("A", "SPY", "buy", 10, 100.0, fee=1.0)
    t.fill("A", "SPY", "buy", 10, 110.0, fee=1.0)
    t.fill("A", "SPY", "sell", 5, 120.0, fee=1.0)
    last = list(replay(tmp_path))[-1]
    pos = last.total.positions["SPY"]
    assert pos.quantity == 15
    assert pos.avg_cost == pytest.approx((1000 + 1 + 1100 + 1) / 20)
    assert pos.realized_pnl == pytest.approx(5 * 120 - 5 * 105.1 - 1)
    assert last.total.cash == pytest.approx(10_000 - 1001 - 1101 + 599)
    assert last.total.nav == pytest.approx(last.total.cash + 15 * 120)  # marked at the last fill
    assert last.models["A"].cash == pytest.approx(last.total.cash)


def test_books_open_with_capital_shares_and_external_positions(tmp_path):
    t = Trail(tmp_path, {"A": 0.6, "B": 0.4})
    t.open(8_000.0, {"IBM": 10.0}, {"IBM": 200.0})  # nav 10,000
    t.fill("A", "SPY", "buy", 10, 100.0)
    steps = list(replay(tmp_path))
    first, last = steps[0], steps[-1]
    assert first.models["A"].cash == pytest.approx(6_000)
    assert first.models["B"].cash == pytest.approx(4_000)
    assert first.models[EXTERNAL].cash == pytest.approx(-2_000)
    assert first.models[EXTERNAL].positions["IBM"].quantity == 10
    assert sum(b.nav for b in last.models.values()) == pytest.approx(last.total.nav)


def test_a_snapshot_that_disagrees_is_a_drift_and_the_replay_carries_on_from_it(tmp_path):
    t = Trail(tmp_path, {"A": 1.0})
    t.open(10_000.0)
    t.fill("A", "SPY", "buy", 10, 100.0)
    t.snapshot(10_000.0, 9_000.0, {"SPY": 12.0}, {"SPY": 100.0})
    t.fill("A", "SPY", "sell", 2, 100.0)
    steps = list(replay(tmp_path))
    snap = steps[2]
    assert snap.drift is not None and snap.drift.positions == {"SPY": (10.0, 12.0)}
    assert snap.drift.cash is None
    assert steps[-1].total.positions["SPY"].quantity == pytest.approx(10.0)
    assert steps[-1].models[EXTERNAL].positions["SPY"].quantity == pytest.approx(2.0)


def test_a_simulated_trail_rebuilds_every_snapshot_exactly(sim_trail):
    cycles = 0
    for step in replay(sim_trail):
        if step.kind != "cycle":
            continue
        cycles += 1
        assert step.drift is None, step.where
        assert step.total.nav == pytest.approx(step.record.nav, abs=0.011), step.where
        assert step.total.cash == pytest.approx(step.record.cash, abs=0.011)
        assert sum(b.nav for b in step.models.values()) == pytest.approx(step.total.nav)
        held = {s: p.quantity for s, p in step.total.positions.items() if p.quantity}
        assert held == pytest.approx(step.record.positions)
    assert cycles > 100


fills = st.lists(st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(["X", "Y"]),
                           st.booleans(), st.integers(1, 50), st.floats(1, 500),
                           st.sampled_from([0.0, 1.0])), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(fills)
def test_invariants_total_equals_the_sum_of_the_models_and_pnl_adds_up(tmp_path_factory, script):
    d = tmp_path_factory.mktemp("h")
    t = Trail(d, {"A": 0.5, "B": 0.5})
    t.open(1_000_000.0)
    held: dict[tuple[str, str], int] = {}
    for model, sym, buy, qty, price, fee in script:
        have = held.get((model, sym), 0)
        side = "buy" if buy or have < qty else "sell"  # never short
        held[(model, sym)] = have + (qty if side == "buy" else -qty)
        t.fill(model, sym, side, qty, round(price, 4), fee)
    last = list(replay(d))[-1]
    total = last.total
    assert sum(b.cash for b in last.models.values()) == pytest.approx(total.cash)
    assert sum(b.nav for b in last.models.values()) == pytest.approx(total.nav)
    for sym in ("X", "Y"):
        q = sum(b.positions[sym].quantity for b in last.models.values() if sym in b.positions)
        assert q == pytest.approx(total.positions[sym].quantity if sym in total.positions else 0)
    # P&L identity: what was made is what the NAV gained, for every book and the total
    for book, start in [(total, 1_000_000.0), *[(last.models[m], 500_000.0) for m in "AB"]]:
        assert book.realized_pnl + book.unrealized_pnl == pytest.approx(book.nav - start, abs=0.01 * len(script))
        assert not math.isnan(book.nav)


def test_steps_carry_the_typed_records_and_their_times_in_order(sim_trail):
    from audit.records import AccountChecked, CycleCompleted, TradeExecuted
    from audit.timestamps import format_slot, format_timestamp
    steps = list(replay(sim_trail))
    assert {s.kind: type(s.record) for s in steps} == {
        "open": AccountChecked, "fill": TradeExecuted, "cycle": CycleCompleted}
    assert [s.time for s in steps] == sorted(s.time for s in steps)
    for s in steps:
        assert s.timestamp == format_timestamp(s.record.timestamp)
        if s.kind == "open":
            assert s.cycle is None and s.cycle_timestamp is None
        else:
            assert s.cycle == s.record.cycle_timestamp
            assert s.cycle_timestamp == format_slot(s.record.cycle_timestamp)
