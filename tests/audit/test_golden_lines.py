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

`EXPECTED` maps (scenario, kind, n) to (stream, the n-th line of that kind, its production.log
line); every line of a kind the table names for a scenario is pinned, optional fields present
and absent where a kind has them. A change of any byte of these lines must be meant. To see the
entries as the code writes them now (to edit the table after an intended change):
`PYTHONPATH=. .venv/bin/python tests/audit/test_golden_lines.py`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Callable

import pytest

from tests.fakes import FakeClock, FixedMarket, ScriptedBroker, utc

SLOT = utc(2025, 3, 3, 15, 0)  # a Monday, 10:00 New York
PRICES = {"SPY": 500.0, "QQQ": 400.0, "TLT": 90.0}
KEY = b"golden-lines-key-0123456789"
EVENTS, ERRORS = "events.jsonl", "errors.jsonl"


# -- the bot of a cycle, as tests/bot/core/test_cycle.py builds it --------------------------------
def make_bot(tmp_path: Path, *, reject=None, explode=None, reject_later=None, kill=False,
             data_dir: bool = False):
    from audit.trail import AuditTrail
    from bot.adapters.sim_broker import SimBrokerConfig, SimulatedBroker
    from bot.adapters.state_store import StateStore
    from bot.core.cycle import Bot, KillSwitch, ModelShare
    from bot.core.planning import RiskLimits
    from models.equal_weight import EqualWeightModel
    clock = FakeClock(SLOT)
    market = FixedMarket(PRICES)
    broker = ScriptedBroker(SimulatedBroker(market, clock, SimBrokerConfig()), reject, explode,
                            reject_later)
    trail = AuditTrail(tmp_path / "logs", clock, durable=True, key=KEY,
                       data_dir=tmp_path / "data" if data_dir else None)
    return Bot(clock, market, broker, trail, StateStore(None),
               (ModelShare(EqualWeightModel(), 1.0),), RiskLimits(),
               KillSwitch(kill, tmp_path / "KILL_SWITCH"))


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
        bot.clock.advance(seconds)
        time.sleep(0.002)
    return Runner(bot, SlotPlanner(parse_schedule("every 15 minutes"), nyse), policy,
                  threading.Event(), wait=wait, poll_seconds=0.001, max_wait=86400,
                  monotonic=monotonic)


# -- scenarios: each drives real writer code and returns the log directory -------------------
def cycle_rejected_order(tmp_path: Path, monkeypatch) -> Path:
    from bot.core.cycle import run_cycle
    bot = make_bot(tmp_path, reject={"QQQ": "Insufficient buying power"})
    run_cycle(bot, SLOT)
    bot.trail.close()
    return tmp_path / "logs"


def cycle_late_rejection(tmp_path: Path, monkeypatch) -> Path:
    from bot.core.cycle import run_cycle
    bot = make_bot(tmp_path, reject_later={"TLT": "halted: trading suspended in TLT"})
    run_cycle(bot, SLOT)
    bot.trail.close()
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
    bot.market = NoQuote({**PRICES, "TLT": float("nan")}, {"QQQ": "no quote since 14:59"})
    run_cycle(bot, SLOT)
    bot.trail.close()
    return tmp_path / "logs"


def cycle_broken_model(tmp_path: Path, monkeypatch) -> Path:
    from bot.core.cycle import ModelShare, run_cycle
    bot = make_bot(tmp_path)
    bot.models = (ModelShare(bot.models[0].model, 0.5), ModelShare(BrokenModel(), 0.5))
    run_cycle(bot, SLOT)
    bot.trail.close()
    return tmp_path / "logs"


def cycle_kill_switch(tmp_path: Path, monkeypatch) -> Path:
    from bot.core.cycle import KillSwitch, run_cycle
    monkeypatch.chdir(tmp_path)  # the file's path in the message is as configured: relative
    bot = make_bot(tmp_path)
    bot.kill_switch = KillSwitch(False, Path("data/KILL_SWITCH"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "KILL_SWITCH").touch()
    run_cycle(bot, SLOT)
    bot.trail.close()
    return tmp_path / "logs"


def cycle_risk_off_held(tmp_path: Path, monkeypatch) -> Path:
    from bot.core.cycle import ModelShare, run_cycle
    from models.sector_rotation import SectorRotationModel
    bot = make_bot(tmp_path)
    bot.models = (ModelShare(SectorRotationModel(lookback=5, top_n=1, trend_window=10,
                                                 universe=("QQQ",)), 1.0),)
    bot.market.trend = 0.01  # rising: risk-on, QQQ bought
    run_cycle(bot, SLOT)
    bot.market.trend = -0.01  # falling: risk-off, and TLT has no data
    bot.market.bad["TLT"] = "TLT.csv starts 2002-07-30: add earlier rows"
    bot.clock.t = SLOT + timedelta(minutes=15)
    run_cycle(bot, bot.clock.t)
    bot.trail.close()
    return tmp_path / "logs"


def cycle_order_not_placed(tmp_path: Path, monkeypatch) -> Path:
    from bot.core.cycle import run_cycle
    bot = make_bot(tmp_path, explode={"SPY": ConnectionError("connection reset")})
    run_cycle(bot, SLOT)
    bot.broker.explode.clear()
    bot.clock.advance(900)
    run_cycle(bot, SLOT + timedelta(minutes=15))
    bot.trail.close()
    return tmp_path / "logs"


def cycle_open_at_deadline(tmp_path: Path, monkeypatch) -> Path:
    from bot.adapters.sim_broker import SimBrokerConfig
    from bot.core.cycle import run_cycle
    from bot.core.domain import OrderType
    from bot.core.planning import RiskLimits
    bot = make_bot(tmp_path)
    # limit orders 10 bps through the reference, fills 50 bps worse: they never cross
    bot.broker.inner.config = SimBrokerConfig(slippage_bps=50)
    bot.broker.inner._slip = 0.005
    bot.limits = RiskLimits(order_type=OrderType.LIMIT, limit_offset_bps=10)
    bot.sleep = bot.clock.advance
    bot.fill_timeout, bot.poll_interval = 5.0, 1.0
    run_cycle(bot, SLOT)
    bot.clock.advance(900)
    run_cycle(bot, SLOT + timedelta(minutes=15))
    bot.trail.close()
    return tmp_path / "logs"


def cycle_order_skipped(tmp_path: Path, monkeypatch) -> Path:
    """A restart in the slot of an order already sent (its id is in the state store)."""
    from bot.adapters.state_store import DONE
    from bot.core.cycle import run_cycle
    bot = make_bot(tmp_path)
    bot.state.set_order_stage("tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy", DONE)
    run_cycle(bot, SLOT)
    bot.trail.close()
    return tmp_path / "logs"


def cycle_reconciliation(tmp_path: Path, monkeypatch) -> Path:
    """The trail's books hold 5 SPY the broker does not (a position sold by hand)."""
    from bot.core.cycle import run_cycle
    bot = make_bot(tmp_path)
    bot.state.adjust_sleeve("EqualWeightModel_v1", "SPY", 5.0)
    run_cycle(bot, SLOT)
    bot.trail.close()
    return tmp_path / "logs"


def runner_cycle_error(tmp_path: Path, monkeypatch) -> Path:
    from bot.app.runner import guarded_cycle
    bot = make_bot(tmp_path)
    bot.broker = AccountFails(bot.broker.inner, RuntimeError("account endpoint said 418"))
    guarded_cycle(bot, SLOT)
    bot.trail.close()
    return tmp_path / "logs"


def runner_broker_unavailable(tmp_path: Path, monkeypatch) -> Path:
    from bot.app.runner import check_broker_at_start
    from bot.core.errors import RetryLater
    bot = make_bot(tmp_path)
    bot.broker = AccountFails(bot.broker.inner, RetryLater("connection refused"))
    waits: list[float] = []

    def stop_during_the_first_retry_wait(seconds: float) -> bool:
        waits.append(seconds)  # wait(0): was a stop asked? no; wait(5): a stop is asked
        return len(waits) > 1
    check_broker_at_start(bot, "broker sim", "adopt", stop_during_the_first_retry_wait)
    assert waits == [0, 5.0]
    bot.trail.close()
    return tmp_path / "logs"


def runner_manual_cycle(tmp_path: Path, monkeypatch) -> Path:
    from bot.app.runner import manual_slot
    from bot.core.scheduling import SlotPlanner, parse_schedule
    bot = make_bot(tmp_path)
    bot.state.complete_slot(SLOT)
    bot.clock.t = SLOT + timedelta(minutes=7, seconds=12, microseconds=345678)
    manual_slot(bot, SlotPlanner(parse_schedule("every 15 minutes"), False),
                sleep=bot.clock.advance)
    bot.trail.close()
    return tmp_path / "logs"


def runner_manual_cycle_market_closed(tmp_path: Path, monkeypatch) -> Path:
    from bot.app.runner import manual_slot
    from bot.core.scheduling import SlotPlanner, parse_schedule
    bot = make_bot(tmp_path)
    bot.clock.t = utc(2025, 3, 8, 15, 0)  # a Saturday
    manual_slot(bot, SlotPlanner(parse_schedule("every 15 minutes"), True), sleep=bot.clock.advance)
    bot.trail.close()
    return tmp_path / "logs"


def runner_closed_market_skipped(tmp_path: Path, monkeypatch) -> Path:
    bot = make_bot(tmp_path)
    bot.clock.t = utc(2025, 3, 7, 20, 50)  # Friday after the last slot before the close
    _runner(bot, nyse=True).run(max_cycles=1)
    bot.trail.close()
    return tmp_path / "logs"


def runner_slot_missed(tmp_path: Path, monkeypatch) -> Path:
    bot = make_bot(tmp_path)
    bot.state.complete_slot(utc(2025, 3, 3, 14, 0))
    bot.clock.t = utc(2025, 3, 3, 15, 7)
    _runner(bot, "skip")._start()
    bot.trail.close()
    return tmp_path / "logs"


def runner_slot_resumed(tmp_path: Path, monkeypatch) -> Path:
    bot = make_bot(tmp_path)
    bot.state.complete_slot(utc(2025, 3, 3, 14, 45))
    bot.state.start_slot(SLOT)  # the cycle of 15:00 began and was cut short
    bot.clock.t = utc(2025, 3, 3, 15, 7)
    _runner(bot)._start()
    bot.trail.close()
    return tmp_path / "logs"


def runner_clock_step(tmp_path: Path, monkeypatch) -> Path:
    bot = make_bot(tmp_path)
    monotonic = [1000.0]
    r = _runner(bot, monotonic=lambda: monotonic[0])
    bot.clock.t = utc(2025, 3, 3, 15, 7)
    r._watch_clock()
    bot.clock.t = utc(2025, 3, 3, 16, 7, 30, 250000)  # an hour on the wall clock...
    monotonic[0] += 1.5  # ...in a second and a half
    r._watch_clock()
    bot.trail.close()
    return tmp_path / "logs"


def run_start_and_stop(tmp_path: Path, monkeypatch) -> Path:
    """`run`'s start (bot_started, audit_key_generated: no key given) and stop (bot_stopped),
    with a second `run` refused by the lock and an unreadable note in the inbox meanwhile."""
    from bot.cli import main as cli
    from bot.core.clock import SystemClock
    from bot.settings import load_settings
    from bot.wiring import INBOX_DIR
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(SystemClock, "now", lambda self: utc(2025, 3, 3, 15, 0, 0) + timedelta(
        microseconds=250))
    monkeypatch.setattr(sys, "argv", ["tradebot", "run"])
    settings = load_settings(log_dir=Path("logs"), data_dir=Path("data"), market_hours="always")
    umask = os.umask(0o022)  # `run` sets 077 for its process: give this one its own back
    os.umask(umask)
    try:
        bot, lock = cli._live(settings, None)
        cli._record_refused_lock(settings, "another tradebot (pid 4242) holds data/tradebot.lock")
        (tmp_path / "data" / INBOX_DIR / "zz-unreadable.json").write_bytes(b"{")
        cli._stop(bot, lock, "SIGTERM", ends_run=True)
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
    SelfVerify(tmp_path / "logs", KEY, 3600, bot.trail, bot.clock.now).check()
    bot.trail.close()
    return tmp_path / "logs"


def _a_cycle_then_closed(tmp_path: Path, *, data_dir: bool = False) -> Callable[[], object]:
    """One cycle's records, the trail closed; returns how to open the trail again (the clock a
    minute later), as `run` does at its next start."""
    from audit.trail import AuditTrail
    from bot.core.cycle import run_cycle
    bot = make_bot(tmp_path, data_dir=data_dir)
    run_cycle(bot, SLOT)
    bot.trail.close()
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
    bot.trail.close()
    logs = tmp_path / "logs"
    lines = (logs / "trades.jsonl").read_bytes().splitlines(keepends=True)
    (logs / "trades.jsonl").write_bytes(lines[0])  # fewer lines than the chain says
    os.rename(logs / "orders.jsonl", logs / "orders.jsonl.1")  # rotated while stopped
    bot.clock.t = SLOT + timedelta(minutes=1)
    bot.trail = AuditTrail(logs, bot.clock, durable=True, key=KEY)
    os.rename(logs / "production.log", logs / "production.log.1")  # external rotation
    os.truncate(logs / "performance.jsonl", 0)  # copytruncate
    bot.clock.t = SLOT + timedelta(minutes=15)
    run_cycle(bot, bot.clock.t)
    bot.trail.close()
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
    bot.clock.t = SLOT + timedelta(minutes=7)
    manual_slot(bot, SlotPlanner(parse_schedule("every 15 minutes"), False),
                sleep=bot.clock.advance)
    (logs / EVENTS).write_bytes(before)  # the line never reached the file
    for f in (*bot.trail._files.values(), bot.trail._text):  # killed: nothing signed or closed
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
    inner = bot.broker
    bot.broker = AccountFails(inner.inner, RetryLater("HTTP 503 from the broker"))
    with pytest.raises(RetryLater):
        check_broker_at_start(bot, "broker sim", "adopt", None)
    bot.broker = inner
    bot.state.adjust_sleeve("EqualWeightModel_v1", "TLT", 2.5)
    check_broker_at_start(bot, "broker sim", "adopt", None)
    bot.trail.close()
    return tmp_path / "logs"


def runner_slot_overrun(tmp_path: Path, monkeypatch) -> Path:
    """A cycle that overran two slots: `slot_missed` without `last_completed`."""
    bot = make_bot(tmp_path)
    r = _runner(bot)
    r.next_slot = utc(2025, 3, 3, 15, 15)
    bot.clock.t = utc(2025, 3, 3, 15, 47, 3)
    r._tick()
    bot.trail.close()
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
    bot.broker = CrashAfterSubmit(bot.broker.inner, "TLT", **scripted)
    with pytest.raises(Halt):
        run_cycle(bot, SLOT)
    bot.broker.symbol = None
    bot.clock.advance(900)
    run_cycle(bot, SLOT + timedelta(minutes=15))  # settles it first: recovery's records
    bot.trail.close()
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
    assert bot.state.writing
    bot.clock.advance(900)
    run_cycle(bot, SLOT + timedelta(minutes=15))
    bot.trail.close()
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


# (scenario, kind, n) -> (stream, the n-th line of that kind the scenario writes, its
# production.log line); every line of a kind the table names is pinned, so a duplicate fails too
EXPECTED: dict[tuple[str, str, int], tuple[str, bytes, bytes]] = {
    ('cycle_rejected_order', 'order_error', 1): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"order_error",'
        b'"symbol":"QQQ","side":"buy","quantity":81.666666666,'
        b'"error":"Insufficient buying power",'
        b'"order_data":{"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy",'
        b'"symbol":"QQQ","side":"buy","quantity":81.666666666,"order_type":"market",'
        b'"limit_price":null,"reference_price":400.0,"model":"EqualWeightModel_v1",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"},"model":"EqualWeightModel_v1",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 ERROR order_error: buy 81.6667 QQQ [EqualWeight'
        b'Model_v1] tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy: Insufficient buying p'
        b'ower\n'),
    ('cycle_late_rejection', 'order_error', 1): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"order_error",'
        b'"symbol":"TLT","side":"buy","quantity":362.962962962,'
        b'"error":"rejected by the broker after it accepted the order: halted: trading sus'
        b'pended in TLT",'
        b'"order_data":{"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy",'
        b'"symbol":"TLT","side":"buy","quantity":362.962962962,"order_type":"market",'
        b'"limit_price":null,"reference_price":90.0,"model":"EqualWeightModel_v1",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"},"model":"EqualWeightModel_v1",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 ERROR order_error: buy 362.963 TLT [EqualWeight'
        b'Model_v1] tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy: rejected by the broke'
        b'r after it accepted the order: halted: trading suspended in TLT\n'),
    ('cycle_bad_price', 'price_error', 1): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"price_error",'
        b'"error":"no usable price for QQQ: no quote since 14:59",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00","symbol":"QQQ"}\n',
        b'2025-03-03T15:00:00.000000+00:00 ERROR price_error: no usable price for QQQ: no '
        b'quote since 14:59\n'),
    ('cycle_bad_price', 'price_error', 2): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"price_error",'
        b'"error":"bad price for TLT: nan","cycle_timestamp":"2025-03-03T15:00:00+00:00",'
        b'"symbol":"TLT","price":null}\n',
        b'2025-03-03T15:00:00.000000+00:00 ERROR price_error: bad price for TLT: nan\n'),
    ('cycle_broken_model', 'model_error', 1): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"model_error",'
        b'"error":"BrokenModel_v1 failed: ZeroDivisionError(\'division by zero\')",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00","model":"BrokenModel_v1"}\n',
        b'2025-03-03T15:00:00.000000+00:00 ERROR model_error: BrokenModel_v1 failed: ZeroD'
        b"ivisionError('division by zero')\n"),
    ('cycle_kill_switch', 'kill_switch_engaged', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00",'
        b'"event_type":"kill_switch_engaged",'
        b'"message":"no new orders: kill-switch file data/KILL_SWITCH exists (delete it to'
        b' resume trading)","cycle_timestamp":"2025-03-03T15:00:00+00:00",'
        b'"blocked_orders":3}\n',
        b'2025-03-03T15:00:00.000000+00:00 WARN  kill_switch_engaged: no new orders: kill-'
        b'switch file data/KILL_SWITCH exists (delete it to resume trading)\n'),
    ('cycle_risk_off_held', 'risk_off_held', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"risk_off_held",'
        b'"message":"SectorRotationModel_v1: risk-off (SPY 4.5% below its 10-day average) '
        b'but TLT has no closes: the current holdings stay,'
        b' sectors included (v1\'s hold rule)",'
        b'"cycle_timestamp":"2025-03-03T15:15:00+00:00","model":"SectorRotationModel_v1",'
        b'"trend_symbol":"SPY","defensive_symbol":"TLT"}\n',
        b'2025-03-03T15:15:00.000000+00:00 WARN  risk_off_held: SectorRotationModel_v1: ri'
        b'sk-off (SPY 4.5% below its 10-day average) but TLT has no closes: the current ho'
        b"ldings stay, sectors included (v1's hold rule)\n"),
    ('cycle_order_not_placed', 'order_not_placed', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"order_not_placed",'
        b'"message":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy never reached the bro'
        b'ker; the plan is made again",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:15:00.000000+00:00 INFO  order_not_placed: tb-20250303T150000Z-Equ'
        b'alWeightModel_v1-SPY-buy never reached the broker; the plan is made again\n'),
    ('cycle_order_not_placed', 'order_error', 1): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"order_error",'
        b'"symbol":"SPY","side":"buy","quantity":65.333333333,'
        b'"error":"ConnectionError: connection reset",'
        b'"order_data":{"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy",'
        b'"symbol":"SPY","side":"buy","quantity":65.333333333,"order_type":"market",'
        b'"limit_price":null,"reference_price":500.0,"model":"EqualWeightModel_v1",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"},"model":"EqualWeightModel_v1",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 ERROR order_error: buy 65.3333 SPY [EqualWeight'
        b'Model_v1] tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy: ConnectionError: conn'
        b'ection reset\n'),
    ('cycle_open_at_deadline', 'order_open_at_deadline', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:05.000000+00:00",'
        b'"event_type":"order_open_at_deadline",'
        b'"message":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy is still new after 5s'
        b': its fills are recorded at the next cycle",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy","status":"new",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:05.000000+00:00 WARN  order_open_at_deadline: tb-20250303T15000'
        b'0Z-EqualWeightModel_v1-QQQ-buy is still new after 5s: its fills are recorded at '
        b'the next cycle\n'),
    ('cycle_open_at_deadline', 'order_open_at_deadline', 2): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:05.000000+00:00",'
        b'"event_type":"order_open_at_deadline",'
        b'"message":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy is still new after 5s'
        b': its fills are recorded at the next cycle",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy","status":"new",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:05.000000+00:00 WARN  order_open_at_deadline: tb-20250303T15000'
        b'0Z-EqualWeightModel_v1-SPY-buy is still new after 5s: its fills are recorded at '
        b'the next cycle\n'),
    ('cycle_open_at_deadline', 'order_open_at_deadline', 3): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:05.000000+00:00",'
        b'"event_type":"order_open_at_deadline",'
        b'"message":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy is still new after 5s'
        b': its fills are recorded at the next cycle",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy","status":"new",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:05.000000+00:00 WARN  order_open_at_deadline: tb-20250303T15000'
        b'0Z-EqualWeightModel_v1-TLT-buy is still new after 5s: its fills are recorded at '
        b'the next cycle\n'),
    ('cycle_open_at_deadline', 'order_open_at_deadline', 4): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:10.000000+00:00",'
        b'"event_type":"order_open_at_deadline",'
        b'"message":"tb-20250303T151500Z-EqualWeightModel_v1-QQQ-buy is still new after 5s'
        b': its fills are recorded at the next cycle",'
        b'"order_id":"tb-20250303T151500Z-EqualWeightModel_v1-QQQ-buy","status":"new",'
        b'"cycle_timestamp":"2025-03-03T15:15:00+00:00"}\n',
        b'2025-03-03T15:15:10.000000+00:00 WARN  order_open_at_deadline: tb-20250303T15150'
        b'0Z-EqualWeightModel_v1-QQQ-buy is still new after 5s: its fills are recorded at '
        b'the next cycle\n'),
    ('cycle_open_at_deadline', 'order_open_at_deadline', 5): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:10.000000+00:00",'
        b'"event_type":"order_open_at_deadline",'
        b'"message":"tb-20250303T151500Z-EqualWeightModel_v1-SPY-buy is still new after 5s'
        b': its fills are recorded at the next cycle",'
        b'"order_id":"tb-20250303T151500Z-EqualWeightModel_v1-SPY-buy","status":"new",'
        b'"cycle_timestamp":"2025-03-03T15:15:00+00:00"}\n',
        b'2025-03-03T15:15:10.000000+00:00 WARN  order_open_at_deadline: tb-20250303T15150'
        b'0Z-EqualWeightModel_v1-SPY-buy is still new after 5s: its fills are recorded at '
        b'the next cycle\n'),
    ('cycle_open_at_deadline', 'order_open_at_deadline', 6): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:10.000000+00:00",'
        b'"event_type":"order_open_at_deadline",'
        b'"message":"tb-20250303T151500Z-EqualWeightModel_v1-TLT-buy is still new after 5s'
        b': its fills are recorded at the next cycle",'
        b'"order_id":"tb-20250303T151500Z-EqualWeightModel_v1-TLT-buy","status":"new",'
        b'"cycle_timestamp":"2025-03-03T15:15:00+00:00"}\n',
        b'2025-03-03T15:15:10.000000+00:00 WARN  order_open_at_deadline: tb-20250303T15150'
        b'0Z-EqualWeightModel_v1-TLT-buy is still new after 5s: its fills are recorded at '
        b'the next cycle\n'),
    ('cycle_open_at_deadline', 'order_canceled', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:05.000000+00:00","event_type":"order_canceled",'
        b'"message":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy was still open at the'
        b' next cycle: the rest of it is cancelled before planning again",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:15:05.000000+00:00 WARN  order_canceled: tb-20250303T150000Z-Equal'
        b'WeightModel_v1-QQQ-buy was still open at the next cycle: the rest of it is cance'
        b'lled before planning again\n'),
    ('cycle_open_at_deadline', 'order_canceled', 2): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:05.000000+00:00","event_type":"order_canceled",'
        b'"message":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy was still open at the'
        b' next cycle: the rest of it is cancelled before planning again",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:15:05.000000+00:00 WARN  order_canceled: tb-20250303T150000Z-Equal'
        b'WeightModel_v1-SPY-buy was still open at the next cycle: the rest of it is cance'
        b'lled before planning again\n'),
    ('cycle_open_at_deadline', 'order_canceled', 3): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:05.000000+00:00","event_type":"order_canceled",'
        b'"message":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy was still open at the'
        b' next cycle: the rest of it is cancelled before planning again",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:15:05.000000+00:00 WARN  order_canceled: tb-20250303T150000Z-Equal'
        b'WeightModel_v1-TLT-buy was still open at the next cycle: the rest of it is cance'
        b'lled before planning again\n'),
    ('cycle_order_skipped', 'order_skipped', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"order_skipped",'
        b'"message":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy was already sent for '
        b'this slot","order_id":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 WARN  order_skipped: tb-20250303T150000Z-EqualW'
        b'eightModel_v1-SPY-buy was already sent for this slot\n'),
    ('cycle_reconciliation', 'reconciliation', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"reconciliation",'
        b'"message":"broker and trail differ: SPY: trail 5,'
        b' broker 0; adopted: our books now match the broker",'
        b'"positions":{"SPY":{"trail":5.0,"broker":0.0}},"unknown_open_orders":[],'
        b'"policy":"adopt","cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 WARN  reconciliation: broker and trail differ: '
        b'SPY: trail 5, broker 0; adopted: our books now match the broker\n'),
    ('runner_cycle_error', 'cycle_error', 1): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"cycle_error",'
        b'"error":"RuntimeError: account endpoint said 418",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 ERROR cycle_error: RuntimeError: account endpoi'
        b'nt said 418\n'),
    ('runner_broker_unavailable', 'broker_unavailable', 1): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00",'
        b'"event_type":"broker_unavailable",'
        b'"error":"the broker cannot be reached at start-up (connection refused); trying a'
        b'gain in 5s","attempt":1,"retry_in_seconds":5.0}\n',
        b'2025-03-03T15:00:00.000000+00:00 ERROR broker_unavailable: the broker cannot be '
        b'reached at start-up (connection refused); trying again in 5s\n'),
    ('runner_manual_cycle', 'manual_cycle', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:07:12.345678+00:00","event_type":"manual_cycle",'
        b'"message":"the latest scheduled slot already ran: manual cycle at 2025-03-03T15:'
        b'07:12+00:00","cycle_timestamp":"2025-03-03T15:07:12+00:00"}\n',
        b'2025-03-03T15:07:12.345678+00:00 INFO  manual_cycle: the latest scheduled slot a'
        b'lready ran: manual cycle at 2025-03-03T15:07:12+00:00\n'),
    ('runner_manual_cycle_market_closed', 'cycle_skipped', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-08T15:00:00.000000+00:00","event_type":"cycle_skipped",'
        b'"message":"market closed (NYSE regular hours): nothing sent; next slot 2025-03-1'
        b'0T13:30:00+00:00","reason":"market_closed",'
        b'"next_slot":"2025-03-10T13:30:00+00:00","policy":"skip"}\n',
        b'2025-03-08T15:00:00.000000+00:00 INFO  cycle_skipped: market closed (NYSE regula'
        b'r hours): nothing sent; next slot 2025-03-10T13:30:00+00:00\n'),
    ('runner_closed_market_skipped', 'cycle_skipped', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-07T20:50:00.000000+00:00","event_type":"cycle_skipped",'
        b'"message":"market closed (NYSE regular hours): slots from 2025-03-07T21:00:00+00'
        b':00 are skipped; next cycle at 2025-03-10T13:30:00+00:00",'
        b'"reason":"market_closed","from_slot":"2025-03-07T21:00:00+00:00",'
        b'"next_slot":"2025-03-10T13:30:00+00:00","policy":"skip"}\n',
        b'2025-03-07T20:50:00.000000+00:00 INFO  cycle_skipped: market closed (NYSE regula'
        b'r hours): slots from 2025-03-07T21:00:00+00:00 are skipped; next cycle at 2025-0'
        b'3-10T13:30:00+00:00\n'),
    ('runner_slot_missed', 'slot_missed', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:07:00.000000+00:00","event_type":"slot_missed",'
        b'"message":"4 slot(s) missed while stopped (last completed 2025-03-03T14:00:00+00'
        b':00, latest due 2025-03-03T15:00:00+00:00); BOT_MISSED_SLOT=skip: skipping it",'
        b'"missed":4,"last_completed":"2025-03-03T14:00:00+00:00",'
        b'"latest_due":"2025-03-03T15:00:00+00:00","policy":"skip"}\n',
        b'2025-03-03T15:07:00.000000+00:00 WARN  slot_missed: 4 slot(s) missed while stopp'
        b'ed (last completed 2025-03-03T14:00:00+00:00,'
        b' latest due 2025-03-03T15:00:00+00:00); BOT_MISSED_SLOT=skip: skipping it\n'),
    ('runner_slot_resumed', 'slot_resumed', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:07:00.000000+00:00","event_type":"slot_resumed",'
        b'"message":"the cycle for 2025-03-03T15:00:00+00:00 was interrupted: resuming it"'
        b',"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:07:00.000000+00:00 WARN  slot_resumed: the cycle for 2025-03-03T15'
        b':00:00+00:00 was interrupted: resuming it\n'),
    ('runner_clock_step', 'clock_step', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T16:07:30.250000+00:00","event_type":"clock_step",'
        b'"message":"the system clock stepped forward by 3629 s (from about 2025-03-03T15:'
        b'07:01.500000+00:00 to 2025-03-03T16:07:30.250000+00:00): scheduling from the rea'
        b'l time again","offset_seconds":3628.75,'
        b'"expected":"2025-03-03T15:07:01.500000+00:00",'
        b'"clock":"2025-03-03T16:07:30.250000+00:00"}\n',
        b'2025-03-03T16:07:30.250000+00:00 WARN  clock_step: the system clock stepped forw'
        b'ard by 3629 s (from about 2025-03-03T15:07:01.500000+00:00 to 2025-03-03T16:07:3'
        b'0.250000+00:00): scheduling from the real time again\n'),
    ('run_start_and_stop', 'audit_key_generated', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000250+00:00",'
        b'"event_type":"audit_key_generated",'
        b'"message":"no BOT_AUDIT_KEY or BOT_AUDIT_KEY_FILE: an audit key was generated in'
        b' <TMP>/data/audit.key; keep it,'
        b' and back it up apart from the logs: it verifies this trail",'
        b'"key_file":"<TMP>/data/audit.key"}\n',
        b'2025-03-03T15:00:00.000250+00:00 WARN  audit_key_generated: no BOT_AUDIT_KEY or '
        b'BOT_AUDIT_KEY_FILE: an audit key was generated in <TMP>/data/audit.key; keep it,'
        b' and back it up apart from the logs: it verifies this trail\n'),
    ('run_start_and_stop', 'bot_started', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000250+00:00","event_type":"bot_started",'
        b'"message":"tradebot 0.1.0 started (pid <PID>)","pid":<PID>,"command":"run",'
        b'"broker":"sim","schedule":"every 15 minutes","market_hours":"always",'
        b'"models":"SectorRotationModel_v1",'
        b'"settings_sha256":"3455e5e70f2eb328f206fd47cacb7db14caa66227a938d4aa54964464f334'
        b'cea","version":"0.1.0","run_id":"<RUN_ID>"}\n',
        b'2025-03-03T15:00:00.000250+00:00 INFO  bot_started: tradebot 0.1.0 started (pid '
        b'<PID>)\n'),
    ('run_start_and_stop', 'lock_refused', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000250+00:00","event_type":"lock_refused",'
        b'"message":"another tradebot (pid 4242) holds data/tradebot.lock","pid":<PID>,'
        b'"refused_at":"2025-03-03T15:00:00.000250+00:00"}\n',
        b'2025-03-03T15:00:00.000250+00:00 WARN  lock_refused: another tradebot (pid 4242)'
        b' holds data/tradebot.lock\n'),
    ('run_start_and_stop', 'inbox_error', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000250+00:00","event_type":"inbox_error",'
        b'"message":"unreadable note zz-unreadable.json","file":"zz-unreadable.json"}\n',
        b'2025-03-03T15:00:00.000250+00:00 WARN  inbox_error: unreadable note zz-unreadabl'
        b'e.json\n'),
    ('run_start_and_stop', 'bot_stopped', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000250+00:00","event_type":"bot_stopped",'
        b'"message":"tradebot stopped: SIGTERM","pid":<PID>,"reason":"SIGTERM"}\n',
        b'2025-03-03T15:00:00.000250+00:00 INFO  bot_stopped: tradebot stopped: SIGTERM\n'),
    ('self_verify_failed', 'trail_verify_failed', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00",'
        b'"event_type":"trail_verify_failed",'
        b'"message":"the live trail does not verify: trail ALTERED or incomplete: 1 invali'
        b'd, 6 valid: INVALID trades.jsonl segment 0 3 lines line 1: edited, deleted,'
        b' inserted or reordered (it differs from what was written); run `tradebot audit v'
        b'erify` to see every problem","problems":1,'
        b'"summary":"trail ALTERED or incomplete: 1 invalid, 6 valid"}\n',
        b'2025-03-03T15:00:00.000000+00:00 WARN  trail_verify_failed: the live trail does '
        b'not verify: trail ALTERED or incomplete: 1 invalid,'
        b' 6 valid: INVALID trades.jsonl segment 0 3 lines line 1: edited, deleted,'
        b' inserted or reordered (it differs from what was written); run `tradebot audit v'
        b'erify` to see every problem\n'),
    ('streams_torn_tail_and_damage', 'repair', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:01:00.000000+00:00","event_type":"repair",'
        b'"message":"orders.jsonl: torn last line (29 bytes) moved to orders.jsonl.torn-20'
        b'250303T150100Z; the file now ends at its last whole line","file":"orders.jsonl",'
        b'"moved_to":"orders.jsonl.torn-20250303T150100Z","bytes":29,"kept_bytes":1191}\n',
        b'2025-03-03T15:01:00.000000+00:00 WARN  repair: orders.jsonl: torn last line (29 '
        b'bytes) moved to orders.jsonl.torn-20250303T150100Z; the file now ends at its las'
        b't whole line\n'),
    ('streams_torn_tail_and_damage', 'damage', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:01:00.000000+00:00","event_type":"damage",'
        b'"message":"decisions.jsonl: damaged line(s) [2] inside the file (reported,'
        b' not changed)","file":"decisions.jsonl","lines":[2]}\n',
        b'2025-03-03T15:01:00.000000+00:00 WARN  damage: decisions.jsonl: damaged line(s) '
        b'[2] inside the file (reported, not changed)\n'),
    ('streams_rotated_and_truncated', 'rotation', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:01:00.000000+00:00","event_type":"rotation",'
        b'"message":"orders.jsonl was rotated while the bot was stopped: segment 0 sealed"'
        b',"file":"orders.jsonl"}\n',
        b'2025-03-03T15:01:00.000000+00:00 INFO  rotation: orders.jsonl was rotated while '
        b'the bot was stopped: segment 0 sealed\n'),
    ('streams_rotated_and_truncated', 'rotation', 2): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"rotation",'
        b'"message":"production.log was moved away (external rotation): segment 0 sealed,'
        b' writing a new production.log (mode 0600)","file":"production.log"}\n',
        b'2025-03-03T15:15:00.000000+00:00 INFO  rotation: production.log was moved away ('
        b'external rotation): segment 0 sealed, writing a new production.log (mode 0600)\n'),
    ('streams_rotated_and_truncated', 'integrity_warning', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:01:00.000000+00:00",'
        b'"event_type":"integrity_warning",'
        b'"message":"trades.jsonl differs from its last checkpoint from line 2 on: `tradeb'
        b'ot audit verify` will show where","file":"trades.jsonl"}\n',
        b'2025-03-03T15:01:00.000000+00:00 WARN  integrity_warning: trades.jsonl differs f'
        b'rom its last checkpoint from line 2 on: `tradebot audit verify` will show where\n'),
    ('streams_rotated_and_truncated', 'possible_loss', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"possible_loss",'
        b'"message":"performance.jsonl was truncated under the bot (copytruncate?): 345 by'
        b'tes were cut; lines written between the copy and the truncation may be lost",'
        b'"file":"performance.jsonl","bytes_cut":345}\n',
        b'2025-03-03T15:15:00.000000+00:00 WARN  possible_loss: performance.jsonl was trun'
        b'cated under the bot (copytruncate?): 345 bytes were cut; lines written between t'
        b'he copy and the truncation may be lost\n'),
    ('streams_write_lost', 'write_lost', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:20:00.000000+00:00","event_type":"write_lost",'
        b'"message":"events.jsonl:1 was about to be written when the bot stopped,'
        b' and was not (a crash, not tampering)","file":"events.jsonl","line":1,'
        b'"segment":0}\n',
        b'2025-03-03T15:20:00.000000+00:00 WARN  write_lost: events.jsonl:1 was about to b'
        b'e written when the bot stopped, and was not (a crash, not tampering)\n'),
    ('streams_anchor_created', 'anchor_created', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:01:00.000000+00:00","event_type":"anchor_created",'
        b'"message":"this trail predates anchors: trail <TRAIL_ID> and its anchor in data '
        b'were made, and the lines not yet signed were signed this once without evidence",'
        b'"trail_id":"<TRAIL_ID>","legacy":true}\n',
        b'2025-03-03T15:01:00.000000+00:00 WARN  anchor_created: this trail predates ancho'
        b'rs: trail <TRAIL_ID> and its anchor in data were made,'
        b' and the lines not yet signed were signed this once without evidence\n'),
    ('streams_anchor_lost', 'anchor_created', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:01:00.000000+00:00","event_type":"anchor_created",'
        b'"message":"trail <TRAIL_ID> had no anchor in data (a copy from another host?): o'
        b"ne was made; lines not signed before now cannot be shown to be the bot's and are"
        b' never signed","trail_id":"<TRAIL_ID>","legacy":false}\n',
        b'2025-03-03T15:01:00.000000+00:00 WARN  anchor_created: trail <TRAIL_ID> had no a'
        b'nchor in data (a copy from another host?): one was made; lines not signed before'
        b" now cannot be shown to be the bot's and are never signed\n"),
    ('runner_start_up_checks', 'reconciliation', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"reconciliation",'
        b'"message":"broker and trail differ: TLT: trail 2.5,'
        b' broker 0; adopted: our books now match the broker",'
        b'"positions":{"TLT":{"trail":2.5,"broker":0.0}},"unknown_open_orders":[],'
        b'"policy":"adopt"}\n',
        b'2025-03-03T15:00:00.000000+00:00 WARN  reconciliation: broker and trail differ: '
        b'TLT: trail 2.5, broker 0; adopted: our books now match the broker\n'),
    ('runner_start_up_checks', 'broker_unavailable', 1): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00",'
        b'"event_type":"broker_unavailable",'
        b'"error":"the broker cannot be reached at start-up (HTTP 503 from the broker); no'
        b'thing traded, stopping","attempt":1,"retry_in_seconds":null}\n',
        b'2025-03-03T15:00:00.000000+00:00 ERROR broker_unavailable: the broker cannot be '
        b'reached at start-up (HTTP 503 from the broker); nothing traded, stopping\n'),
    ('runner_slot_overrun', 'slot_missed', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:47:03.000000+00:00","event_type":"slot_missed",'
        b'"message":"2 slot(s) passed during the previous cycle; running 2025-03-03T15:45:'
        b'00+00:00","missed":2,"latest_due":"2025-03-03T15:45:00+00:00","policy":"run"}\n',
        b'2025-03-03T15:47:03.000000+00:00 WARN  slot_missed: 2 slot(s) passed during the '
        b'previous cycle; running 2025-03-03T15:45:00+00:00\n'),
    ('streams_forged_line', 'damage', 1): (
        'events.jsonl',
        b'{"timestamp":"2025-03-03T15:01:00.000000+00:00","event_type":"damage",'
        b'"message":"errors.jsonl:1: no record of the bot writing it; never signed: the se'
        b'gment is sealed before it and errors.jsonl goes on in a new file",'
        b'"file":"errors.jsonl","lines":[1],"at":"errors.jsonl:1",'
        b'"reason":"no record of the bot writing it"}\n',
        b'2025-03-03T15:01:00.000000+00:00 WARN  damage: errors.jsonl:1: no record of the '
        b'bot writing it; never signed: the segment is sealed before it and errors.jsonl g'
        b'oes on in a new file\n'),
    ('recovery_order_sent_not_recorded', 'order_submitted', 1): (
        'orders.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"order_submitted",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy","symbol":"QQQ",'
        b'"side":"buy","quantity":81.666666666,"price":400.0,"order_type":"market",'
        b'"status":"accepted","nav":100000.0,"model":"EqualWeightModel_v1",'
        b'"broker_order_id":"47cca702-4d9c-5aa9-9c0b-70dbc83e7420",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 INFO  order_submitted: buy 81.6667 QQQ market r'
        b'ef 400.00 [EqualWeightModel_v1] tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy '
        b'accepted\n'),
    ('recovery_order_sent_not_recorded', 'order_submitted', 2): (
        'orders.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"order_submitted",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy","symbol":"SPY",'
        b'"side":"buy","quantity":65.333333333,"price":500.0,"order_type":"market",'
        b'"status":"accepted","nav":100000.0,"model":"EqualWeightModel_v1",'
        b'"broker_order_id":"e0a25752-2b83-5f2c-84da-97600cba70ed",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 INFO  order_submitted: buy 65.3333 SPY market r'
        b'ef 500.00 [EqualWeightModel_v1] tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy '
        b'accepted\n'),
    ('recovery_order_sent_not_recorded', 'order_submitted', 3): (
        'orders.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"order_submitted",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy","symbol":"TLT",'
        b'"side":"buy","quantity":362.962962962,"price":90.0,"order_type":"market",'
        b'"status":"filled","nav":99980.4,"model":"EqualWeightModel_v1",'
        b'"broker_order_id":"0b85a946-141e-5d08-8222-a1293a49e1a7",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:15:00.000000+00:00 INFO  order_submitted: buy 362.963 TLT market r'
        b'ef 90.00 [EqualWeightModel_v1] tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy f'
        b'illed\n'),
    ('recovery_order_sent_not_recorded', 'trade_executed', 1): (
        'trades.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"trade_executed",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy","symbol":"QQQ",'
        b'"side":"buy","quantity":81.666666666,"price":400.08,"value":32673.2,'
        b'"new_position":81.666666666,"nav":99993.47,"model":"EqualWeightModel_v1",'
        b'"fill_id":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy-1",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 INFO  trade_executed: buy 81.6667 QQQ @ 400.080'
        b'0 = 32673.20; position 81.6667,'
        b' nav 99993.47 (tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy)\n'),
    ('recovery_order_sent_not_recorded', 'trade_executed', 2): (
        'trades.jsonl',
        b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"trade_executed",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy","symbol":"SPY",'
        b'"side":"buy","quantity":65.333333333,"price":500.1,"value":32673.2,'
        b'"new_position":65.333333333,"nav":99986.93,"model":"EqualWeightModel_v1",'
        b'"fill_id":"tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy-1",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:00:00.000000+00:00 INFO  trade_executed: buy 65.3333 SPY @ 500.100'
        b'0 = 32673.20; position 65.3333,'
        b' nav 99986.93 (tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy)\n'),
    ('recovery_order_sent_not_recorded', 'trade_executed', 3): (
        'trades.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"trade_executed",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy","symbol":"TLT",'
        b'"side":"buy","quantity":362.962962962,"price":90.018,"value":32673.2,'
        b'"new_position":362.962962962,"nav":99980.4,"model":"EqualWeightModel_v1",'
        b'"fill_id":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy-1",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:15:00.000000+00:00 INFO  trade_executed: buy 362.963 TLT @ 90.0180'
        b' = 32673.20; position 362.963,'
        b' nav 99980.40 (tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy)\n'),
    ('recovery_order_rejected_before_recorded', 'order_error', 1): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"order_error",'
        b'"symbol":"TLT","side":"buy","quantity":362.962962962,'
        b'"error":"halted: trading suspended in TLT",'
        b'"order_data":{"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy",'
        b'"symbol":"TLT","side":"buy","quantity":362.962962962,"order_type":"market",'
        b'"limit_price":null,"reference_price":90.0,"model":"EqualWeightModel_v1",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"},"model":"EqualWeightModel_v1",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:15:00.000000+00:00 ERROR order_error: buy 362.963 TLT [EqualWeight'
        b'Model_v1] tb-20250303T150000Z-EqualWeightModel_v1-TLT-buy: halted: trading suspe'
        b'nded in TLT\n'),
    ('recovery_order_rejected_before_recorded', 'order_error', 2): (
        'errors.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"order_error",'
        b'"symbol":"TLT","side":"buy","quantity":362.820682222,'
        b'"error":"rejected by the broker after it accepted the order: halted: trading sus'
        b'pended in TLT",'
        b'"order_data":{"order_id":"tb-20250303T151500Z-EqualWeightModel_v1-TLT-buy",'
        b'"symbol":"TLT","side":"buy","quantity":362.820682222,"order_type":"market",'
        b'"limit_price":null,"reference_price":90.0,"model":"EqualWeightModel_v1",'
        b'"cycle_timestamp":"2025-03-03T15:15:00+00:00"},"model":"EqualWeightModel_v1",'
        b'"order_id":"tb-20250303T151500Z-EqualWeightModel_v1-TLT-buy",'
        b'"cycle_timestamp":"2025-03-03T15:15:00+00:00"}\n',
        b'2025-03-03T15:15:00.000000+00:00 ERROR order_error: buy 362.821 TLT [EqualWeight'
        b'Model_v1] tb-20250303T151500Z-EqualWeightModel_v1-TLT-buy: rejected by the broke'
        b'r after it accepted the order: halted: trading suspended in TLT\n'),
    ('recovery_fill_not_written', 'trade_executed', 1): (
        'trades.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"trade_executed",'
        b'"order_id":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy","symbol":"QQQ",'
        b'"side":"buy","quantity":81.666666666,"price":400.08,"value":32673.2,'
        b'"new_position":81.666666666,"nav":99993.47,"model":"EqualWeightModel_v1",'
        b'"fill_id":"tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy-1",'
        b'"cycle_timestamp":"2025-03-03T15:00:00+00:00"}\n',
        b'2025-03-03T15:15:00.000000+00:00 INFO  trade_executed: buy 81.6667 QQQ @ 400.080'
        b'0 = 32673.20; position 81.6667,'
        b' nav 99993.47 (tb-20250303T150000Z-EqualWeightModel_v1-QQQ-buy)\n'),
    ('recovery_fill_not_written', 'trade_executed', 2): (
        'trades.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"trade_executed",'
        b'"order_id":"tb-20250303T151500Z-EqualWeightModel_v1-SPY-buy","symbol":"SPY",'
        b'"side":"buy","quantity":65.3269306,"price":500.1,"value":32670.0,'
        b'"new_position":65.3269306,"nav":99986.93,"model":"EqualWeightModel_v1",'
        b'"fill_id":"tb-20250303T151500Z-EqualWeightModel_v1-SPY-buy-1",'
        b'"cycle_timestamp":"2025-03-03T15:15:00+00:00"}\n',
        b'2025-03-03T15:15:00.000000+00:00 INFO  trade_executed: buy 65.3269 SPY @ 500.100'
        b'0 = 32670.00; position 65.3269,'
        b' nav 99986.93 (tb-20250303T151500Z-EqualWeightModel_v1-SPY-buy)\n'),
    ('recovery_fill_not_written', 'trade_executed', 3): (
        'trades.jsonl',
        b'{"timestamp":"2025-03-03T15:15:00.000000+00:00","event_type":"trade_executed",'
        b'"order_id":"tb-20250303T151500Z-EqualWeightModel_v1-TLT-buy","symbol":"TLT",'
        b'"side":"buy","quantity":362.927392222,"price":90.018,"value":32670.0,'
        b'"new_position":362.927392222,"nav":99980.4,"model":"EqualWeightModel_v1",'
        b'"fill_id":"tb-20250303T151500Z-EqualWeightModel_v1-TLT-buy-1",'
        b'"cycle_timestamp":"2025-03-03T15:15:00+00:00"}\n',
        b'2025-03-03T15:15:00.000000+00:00 INFO  trade_executed: buy 362.927 TLT @ 90.0180'
        b' = 32670.00; position 362.927,'
        b' nav 99980.40 (tb-20250303T151500Z-EqualWeightModel_v1-TLT-buy)\n'),
}


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
