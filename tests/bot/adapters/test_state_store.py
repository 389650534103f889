"""The state store's write-ahead trade lines are read back through `bot.core.recording`, and a store
written before this version (the trade line as a dict of the trail's fields) still loads."""
from __future__ import annotations

import sqlite3

import orjson

from bot.adapters.state_store import WRITING, StateStore

CID = "tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy"
# a trade line as main's `recording.trade_data` stores it: the record's fields, in the file's order
STORED_TRADE = {
    "timestamp": "2025-03-03T15:00:01.000000+00:00", "event_type": "trade_executed",
    "order_id": CID, "symbol": "SPY", "side": "buy", "quantity": 4.0, "price": 500.25,
    "value": 2001.0, "new_position": 4.0, "nav": 100000.0, "model": "EqualWeightModel_v1",
    "fill_id": "f-1", "cycle_timestamp": "2025-03-03T15:00:00+00:00"}


def test_a_fill_stored_write_ahead_counts_its_value(tmp_path):
    store = StateStore(tmp_path / "state.db")
    store.fill_writing("f-1", CID, 4.0, dict(STORED_TRADE))
    assert store.filled_so_far(CID) == (4.0, 4.0 * 500.25)
    store.close()


def test_a_store_written_by_the_previous_version_loads_with_its_fill_values(tmp_path):
    path = tmp_path / "state.db"
    StateStore(path).close()  # the schema
    old_form = {k: v for k, v in STORED_TRADE.items() if k != "event_type"}
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO fills VALUES (?, ?, ?, ?, ?)",
                   ("f-1", CID, WRITING, 4.0, orjson.dumps(old_form).decode()))
        db.execute("INSERT INTO fills VALUES (?, ?, ?, ?, ?)",
                   ("f-2", CID, WRITING, 1.0, orjson.dumps(STORED_TRADE).decode()))
    store = StateStore(path)
    assert store.filled_so_far(CID) == (5.0, 5.0 * 500.25)
    assert set(store.fills_writing()) == {"f-1", "f-2"}
    store.close()


def test_a_stored_line_that_is_no_trade_counts_no_value(tmp_path):
    path = tmp_path / "state.db"
    StateStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO fills VALUES (?, ?, ?, ?, ?)", ("f-1", CID, WRITING, 2.0, "{}"))
    store = StateStore(path)
    assert store.filled_so_far(CID) == (2.0, 0.0)
    store.close()
