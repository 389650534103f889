"""The cycle's journal port (bot/core/ports.py): the SQLite state store and the in-memory fake
have its methods, and the same cycles run on either leave the same trail and the same books."""
from __future__ import annotations

import inspect
from datetime import timedelta

import pytest

from bot.adapters.state_store import StateStore
from bot.core.cycle import run_cycle
from bot.core.ports import DONE, INTENT, SENT, OrderJournal
from tests.fakes import SLOT, MemoryJournal, MemoryTrail, make_bot

PORT_METHODS = [name for name, member in vars(OrderJournal).items()
                if callable(member) and not name.startswith("_")]


@pytest.mark.parametrize("impl", [MemoryJournal, StateStore])
def test_both_journals_have_the_ports_methods_with_its_parameters(impl):
    assert {"stage_of", "open_orders", "fill_writing", "sleeves", "close"} <= set(PORT_METHODS)
    for name in PORT_METHODS:
        wanted = list(inspect.signature(getattr(OrderJournal, name)).parameters)
        assert list(inspect.signature(getattr(impl, name)).parameters) == wanted, (impl, name)
    for name in ("last_slot", "started_slot"):
        assert getattr(impl(*(() if impl is MemoryJournal else (None,))), name) is None


def _cycles(journal) -> tuple[MemoryTrail, object]:
    """Four cycles with every path through the journal: an order whose sending fails (INTENT,
    settled at the next cycle), one rejected after it was accepted, a rebalance, a restart in a
    slot already begun."""
    bot = make_bot(journal=journal, explode={"SPY": ConnectionError("connection reset")},
                   reject_later={"TLT": "halted"})
    run_cycle(bot, SLOT)
    bot.deps.broker.explode.clear()
    for minutes in (15, 30):
        bot.deps.clock.t = SLOT + timedelta(minutes=minutes)
        bot.deps.market.prices["QQQ"] *= 1.1
        run_cycle(bot, bot.deps.clock.t)
    bot.deps.journal.start_slot(SLOT + timedelta(minutes=45))  # begun, cut short: run again
    bot.deps.clock.t = SLOT + timedelta(minutes=45)
    run_cycle(bot, bot.deps.clock.t)
    return bot.deps.trail, bot.deps.journal


def _books(journal) -> dict:
    ids = ["tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy",
           "tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy",
           "tb-20250303T151500Z-EqualWeightModel_v1-SPY-buy"]
    return {"sleeves": journal.sleeves(), "open": journal.open_orders(),
            "stages": {cid: journal.stage_of(cid) for cid in ids},
            "filled": {cid: journal.filled_so_far(cid) for cid in ids},
            "writing": journal.fills_writing(), "last": journal.last_slot,
            "started": journal.started_slot,
            "completed": [journal.completed(SLOT + timedelta(minutes=m)) for m in (0, 45, 60)]}


def test_the_same_cycles_on_both_journals_agree(tmp_path):
    memory_trail, memory = _cycles(MemoryJournal())
    disk_trail, disk = _cycles(StateStore(tmp_path / "state.sqlite"))
    assert [r.to_dict() for r in memory_trail.records] == [r.to_dict() for r in disk_trail.records]
    books = _books(memory)
    assert books == _books(disk)
    assert books["stages"] == {"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy": None,
                               "tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy": DONE,
                               "tb-20250303T151500Z-EqualWeightModel_v1-SPY-buy": DONE}
    assert books["completed"] == [True, True, False] and not books["open"]
    assert set(books["sleeves"]["EqualWeightModel_v1"]) == {"QQQ", "SPY"}
    disk.close()


def test_an_order_goes_intent_sent_done_and_forgotten_alike():
    for journal in (MemoryJournal(), StateStore(None)):
        journal.record_intent("o-1", {"model": "M"})
        assert (journal.stage_of("o-1"), journal.intent_of("o-1")) == (INTENT, {"model": "M"})
        journal.mark_sent("o-1")
        assert journal.stage_of("o-1") == SENT and journal.open_orders() == {"o-1"}
        journal.mark_done("o-1")
        assert journal.stage_of("o-1") == DONE and not journal.open_orders()
        assert journal.intent_of("o-1") == {}
        journal.record_intent("o-2", {})
        journal.forget_order("o-2")
        assert journal.stage_of("o-2") is None and not journal.open_orders()
