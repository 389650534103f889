"""The query engine against the guide's jq recipes run by the real jq (1.6, as in CI), on the
simulated trail and on a crafted trail full of edge cases (escapes, unicode, missing fields, null
and odd sides, numbers in exponent form, nested objects with the same keys, duplicate keys, two
records on a line, bad lines, a torn last line, rotated .1 and .2.gz files). The fast path, the
exact line-by-line path, tiny blocks and the process pool must all give jq's answer."""
from __future__ import annotations

import gzip
import json
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import query as q
from audit.files import segments
from audit.jqfmt import jq_csv, jq_dumps, jq_key, jq_number, jq_numbers, jq_tsv
from tests.jqrun import jq, values

F = q.Filters
WIN_RATE = ("-s 'map(select(.pnl != null)) | {total: length, wins: map(select(.pnl > 0)) | length, "
            "losses: map(select(.pnl < 0)) | length} | .win_rate = (.wins / .total * 100)'")
SIDES = "-s 'group_by(.side) | map({side: .[0].side, count: length})'"


# ---------------------------------------------------------------- jq's printing

BROAD = [0.0, -0.0, 1.0, -1.0, 100000.0, 100212.54, 0.1, 0.30000000000000004, 1e-4, 1e-5, 1.5e-5,
         4.529674589e-05, 2.96405609e-07, 1e-7, 5e-324, 2.2250738585072014e-308, 1e15, 1e16, 1.5e16,
         1e17, 123e15, 1.2345678901234568e17, 9832728707734994.0, 1.825917720712505e16, 1e21, 1e22,
         1e300, 1.7976931348623157e308, -1.7976931348623157e308, 9.752452507147659e+74, 2.0 ** 53,
         2.0 ** 53 + 2, 12345678901234567890.0, -3.14159, 6662.5, 1e-300, 123456.789e-20, 0.5, 3.0e2]


def jq_prints(xs: list[float]) -> list[str]:
    return jq(".[]", json.dumps(xs).encode()).decode().split("\n")[:-1]


def test_jq_number_is_what_jq_prints_for_a_broad_list():
    assert [jq_number(x) for x in BROAD] == jq_prints(BROAD)
    assert [t.decode() for t in jq_numbers(BROAD)] == jq_prints(BROAD)


def test_numbers_beyond_the_doubles_print_as_jq_prints_them():
    big = 10 ** 400
    assert jq_number(float("inf")) == jq_number(big) == "1.7976931348623157e+308"
    assert jq_number(-big) == "-1.7976931348623157e+308"
    assert jq(".", b"[1e400, 123456789012345678901234567890]", True) == (
        f"[\n  {jq_number(big)},\n  {jq_number(123456789012345678901234567890)}\n]\n").encode()


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                          st.integers(-10 ** 20, 10 ** 20).map(float),
                          st.decimals(-10 ** 6, 10 ** 6, places=4, allow_nan=False).map(float)),
                min_size=1, max_size=200))
def test_jq_number_matches_jq_on_any_double(xs):
    printed = jq_prints(xs)
    assert [jq_number(x) for x in xs] == printed
    assert [t.decode() for t in jq_numbers(xs)] == printed


def test_bulk_numbers_keep_nulls():
    assert jq_numbers([1.0, None, 1e-7]) == [b"1", b"null", b"1e-07"]


SAMPLES = [{"a": [1, 2.5, {"b": None}], "s": "x\u007f\u0001é/\"\\\t\n\r\b\f", "e": {}, "l": []},
           [True, False, None, "", -0.0, 1e100], "plain", 12.0, {"nested": {"deep": [[], [{}]]}}]


@pytest.mark.parametrize("value", SAMPLES)
def test_jq_dumps_prints_as_jq_pretty_and_compact(value):
    text = json.dumps(value, ensure_ascii=False).encode()
    assert (jq_dumps(value) + "\n").encode() == jq(".", text)
    assert (jq_dumps(value, None) + "\n").encode() == jq("-c .", text)


def test_csv_and_tsv_rows_are_jq_s():
    rows = [["a\"b", "t\tn\nr\rb\\s", None, True, False, 1.5, "é\u0001\u007f", 100000.0, -0.0, 1e-5]]
    text = json.dumps(rows[0], ensure_ascii=False).encode()
    assert (jq_csv(rows[0]) + "\n").encode() == jq("-r '@csv'", text)
    assert (jq_tsv(rows[0]) + "\n").encode() == jq("-r '@tsv'", text)
    with pytest.raises(ValueError, match=r'object \(\{"abcdefghi\.\.\.\) is not valid in a csv row'):
        jq_csv([{"abcdefghijkl": 1}])


def test_jq_order_of_values():
    mixed = [{"b": 1}, {"a": 2}, {"a": 1, "b": 0}, [1, 2], [1], [], "b", "a", "é", "", 2, -1, 0.5,
             True, False, None, {"a": 1}]
    ours = sorted(mixed, key=jq_key)
    assert jq("-c 'sort'", json.dumps(mixed).encode()) == (json.dumps(ours, separators=(",", ":"),
                                                                      ensure_ascii=False) + "\n").encode()


# ---------------------------------------------------------------- a crafted trail

def ts(i: int) -> str:
    return "2025-11-18T14:%02d:%02d.%06d+00:00" % (i // 60 % 60, i % 60, i)


def _orders() -> list[str]:
    sides = ['"buy"', '"sell"', "null", '"b\\u0075y"', "1", "1.0", "true", "false", '{"a":1}', "[1]",
             '""', '"zz"', '"é"', "-0.0", "0"]
    syms = ['"SPY"', '"QQQ"', '"S\\u0050Y"', '"SPY"']
    qty = ["10.0", "1e-05", "1.5E+3", "123456789012345678901", "-0.0", "0.1"]
    out = []
    for i, side in enumerate(sides * 2):
        out.append(
            f'{{"timestamp":"{ts(i)}","event_type":"order_submitted","order_id":"o{i}",'
            f'"symbol":{syms[i % 4]},"side":{side},"quantity":{qty[i % 6]},'
            f'"price":{["666.23", "1e17", "2.5"][i % 3]},"model":"M{i % 2 + 1}","status":"accepted",'
            f'"order_data":{{"side":"nested","symbol":"SPY","model":"M1","timestamp":"{ts(i + 1)}"}}}}')
    out += [f'{{"timestamp":"{ts(100)}","event_type":"order_submitted","symbol":"SPY"}}',
            f'{{"timestamp":"{ts(101)}","side":"buy","side":"sell","symbol":"SPY","model":"M1"}}',
            f'{{"timestamp":"{ts(102)}","side":"buy","symbol":"SPY"}}{{"timestamp":"{ts(103)}","side":"sell","symbol":"QQQ"}}',
            '{"timestamp":5,"side":"buy","symbol":"SPY"}',
            '{"timestamp":["x"],"side":"buy","symbol":"SPY"}',
            '{"side":"sell","symbol":"SPY"}',
            '{"timestamp":"2025-11-18T09:30:00-05:00","side":"buy","symbol":"SPY"}',
            '{"timestamp":"2025-11-19T00:00:00","side":"buy","symbol":"SPY"}',
            '{"timestamp":"2025-11-18T00:00:00","side":"buy","symbol":"SPY"}',
            '  {"timestamp":"2025-11-18T10:00:00+00:00", "side" : "sell" , "symbol":"SPY" }  ']
    return out


def _trades() -> list[str]:
    vals = ["6662.5", "null", "1e-05", "-0.0", "0.1", "0.2", "123456789012345678901234", "1.5E+3",
            "10", "2.5e-7"]
    pnls = ["5.5", "-3", "0", "-0.0", "null", '"x"', "true", "false", "{}", "[]", "1e300", "-1e-300"]
    out = []
    for i in range(24):
        pnl = "" if i % 5 == 4 else f'"pnl":{pnls[i % len(pnls)]},'
        out.append(f'{{"timestamp":"{ts(i)}","event_type":"trade_executed","order_id":"o{i}",'
                   f'"symbol":"{["SPY", "QQQ"][i % 2]}","side":"buy","quantity":1.0,"price":2.0,'
                   f'"value":{vals[i % len(vals)]},{pnl}"model":"M{i % 3 % 2 + 1}"}}')
    out.append(f'{{"timestamp":"{ts(50)}","value":7,"pnl":2,"nested":{{"value":1000,"pnl":-5}}}}')
    return out


def _performance() -> list[str]:
    navs = ["100000.0", "106234.56", "1e-05", "1.5e+16", "1.2345678901234568e+17",
            "12345678901234567890", "-0.0", "0", "null", '"str"', "true", "0.000012", "1E+400",
            "9.752452507147659e+74", "99999999999999999999.5", "100.50"]
    out = [f'{{"timestamp":"{ts(i)}","event_type":"cycle_complete","nav":{nav},"cash":1.0,'
           f'"positions":{{"SPY":10.0,"nav":5}},"prices":{{"SPY":666.23}}}}' for i, nav in enumerate(navs)]
    out += [f'{{"timestamp":"{ts(30)}","event_type":"cycle_complete","cash":1.0}}',
            '{"timestamp":"t\\"q\\\\b","nav":1.5}',
            '{"timestamp":"café \\u00e9 \\/ \\t","nav":2}',
            '{"timestamp":null,"nav":3}',
            '{"timestamp":12,"nav":[1]}',
            f'{{"nav":4,"timestamp":"{ts(31)}","nav":5}}']
    return out


def _errors() -> list[str]:
    errs = ['"insufficient buying power\\tfor \\"order\\""', '"line1\\nline2\\r\\\\end"', '"plain"',
            "null", "5", '{"x":1}', '["a"]', '"uni \\u00e9 \\u0001 \\/ \\b\\f"', '"raw é ü"', '""',
            "true", '"c:\\\\temp\\\\new"', '"tab\\\\t not a tab"']
    out = [f'{{"timestamp":"{ts(i)}","event_type":"{["order_error", "price_error", "cycle_error"][i % 3]}",'
           f'"symbol":"{["SPY", "QQQ"][i % 2]}","error":{e},'
           f'"order_data":{{"error":"nested","symbol":"SPY"}},"model":"M{i % 2 + 1}"}}'
           for i, e in enumerate(errs)]
    out.append(f'{{"timestamp":"{ts(40)}","event_type":"data_error"}}')
    return out


BAD = {"orders.jsonl": [(0, "[1,2]", "not a JSON object"), (1, "not json", "not JSON"),
                        (2, '{"a":1}x', "not JSON")],
       "trades.jsonl": [(1, "null", "not a JSON object")],
       "performance.jsonl": [(2, '"str"', "not a JSON object")],
       "errors.jsonl": [(0, "{broken", "not JSON")]}
TORN = '{"timestamp":"2025-11-18T10:00:00+00:00","side":"bu'


def make_trail(log_dir: Path) -> dict[str, list[tuple[str, str]]]:
    """Write the crafted trail (each stream as NAME.2.gz, NAME.1, NAME; bad lines inside; a torn
    last line in orders.jsonl). Returns the bad lines each stream must report, as (file:line, why)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    expected: dict[str, list[tuple[str, str]]] = {}
    for name, lines in (("orders.jsonl", _orders()), ("trades.jsonl", _trades()),
                        ("performance.jsonl", _performance()), ("errors.jsonl", _errors())):
        n = len(lines)
        parts = [lines[:n * 3 // 10], lines[n * 3 // 10:n * 6 // 10], lines[n * 6 // 10:]]
        files = [name + ".2.gz", name + ".1", name]
        if name == "orders.jsonl":
            parts[1].insert(1, "")  # a blank line
        bad = []
        for k, text, why in BAD[name]:
            at = len(parts[k]) // 2
            parts[k].insert(at, text)
            bad.append((k, at + 1, f"{files[k]}:{at + 1}", why))
        for k, part in enumerate(parts):
            data = ("\n".join(part) + "\n").encode()
            if k == 2 and name == "orders.jsonl":
                data += TORN.encode()
                bad.append((k, len(part) + 1, f"{name}:{len(part) + 1}", "not JSON"))
            if k == 0:
                with gzip.open(log_dir / files[0], "wb") as f:
                    f.write(data)
            else:
                (log_dir / files[k]).write_bytes(data)
        expected[name] = [(where, why) for _k, _n, where, why in sorted(bad)]
    return expected


def jq_input(log_dir: Path, stream: str) -> bytes:
    """What the guide's `cat FILE | jq` gets: the segments oldest first, without the bad lines
    (jq would stop at the first one)."""
    drop = {text for _k, text, _why in BAD.get(stream, [])} | {TORN}
    out = []
    for p in segments(log_dir, stream):
        data = gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()
        out += [line for line in data.decode().split("\n") if line not in drop]
    return ("\n".join(out) + "\n").encode()


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    d = tmp_path_factory.mktemp("crafted")
    return d, make_trail(d)


WAYS = {"fast": dict(), "exact": dict(fast=False), "tiny blocks": dict(chunk=97),
        "small blocks": dict(chunk=700), "pool": dict(chunk=300, jobs=2)}


def each_way(monkeypatch, fn):
    """fn(on_bad=..., **kw) run every way: {way: (result, bad lines reported)}."""
    out = {}
    for way, kw in WAYS.items():
        kw = dict(kw)
        monkeypatch.setattr(q, "FAST", kw.pop("fast", True))
        bad = []
        res = fn(on_bad=lambda where, why, bad=bad: bad.append((str(where), why)), **kw)
        out[way] = (res, bad)
    monkeypatch.setattr(q, "FAST", True)
    return out


def assert_all(results: dict, expected, bad=None, norm=lambda x: x):
    for way, (res, reported) in results.items():
        assert norm(res) == expected, way
        if bad is not None:
            assert reported == bad, way


SELECTS = [(F(), "."), (F(symbol="SPY"), 'select(.symbol == "SPY")'),
           (F(model="M1"), 'select(.model == "M1")'),
           (F(since="2025-11-18T00:00:00", until="2025-11-19T00:00:00"),
            'select(.timestamp >= "2025-11-18T00:00:00" and .timestamp < "2025-11-19T00:00:00")'),
           (F(since="2025-11-18T14:00:10"), 'select(.timestamp >= "2025-11-18T14:00:10")'),
           (F(until="2025-11-18T14:00:10"), 'select(.timestamp < "2025-11-18T14:00:10")'),
           (F(symbol="SPY", model="M1", since="2025-11-18T14:00:05", until="2025-11-18T14:00:40"),
            'select(.symbol == "SPY" and .model == "M1" and .timestamp >= "2025-11-18T14:00:05" '
            'and .timestamp < "2025-11-18T14:00:40")')]


@pytest.mark.parametrize("filters,expr", SELECTS, ids=[e for _f, e in SELECTS])
def test_selected_orders_are_jq_s(crafted, monkeypatch, filters, expr):
    d, bad = crafted
    ref = values(jq(f"-c '{expr}'", jq_input(d, "orders.jsonl")))
    got = each_way(monkeypatch, lambda **kw: b"".join(q.select(d, "orders.jsonl", filters, **kw)))
    assert_all(got, ref, bad["orders.jsonl"], values)


@pytest.mark.parametrize("filters,pre", [(F(), ""), (F(symbol="SPY"), 'map(select(.symbol == "SPY")) | '),
                                         (F(model="M2"), 'map(select(.model == "M2")) | ')])
def test_sides_are_jq_s(crafted, monkeypatch, filters, pre):
    d, bad = crafted
    ref = jq(f"-s '{pre}group_by(.side) | map({{side: .[0].side, count: length}})'",
             jq_input(d, "orders.jsonl"))
    got = each_way(monkeypatch, lambda **kw: (jq_dumps([{"side": v, "count": n} for v, n in
                                                          q.count_by(d, filters=filters, **kw)]) + "\n").encode())
    assert_all(got, ref, bad["orders.jsonl"])


def test_traded_value_is_jq_s(crafted, monkeypatch):
    d, bad = crafted
    ref = jq("-s 'map(.value) | add'", jq_input(d, "trades.jsonl"))
    got = each_way(monkeypatch, lambda **kw: (jq_number(q.total(d, **kw)) + "\n").encode())
    assert_all(got, ref, bad["trades.jsonl"])
    spy = jq("-s 'map(select(.symbol == \"SPY\")) | map(.value) | add'", jq_input(d, "trades.jsonl"))
    assert (jq_number(q.total(d, filters=F(symbol="SPY"))) + "\n").encode() == spy


def test_a_value_that_is_not_a_number_is_reported_and_left_out(tmp_path, monkeypatch):
    (tmp_path / "trades.jsonl").write_text('{"value":1.5}\n{"value":"2"}\n{"value":true}\n{"value":2.25}\n')
    got = each_way(monkeypatch, lambda **kw: q.total(tmp_path, **kw))
    assert_all(got, 3.75, [("trades.jsonl:2", 'value is not a number ("2"): left out'),
                           ("trades.jsonl:3", "value is not a number (true): left out")])


def test_win_rate_is_jq_s(crafted, monkeypatch):
    d, bad = crafted
    ref = jq(WIN_RATE, jq_input(d, "trades.jsonl"))
    got = each_way(monkeypatch, lambda **kw: (jq_dumps(q.win_rate(d, **kw).as_jq()) + "\n").encode())
    assert_all(got, ref, bad["trades.jsonl"])


def test_win_rate_without_a_closed_trade_is_total_zero_and_a_null_rate(tmp_path):
    (tmp_path / "trades.jsonl").write_text('{"value":1.0,"side":"buy"}\n{"value":2.0,"pnl":null}\n')
    wr = q.win_rate(tmp_path)
    assert (wr.total, wr.wins, wr.losses, wr.win_rate) == (0, 0, 0, None)
    assert wr.as_jq() == {"total": 0, "wins": 0, "losses": 0, "win_rate": None}
    # where the guide's recipe stops: jq divides by zero
    proc = subprocess.run("jq " + WIN_RATE, shell=True, input=(tmp_path / "trades.jsonl").read_bytes(),
                          capture_output=True)
    assert proc.returncode != 0 and b"divided" in proc.stderr


ROWS = [("nav", "performance.jsonl", "[.timestamp, .nav]"),
        ("errors", "errors.jsonl", "[.timestamp, .event_type, .error]")]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json"])
@pytest.mark.parametrize("what,stream,expr", ROWS, ids=["nav", "errors"])
def test_rows_are_byte_for_byte_jq_s(crafted, monkeypatch, fmt, what, stream, expr):
    d, bad = crafted
    args = f"-c '{expr}'" if fmt == "json" else f"-r '{expr} | @{fmt}'"
    proc = subprocess.run("jq " + args, shell=True, input=jq_input(d, stream), capture_output=True)
    fn = q.nav_rows if what == "nav" else q.error_rows
    got = each_way(monkeypatch, lambda **kw: b"".join(fn(d, fmt, **kw)))
    reported = got["exact"][1]
    # rows jq refuses (an object or an array in @csv/@tsv): jq says why on stderr and goes on
    refused = [line.split("): ", 1)[1] for line in proc.stderr.decode().splitlines()]
    assert [why for _w, why in reported if why not in {"not JSON", "not a JSON object"}] == refused
    assert [r for r in reported if r[1] in {"not JSON", "not a JSON object"}] == bad[stream]
    assert_all(got, proc.stdout, reported)


def test_row_filters_are_jq_s(crafted, monkeypatch):
    d, _bad = crafted
    ref = jq("-r 'select(.timestamp >= \"2025-11-18T14:00:03\") | [.timestamp, .nav] | @csv'",
             jq_input(d, "performance.jsonl"), check=False)
    got = each_way(monkeypatch, lambda **kw: b"".join(q.nav_rows(d, "csv", F(since="2025-11-18T14:00:03"), **kw)))
    assert_all(got, ref)
    ref = jq("-r 'select(.symbol == \"SPY\" and .timestamp < \"2025-11-18T14:00:07\") | "
             "[.timestamp, .event_type, .error] | @tsv'", jq_input(d, "errors.jsonl"), check=False)
    got = each_way(monkeypatch, lambda **kw: b"".join(
        q.error_rows(d, "tsv", F(symbol="SPY", until="2025-11-18T14:00:07"), **kw)))
    assert_all(got, ref)


def test_bad_lines_name_their_file_and_line(crafted):
    d, bad = crafted
    seen = []
    list(q.select(d, "orders.jsonl", on_bad=lambda w, why: seen.append((str(w), why))))
    assert seen == bad["orders.jsonl"]
    texts = {text for _k, text, _why in BAD["orders.jsonl"]} | {TORN}
    for where, _why in seen:  # the line named is the bad one, in a .gz segment too
        name, n = where.rsplit(":", 1)
        data = (d / name).read_bytes()
        data = gzip.decompress(data) if name.endswith(".gz") else data
        assert data.decode().split("\n")[int(n) - 1] in texts
    assert {w.split(":")[0] for w, _ in seen} == {"orders.jsonl.2.gz", "orders.jsonl.1", "orders.jsonl"}


# ---------------------------------------------------------------- the simulated trail

def cat(log_dir: Path, stream: str) -> bytes:
    return b"".join(gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()
                    for p in segments(log_dir, stream))


def test_every_recipe_on_the_simulated_trail(sim_trail):
    d = sim_trail
    orders, trades, perf = cat(d, "orders.jsonl"), cat(d, "trades.jsonl"), cat(d, "performance.jsonl")
    spy = b"".join(q.select(d, filters=F(symbol="SPY")))
    assert spy and values(spy) == values(jq("'select(.symbol == \"SPY\")'", orders))
    sides = q.count_by(d)
    assert [{"side": v, "count": n} for v, n in sides] == json.loads(jq(SIDES, orders))
    assert {v for v, _n in sides} == {"buy", "sell"}
    assert jq_number(q.total(d)) == jq("-s 'map(.value) | add'", trades).decode().strip()
    assert b"".join(q.nav_rows(d, "csv")) == jq("-r '[.timestamp, .nav] | @csv'", perf)
    assert b"".join(q.error_rows(d, "tsv")) == jq("-r '[.timestamp, .event_type, .error] | @tsv'",
                                                   cat(d, "errors.jsonl"))
    latest = q.latest(d)
    assert latest.record == json.loads(jq("'.'", perf.rstrip(b"\n").rsplit(b"\n", 1)[-1]))
    day = json.loads(orders.splitlines()[-1])["timestamp"][:10]  # a day with orders
    after = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    got = b"".join(q.select(d, filters=F(since=q.utc_bound(day), until=q.utc_bound(after))))
    assert got and values(got) == values(jq(f"'select(.timestamp >= \"{day}T00:00:00\" and "
                                            f".timestamp < \"{after}T00:00:00\")'", orders))
    wr = q.win_rate(d)
    assert wr.total > 0 and (jq_dumps(wr.as_jq()) + "\n").encode() == jq(WIN_RATE, trades)


def test_the_pool_gives_the_same_answers_in_the_same_order(sim_trail):
    d = sim_trail
    for kw in (dict(chunk=2000, jobs=2), dict(chunk=5000, jobs=3)):
        assert b"".join(q.nav_rows(d, "csv", **kw)) == b"".join(q.nav_rows(d, "csv", jobs=1))
        assert b"".join(q.select(d, filters=F(model="EqualWeightModel_v1"), **kw)) == \
            b"".join(q.select(d, filters=F(model="EqualWeightModel_v1"), jobs=1))
        assert q.total(d, **kw) == q.total(d, jobs=1)
        assert q.count_by(d, **kw) == q.count_by(d, jobs=1)


# ---------------------------------------------------------------- latest, time bounds

def test_latest_reads_the_end_and_steps_over_a_torn_last_line(tmp_path):
    (tmp_path / "performance.jsonl.1").write_text('{"nav":1.0}\n{"nav":2.0}\n')
    (tmp_path / "performance.jsonl").write_text("")
    got = q.latest(tmp_path)
    assert (got.file, got.record) == ("performance.jsonl.1", {"nav": 2.0})
    (tmp_path / "performance.jsonl").write_text('{"nav":3.0}\n\n{"nav":4.0}\n{"nav":5')
    seen = []
    got = q.latest(tmp_path, on_bad=lambda w, why: seen.append(str(w)))
    assert (got.line, got.record) == (b'{"nav":4.0}', {"nav": 4.0})
    assert seen == ["performance.jsonl:4"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert q.latest(empty) is None


@pytest.mark.parametrize("text,bound", [
    ("2025-11-18", "2025-11-18T00:00:00"),
    ("2025-11-18T14:30", "2025-11-18T14:30:00"),
    ("2025-11-18 14:30:05", "2025-11-18T14:30:05"),
    ("2025-11-18T09:30:00-05:00", "2025-11-18T14:30:00"),
    ("2025-11-18T01:00:00+02:00", "2025-11-17T23:00:00"),
    ("2025-11-18T14:30:00Z", "2025-11-18T14:30:00"),
    ("2025-11-18T14:30:00.5", "2025-11-18T14:30:00.500000"),
])
def test_time_bounds_are_utc_texts(text, bound):
    assert q.utc_bound(text) == bound


@pytest.mark.parametrize("text", ["yesterday", "2025-13-01", "18/11/2025", ""])
def test_a_bad_time_bound_says_what_to_write(text):
    with pytest.raises(ValueError, match="use YYYY-MM-DD"):
        q.utc_bound(text)


def test_a_missing_stream_is_empty(tmp_path):
    assert list(q.select(tmp_path)) == [] and q.count_by(tmp_path) == []
    assert q.total(tmp_path) is None and q.win_rate(tmp_path).total == 0
    assert list(q.nav_rows(tmp_path)) == [] and q.latest(tmp_path) is None


def test_a_usual_trail_never_needs_the_exact_path(sim_trail, tmp_path, monkeypatch):
    """The fast path handles what the bot writes (escapes in error texts, huge and tiny numbers
    included), so the speed measured by benchmarks/bench_query.py is the speed users get."""
    from benchmarks.trailgen import write_trail
    write_trail(tmp_path, 3000)  # the benchmark's shapes: errors with \t and \"

    def exact(*_a):
        raise AssertionError("a block went the exact way")

    for d in (sim_trail, tmp_path):
        want = {"csv": b"".join(q.nav_rows(d, "csv")), "tsv": b"".join(q.error_rows(d, "tsv"))}
        monkeypatch.setattr(q, "_exact", exact)
        assert b"".join(q.nav_rows(d, "csv")) == want["csv"]
        assert b"".join(q.error_rows(d, "tsv")) == want["tsv"]
        for fmt in ("csv", "json"):
            list(q.nav_rows(d, fmt)), list(q.error_rows(d, fmt))
        list(q.select(d, filters=F(symbol="SPY"))), list(q.select(d, filters=F(since="2024-03-01")))
        q.count_by(d), q.total(d), q.win_rate(d)
        monkeypatch.undo()


def test_bytes_that_are_not_utf8_print_as_jq_prints_them(tmp_path, monkeypatch):
    data = b'{"timestamp":"a\xffb","event_type":"x","error":"e\xfe"}\n{"timestamp":"t","event_type":"y","error":"ok"}\n'
    (tmp_path / "errors.jsonl").write_bytes(data)
    for fmt, args in (("tsv", "-r '[.timestamp, .event_type, .error] | @tsv'"),
                      ("csv", "-r '[.timestamp, .event_type, .error] | @csv'"),
                      ("json", "-c '[.timestamp, .event_type, .error]'")):
        got = each_way(monkeypatch, lambda fmt=fmt, **kw: b"".join(q.error_rows(tmp_path, fmt, **kw)))
        assert_all(got, jq(args, data), [])
    orders = b'{"timestamp":"t1","symbol":"SP\xffY","side":"buy"}\n{"timestamp":"t2","symbol":"SPY","side":"s\xfe"}\n'
    (tmp_path / "orders.jsonl").write_bytes(orders)
    got = each_way(monkeypatch, lambda **kw: b"".join(q.select(tmp_path, filters=F(symbol="SPY"), **kw)))
    assert_all(got, orders.split(b"\n", 1)[1], [])
    got = each_way(monkeypatch, lambda **kw: jq_dumps([{"side": v, "count": n} for v, n in q.count_by(tmp_path, **kw)]))
    assert_all(got, jq(SIDES, orders).decode().rstrip("\n"), [])


def test_lines_that_only_parse_together_are_bad_lines_both_ways(tmp_path, monkeypatch):
    (tmp_path / "orders.jsonl").write_bytes(
        b'{"symbol":"SPY","timestamp":"a"}\n{"symbol":"SPY","timestamp":"b"}{"symbol":"SPY",\n'
        b'"symbol":"SPY","timestamp":"c"}\n{"symbol":"QQQ"}\n')
    got = each_way(monkeypatch, lambda **kw: b"".join(q.select(tmp_path, filters=F(symbol="SPY"), **kw)))
    assert_all(got, b'{"symbol":"SPY","timestamp":"a"}\n',
               [("orders.jsonl:2", "not JSON"), ("orders.jsonl:3", "not a JSON object")])
