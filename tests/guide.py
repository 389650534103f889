"""The guide's checks (docs/audit-trail.md), run on any directory that holds a trail as `logs/`:
the format check, and every recipe of the doc read from it and run verbatim (jq, Python, pandas),
with the `tradebot logs` equivalents the doc shows beside them, whose answer must be the recipe's.

tests/test_end_to_end.py runs them on a simulated trail; the Alpaca adapter's tests and the
container test run them on the trails those write.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from audit.files import iter_lines
from tests.trails import clean_env

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "audit-trail.md"
JQ_SECTION, PYTHON_SECTION, PANDAS_SECTION = (
    "## Querying with jq", "## Querying with Python", "## Loading into pandas")


def _section(heading: str) -> str:
    """The text of one `## ` section of docs/audit-trail.md, up to the next `## ` heading."""
    text = DOC.read_text()
    start = text.index("\n" + heading + "\n") + 1
    end = text.find("\n## ", start + len(heading))
    return text[start:end if end >= 0 else len(text)]


def _blocks(lang: str, heading: str) -> list[str]:
    """The fenced blocks of language `lang` in the doc's section `heading`, in order."""
    return re.findall(rf"^```{lang}\n(.*?)^```$", _section(heading), flags=re.S | re.M)


def records(base: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (base / "logs" / name).read_text().splitlines()]


def sh(base: Path, command: str) -> str:
    proc = subprocess.run(["bash", "-c", command], cwd=base, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def check_format(run_dir: Path, allow_empty: tuple[str, ...] = ("errors.jsonl",)) -> None:
    """`tradebot audit check` passes on `run_dir/logs`, and each of the guide's four streams not
    in `allow_empty` holds records (the check itself accepts an empty stream)."""
    logs = run_dir / "logs"
    proc = subprocess.run([sys.executable, "-m", "bot", "audit", "check", "--logs-dir", str(logs)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.fullmatch(r"[1-9]\d* passed, 0 failed", proc.stdout.splitlines()[-1]), proc.stdout
    for name in ("orders.jsonl", "trades.jsonl", "performance.jsonl", "errors.jsonl"):
        if name not in allow_empty:
            assert next(iter_lines(logs, name), None) is not None, f"{name} holds no records"


def check_jq_recipes(run_dir: Path) -> None:
    """Run the doc's eight jq recipes (the guide's) verbatim in `run_dir` (which holds `logs/`)
    and check each answer against the records."""
    recipes = [b.strip() for b in _blocks("bash", JQ_SECTION)]
    assert len(recipes) == 8
    orders, trades = records(run_dir, "orders.jsonl"), records(run_dir, "trades.jsonl")
    perf, errors = records(run_dir, "performance.jsonl"), records(run_dir, "errors.jsonl")
    assert orders and trades and perf
    stream = _values
    closed_any = any(t.get("pnl") is not None for t in trades)
    spy, sides, value, nav_csv, errs, latest, window, win = (
        sh(run_dir, r) if (i < 7 or closed_any) else "" for i, r in enumerate(recipes))
    assert stream(spy) == [o for o in orders if o["symbol"] == "SPY"]
    counts = defaultdict(int)
    for o in orders:
        counts[o["side"]] += 1
    assert json.loads(sides) == [{"side": s, "count": counts[s]} for s in sorted(counts)]
    assert float(value) == pytest.approx(sum(t["value"] for t in trades))
    assert nav_csv.splitlines() == [_csv_line(p) for p in perf]
    assert errs.splitlines() == [f'{e["timestamp"]}\t{e["event_type"]}\t{e["error"]}' for e in errors]
    assert json.loads(latest) == perf[-1]
    in_window = [o for o in orders if "2025-11-18T00:00:00" <= o["timestamp"] < "2025-11-19T00:00:00"]
    assert stream(window) == in_window
    # the same recipe on a day that surely has orders, so the comparison is not of two empties
    day = orders[0]["timestamp"][:10]
    nxt = (datetime.fromisoformat(day).date() + timedelta(days=1)).isoformat()
    busy = [o for o in orders if o["timestamp"][:10] == day]
    shifted = recipes[6].replace("2025-11-18", day).replace("2025-11-19", nxt)
    assert stream(sh(run_dir, shifted)) == busy and busy
    closed = [t for t in trades if t.get("pnl") is not None]
    if not closed:  # the guide's recipe divides by zero then: jq reports an error
        return
    wins = sum(t["pnl"] > 0 for t in closed)
    losses = sum(t["pnl"] < 0 for t in closed)
    assert json.loads(win) == {"total": len(closed), "wins": wins, "losses": losses,
                               "win_rate": pytest.approx(wins / len(closed) * 100)}


def _values(text: str) -> list:
    """Every JSON value printed one after the other (pretty or compact), in order."""
    decoder = json.JSONDecoder()
    out, i = [], 0
    text = text.strip()
    while i < len(text):
        obj, i = decoder.raw_decode(text, i)
        out.append(obj)
        while i < len(text) and text[i].isspace():
            i += 1
    return out


def _console_commands(block: str) -> list[list[str]]:
    """The `$ ` commands of a console block, as argv lists that run here: `.venv/bin/tradebot`
    is this interpreter's `-m bot`, `.venv/bin/python` this interpreter."""
    commands = []
    for line in block.splitlines():
        if not line.startswith("$ "):
            continue
        argv = shlex.split(line[2:], comments=True)
        head = {".venv/bin/tradebot": [sys.executable, "-m", "bot"],
                ".venv/bin/python": [sys.executable]}[argv[0]]
        commands.append(head + argv[1:])
    return commands


def _run_command(argv: list[str], base: Path) -> subprocess.CompletedProcess:
    env = clean_env()
    proc = subprocess.run(argv, cwd=base, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{argv}: {proc.stderr}"
    return proc


def _recipes_with_equivalents(heading: str, lang: str) -> list[tuple[str, str]]:
    """(recipe, the console block that follows it) for each recipe block of the section."""
    blocks = re.findall(r"^```(\w+)\n(.*?)^```$", _section(heading), flags=re.S | re.M)
    pairs = []
    for i, (kind, body) in enumerate(blocks):
        if kind == lang:
            assert i + 1 < len(blocks) and blocks[i + 1][0] == "console", \
                f"{heading}: a {lang} recipe without its `tradebot logs` equivalent after it"
            pairs.append((body, blocks[i + 1][1]))
    return pairs


def check_logs_equivalents(run_dir: Path) -> None:
    """Each `tradebot logs` command the doc puts beside a jq recipe runs, and its machine format
    gives the recipe's answer: the same JSON values, or the same csv/tsv bytes."""
    pairs = _recipes_with_equivalents(JQ_SECTION, "bash")
    assert len(pairs) == 8
    closed_any = any(t.get("pnl") is not None for t in records(run_dir, "trades.jsonl"))
    for i, (recipe, console) in enumerate(pairs):
        commands = _console_commands(console)
        assert commands and any(c[3] == "logs" for c in commands if len(c) > 3), console
        want = sh(run_dir, recipe.strip()) if (i < 7 or closed_any) else None
        for argv in commands:
            got = _run_command(argv, run_dir).stdout
            fmt = argv[argv.index("--format") + 1] if "--format" in argv else "table"
            if fmt == "table":
                assert got.strip(), argv
            elif want is None:
                continue
            elif fmt == "json":
                assert _values(got) == _values(want), argv
            else:
                assert got == want, argv


def check_python_and_pandas_equivalents(run_dir: Path) -> None:
    """The commands beside the Python and pandas recipes run; `audit.load`'s summary prints
    exactly what the pandas recipe prints."""
    ((_, python_console),) = _recipes_with_equivalents(PYTHON_SECTION, "python")
    for argv in _console_commands(python_console):
        _run_command(argv, run_dir)
    ((recipe, pandas_console),) = _recipes_with_equivalents(PANDAS_SECTION, "python")
    (argv,) = _console_commands(pandas_console)
    assert _run_command(argv, run_dir).stdout == _run_snippet(recipe, run_dir)


def _csv_line(p: dict) -> str:
    nav = p["nav"]
    shown = str(int(nav)) if float(nav).is_integer() else repr(nav)
    return f'"{p["timestamp"]}",{shown}'


def _run_snippet(code: str, base: Path) -> str:
    """Run a recipe verbatim in `base` (which holds `logs/`); returns what it printed."""
    out = io.StringIO()
    with contextlib.chdir(base), contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), {})
    return out.getvalue()


def check_python_snippet(run_dir: Path) -> None:
    (code,) = _blocks("python", PYTHON_SECTION)
    printed = _run_snippet(code, run_dir).splitlines()
    by_day = defaultdict(list)
    for o in records(run_dir, "orders.jsonl"):
        by_day[datetime.fromisoformat(o["timestamp"]).date()].append(o)
    expected = [f"{d}: {len(v)} orders, ${sum(o['price'] * o['quantity'] for o in v):,.2f} total value"
                for d, v in sorted(by_day.items())]
    assert printed == expected


def check_pandas_snippet(run_dir: Path) -> None:
    import pandas as pd
    (code,) = _blocks("python", PANDAS_SECTION)
    printed = _run_snippet(code, run_dir)
    orders = records(run_dir, "orders.jsonl")
    for sym in {o["symbol"] for o in orders}:
        mine = [o for o in orders if o["symbol"] == sym]
        row = next(line for line in printed.splitlines() if line.startswith(sym + " "))
        qty, price, n = row.split()[1:4]
        assert float(qty) == pytest.approx(sum(o["quantity"] for o in mine), rel=1e-5)
        assert float(price) == pytest.approx(sum(o["price"] for o in mine) / len(mine), rel=1e-5)
        assert int(n) == len(mine)
    assert pd.to_datetime(pd.Series([orders[0]["timestamp"]])).dt.tz is not None


def check_trades_add_up(run_dir: Path) -> None:
    held: dict[str, float] = defaultdict(float)
    for t in records(run_dir, "trades.jsonl"):
        held[t["symbol"]] += t["quantity"] if t["side"] == "buy" else -t["quantity"]
        assert t["new_position"] == pytest.approx(held[t["symbol"]], abs=1e-6)
    last = records(run_dir, "performance.jsonl")[-1]
    assert {s: q for s, q in held.items() if abs(q) > 1e-9} == pytest.approx(last["positions"])
