"""A trail whose old segments built-in retention deleted (BOT_LOG_MAX_BYTES small, BOT_LOG_BACKUPS
small) is replayed from its first retained snapshot: no error, and it says what was removed."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from audit.files import segments
from audit.records import AccountChecked, BotStarted, CycleCompleted
from bot import tradebot_version
from bot.app.runner import Runner
from bot.core.cycle import record_account
from bot.core.scheduling import SlotPlanner, parse_schedule
from bot.review.check import check
from bot.review.ledger import replay
from bot.review.pruned import pruned
from bot.review.report import collect
from bot.settings import Settings
from bot.wiring import build_bot
from tests.fakes import FakeClock, utc
from tests.trails import ROOT, clean_env, copy_trail

pytestmark = pytest.mark.usefixtures("no_bot_env")
KEY = "0123456789abcdef0123456789abcdef"
SCHEDULE = "every 15 minutes"


def live_settings(base: Path, **extra) -> Settings:
    values = dict(data_dir=base / "data", log_dir=base / "logs", audit_key=KEY,
                  schedule=SCHEDULE, market_hours="always", rebalance_band=0, min_trade_value=0,
                  models="SectorRotationModel_v1=0.5,EqualWeightModel_v1=0.5")
    values.update(extra)
    return Settings(**values)


MONDAY_AFTER_THE_OPEN = utc(2025, 3, 3, 15, 0)


def run_bot(settings: Settings, cycles: int, start=MONDAY_AFTER_THE_OPEN) -> Path:
    """`tradebot run --max-cycles N` in this process on a fake clock: the start-up records
    (`bot_started`, `account_checked`) and N scheduled cycles of the real wiring."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    clock = FakeClock(start)
    bot = build_bot(settings, clock, live=True)
    bot.deps.trail.record(BotStarted(message="started", pid=os.getpid(), command="run",
                                broker=settings.broker, schedule=settings.schedule,
                                market_hours=settings.effective_market_hours,
                                models=settings.models, settings_sha256=settings.fingerprint(),
                                version=tradebot_version()))
    record_account(bot.deps.trail, bot.deps.broker.account(), "broker sim")
    clock.advance(1)  # the start-up records come before the first cycle's

    def wait(seconds):
        clock.advance(seconds)
        time.sleep(0.002)

    planner = SlotPlanner(parse_schedule(settings.schedule), False)
    Runner(bot, planner, "run", threading.Event(), wait=wait, poll_seconds=0.001,
           max_wait=86400).run(cycles)
    bot.deps.trail.close()
    bot.deps.broker.close() if hasattr(bot.deps.broker, "close") else None
    return settings.log_dir


@pytest.fixture(scope="module")
def pruned_trail(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("pruned")
    return run_bot(live_settings(base, log_max_bytes=6000, log_backups=1), 30)


@pytest.mark.slow
def test_the_trail_did_lose_fills_and_snapshots_to_retention(pruned_trail):
    removed = pruned(pruned_trail)
    assert {"trades.jsonl", "orders.jsonl", "performance.jsonl"} <= set(removed.segments)
    assert all(n >= 1 for n in removed.segments.values())
    oldest = segments(pruned_trail, "trades.jsonl")[0]  # trades.jsonl.1, the oldest retained
    first_trade = orjson.loads(oldest.read_bytes().splitlines()[0])
    assert removed.since is not None and removed.since >= first_trade["timestamp"]


def test_replay_starts_from_the_first_retained_snapshot_without_error(pruned_trail):
    result = check(pruned_trail)
    assert result.errors == [], "\n".join(map(str, result.errors))
    (note,) = [f for f in result.findings if "retention removed" in f.message]
    assert "trades.jsonl" in note.message and "replayed from the first snapshot" in note.message
    steps = list(replay(pruned_trail))
    opening = steps[0]
    assert opening.kind == "open" and isinstance(opening.record, CycleCompleted)
    assert opening.timestamp >= pruned(pruned_trail).since
    assert opening.total.cash == pytest.approx(opening.record.cash)
    held = {s: p.quantity for s, p in opening.total.positions.items() if abs(p.quantity) > 1e-9}
    assert held == pytest.approx(opening.record.positions)
    last = steps[-1]  # the books still follow the fills to the end: the last snapshot agrees
    assert last.kind == "cycle" and last.drift is None
    assert last.total.nav == pytest.approx(last.record.nav, abs=0.02)
    assert set(last.models) == set()  # per-model books need the removed history


@pytest.mark.slow
def test_the_cli_says_what_was_removed_and_exits_0(pruned_trail):
    proc = subprocess.run([sys.executable, "-m", "bot", "replay", "--logs-dir", str(pruned_trail)],
                          cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "retention removed old segments (" in proc.stdout
    assert "consistent: 0 error(s)" in proc.stdout
    js = subprocess.run([sys.executable, "-m", "bot", "replay", "--logs-dir", str(pruned_trail),
                         "--format", "json"], cwd=ROOT, env=clean_env(), capture_output=True,
                        timeout=120)
    doc = orjson.loads(js.stdout)
    assert js.returncode == 0 and doc["consistent"]
    assert set(doc["removed"]["segments"]) >= {"trades.jsonl"} and doc["removed"]["since"]


def test_an_unpruned_trail_replays_from_its_opening_as_before(tmp_path):
    logs = run_bot(live_settings(tmp_path), 3)
    assert not pruned(logs)
    steps = list(replay(logs))
    assert steps[0].kind == "open" and isinstance(steps[0].record, AccountChecked)
    assert "SectorRotationModel_v1" in steps[-1].models
    assert check(logs).findings == []


def test_the_report_of_a_pruned_trail_starts_at_the_retained_snapshot(pruned_trail):
    data = collect(pruned_trail)
    opening = next(s for s in replay(pruned_trail))
    assert data.opening == pytest.approx(opening.record.nav)
    assert data.snapshots[0].nav == pytest.approx(opening.record.nav)
    assert data.removed and "trades.jsonl" in data.removed.segments


@pytest.mark.slow
def test_the_report_page_says_the_figures_start_after_the_removal(pruned_trail, tmp_path):
    out = tmp_path / "report.html"
    proc = subprocess.run([sys.executable, "-m", "bot", "report", "--logs-dir", str(pruned_trail),
                           "--out", str(out)], cwd=ROOT, env=clean_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    assert 'id="removed"' in page and "retention removed old segments (" in page


def test_explaining_a_cycle_from_before_the_removal_says_records_may_be_gone(pruned_trail):
    from bot.review.explain import explain_cycle
    first = orjson.loads(segments(pruned_trail, "performance.jsonl")[0].read_bytes().splitlines()[0])
    text = explain_cycle(pruned_trail, first["cycle_timestamp"])
    assert first["timestamp"] < pruned(pruned_trail).since
    assert text.splitlines()[-1].startswith("NOTE retention removed old segments (")
    last = orjson.loads((pruned_trail / "performance.jsonl").read_bytes().splitlines()[-1])
    assert "NOTE" not in explain_cycle(pruned_trail, last["cycle_timestamp"])


def test_an_order_whose_records_were_removed_is_said_so(pruned_trail):
    from bot.review.explain import explain_order
    with pytest.raises(LookupError, match="retention removed old segments"):
        explain_order(pruned_trail, "tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy")


def test_no_snapshot_after_the_removal_is_said_as_such(pruned_trail, tmp_path):
    from bot.review.report import NothingToReport
    logs = copy_trail(pruned_trail, tmp_path / "logs")
    for path in segments(logs, "performance.jsonl"):
        path.write_bytes(b"")  # every retained snapshot gone as well
    result = check(logs)
    assert result.errors == [] and result.cycles == 0
    assert "no snapshot was written after it" in result.findings[0].message
    with pytest.raises(NothingToReport, match="retention removed old segments"):
        collect(logs)
