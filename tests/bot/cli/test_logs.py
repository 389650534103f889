"""`tradebot logs ...`: each subcommand gives the guide's jq recipe's answer (json values equal,
nav csv and errors tsv byte for byte), tables are aligned with two-decimal money, filters work,
--logs-dir beats BOT_LOG_DIR, bad lines are warned about, bad arguments exit 2."""
from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import sys
import types
from datetime import date, timedelta
from pathlib import Path

import pytest

from audit.files import segments
from benchmarks.trailgen import write_trail
from bot.cli.logs import add_logs_parser, logs_main
from tests.jqrun import jq, values
from tests.trails import ROOT, clean_env

WIN_RATE = ("-s 'map(select(.pnl != null)) | {total: length, wins: map(select(.pnl > 0)) | length, "
            "losses: map(select(.pnl < 0)) | length} | .win_rate = (.wins / .total * 100)'")
MONEY = re.compile(r"^-?\d{1,3}(,\d{3})*\.\d\d$")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tradebot")
    add_logs_parser(p.add_subparsers(dest="command", required=True))
    return p.parse_args(["logs", *argv])


def logs(capsysbinary, *argv: str, default: Path = Path("/nonexistent/logs")) -> tuple[int, bytes, str]:
    code = logs_main(parse(list(argv)), default)
    out, err = capsysbinary.readouterr()
    return code, out, err.decode()


def cat(log_dir: Path, stream: str) -> bytes:
    return b"".join(gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()
                    for p in segments(log_dir, stream))


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A trail of benchmarks/trailgen.py's shapes (errors with tabs and quotes), rotated once."""
    d = tmp_path_factory.mktemp("gen")
    write_trail(d, 600)
    for name in ("orders.jsonl", "errors.jsonl", "performance.jsonl", "trades.jsonl"):
        lines = (d / name).read_bytes().splitlines(keepends=True)
        (d / (name + ".1")).write_bytes(b"".join(lines[:250]))
        (d / name).write_bytes(b"".join(lines[250:]))
    return d


def test_every_subcommand_answers_as_the_guide_s_recipe(sim_trail, capsysbinary):
    d = str(sim_trail)
    orders, trades, perf = cat(sim_trail, "orders.jsonl"), cat(sim_trail, "trades.jsonl"), \
        cat(sim_trail, "performance.jsonl")
    code, out, _ = logs(capsysbinary, "orders", "--symbol", "SPY", "--format", "json", "--logs-dir", d)
    assert code == 0 and out and values(out) == values(jq("'select(.symbol == \"SPY\")'", orders))
    _, out, _ = logs(capsysbinary, "sides", "--format", "json", "--logs-dir", d)
    assert out == jq("-s 'group_by(.side) | map({side: .[0].side, count: length})'", orders)
    _, out, _ = logs(capsysbinary, "traded-value", "--format", "json", "--logs-dir", d)
    assert out == jq("-s 'map(.value) | add'", trades)
    _, out, _ = logs(capsysbinary, "nav", "--format", "csv", "--logs-dir", d)
    assert out == jq("-r '[.timestamp, .nav] | @csv'", perf)
    _, out, _ = logs(capsysbinary, "latest", "--format", "json", "--logs-dir", d)
    assert values(out) == values(jq("'.'", perf.rstrip(b"\n").rsplit(b"\n", 1)[-1]))
    day = json.loads(orders.splitlines()[-1])["timestamp"][:10]  # a day with orders
    after = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    _, out, _ = logs(capsysbinary, "orders", "--since", day, "--until", after,
                     "--format", "json", "--logs-dir", d)
    assert out and values(out) == values(jq(f"'select(.timestamp >= \"{day}T00:00:00\" and "
                                            f".timestamp < \"{after}T00:00:00\")'", orders))
    _, out, _ = logs(capsysbinary, "win-rate", "--format", "json", "--logs-dir", d)
    assert out == jq(WIN_RATE, trades) and json.loads(out)["total"] > 0


def test_nav_csv_and_errors_tsv_are_byte_for_byte_jq_s(big, capsysbinary):
    errors = cat(big, "errors.jsonl")
    assert b"\\t" in errors and b'\\"' in errors  # escapes that jq's @tsv and @csv change
    for fmt in ("tsv", "csv"):
        _, out, _ = logs(capsysbinary, "errors", "--format", fmt, "--logs-dir", str(big))
        assert out == jq(f"-r '[.timestamp, .event_type, .error] | @{fmt}'", errors)
    _, out, _ = logs(capsysbinary, "errors", "--format", "json", "--logs-dir", str(big))
    assert out == jq("-c '[.timestamp, .event_type, .error]'", errors)
    for fmt in ("csv", "tsv"):
        _, out, _ = logs(capsysbinary, "nav", "--format", fmt, "--logs-dir", str(big))
        assert out == jq(f"-r '[.timestamp, .nav] | @{fmt}'", cat(big, "performance.jsonl"))
    _, out, _ = logs(capsysbinary, "win-rate", "--format", "json", "--logs-dir", str(big))
    assert out == jq(WIN_RATE, cat(big, "trades.jsonl"))


def test_filters(big, capsysbinary):
    orders = cat(big, "orders.jsonl")
    _, out, _ = logs(capsysbinary, "orders", "--symbol", "QQQ", "--model", "EqualWeightModel_v1",
                     "--format", "json", "--logs-dir", str(big))
    ref = jq("'select(.symbol == \"QQQ\" and .model == \"EqualWeightModel_v1\")'", orders)
    assert out and values(out) == values(ref)
    # a timestamp with an offset is converted to UTC: 09:30-05:00 is 14:30 UTC
    _, out, _ = logs(capsysbinary, "orders", "--since", "2020-01-02T09:35:00-05:00",
                     "--until", "2020-01-02T14:45:00Z", "--format", "json", "--logs-dir", str(big))
    ref = jq("'select(.timestamp >= \"2020-01-02T14:35:00\" and .timestamp < \"2020-01-02T14:45:00\")'", orders)
    assert values(out) == values(ref) and len(values(out)) == 10
    _, out, _ = logs(capsysbinary, "sides", "--symbol", "SPY", "--format", "json", "--logs-dir", str(big))
    assert out == jq("-s 'map(select(.symbol == \"SPY\")) | group_by(.side) | map({side: .[0].side, "
                     "count: length})'", orders)
    _, out, _ = logs(capsysbinary, "traded-value", "--model", "EqualWeightModel_v1", "--format", "json",
                     "--logs-dir", str(big))
    assert out == jq("-s 'map(select(.model == \"EqualWeightModel_v1\")) | map(.value) | add'",
                     cat(big, "trades.jsonl"))
    _, out, _ = logs(capsysbinary, "errors", "--symbol", "SPY", "--format", "tsv", "--logs-dir", str(big))
    assert out == jq("-r 'select(.symbol == \"SPY\") | [.timestamp, .event_type, .error] | @tsv'",
                     cat(big, "errors.jsonl"))
    _, out, _ = logs(capsysbinary, "nav", "--until", "2020-01-02T14:40:00", "--format", "csv",
                     "--logs-dir", str(big))
    assert out.count(b"\n") == 10


def columns_line_up(lines: list[str], header: list[str], right: set[str]) -> None:
    """Each cell sits under its header: left edges for text, right edges for numbers."""
    head = lines[0]
    for name in header:
        start = head.index(name)
        end = start + len(name)
        for row in lines[1:]:
            if name in right:
                assert row[end - 1] != " " and (end == len(row) or row[end] == " "), (name, row)
            else:
                assert row[start] != " " and (start == 0 or row[start - 1] == " "), (name, row)


def test_tables_line_up_with_two_decimal_money(big, capsysbinary):
    code, out, _ = logs(capsysbinary, "orders", "--symbol", "SPY", "--logs-dir", str(big))
    lines = out.decode().splitlines()
    assert code == 0 and lines[-1] == f"{len(lines) - 2} orders"
    header = ["TIMESTAMP", "MODEL", "SYMBOL", "SIDE", "QUANTITY", "PRICE", "STATUS", "ORDER_ID"]
    assert lines[0].split() == header
    columns_line_up(lines[:-1], header, {"QUANTITY", "PRICE"})
    prices = [row.split()[5] for row in lines[1:-1]]
    assert prices and all(MONEY.match(p) for p in prices)
    _, out, _ = logs(capsysbinary, "nav", "--logs-dir", str(big))
    lines = out.decode().splitlines()
    assert len(lines) == 601 and len({len(x) for x in lines[1:]}) == 1
    columns_line_up(lines, ["TIMESTAMP", "NAV"], {"NAV"})
    assert all(MONEY.match(x.split()[1]) for x in lines[1:])
    _, out, _ = logs(capsysbinary, "traded-value", "--logs-dir", str(big))
    assert MONEY.match(out.decode().splitlines()[1].strip())
    _, out, _ = logs(capsysbinary, "sides", "--logs-dir", str(big))
    lines = out.decode().splitlines()
    columns_line_up(lines, ["SIDE", "COUNT"], {"COUNT"})
    assert lines[-1].split() == ["total", "600"]
    _, out, _ = logs(capsysbinary, "latest", "--logs-dir", str(big))
    text = out.decode()
    nav = re.search(r"^nav\s+(\S+)$", text, re.M).group(1)
    assert MONEY.match(nav) and "positions.SPY" in text
    _, out, _ = logs(capsysbinary, "errors", "--logs-dir", str(big))
    lines = out.decode().splitlines()
    assert "\t" not in out.decode() and "\\t" in lines[1]  # control characters shown, not obeyed
    assert lines[-1] == "600 errors"


def test_win_rate_without_a_closed_trade(tmp_path, capsysbinary):
    (tmp_path / "trades.jsonl").write_text('{"timestamp":"2025-01-02T15:00:00+00:00","value":10.0}\n')
    _, out, _ = logs(capsysbinary, "win-rate", "--format", "json", "--logs-dir", str(tmp_path))
    assert json.loads(out) == {"total": 0, "wins": 0, "losses": 0, "win_rate": None}
    _, out, _ = logs(capsysbinary, "win-rate", "--logs-dir", str(tmp_path))
    assert "n/a" in out.decode() and out.decode().splitlines()[1].split()[:3] == ["0", "0", "0"]


def test_logs_dir_beats_bot_log_dir(sim_trail, tmp_path, capsysbinary):
    code, out, err = logs(capsysbinary, "sides", "--format", "json", "--logs-dir", str(sim_trail),
                          default=tmp_path / "not-here")
    assert code == 0 and json.loads(out)
    code, out, err = logs(capsysbinary, "--logs-dir", str(sim_trail), "sides", default=tmp_path / "x")
    assert code == 0 and b"buy" in out  # before the query too
    code, out, err = logs(capsysbinary, "sides", default=sim_trail)
    assert code == 0 and b"buy" in out  # no --logs-dir: the default (BOT_LOG_DIR) is used
    env = clean_env(BOT_LOG_DIR=str(tmp_path / "not-here"))
    proc = subprocess.run([sys.executable, "-m", "bot.cli.logs", "sides", "--format", "json",
                           "--logs-dir", str(sim_trail)], cwd=ROOT, env=env, capture_output=True)
    assert proc.returncode == 0 and json.loads(proc.stdout)
    proc = subprocess.run([sys.executable, "-m", "bot.cli.logs", "sides"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and str(tmp_path / "not-here") in proc.stderr


def test_a_missing_log_dir_or_a_bad_argument_exits_2(tmp_path, capsysbinary):
    code, out, err = logs(capsysbinary, "nav", "--logs-dir", str(tmp_path / "nope"))
    assert code == 2 and out == b""
    assert err.count("\n") == 1 and "is not a directory" in err and "--logs-dir" in err
    for argv in (["nav", "--since", "yesterday"], ["latest", "--format", "csv"], ["nav", "--symbol", "SPY"],
                 ["frobnicate"]):
        with pytest.raises(SystemExit) as exc:
            parse(argv)
        assert exc.value.code == 2
    assert "use YYYY-MM-DD" in capsysbinary.readouterr().err.decode()


def test_bad_lines_are_warned_about_with_file_and_line(tmp_path, capsysbinary):
    lines = [b'{"timestamp":"2025-01-02T15:00:%02d+00:00","side":"buy","symbol":"SPY"}' % i for i in range(20)]
    lines[3] = b"garbage"
    (tmp_path / "orders.jsonl.1").write_bytes(b"\n".join(lines[:10]) + b"\n")
    (tmp_path / "orders.jsonl").write_bytes(b"\n".join(lines[10:]) + b"\n" + b'{"timestamp":"2025-01')
    code, out, err = logs(capsysbinary, "sides", "--format", "json", "--logs-dir", str(tmp_path))
    assert code == 0 and json.loads(out) == [{"side": "buy", "count": 19}]
    assert err.splitlines() == ["tradebot logs: warning: orders.jsonl.1:4: not JSON; skipped",
                                "tradebot logs: warning: orders.jsonl:11: not JSON; skipped"]
    (tmp_path / "orders.jsonl").write_bytes(b"x\n" * 9)
    code, out, err = logs(capsysbinary, "sides", "--format", "json", "--logs-dir", str(tmp_path))
    assert code == 0 and len(err.splitlines()) == 6
    assert err.splitlines()[-1] == "tradebot logs: warning: 5 more bad lines skipped (10 in all)"


def test_a_stream_not_yet_written_is_a_note_not_an_error(tmp_path, capsysbinary):
    code, out, err = logs(capsysbinary, "traded-value", "--format", "json", "--logs-dir", str(tmp_path))
    assert code == 0 and out == b"null\n" and "no trades.jsonl" in err
    code, out, err = logs(capsysbinary, "latest", "--logs-dir", str(tmp_path))
    assert code == 0 and out == b"" and "no performance snapshot" in err


def test_explain_prints_the_story_or_one_line_and_exit_1(tmp_path, capsysbinary, monkeypatch):
    calls = []

    def explain_order(log_dir: Path, order_id: str) -> str:
        calls.append((log_dir, order_id))
        if order_id == "missing":
            raise LookupError(f"no order missing in {log_dir}: check the id with `tradebot logs orders`")
        return f"order {order_id}: bought because..."

    monkeypatch.setitem(sys.modules, "bot.review.explain", types.SimpleNamespace(explain_order=explain_order))
    code, out, err = logs(capsysbinary, "explain", "tb-1", "--logs-dir", str(tmp_path))
    assert (code, out, err) == (0, b"order tb-1: bought because...\n", "")
    assert calls == [(tmp_path, "tb-1")]
    code, out, err = logs(capsysbinary, "explain", "missing", "--logs-dir", str(tmp_path))
    assert code == 1 and out == b"" and err.count("\n") == 1 and "no order missing" in err


@pytest.mark.parametrize("argv, flag", [(["nav", "--symbol", "SPY"], "--symbol"),
                                        (["nav", "--model", "EqualWeightModel_v1"], "--model"),
                                        (["latest", "--since", "2024-01-01"], "--since"),
                                        (["explain", "X", "--until", "2024-01-01"], "--until")])
def test_a_filter_a_query_does_not_take_says_why_in_one_line(capsysbinary, argv, flag):
    with pytest.raises(SystemExit) as exc:
        parse(argv)
    assert exc.value.code == 2
    err = capsysbinary.readouterr().err.decode().splitlines()
    assert err[0].startswith(f"usage: tradebot logs {argv[0]}")
    assert err[-1].startswith(f"tradebot logs {argv[0]}: error: {flag} does not apply to this "
                              "query: ")


def test_every_filter_the_readme_lists_for_a_query_is_accepted(sim_trail, capsysbinary):
    from bot.cli.logs import NOT_APPLICABLE
    filters = {"--symbol": "SPY", "--model": "EqualWeightModel_v1", "--since": "2024-01-01",
               "--until": "2024-07-01"}
    for query in ("orders", "sides", "traded-value", "nav", "errors", "win-rate", "latest"):
        refused = NOT_APPLICABLE.get(query, ((), ""))[0]
        argv = [query, "--logs-dir", str(sim_trail)]
        for flag, value in filters.items():
            if flag not in refused:
                argv += [flag, value]
        code, _out, err = logs(capsysbinary, *argv)
        assert code == 0, (query, err)


def test_bench_query_leaves_nothing_behind_and_can_reproduce_the_duckdb_column(tmp_path,
                                                                                monkeypatch):
    import tempfile
    import tomllib

    from benchmarks import bench_query
    from tests.trails import ROOT
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert bench_query.main(["--lines", "300", "--tools", "ours", "--queries", "sides"]) == 0
    assert list(scratch.iterdir()) == []  # the generated trail is removed
    kept = tmp_path / "kept"
    assert bench_query.main(["--lines", "300", "--tools", "ours", "--queries", "sides",
                             "--keep", str(kept)]) == 0
    assert (kept / "300" / "orders.jsonl").is_file()

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("duckdb") for req in extras["bench"])
    make = (ROOT / "Makefile").read_text()
    target = make[make.index("\nbench-query:"):].split("\n\n")[0]
    stamp = target.split(":")[1].split()[0]
    assert ".[dev,bench]" in make[make.index(f"\n{stamp}:"):].split("\n\n")[0]
