"""`explain_cycle` and `explain_order`: timelines from the trail, each line pointing at its record."""
from __future__ import annotations

import gzip
import re
import warnings
from pathlib import Path

import orjson
import pytest

import bot.review.explain as explain_mod
from audit.files import iter_lines
from audit.records import (
    CycleCompleted,
    KillSwitchEngaged,
    ModelDecided,
    OrderCanceled,
    OrderFailed,
    OrderOpenAtDeadline,
    OrderSubmitted,
    PriceUnusable,
    TradeExecuted,
    encode_fields,
)
from bot.review.explain import explain_cycle, explain_order, parse_cycle
from tests.fakes import at, on

FIRST = "2024-01-02T20:45:00+00:00"  # sim_trail's first cycle: six orders, six fills
ROW = re.compile(r"^(\S+)  (\S+):(\d+) +(.*)$")


def records(log_dir: Path, name: str) -> list[dict]:
    return [orjson.loads(raw) for _w, raw in iter_lines(log_dir, name)]


def rows(text: str) -> list[tuple[str, str, int, str]]:
    """The timeline lines (not the headers) as (timestamp, file, line, text)."""
    out = []
    for line in text.splitlines():
        m = ROW.match(line)
        if m:
            out.append((m.group(1), m.group(2), int(m.group(3)), m.group(4)))
    return out


def assert_points_at_records(log_dir: Path, text: str) -> None:
    """Every line starts with the timestamp of the record at the file:line it names."""
    found = rows(text)
    assert found
    for ts, file, n, _ in found:
        path = log_dir / file
        opener = gzip.open if file.endswith(".gz") else open
        with opener(path, "rb") as f:
            raw = f.read().splitlines()[n - 1]
        assert orjson.loads(raw)["timestamp"] == ts, (file, n)
    stamps = [r[0] for r in found]
    assert stamps == sorted(stamps)


# --- on the simulated trail -----------------------------------------------------------------

def test_cycle_timeline_tells_decisions_orders_fills_and_snapshot(sim_trail):
    text = explain_cycle(sim_trail, FIRST)
    assert_points_at_records(sim_trail, text)
    decisions = [d for d in records(sim_trail, "decisions.jsonl") if d["cycle_timestamp"] == FIRST]
    orders = [o for o in records(sim_trail, "orders.jsonl") if o["cycle_timestamp"] == FIRST]
    fills = [t for t in records(sim_trail, "trades.jsonl") if t["cycle_timestamp"] == FIRST]
    snap = next(p for p in records(sim_trail, "performance.jsonl") if p["cycle_timestamp"] == FIRST)
    assert len(decisions) == 2 and len(orders) == 6 and len(fills) == 6
    for d in decisions:
        assert d["input_sha256"] in text and d["reason"] in text and d["as_of"] in text
    for o in orders:
        assert f"order {o['order_id']}:" in text
    for t in fills:
        assert f"fill {t['fill_id']} of {t['order_id']}" in text
        assert f"= {t['value']:,.2f}" in text
    assert f"cycle complete: nav {snap['nav']:,.2f}, cash {snap['cash']:,.2f}" in text
    # the story in order: both decisions, then orders and fills, the snapshot last
    kinds = [r[1] for r in rows(text)]
    assert kinds[0] == kinds[1] == "decisions.jsonl" and kinds[-1] == "performance.jsonl"
    assert "cycle 2024-01-03" not in text and "2024-01-03T" not in text


def test_scores_are_sorted_and_risk_checks_and_final_weights_shown(sim_trail):
    text = explain_cycle(sim_trail, FIRST)
    sector = next(d for d in records(sim_trail, "decisions.jsonl")
                  if d["cycle_timestamp"] == FIRST and d["model"] == "SectorRotationModel_v1")
    line = next(r[3] for r in rows(text) if r[3].startswith("scores: XL") or
                r[3].startswith("scores: SPY"))
    shown = [part.split()[0] for part in line.removeprefix("scores: ").split(", ")]
    assert shown == sorted(sector["scores"], key=lambda k: -sector["scores"][k])
    check = sector["risk_checks"][0]
    assert f"risk check {check['check']} on the whole sleeve: {check['detail']}" in text
    assert any(r[3].startswith("final weights: ") for r in rows(text))


@pytest.mark.parametrize("form", [FIRST, "2024-01-02T20:45", "2024-01-02T20:45Z",
                                  "2024-01-02T15:45-05:00", "2024-01-02 20:45:00",
                                  "2024-01-02"])
def test_every_timestamp_form_names_the_same_cycle(sim_trail, form):
    assert explain_cycle(sim_trail, form) == explain_cycle(sim_trail, FIRST)


def test_unknown_cycle_names_the_nearest_ones(sim_trail):
    with pytest.raises(LookupError) as info:
        explain_cycle(sim_trail, "2024-01-06")  # a Saturday
    msg = str(info.value)
    assert "\n" not in msg
    assert "2024-01-05T20:45:00+00:00 (before)" in msg and "2024-01-08T20:45:00+00:00 (after)" in msg
    with pytest.raises(LookupError, match=r"2024-06-28T19:45:00\+00:00 \(before\)$"):
        explain_cycle(sim_trail, "2030-01-01T10:00")


@pytest.mark.parametrize("bad", ["yesterday", "2024-13-01", "2024-01-02T25:00", ""])
def test_unreadable_timestamp_is_one_line_value_error(sim_trail, bad):
    with pytest.raises(ValueError) as info:
        explain_cycle(sim_trail, bad)
    assert "\n" not in str(info.value) and "2024-03-28" in str(info.value)


def test_order_story_from_decision_to_snapshot(sim_trail):
    order = next(o for o in records(sim_trail, "orders.jsonl")
                 if o["model"] == "SectorRotationModel_v1")
    oid, sym, cts = order["order_id"], order["symbol"], order["cycle_timestamp"]
    text = explain_order(sim_trail, oid)
    assert_points_at_records(sim_trail, text)
    decision = next(d for d in records(sim_trail, "decisions.jsonl")
                    if d["cycle_timestamp"] == cts and d["model"] == order["model"])
    fills = [t for t in records(sim_trail, "trades.jsonl") if t["order_id"] == oid]
    assert fills
    assert decision["reason"] in text
    assert f"{sym}: score " in text and "rank " in text
    assert f"order {oid}:" in text
    for t in fills:
        assert t["fill_id"] in text
    assert f"account position in {sym}:" in text
    assert "EqualWeightModel_v1 (" not in text  # only its own model's decision
    sources = {r[1] for r in rows(text)}
    assert sources == {"decisions.jsonl", "orders.jsonl", "trades.jsonl", "performance.jsonl"}


def test_unknown_order_is_one_line_lookup_error(sim_trail):
    with pytest.raises(LookupError) as info:
        explain_order(sim_trail, "tb-20240102T204500Z-EqualWeightModel_v1-QQQ")  # a prefix only
    assert "\n" not in str(info.value) and "no order" in str(info.value)


def test_each_stream_is_read_once(sim_trail, monkeypatch):
    opened: list[str] = []
    real = explain_mod.iter_chunks

    def counting(path, *a, **kw):
        opened.append(path.name)
        return real(path, *a, **kw)

    monkeypatch.setattr(explain_mod, "iter_chunks", counting)
    explain_cycle(sim_trail, "2024-03-28")
    assert sorted(opened) == sorted(set(opened)) and "decisions.jsonl" in opened
    opened.clear()
    oid = records(sim_trail, "orders.jsonl")[-1]["order_id"]
    explain_order(sim_trail, oid)
    assert sorted(opened) == sorted(set(opened)) and "performance.jsonl" in opened


# --- on a hand-made trail with errors, late fills and rotated files ------------------------------

A, B = "2024-03-28T14:00:00+00:00", "2024-03-28T19:45:00+00:00"
OID, OID2 = "tb-20240328T140000Z-M-TLT-buy", "tb-20240328T140000Z-M-SPY-sell"


def ts(n: int) -> str:
    return f"2024-03-28T{14 if n < 100 else 19}:{0 if n < 100 else 45:02d}:00.{n:06d}+00:00"


def decision(cts: str, reason: str) -> ModelDecided:
    return ModelDecided(model="M", cycle_timestamp=at(cts), capital_share=1.0,
                        as_of=on("2024-03-27"), symbols=("SPY", "TLT"), input_sha256="ab" * 32,
                        scores={"SPY": 0.1, "TLT": 0.3}, target_weights={"TLT": 1.0},
                        final_weights={"TLT": 0.98},
                        risk_checks=({"check": "cash_buffer", "symbol": None, "detail": "scaled by 0.98"},
                                     {"check": "max_order_value", "symbol": "SPY",
                                      "detail": "SPY capped"}),
                        reason=reason, hold=False)


@pytest.fixture
def messy(tmp_path) -> Path:
    """Two cycles on one date: an order left open then cancelled, a refused order, a price
    error, a kill switch; cycle A's decision sits in a rotated, compressed segment."""
    d = tmp_path / "logs"
    d.mkdir()
    streams: dict[str, list[dict]] = {}

    def put(n: int, rec) -> None:
        streams.setdefault(rec.stream, []).append(encode_fields(rec, ts(n)))

    put(1, decision(A, "TLT scores best"))
    put(2, PriceUnusable(error="no usable price for QQQ: stale", cycle_timestamp=at(A), symbol="QQQ"))
    put(3, OrderSubmitted(order_id=OID, symbol="TLT", side="buy", quantity=10.0, price=90.0,
                          order_type="market", status="accepted", nav=1000.0, model="M",
                          broker_order_id="b1", cycle_timestamp=at(A)))
    put(4, TradeExecuted(order_id=OID, symbol="TLT", side="buy", quantity=4.0, price=90.5,
                         value=362.0, new_position=4.0, nav=999.0, model="M", fill_id=OID + "-1",
                         cycle_timestamp=at(A)))
    put(5, OrderFailed(symbol="SPY", side="sell", quantity=2.0, error="insufficient quantity",
                       order_data={"order_id": OID2}, model="M", order_id=OID2,
                       cycle_timestamp=at(A)))
    put(6, OrderOpenAtDeadline(message=f"{OID} is still partially_filled", order_id=OID,
                               status="partially_filled", cycle_timestamp=at(A)))
    put(7, CycleCompleted(nav=998.0, cash=600.0, positions={"TLT": 4.0}, buying_power=600.0,
                          cycle_timestamp=at(A), orders=1, fills=1, errors=2, prices={"TLT": 90.4}))
    put(101, OrderCanceled(message=f"{OID} was still open at the next cycle", order_id=OID, cycle_timestamp=at(A)))
    put(102, TradeExecuted(order_id=OID, symbol="TLT", side="buy", quantity=1.0, price=90.7,
                           value=90.7, new_position=5.0, nav=997.0, model="M", fill_id=OID + "-2",
                           cycle_timestamp=at(A)))
    put(103, decision(B, "still TLT"))
    put(104, KillSwitchEngaged(message="no new orders: BOT_KILL_SWITCH=true", cycle_timestamp=at(B), blocked_orders=0))
    put(105, CycleCompleted(nav=997.0, cash=509.3, positions={"TLT": 5.0}, buying_power=509.3,
                            cycle_timestamp=at(B), orders=0, fills=1, errors=0,
                            prices={"TLT": 90.7}))
    for name, recs in streams.items():
        lines = [orjson.dumps(r) + b"\n" for r in recs]
        if name == "decisions.jsonl":
            (d / (name + ".1.gz")).write_bytes(gzip.compress(lines[0]))
            lines = lines[1:]
        (d / name).write_bytes(b"".join(lines))
    return d


def test_cycle_shows_errors_events_and_late_fills(messy):
    text = explain_cycle(messy, A)
    assert_points_at_records(messy, text)
    assert "decisions.jsonl.1.gz:1" in text
    for words in ("price_error: no usable price for QQQ", f"order_error {OID2}: sell 2 SPY [M] "
                  "failed: insufficient quantity", f"order_open_at_deadline: {OID}",
                  f"order_canceled: {OID}", f"fill {OID}-2 of {OID}", "cycle complete: nav 998.00",
                  "risk check max_order_value on SPY: SPY capped"):
        assert words in text, words
    assert "kill_switch_engaged" not in text and "still TLT" not in text  # cycle B's


def test_a_date_explains_each_of_its_cycles(messy):
    text = explain_cycle(messy, "2024-03-28")
    assert f"cycle {A} (1 of 2)" in text and f"cycle {B} (2 of 2)" in text
    assert text.index(f"cycle {A}") < text.index(f"cycle {B}")
    b_part = text[text.index(f"cycle {B}"):]
    assert "kill_switch_engaged: no new orders" in b_part and "still TLT" in b_part
    assert "order_canceled" not in b_part  # it belongs to cycle A's order


def test_order_story_includes_events_naming_it_and_fills_of_the_next_cycle(messy):
    text = explain_order(messy, OID)
    assert_points_at_records(messy, text)
    assert text.splitlines()[0].startswith(f"order {OID}: buy 10 TLT [M], cycle {A}")
    for words in ("reason: TLT scores best", "TLT: score 0.3 (rank 1 of 2), target weight "
                  "100.00%, final weight 98.00%", "risk check cash_buffer on the whole sleeve",
                  f"order_open_at_deadline: {OID}", f"order_canceled: {OID}", f"{OID}-1 of",
                  f"{OID}-2 of", "account position in TLT: TLT 4 @ 90.4"):
        assert words in text, words
    assert "max_order_value" not in text.replace("none on TLT", "")  # a check on SPY only
    assert "price_error" not in text and OID2 not in text


def test_refused_order_is_explained_from_its_error(messy):
    text = explain_order(messy, OID2)
    assert f"order {OID2}: sell 2 SPY [M]" in text
    assert "failed: insufficient quantity" in text
    assert "risk check max_order_value on SPY: SPY capped" in text


def test_parse_cycle_ranges():
    assert parse_cycle("2024-03-28T15:45-04:00").first == "2024-03-28T19:45:00+00:00"
    q = parse_cycle("2024-03-28T19:45")
    assert (q.first, q.last, q.needle) == ("2024-03-28T19:45:00+00:00",
                                          "2024-03-28T19:45:59+00:00", b"2024-03-28T19:45:")
    assert parse_cycle("2024-03-28").needle == b"2024-03-28T"
    assert parse_cycle(B).needle == B.encode()


def test_money_is_never_negative_zero():
    assert [explain_mod._money(x) for x in (-0.0, -0.004, -0.005, 12.5)] == \
        ["0.00", "0.00", "-0.01", "12.50"]
    assert [explain_mod._signed(x) for x in (-0.0, -0.004, 0.0, -3.0)] == \
        ["0.00", "0.00", "+0.00", "-3.00"]


def test_a_holding_decision_is_not_read_as_all_cash():
    """A model that holds (v1 risk-off without its defensive symbol) returns no targets: its
    holdings stay. Explain must say that, not 'none (all cash)' or 'could not decide'."""
    held = ModelDecided(model="M", cycle_timestamp=at(A), capital_share=1.0, as_of=on("2024-03-27"),
                        symbols=("SPY", "TLT"), input_sha256="ab" * 32, scores={"XLK": 0.2},
                        target_weights={}, final_weights={}, risk_checks=(),
                        reason="hold: risk-off (SPY below its average) but TLT has no closes: the "
                               "current holdings stay (v1's hold rule)",
                        hold=True)
    text = "\n".join(explain_mod._decision(held, None))
    assert "all cash" not in text and "could not decide" not in text
    assert "target weights: none: the model holds, its current holdings stay" in text
    assert "final weights: none: the model holds, its current holdings stay" in text
    text = "\n".join(explain_mod._decision(held, "XLK"))
    assert "all cash" not in text and "XLK: score 0.2 (rank 1 of 1), no target: it holds" in text


def test_a_record_of_a_kind_this_version_lacks_is_told_not_a_crash(sim_trail, tmp_path):
    """A newer version's event in the cycle (here `margin_call`) is told from its message, with
    the decoder's warning; a line that is no record of its kind is skipped with a warning."""
    from tests.trails import copy_trail
    logs = copy_trail(sim_trail, tmp_path / "logs")
    newer = {"timestamp": "2024-01-02T20:45:00.000900+00:00", "event_type": "margin_call",
             "message": "a newer version's event", "cycle_timestamp": FIRST, "amount": 1.5}
    broken = {"timestamp": "2024-01-02T20:45:00.000950+00:00", "event_type": "order_canceled",
              "message": "no order id", "cycle_timestamp": FIRST}
    with open(logs / "events.jsonl", "ab") as f:
        f.write(orjson.dumps(newer) + b"\n" + orjson.dumps(broken) + b"\n")
    with pytest.warns(UserWarning, match="margin_call"):
        text = explain_cycle(logs, FIRST)
    assert "2024-01-02T20:45:00.000900+00:00" in text
    assert "margin_call: a newer version's event" in text
    assert "no order id" not in text


def test_the_cli_tells_an_unknown_kind_in_one_line(sim_trail, tmp_path, capsys, monkeypatch):
    from bot.cli.main import main
    from tests.trails import copy_trail
    logs = copy_trail(sim_trail, tmp_path / "logs")
    newer = {"timestamp": "2024-01-02T20:45:00.000900+00:00", "event_type": "tax_lot_closed",
             "message": "a newer version's event", "cycle_timestamp": FIRST}
    with open(logs / "events.jsonl", "ab") as f:
        f.write(orjson.dumps(newer) + b"\n")
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path / "data"))
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # as a user's tradebot runs (pytest -W may ignore them)
        assert main(["replay", "--logs-dir", str(logs), "--cycle", FIRST]) == 0
    out, err = capsys.readouterr()
    assert "tax_lot_closed: a newer version's event" in out
    assert err == ("warning: events.jsonl: `tax_lot_closed` records are not known to this version "
                   "of tradebot (a newer one wrote them?): read as UnknownRecord\n")
