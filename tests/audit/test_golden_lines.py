"""Golden lines: the exact bytes of every record kind that `run` or `cycle` writes and the
simulate goldens (tests/audit/test_same_bytes.py) do not hold, each with its production.log line.

Each scenario drives the code that writes the record (the cycle, the runner, the start and stop
of `run`, the inbox, the self-verify, the streams noticing damage at start-up), never a record
built here, so the table survives the records being replaced by one type per kind. The
`recovery_*` scenarios also pin order_submitted, order_error and trade_executed as crash recovery
writes them (from the state store, not from the submit path that simulate covers).

Pinned by inputs: time (FakeClock; for `run`'s start and stop, `SystemClock.now` where `run`
reads the wall clock), `sys.argv` (bot_started's `command`), the working directory (the
kill-switch file and the anchors' data directory are given as relative paths, and messages show
them as given). The moved-aside name of a torn tail (`.torn-<compact time>`) comes from the clock.

Substituted, because no input can pin them, and only where they occur: the pid of this process
(bot_started, bot_stopped, and lock_refused, whose note this process posts) becomes `<PID>`; the
tmp_path (the key file's path, always absolute, in audit_key_generated) becomes `<TMP>`; the
random trail id (anchor_created) becomes `<TRAIL_ID>`.

`EXPECTED` (in tests/audit/golden_lines.py) maps (scenario, kind, n) to (stream, the n-th line
of that kind, its production.log line); every line of a kind the table names for a scenario is
pinned, optional fields present and absent where a kind has them. A change of any byte of these
lines must be meant. To see the entries as the code writes them now (to edit the table after an
intended change): `PYTHONPATH=. .venv/bin/python tests/audit/test_golden_lines.py`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Callable

import pytest

from tests import fakes
from tests.audit.golden_lines import EXPECTED
from tests.fakes import FakeClock, FixedMarket, ScriptedBroker, utc

SLOT = utc(2025, 3, 3, 15, 0)  # a Monday, 10:00 New York
PRICES = {"SPY": 500.0, "QQQ": 400.0, "TLT": 90.0}
KEY = b"golden-lines-key-0123456789"
EVENTS, ERRORS = "events.jsonl", "errors.jsonl"


# -- the bot of a cycle: the tests' one builder, on the real trail and the real (in-memory) store --
def make_bot(tmp_path: Path, **options):
    from bot.adapters.state_store import StateStore
    return fakes.make_bot(tmp_path, key=KEY, journal=StateStore(None), **options)


class BrokenModel:
    """A model whose decide raises (a bug in a strategy)."""

    name = "BrokenModel_v1"
    version = "1"
    symbols = ("SPY",)
    lookback = 5
    bars = {"SPY": 5}

    def params(self):
        return {}

    def decide(self, history):
        raise ZeroDivisionError("division by zero")


class AccountFails(ScriptedBroker):
    """The broker's account call raises `error` (a cycle that fails as a whole, a broker down)."""

    def __init__(self, inner, error: Exception) -> None:
        super().__init__(inner)
        self.error = error

    def account(self):
        raise self.error


def _runner(bot, policy: str = "run", nyse: bool = False, monotonic=None):
    from bot.app.runner import Runner
    from bot.core.scheduling import SlotPlanner, parse_schedule

    def wait(seconds: float) -> None:
        bot.deps.clock.advance(seconds)
        time.sleep(0.002)
    return Runner(bot, SlotPlanner(parse_schedule("every 15 minutes"), nyse), policy,
                  threading.Event(), wait=wait, poll_seconds=0.001, max_wait=86400,
                  monotonic=monotonic)


# -- scenarios: each drives real writer code and returns the log directory -------------------
def cycle_rejected_order(tmp_path: Path, monkeypatch) -> Path:
    from bot.core.cycle import run_cycle
    bot = make_bot(tmp_path, reject={"QQQ": "Insufficient buying power"})
    run_cycle(bot, SLOT)
    bot.deps.trail.close()
    return tmp_path / "logs"


def cycle_late_rejection(tmp_path: Path, monkeypatch) -> Path:
    from bot.core.cycle import run_cycle
    bot = make_bot(tmp_path, reject_later={"TLT": "halted: trading suspended in TLT"})
    run_cycle(bot, SLOT)
    bot.deps.trail.close()
    return tmp_path / "logs"


class NoQuote(FixedMarket):
    """History as set, but no price for the symbols in `unquoted` (a feed that went quiet)."""

    def __init__(self, prices: dict[str, float], unquoted: dict[str, str]) -> None:
        super().__init__(prices)
        self.unquoted = unquoted

    def price(self, symbol: str, at):
        from bot.core.errors import DataError
        if symbol in self.unquoted:
            raise DataError(symbol, self.unquoted[symbol])
        return super().price(symbol, at)


def cycle_bad_price(tmp_path: Path, monkeypatch) -> Path:
    """A NaN price (`price` null) and no price at all (no `price` field)."""
    from bot.core.cycle import run_cycle
    bot = make_bot(tmp_path)
    bot.deps.market = NoQuote({**PRICES, "TLT": float("nan")}, {"QQQ": "no quote since 14:59"})
    run_cycle(bot, SLOT)
    bot.deps.trail.close()
    return tmp_path / "logs"


def cycle_broken_model(tmp_path: Path, monkeypatch) -> Path:
    from bot.core.cycle import ModelShare, run_cycle
    bot = make_bot(tmp_path)
    bot.deps.models = (ModelShare(bot.deps.models[0].model, 0.5), ModelShare(BrokenModel(), 0.5))
    run_cycle(bot, SLOT)
    bot.deps.trail.close()
    return tmp_path / "logs"


def cycle_kill_switch(tmp_path: Path, monkeypatch) -> Path:
    from bot.core.cycle import KillSwitch, run_cycle
    monkeypatch.chdir(tmp_path)  # the file's path in the message is as configured: relative
    bot = make_bot(tmp_path)
    bot.policy = replace(bot.policy, kill_switch=KillSwitch(False, Path("data/KILL_SWITCH")))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "KILL_SWITCH").touch()
    run_cycle(bot, SLOT)
    bot.deps.trail.close()
    return tmp_path / "logs"


def cycle_risk_off_held(tmp_path: Path, monkeypatch) -> Path:
    from bot.core.cycle import ModelShare, run_cycle
    from models.sector_rotation import SectorRotationModel
    bot = make_bot(tmp_path)
    bot.deps.models = (ModelShare(SectorRotationModel(lookback=5, top_n=1, trend_window=10,
                                                 universe=("QQQ",)), 1.0),)
    bot.deps.market.trend = 0.01  # rising: risk-on, QQQ bought
    run_cycle(bot, SLOT)
    bot.deps.market.trend = -0.01  # falling: risk-off, and TLT has no data
    bot.deps.market.bad["TLT"] = "TLT.csv starts 2002-07-30: add earlier rows"
    bot.deps.clock.t = SLOT + timedelta(minutes=15)
    run_cycle(bot, bot.deps.clock.t)
    bot.deps.trail.close()
    return tmp_path / "logs"


def cycle_order_not_placed(tmp_path: Path, monkeypatch) -> Path:
    from bot.core.cycle import run_cycle
    bot = make_bot(tmp_path, explode={"SPY": ConnectionError("connection reset")})
    run_cycle(bot, SLOT)
    bot.deps.broker.explode.clear()
    bot.deps.clock.advance(900)
    run_cycle(bot, SLOT + timedelta(minutes=15))
    bot.deps.trail.close()
    return tmp_path / "logs"


def cycle_open_at_deadline(tmp_path: Path, monkeypatch) -> Path:
    from bot.adapters.sim_broker import SimBrokerConfig
    from bot.core.cycle import run_cycle
    from bot.core.domain import OrderType
    from bot.core.planning import RiskLimits
    bot = make_bot(tmp_path)
    # limit orders 10 bps through the reference, fills 50 bps worse: they never cross
    bot.deps.broker.inner.config = SimBrokerConfig(slippage_bps=50)
    bot.deps.broker.inner._slip = 0.005
    bot.policy = replace(bot.policy, limits=RiskLimits(order_type=OrderType.LIMIT,
                                                       limit_offset_bps=10),
                         fill_timeout=5.0, poll_interval=1.0)
    bot.deps.sleep = bot.deps.clock.advance
    run_cycle(bot, SLOT)
    bot.deps.clock.advance(900)
    run_cycle(bot, SLOT + timedelta(minutes=15))
    bot.deps.trail.close()
    return tmp_path / "logs"


def cycle_order_skipped(tmp_path: Path, monkeypatch) -> Path:
    """A restart in the slot of an order already sent (its id is in the state store)."""
    from bot.core.cycle import run_cycle
    bot = make_bot(tmp_path)
    bot.deps.journal.mark_done("tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy")
    run_cycle(bot, SLOT)
    bot.deps.trail.close()
    return tmp_path / "logs"


def cycle_reconciliation(tmp_path: Path, monkeypatch) -> Path:
    """The trail's books hold 5 SPY the broker does not (a position sold by hand)."""
    from bot.core.cycle import run_cycle
    bot = make_bot(tmp_path)
    bot.deps.journal.adjust_sleeve("EqualWeightModel_v1", "SPY", 5.0)
    run_cycle(bot, SLOT)
    bot.deps.trail.close()
    return tmp_path / "logs"


def runner_cycle_error(tmp_path: Path, monkeypatch) -> Path:
    from bot.app.runner import guarded_cycle
    bot = make_bot(tmp_path)
    bot.deps.broker = AccountFails(bot.deps.broker.inner, RuntimeError("account endpoint said 418"))
    guarded_cycle(bot, SLOT)
    bot.deps.trail.close()
    return tmp_path / "logs"


def runner_broker_unavailable(tmp_path: Path, monkeypatch) -> Path:
    from bot.app.runner import check_broker_at_start
    from bot.core.errors import RetryLater
    bot = make_bot(tmp_path)
    bot.deps.broker = AccountFails(bot.deps.broker.inner, RetryLater("connection refused"))
    waits: list[float] = []

    def stop_during_the_first_retry_wait(seconds: float) -> bool:
        waits.append(seconds)  # wait(0): was a stop asked? no; wait(5): a stop is asked
        return len(waits) > 1
    check_broker_at_start(bot, "broker sim", "adopt", stop_during_the_first_retry_wait)
    assert waits == [0, 5.0]
    bot.deps.trail.close()
    return tmp_path / "logs"


def runner_manual_cycle(tmp_path: Path, monkeypatch) -> Path:
    from bot.app.runner import manual_slot
    from bot.core.scheduling import SlotPlanner, parse_schedule
    bot = make_bot(tmp_path)
    bot.deps.journal.complete_slot(SLOT)
    bot.deps.clock.t = SLOT + timedelta(minutes=7, seconds=12, microseconds=345678)
    manual_slot(bot, SlotPlanner(parse_schedule("every 15 minutes"), False),
                sleep=bot.deps.clock.advance)
    bot.deps.trail.close()
    return tmp_path / "logs"


def runner_manual_cycle_market_closed(tmp_path: Path, monkeypatch) -> Path:
    from bot.app.runner import manual_slot
    from bot.core.scheduling import SlotPlanner, parse_schedule
    bot = make_bot(tmp_path)
    bot.deps.clock.t = utc(2025, 3, 8, 15, 0)  # a Saturday
    manual_slot(bot, SlotPlanner(parse_schedule("every 15 minutes"), True), sleep=bot.deps.clock.advance)
    bot.deps.trail.close()
    return tmp_path / "logs"


def runner_closed_market_skipped(tmp_path: Path, monkeypatch) -> Path:
    bot = make_bot(tmp_path)
    bot.deps.clock.t = utc(2025, 3, 7, 20, 50)  # Friday after the last slot before the close
    _runner(bot, nyse=True).run(max_cycles=1)
    bot.deps.trail.close()
    return tmp_path / "logs"


def runner_slot_missed(tmp_path: Path, monkeypatch) -> Path:
    bot = make_bot(tmp_path)
    bot.deps.journal.complete_slot(utc(2025, 3, 3, 14, 0))
    bot.deps.clock.t = utc(2025, 3, 3, 15, 7)
    _runner(bot, "skip")._start()
    bot.deps.trail.close()
    return tmp_path / "logs"


def runner_slot_resumed(tmp_path: Path, monkeypatch) -> Path:
    bot = make_bot(tmp_path)
    bot.deps.journal.complete_slot(utc(2025, 3, 3, 14, 45))
    bot.deps.journal.start_slot(SLOT)  # the cycle of 15:00 began and was cut short
    bot.deps.clock.t = utc(2025, 3, 3, 15, 7)
    _runner(bot)._start()
    bot.deps.trail.close()
    return tmp_path / "logs"


def runner_clock_step(tmp_path: Path, monkeypatch) -> Path:
    bot = make_bot(tmp_path)
    monotonic = [1000.0]
    r = _runner(bot, monotonic=lambda: monotonic[0])
    bot.deps.clock.t = utc(2025, 3, 3, 15, 7)
    r._watch_clock()
    bot.deps.clock.t = utc(2025, 3, 3, 16, 7, 30, 250000)  # an hour on the wall clock...
    monotonic[0] += 1.5  # ...in a second and a half
    r._watch_clock()
    bot.deps.trail.close()
    return tmp_path / "logs"


def run_start_and_stop(tmp_path: Path, monkeypatch) -> Path:
    """`run`'s start (bot_started, audit_key_generated: no key given) and stop (bot_stopped),
    with a second `run` refused by the lock and an unreadable note in the inbox meanwhile."""
    from bot.app import live
    from bot.core.clock import SystemClock
    from bot.core.layout import INBOX_DIR
    from bot.settings import load_settings
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(SystemClock, "now", lambda self: utc(2025, 3, 3, 15, 0, 0) + timedelta(
        microseconds=250))
    monkeypatch.setattr(sys, "argv", ["tradebot", "run"])
    settings = load_settings(log_dir=Path("logs"), data_dir=Path("data"), market_hours="always")
    umask = os.umask(0o022)  # `run` sets 077 for its process: give this one its own back
    os.umask(umask)
    try:
        bot, lock = live.start(settings, None)
        live.record_refused_lock(settings, "another tradebot (pid 4242) holds data/tradebot.lock")
        (tmp_path / "data" / INBOX_DIR / "zz-unreadable.json").write_bytes(b"{")
        live.stop_bot(bot, lock, "SIGTERM", ends_run=True)
    finally:
        os.umask(umask)
    return tmp_path / "logs"


def self_verify_failed(tmp_path: Path, monkeypatch) -> Path:
    from bot.core.cycle import run_cycle
    from bot.watch.selfcheck import SelfVerify
    bot = make_bot(tmp_path)
    run_cycle(bot, SLOT)
    path = tmp_path / "logs" / "trades.jsonl"  # a signed trade's price changed, same length
    data = bytearray(path.read_bytes())
    i = data.index(b'"price":') + len(b'"price":')
    data[i] = ord("9") if data[i] != ord("9") else ord("8")
    path.write_bytes(bytes(data))
    SelfVerify(tmp_path / "logs", KEY, 3600, bot.deps.trail, bot.deps.clock.now).check()
    bot.deps.trail.close()
    return tmp_path / "logs"


def _a_cycle_then_closed(tmp_path: Path, *, data_dir: bool = False) -> Callable[[], object]:
    """One cycle's records, the trail closed; returns how to open the trail again (the clock a
    minute later), as `run` does at its next start."""
    from audit.trail import AuditTrail
    from bot.core.cycle import run_cycle
    bot = make_bot(tmp_path, data_dir=data_dir)
    run_cycle(bot, SLOT)
    bot.deps.trail.close()
    clock = FakeClock(SLOT + timedelta(minutes=1))
    return lambda **kw: AuditTrail(tmp_path / "logs", clock, durable=True, key=KEY, **kw)


def streams_torn_tail_and_damage(tmp_path: Path, monkeypatch) -> Path:
    reopen = _a_cycle_then_closed(tmp_path)
    logs = tmp_path / "logs"
    with open(logs / "orders.jsonl", "ab") as f:  # a torn tail
        f.write(b'{"timestamp":"2025-03-03T15:0')
    with open(logs / "decisions.jsonl", "ab") as f:  # damage inside, then a whole line
        f.write(b"garbage\n{}\n")
    reopen().close()
    return logs


def streams_rotated_and_truncated(tmp_path: Path, monkeypatch) -> Path:
    """While stopped: trades.jsonl cut short (an integrity warning) and orders.jsonl rotated;
    then, while running, production.log moved away (external rotation) and performance.jsonl
    truncated under the bot (copytruncate), noticed at the next cycle's writes."""
    from audit.trail import AuditTrail
    from bot.core.cycle import run_cycle
    bot = make_bot(tmp_path)
    run_cycle(bot, SLOT)
    bot.deps.trail.close()
    logs = tmp_path / "logs"
    lines = (logs / "trades.jsonl").read_bytes().splitlines(keepends=True)
    (logs / "trades.jsonl").write_bytes(lines[0])  # fewer lines than the chain says
    os.rename(logs / "orders.jsonl", logs / "orders.jsonl.1")  # rotated while stopped
    bot.deps.clock.t = SLOT + timedelta(minutes=1)
    bot.deps.trail = AuditTrail(logs, bot.deps.clock, durable=True, key=KEY)
    os.rename(logs / "production.log", logs / "production.log.1")  # external rotation
    os.truncate(logs / "performance.jsonl", 0)  # copytruncate
    bot.deps.clock.t = SLOT + timedelta(minutes=15)
    run_cycle(bot, bot.deps.clock.t)
    bot.deps.trail.close()
    return logs


def streams_write_lost(tmp_path: Path, monkeypatch) -> Path:
    """The process died between the anchor's WRITTEN slot and the line reaching the file: the
    manual_cycle line of `tradebot cycle` (written before its cycle's checkpoint) is lost."""
    from audit.trail import AuditTrail
    from bot.app.runner import manual_slot
    from bot.core.cycle import run_cycle
    from bot.core.scheduling import SlotPlanner, parse_schedule
    bot = make_bot(tmp_path, data_dir=True)
    run_cycle(bot, SLOT)
    logs = tmp_path / "logs"
    before = (logs / EVENTS).read_bytes()
    bot.deps.clock.t = SLOT + timedelta(minutes=7)
    manual_slot(bot, SlotPlanner(parse_schedule("every 15 minutes"), False),
                sleep=bot.deps.clock.advance)
    (logs / EVENTS).write_bytes(before)  # the line never reached the file
    for f in (*bot.deps.trail._files.values(), bot.deps.trail._text):  # killed: nothing signed or closed
        f.abandon()
    AuditTrail(logs, FakeClock(SLOT + timedelta(minutes=20)), durable=True, key=KEY,
               data_dir=tmp_path / "data").close()
    return logs


def streams_anchor_created(tmp_path: Path, monkeypatch) -> Path:
    """A trail made before anchors (no data directory), opened with one: `legacy`."""
    monkeypatch.chdir(tmp_path)  # the data directory in the message is as configured: relative
    reopen = _a_cycle_then_closed(tmp_path)
    reopen(data_dir=Path("data")).close()
    return tmp_path / "logs"


def streams_anchor_lost(tmp_path: Path, monkeypatch) -> Path:
    """A trail whose anchor is not in the data directory (a copy from another host)."""
    monkeypatch.chdir(tmp_path)  # the data directory in the message is as configured: relative
    reopen = _a_cycle_then_closed(tmp_path, data_dir=True)
    shutil.rmtree(tmp_path / "data")
    reopen(data_dir=Path("data")).close()
    return tmp_path / "logs"


def runner_start_up_checks(tmp_path: Path, monkeypatch) -> Path:
    """`cycle`'s start-up: the broker down (no retry: `retry_in_seconds` null), then up and
    differing from the trail's books (a reconciliation without `cycle_timestamp`)."""
    from bot.app.runner import check_broker_at_start
    from bot.core.errors import RetryLater
    bot = make_bot(tmp_path)
    inner = bot.deps.broker
    bot.deps.broker = AccountFails(inner.inner, RetryLater("HTTP 503 from the broker"))
    with pytest.raises(RetryLater):
        check_broker_at_start(bot, "broker sim", "adopt", None)
    bot.deps.broker = inner
    bot.deps.journal.adjust_sleeve("EqualWeightModel_v1", "TLT", 2.5)
    check_broker_at_start(bot, "broker sim", "adopt", None)
    bot.deps.trail.close()
    return tmp_path / "logs"


def runner_slot_overrun(tmp_path: Path, monkeypatch) -> Path:
    """A cycle that overran two slots: `slot_missed` without `last_completed`."""
    bot = make_bot(tmp_path)
    r = _runner(bot)
    r.next_slot = utc(2025, 3, 3, 15, 15)
    bot.deps.clock.t = utc(2025, 3, 3, 15, 47, 3)
    r._tick()
    bot.deps.trail.close()
    return tmp_path / "logs"


def streams_forged_line(tmp_path: Path, monkeypatch) -> Path:
    """A whole line appended by someone else while the bot was stopped (the anchor has no
    record of writing it): `damage` with `at` and `reason`, never signed."""
    reopen = _a_cycle_then_closed(tmp_path, data_dir=True)
    with open(tmp_path / "logs" / ERRORS, "ab") as f:
        f.write(b'{"timestamp":"2025-03-03T15:00:30.000000+00:00","event_type":"forged",'
                b'"error":"not the bot\'s"}\n')
    reopen(data_dir=tmp_path / "data").close()
    return tmp_path / "logs"


class CrashAfterSubmit(ScriptedBroker):
    """The process dies (Halt) right after the broker accepted the order for `symbol`: the
    order is at the broker, in the state store as INTENT, not in the trail."""

    def __init__(self, inner, symbol: str | None, **scripted) -> None:
        super().__init__(inner, **scripted)
        self.symbol = symbol

    def submit_order(self, order):
        from bot.core.errors import Halt
        ack = super().submit_order(order)
        if order.symbol == self.symbol:
            raise Halt("killed after the broker accepted the order")
        return ack


def _crash_after_submit_then_next_cycle(tmp_path: Path, **scripted) -> Path:
    from bot.core.cycle import run_cycle
    from bot.core.errors import Halt
    bot = make_bot(tmp_path)
    bot.deps.broker = CrashAfterSubmit(bot.deps.broker.inner, "TLT", **scripted)
    with pytest.raises(Halt):
        run_cycle(bot, SLOT)
    bot.deps.broker.symbol = None
    bot.deps.clock.advance(900)
    run_cycle(bot, SLOT + timedelta(minutes=15))  # settles it first: recovery's records
    bot.deps.trail.close()
    return tmp_path / "logs"


def recovery_order_sent_not_recorded(tmp_path: Path, monkeypatch) -> Path:
    """order_submitted (and its fill) written by recovery from the state store's order data."""
    return _crash_after_submit_then_next_cycle(tmp_path)


def recovery_order_rejected_before_recorded(tmp_path: Path, monkeypatch) -> Path:
    """order_error written by recovery: the broker rejected the order before it was recorded."""
    return _crash_after_submit_then_next_cycle(
        tmp_path, reject_later={"TLT": "halted: trading suspended in TLT"})


def recovery_fill_not_written(tmp_path: Path, monkeypatch) -> Path:
    """trade_executed written by recovery from the stored fill: the disk was full when the
    cycle wrote it (the fill is in the state store, its line not in the trail)."""
    from audit.writer import AuditWriteFailed
    from bot.core.cycle import run_cycle
    from tests.fakes import fill_disk
    bot = make_bot(tmp_path)
    with pytest.MonkeyPatch.context() as full:
        fill_disk(tmp_path / "logs" / "trades.jsonl", full.setattr)
        with pytest.raises(AuditWriteFailed):
            run_cycle(bot, SLOT)
    assert bot.deps.journal.fills_writing()
    bot.deps.clock.advance(900)
    run_cycle(bot, SLOT + timedelta(minutes=15))
    bot.deps.trail.close()
    return tmp_path / "logs"


# what each recovery scenario pins: the kinds simulate also writes, from recovery's code paths
RECOVERED_KINDS = {"recovery_order_sent_not_recorded": ("order_submitted", "trade_executed"),
                   "recovery_order_rejected_before_recorded": ("order_error",),
                   "recovery_fill_not_written": ("trade_executed",)}


SCENARIOS: dict[str, Callable[[Path, object], Path]] = {
    f.__name__: f for f in (
        cycle_rejected_order, cycle_late_rejection, cycle_bad_price, cycle_broken_model,
        cycle_kill_switch, cycle_risk_off_held, cycle_order_not_placed, cycle_open_at_deadline,
        cycle_order_skipped, cycle_reconciliation, runner_cycle_error, runner_broker_unavailable,
        runner_manual_cycle, runner_manual_cycle_market_closed, runner_closed_market_skipped,
        runner_slot_missed, runner_slot_resumed, runner_clock_step, run_start_and_stop,
        self_verify_failed, streams_torn_tail_and_damage, streams_rotated_and_truncated,
        streams_write_lost, streams_anchor_created, streams_anchor_lost, runner_start_up_checks,
        runner_slot_overrun, streams_forged_line, recovery_order_sent_not_recorded,
        recovery_order_rejected_before_recorded, recovery_fill_not_written)}


# -- what was written ------------------------------------------------------------------------
# the guide's two first fields
_HEAD = re.compile(rb'^\{"timestamp":"([^"]+)","event_type":"([^"]+)"')
_TRAIL_ID = re.compile(rb'(trail_id":"|trail )[0-9a-f]{32}\b')
_RUN_ID = re.compile(rb'("run_id":")[0-9a-f]{32}"')  # a new random id each start of `run`


def _substitute(line: bytes, tmp_path: Path) -> bytes:
    """The values no input pins (see the module docstring) replaced by a placeholder."""
    pid = str(os.getpid()).encode()
    line = line.replace(str(tmp_path).encode(), b"<TMP>")
    line = line.replace(b'"pid":' + pid + b",", b'"pid":<PID>,')
    line = line.replace(b"(pid " + pid + b")", b"(pid <PID>)")
    return _RUN_ID.sub(rb'\1<RUN_ID>"', _TRAIL_ID.sub(rb"\1<TRAIL_ID>", line))


def _stamp_and_kind(line: bytes) -> tuple[bytes, str | None]:
    """A line's time stamp and kind; read as JSON when they are not its two first fields, so
    that such a line is found, and compared (and fails), rather than missed."""
    head = _HEAD.match(line)
    if head is not None:
        return head[1], head[2].decode()
    try:
        record = json.loads(line)
        return str(record["timestamp"]).encode(), str(record["event_type"])
    except (ValueError, KeyError, TypeError):
        return b"", None


def written(log_dir: Path, tmp_path: Path) -> dict[str, list[tuple[str, bytes, bytes]]]:
    """kind -> [(stream, a line of that kind, the production.log line of the same record)] in
    the order written, substituted; rotated segments are read too. The n-th production.log line
    of a kind (`<timestamp> <LEVEL> <kind>: ...`) goes with the n-th record of that kind."""
    log = [x for p in sorted(log_dir.glob("production.log*"), key=_oldest_first)
           if not p.name.endswith(".chain") for x in p.read_bytes().splitlines(keepends=True)]
    found: dict[str, list[tuple[str, bytes, bytes]]] = {}
    for stream in (EVENTS, ERRORS, "orders.jsonl", "trades.jsonl", "performance.jsonl",
                   "decisions.jsonl"):
        for path in sorted(log_dir.glob(stream + "*"), key=_oldest_first):
            if path.name.endswith(".chain") or ".torn-" in path.name:
                continue
            for line in path.read_bytes().splitlines(keepends=True):
                kind = _stamp_and_kind(line)[1]
                if kind is not None:
                    found.setdefault(kind, []).append((stream, _substitute(line, tmp_path)))
    out: dict[str, list[tuple[str, bytes, bytes]]] = {}
    for kind, lines in found.items():
        said = re.compile(rb"^\S+ [A-Z]+ +" + re.escape(kind.encode()) + rb": ")
        texts = [_substitute(x, tmp_path) for x in log if said.match(x)]
        texts += [b""] * (len(lines) - len(texts))
        out[kind] = [(stream, line, text) for (stream, line), text in zip(lines, texts)]
    return out


def _oldest_first(path: Path) -> tuple[int, str]:
    """`x.jsonl.2`, `x.jsonl.1`, then `x.jsonl`: rotated segments are older the higher."""
    suffix = path.name.rsplit(".", 1)[-1]
    return (-int(suffix) if suffix.isdigit() else 0, path.name)


def required_kinds() -> set[str]:
    """Every declared kind but those the simulate goldens hold (their bytes are pinned there)."""
    from audit.format import RECORD_FORMATS
    declared = {kind for kinds in RECORD_FORMATS.values() for kind in kinds}
    simulated = set()
    for golden in sorted((Path(__file__).parent / "golden").glob("simulate_*.json")):
        for kinds in json.loads(golden.read_text())["kinds"].values():
            simulated.update(kinds)
    return declared - simulated


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_writer_writes_the_golden_lines(scenario, tmp_path, monkeypatch, no_bot_env):
    got = written(SCENARIOS[scenario](tmp_path, monkeypatch), tmp_path)
    expected: dict[str, list[tuple[str, bytes, bytes]]] = {}
    for (name, kind, _n), entry in sorted(EXPECTED.items()):
        if name == scenario:
            expected.setdefault(kind, []).append(entry)
    assert expected, f"{scenario}: no line of it in EXPECTED"
    for kind, entries in expected.items():
        lines = got.get(kind, [])
        assert len(lines) == len(entries), (
            f"{scenario} wrote {len(lines)} {kind}, not {len(entries)}")
        for n, ((stream, line, text), (want_stream, want_line, want_text)) in enumerate(
                zip(lines, entries), 1):
            assert stream == want_stream, f"{kind} #{n}"
            assert line == want_line, f"{kind} #{n}: the {stream} line changed"
            assert text == want_text, f"{kind} #{n}: the production.log line changed"


def test_every_kind_only_run_or_cycle_writes_has_a_golden_line():
    required = required_kinds()
    assert {"bot_started", "order_error", "cycle_error", "write_lost"} <= required  # it derives
    assert required - {kind for _, kind, _n in EXPECTED} == set(), "drive these and pin their lines"
    for (scenario, kind, n), (_stream, line, text) in EXPECTED.items():  # the table is whole
        stamp = line[len(b'{"timestamp":"'):].split(b'"', 1)[0]
        assert text.startswith(stamp + b" ") and f" {kind}: ".encode() in text, (scenario, kind, n)


def test_the_substitutions_touch_only_the_values_no_input_pins(tmp_path):
    pid = os.getpid()
    line = (f'{{"message":"tradebot 0.1.0 started (pid {pid}) in {tmp_path}/data","pid":{pid},'
            f'"trail_id":"6844996d176b7d72f7ae9279e8f9d4e5","blocked":{pid}1,"sha":"{"ab" * 32}"}}')
    assert _substitute(line.encode(), tmp_path) == (
        b'{"message":"tradebot 0.1.0 started (pid <PID>) in <TMP>/data","pid":<PID>,'
        b'"trail_id":"<TRAIL_ID>","blocked":' + f"{pid}1".encode()
        + b',"sha":"' + b"ab" * 32 + b'"}')


def _literal(data: bytes, indent: str = " " * 8, width: int = 80) -> str:
    """`data` as bytes literals one a line (implicitly joined), cut after commas where it can."""
    pieces: list[bytes] = []
    for token in re.split(rb"(?<=,)", data):
        while len(token) > width:
            pieces.append(token[:width])
            token = token[width:]
        if pieces and len(pieces[-1]) + len(token) <= width:
            pieces[-1] += token
        else:
            pieces.append(token)
    return "\n".join(indent + repr(piece) for piece in pieces if piece) or indent + "b''"


if __name__ == "__main__":  # prints EXPECTED's entries, for an intended change of these lines
    import tempfile

    class _Patch:
        def __init__(self):
            self.undo = []

        def setattr(self, target, name, value):
            self.undo.append((target, name, getattr(target, name)))
            setattr(target, name, value)

        def delenv(self, name):
            os.environ.pop(name, None)

        def chdir(self, path):
            os.chdir(path)
    for name, scenario in SCENARIOS.items():
        patch = _Patch()
        with tempfile.TemporaryDirectory() as tmp:
            try:
                logs = scenario(Path(tmp), patch)
            except Exception as exc:
                print(f"# {name} FAILED: {exc!r}")
                continue
            for kind, lines in written(logs, Path(tmp)).items():
                if kind not in RECOVERED_KINDS.get(name, required_kinds()):
                    continue
                for n, (stream, line, text) in enumerate(lines, 1):
                    print(f"    ({name!r}, {kind!r}, {n}): (\n        {stream!r},\n"
                          f"{_literal(line)},\n{_literal(text)}),")
        for target, attr, value in reversed(patch.undo):
            setattr(target, attr, value)
