"""`audit.load`: a stream of the trail as a pandas DataFrame, across rotated files."""
from __future__ import annotations

import gzip
import subprocess
import sys
from datetime import timezone
from pathlib import Path

import orjson
import pandas as pd
import pytest

import audit
from audit.files import iter_lines
from audit.records import STREAMS
from tests.trails import ROOT, clean_env

GUIDE_ORDERS = ["timestamp", "event_type", "order_id", "symbol", "side", "quantity", "price",
                "order_type", "status", "nav", "model"]


def is_utc(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.DatetimeTZDtype) and series.dt.tz.utcoffset(None).total_seconds() == 0


@pytest.mark.parametrize("name", [s.removesuffix(".jsonl") for s in STREAMS])
def test_every_stream_loads_with_its_rows_and_utc_times(sim_trail, name):
    raw = [orjson.loads(line) for _w, line in iter_lines(sim_trail, name + ".jsonl")]
    df = audit.load(name, sim_trail)
    assert len(df) == len(raw)
    assert is_utc(df["timestamp"])
    assert df["timestamp"].is_monotonic_increasing
    if raw:
        assert df["timestamp"].iloc[0] == pd.Timestamp(raw[0]["timestamp"])
        assert df["timestamp"].iloc[0].tzinfo is not None
    if any("cycle_timestamp" in r for r in raw):
        assert is_utc(df["cycle_timestamp"])
        first = next(r["cycle_timestamp"] for r in raw if "cycle_timestamp" in r)
        assert df["cycle_timestamp"].dropna().iloc[0].to_pydatetime() == \
            pd.Timestamp(first).to_pydatetime().astimezone(timezone.utc)


def test_file_name_and_short_name_are_the_same(sim_trail):
    pd.testing.assert_frame_equal(audit.load("orders.jsonl", sim_trail), audit.load("orders", sim_trail))


def test_orders_have_the_guides_columns_first(sim_trail):
    df = audit.load("orders", sim_trail)
    assert list(df.columns[:len(GUIDE_ORDERS)]) == GUIDE_ORDERS
    assert "cycle_timestamp" in df.columns  # our extra fields follow


def test_rotated_and_compressed_files_load_oldest_first(sim_trail, tmp_path):
    lines = (sim_trail / "orders.jsonl").read_bytes().splitlines(keepends=True)
    a, b = len(lines) // 3, 2 * len(lines) // 3
    d = tmp_path / "logs"
    d.mkdir()
    (d / "orders.jsonl.2.gz").write_bytes(gzip.compress(b"".join(lines[:a])))
    (d / "orders.jsonl.1").write_bytes(b"".join(lines[a:b]))
    (d / "orders.jsonl").write_bytes(b"".join(lines[b:]))
    rotated, whole = audit.load("orders", d), audit.load("orders", sim_trail)
    assert list(rotated["order_id"]) == list(whole["order_id"])
    assert rotated["timestamp"].is_monotonic_increasing
    pd.testing.assert_frame_equal(rotated, whole)


def test_the_guides_groupby_snippet_works(sim_trail):
    orders_df = audit.load("orders", sim_trail)
    summary = orders_df.groupby('symbol').agg({
        'quantity': 'sum',
        'price': 'mean',
        'order_id': 'count'
    }).rename(columns={'order_id': 'num_orders'})
    raw = [orjson.loads(line) for _w, line in iter_lines(sim_trail, "orders.jsonl")]
    spy = [o for o in raw if o["symbol"] == "SPY"]
    assert summary["num_orders"].sum() == len(raw)
    assert summary.loc["SPY", "num_orders"] == len(spy)
    assert summary.loc["SPY", "quantity"] == pytest.approx(sum(o["quantity"] for o in spy))
    # and the guide's date filter, with real datetimes
    day = orders_df[orders_df["timestamp"].dt.date == orders_df["timestamp"].iloc[0].date()]
    assert len(day) >= 1


def test_empty_and_missing_streams_are_empty_frames_with_the_guides_columns(tmp_path):
    (tmp_path / "errors.jsonl").write_bytes(b"")
    errors = audit.load("errors", tmp_path)
    assert errors.empty and list(errors.columns) == ["timestamp", "event_type", "symbol", "side",
                                                     "quantity", "error", "order_data"]
    assert is_utc(errors["timestamp"])
    orders = audit.load("orders", tmp_path)  # no file at all
    assert orders.empty and list(orders.columns) == GUIDE_ORDERS
    perf = audit.load("performance", tmp_path)
    assert perf.empty and "cycle_timestamp" in perf.columns and is_utc(perf["cycle_timestamp"])
    assert list(audit.load("events", tmp_path).columns) == ["timestamp", "event_type"]


def test_unknown_stream_names_the_accepted_ones(tmp_path):
    with pytest.raises(ValueError) as info:
        audit.load("fills", tmp_path)
    msg = str(info.value)
    assert "'fills'" in msg and "\n" not in msg
    for name in ("orders", "trades", "performance", "errors", "decisions", "events"):
        assert name in msg


def test_logs_dir_defaults_to_bot_log_dir_then_logs(sim_trail, tmp_path, monkeypatch):
    monkeypatch.setenv("BOT_LOG_DIR", str(sim_trail))
    assert len(audit.load("performance")) == len(audit.load("performance", sim_trail))
    monkeypatch.delenv("BOT_LOG_DIR")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="no log directory logs"):
        audit.load("orders")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "trades.jsonl").write_bytes((sim_trail / "trades.jsonl").read_bytes())
    assert len(audit.load("trades")) == len(audit.load("trades", sim_trail))


def test_a_log_dir_set_in_dotenv_is_found_by_load_and_by_tradebot_logs(sim_trail, tmp_path, monkeypatch,
                                                                       no_bot_env):
    """BOT_LOG_DIR in .env alone (not in the environment): audit.load() reads it through the
    bot's resolver, as `tradebot logs` and `python -m bot.cli.logs` do through the settings."""
    work = tmp_path / "work"
    work.mkdir()
    (work / ".env").write_text(f"BOT_LOG_DIR={sim_trail}\n")
    monkeypatch.chdir(work)
    assert audit.default_log_dir() == sim_trail
    orders = audit.load("orders")
    assert len(orders) == len(audit.load("orders", sim_trail)) > 0
    env = clean_env()
    for command in (["-m", "bot", "logs"], ["-m", "bot.cli.logs"]):
        proc = subprocess.run([sys.executable, *command, "orders", "--format", "json"], cwd=work,
                              env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert sorted(orjson.loads(line)["order_id"] for line in proc.stdout.splitlines()) == \
            sorted(orders["order_id"])


def test_without_the_bots_resolver_the_default_is_logs_and_the_error_says_why(sim_trail, tmp_path,
                                                                              monkeypatch):
    """audit/ alone never reads BOT_LOG_DIR: with no resolver installed the default is ./logs,
    and the error names the missing resolver rather than telling the user to set BOT_LOG_DIR."""
    import importlib.metadata
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_group: [])
    monkeypatch.setenv("BOT_LOG_DIR", str(sim_trail))
    monkeypatch.chdir(tmp_path)
    assert audit.default_log_dir() == Path("logs")
    with pytest.raises(FileNotFoundError, match="no log directory logs: .*resolver.*not installed"):
        audit.load("orders")


def test_audit_reads_no_environment_variable():
    """The trail's package takes every setting from its caller: no os.environ/os.getenv in it."""
    import ast
    found = [f"{path.name}:{node.lineno}" for path in sorted((ROOT / "audit").rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb")]
    assert found == []


def test_unreadable_line_is_skipped_with_a_warning(sim_trail, tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    good = (sim_trail / "trades.jsonl").read_bytes()
    (d / "trades.jsonl").write_bytes(good + b'{"timestamp": "2024-07-01T00:00:00.0')
    with pytest.warns(UserWarning, match=r"trades.jsonl:\d+"):
        df = audit.load("trades", d)
    assert len(df) == len(good.splitlines())


def test_importing_audit_does_not_import_pandas():
    code = "import sys, audit; assert callable(audit.load); assert 'pandas' not in sys.modules"
    env = clean_env()
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
