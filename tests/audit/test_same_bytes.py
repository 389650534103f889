"""Same bytes: two `tradebot simulate` runs whose every output file is pinned by a checked-in
digest (issue 13). A rewrite of how records are built or encoded must leave these digests as
they are; a change of the format that is meant must update them on purpose.

Each run is the user's command, `python -m bot simulate`, in a subprocess whose working directory
is the test's tmp_path, with relative `--out logs`, `BOT_DATA_DIR=data` and `--csv-dir bars`, a
fixed `BOT_AUDIT_KEY` and no BOT_ setting of the developer's. The simulated clock stamps every
line; nothing else of the machine reaches the six streams or production.log, whose digests are
exact.

Two values of the `.chain` sidecars cannot be pinned by an input: the trail id (random, made by
the anchor when the trail starts) and the inode of the stream file (`inode` in each checkpoint);
the `mac` and `prev_mac` of every chain record sign them. Only those four values are replaced
(`_normalized_chain`) before the sidecar's digest is taken; every other byte of the chain (its
record order, time stamps, running hashes, line hashes) is compared exactly.

For each file the golden holds its sha256, its size, and a short hash of each of its lines, so a
failure names the first line that differs and shows what is written there now.

To rewrite the golden files after an intended format change (and only then):

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/audit/test_same_bytes.py

then review `git diff tests/audit/golden/` and say in the commit why the bytes changed.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from tests.trails import ROOT, TWO_MODELS, clean_env

GOLDEN_DIR = Path(__file__).parent / "golden"
AUDIT_KEY = "golden-trail-key-0123456789abcdef"  # BOT_AUDIT_KEY: the chains' MACs use it
CHAIN_SUFFIX = ".chain"

SYNTHETIC = {
    "args": ["--start", "2022-01-03", "--end", "2023-12-29"],
    "env": {**TWO_MODELS},
}
# BOT_LOG_MAX_BYTES is small as the issue asks; a simulation's trail is not durable and rotates
# by size only when live, so it still leaves one file per stream (the golden lists them all).
CSV = {
    "args": ["--start", "2022-01-03", "--end", "2022-12-30", "--csv-dir", "bars"],
    "env": {**TWO_MODELS, "BOT_ORDER_TYPE": "limit", "BOT_LOG_MAX_BYTES": "60000"},
}

# The CSV fixture: the synthetic market's closes (seed 7) for these symbols, 2021-2022, with
# XLU.csv missing (XLC and XLRE have no file either), a NaN close in XLK, a close 100x too high
# in SPY (refused: BOT_MAX_CLOSE_MOVE) and TLT listed only from June 2022.
CSV_SYMBOLS = ("XLB", "XLE", "XLF", "XLI", "XLK", "XLP", "XLV", "XLY", "SPY", "TLT", "QQQ")
CSV_FIRST, CSV_LAST = date(2021, 1, 4), date(2022, 12, 30)


def write_csv_fixture(directory: Path) -> None:
    from bot.adapters.synthetic_data import SyntheticMarket
    from bot.core import calendar
    market = SyntheticMarket(7)
    days = calendar.trading_days(CSV_FIRST, CSV_LAST)
    directory.mkdir()
    for symbol in CSV_SYMBOLS:
        closes = market.history([symbol], CSV_LAST + timedelta(days=1), len(days)).closes[symbol]
        rows = [f"{day},{close},{close},{close},{close},1000" for day, close in zip(days, closes)]
        if symbol == "XLK":
            rows[398] = rows[398].split(",")[0] + ",1,1,1,nan,1"
        if symbol == "SPY":
            day, close = rows[298].split(",")[0], float(rows[298].split(",")[4]) * 100
            rows[298] = f"{day},{close},{close},{close},{close},1000"
        if symbol == "TLT":
            rows = [r for r in rows if r >= "2022-06"]
        (directory / f"{symbol}.csv").write_text(
            "\n".join(["Date,Open,High,Low,Close,Volume", *rows]) + "\n")


def run_simulate(cwd: Path, args: list[str], env: dict[str, str]) -> Path:
    settings = {"BOT_AUDIT_KEY": AUDIT_KEY, "BOT_DATA_DIR": "data", **env}
    proc = subprocess.run([sys.executable, "-m", "bot", "simulate", *args, "--out", "logs"],
                          cwd=cwd, env=clean_env(PYTHONPATH=str(ROOT), **settings),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return cwd / "logs"


# -- digests -------------------------------------------------------------------------------
_UNPINNABLE = (  # (pattern, replacement): the chain values no input can fix (see the docstring)
    (re.compile(rb'"trail_id":"[0-9a-f]{32}"'), b'"trail_id":"TRAIL_ID"'),
    (re.compile(rb'"inode":[0-9]+'), b'"inode":0'),
    (re.compile(rb'"(prev_mac|mac)":"[0-9a-f]*"'), rb'"\1":"MAC"'),
)


def _normalized_chain(data: bytes) -> bytes:
    for pattern, replacement in _UNPINNABLE:
        data = pattern.sub(replacement, data)
    return data


def file_contents(log_dir: Path) -> dict[str, bytes]:
    """Every file the run left in the log directory, by name; the chains normalized."""
    out = {}
    for path in sorted(log_dir.iterdir()):
        assert path.is_file(), f"{path.name}: the log directory holds only files"
        data = path.read_bytes()
        out[path.name] = _normalized_chain(data) if path.name.endswith(CHAIN_SUFFIX) else data
    return out


def _short(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()[:8]


def digest(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
            "lines": " ".join(_short(x) for x in data.splitlines(keepends=True))}


def kinds_written(contents: dict[str, bytes]) -> dict[str, list[str]]:
    """stream -> the event types its lines hold (sorted), for the golden lines' completeness."""
    kinds: dict[str, set[str]] = {}
    for name, data in contents.items():
        if name.endswith(".jsonl"):
            kinds[name] = {json.loads(line)["event_type"] for line in data.splitlines()}
    return {name: sorted(found) for name, found in sorted(kinds.items())}


def golden_of(contents: dict[str, bytes], run: dict) -> dict:
    return {"command": ["tradebot", "simulate", *run["args"], "--out", "logs"],
            "env": {"BOT_AUDIT_KEY": AUDIT_KEY, "BOT_DATA_DIR": "data", **run["env"]},
            "chains_normalized": sorted(n for n in contents if n.endswith(CHAIN_SUFFIX)),
            "kinds": kinds_written(contents),
            "files": {name: digest(data) for name, data in contents.items()}}


def first_difference(name: str, data: bytes, expected: dict) -> str:
    lines = data.splitlines(keepends=True)
    want = expected["lines"].split()
    for number, line in enumerate(lines, 1):
        if number > len(want):
            return f"{name}: line {number} is new: {line[:400]!r}"
        if _short(line) != want[number - 1]:
            return f"{name}: line {number} differs; it is now {line[:400]!r}"
    if len(lines) < len(want):
        return f"{name}: {len(want) - len(lines)} line(s) missing after line {len(lines)}"
    return f"{name}: {len(data)} bytes, golden {expected['bytes']} (same lines: a final newline?)"


def check_against_golden(contents: dict[str, bytes], run: dict, golden: Path) -> None:
    made = golden_of(contents, run)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(json.dumps(made, indent=1) + "\n")
        return
    assert golden.is_file(), f"no {golden}: run once with UPDATE_GOLDEN=1 to make it"
    expected = json.loads(golden.read_text())
    assert list(made["files"]) == list(expected["files"]), "the run left other files"
    differ = [first_difference(name, contents[name], expected["files"][name])
              for name in made["files"]
              if made["files"][name]["sha256"] != expected["files"][name]["sha256"]]
    assert not differ, "the trail's bytes changed:\n" + "\n".join(differ)
    assert made == expected  # the recipe and the kinds too


def test_a_two_year_synthetic_simulation_writes_the_golden_bytes(tmp_path):
    logs = run_simulate(tmp_path, SYNTHETIC["args"], SYNTHETIC["env"])
    check_against_golden(file_contents(logs), SYNTHETIC, GOLDEN_DIR / "simulate_synthetic.json")


def test_a_simulation_on_bad_csv_files_writes_the_golden_bytes(tmp_path):
    write_csv_fixture(tmp_path / "bars")
    logs = run_simulate(tmp_path, CSV["args"], CSV["env"])
    check_against_golden(file_contents(logs), CSV, GOLDEN_DIR / "simulate_csv.json")


def test_the_normalization_touches_only_the_unpinnable_chain_values():
    record = (b'{"type":"checkpoint","ts":"2022-01-03T20:45:00.000013+00:00","segment":0,'
              b'"hash":"4a9c","inode":2147363,"prev_mac":"191a","mac":"7ad3"}\n'
              b'{"type":"trail","trail_id":"6844996d176b7d72f7ae9279e8f9d4e5","key_id":"921d"}\n')
    assert _normalized_chain(record) == (
        b'{"type":"checkpoint","ts":"2022-01-03T20:45:00.000013+00:00","segment":0,'
        b'"hash":"4a9c","inode":0,"prev_mac":"MAC","mac":"MAC"}\n'
        b'{"type":"trail","trail_id":"TRAIL_ID","key_id":"921d"}\n')


def test_a_changed_line_is_named_with_its_number():
    golden = digest(b"a\nb\nc\n")
    assert (first_difference("x.jsonl", b"a\nB\nc\n", golden)
            == "x.jsonl: line 2 differs; it is now b'B\\n'")
    assert (first_difference("x.jsonl", b"a\nb\n", golden)
            == "x.jsonl: 1 line(s) missing after line 2")
