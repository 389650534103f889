import threading
import time

import orjson
import pytest

from audit.records import BotStarted
from bot.app.runner import Runner
from bot.core.scheduling import SlotPlanner, parse_schedule
from bot.review.check import ERROR, WARNING, check
from tests.fakes import make_bot, utc


def fake_wait(clock):
    def wait(seconds):
        clock.advance(seconds)
        time.sleep(0.002)  # lets the schedule library's 1 ms ticker come due
    return wait


def runner(bot, policy="run", schedule="every 15 minutes", nyse=False):
    planner = SlotPlanner(parse_schedule(schedule), nyse)
    return Runner(bot, planner, policy, threading.Event(), wait=fake_wait(bot.deps.clock),
                  poll_seconds=0.001, max_wait=86400)


def read(tmp_path, name):
    return [orjson.loads(x) for x in (tmp_path / "logs" / name).read_bytes().splitlines()]


def test_first_start_runs_the_latest_due_slot_at_once_then_follows_the_clock(tmp_path):
    bot = make_bot(tmp_path)
    bot.deps.clock.t = utc(2025, 3, 3, 15, 7, 12)
    assert runner(bot).run(max_cycles=3) == 3
    slots = [p["cycle_timestamp"] for p in read(tmp_path, "performance.jsonl")]
    assert slots == ["2025-03-03T15:00:00+00:00", "2025-03-03T15:15:00+00:00",
                     "2025-03-03T15:30:00+00:00"]


def test_restart_in_a_completed_slot_waits_for_the_next(tmp_path):
    bot = make_bot(tmp_path)
    bot.deps.journal.complete_slot(utc(2025, 3, 3, 15, 0))
    bot.deps.clock.t = utc(2025, 3, 3, 15, 7)
    runner(bot).run(max_cycles=1)
    (perf,) = read(tmp_path, "performance.jsonl")
    assert perf["cycle_timestamp"] == "2025-03-03T15:15:00+00:00"


@pytest.mark.parametrize("policy,orders_expected,cycles_at_once", [
    ("run", True, 1), ("record", False, 1), ("skip", False, 0)])
def test_missed_slot_policy(tmp_path, policy, orders_expected, cycles_at_once):
    bot = make_bot(tmp_path)
    bot.deps.journal.complete_slot(utc(2025, 3, 3, 14, 0))
    bot.deps.clock.t = utc(2025, 3, 3, 15, 7)
    r = runner(bot, policy)
    r._start()
    (ev,) = [e for e in read(tmp_path, "events.jsonl") if e["event_type"] == "slot_missed"]
    assert ev["missed"] == 4 and ev["policy"] == policy  # 14:15, 14:30, 14:45, 15:00
    perf = read(tmp_path, "performance.jsonl")
    assert len(perf) == cycles_at_once
    if cycles_at_once:
        assert perf[0]["cycle_timestamp"] == "2025-03-03T15:00:00+00:00"
    assert bool(read(tmp_path, "orders.jsonl")) == orders_expected
    assert r.next_slot == utc(2025, 3, 3, 15, 15)


def test_closed_market_slots_are_skipped_and_said_once(tmp_path):
    bot = make_bot(tmp_path)
    bot.deps.clock.t = utc(2025, 3, 7, 20, 50)  # Friday after the last slot before the close
    r = runner(bot, nyse=True)
    r.run(max_cycles=2)
    slots = [p["cycle_timestamp"] for p in read(tmp_path, "performance.jsonl")]
    assert slots == ["2025-03-07T20:45:00+00:00", "2025-03-10T13:30:00+00:00"]
    skipped = [e for e in read(tmp_path, "events.jsonl") if e["event_type"] == "cycle_skipped"]
    assert len(skipped) == 1 and skipped[0]["reason"] == "market_closed"
    assert skipped[0]["next_slot"] == "2025-03-10T13:30:00+00:00"


def test_a_failing_cycle_is_recorded_and_the_scheduler_goes_on(tmp_path):
    bot = make_bot(tmp_path)
    bot.deps.clock.t = utc(2025, 3, 3, 15, 1)
    calls = {"n": 0}
    real_account = bot.deps.broker.account

    def flaky():
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("broker fell over")
        return real_account()

    bot.deps.broker.account = flaky
    assert runner(bot).run(max_cycles=2) == 2
    (err,) = read(tmp_path, "errors.jsonl")
    assert err["event_type"] == "cycle_error" and "broker fell over" in err["error"]
    assert "Traceback" in (tmp_path / "logs" / "production.log").read_text()
    assert len(read(tmp_path, "performance.jsonl")) == 1


def test_stop_ends_the_loop(tmp_path):
    bot = make_bot(tmp_path)
    bot.deps.clock.t = utc(2025, 3, 3, 15, 1)
    r = runner(bot)
    r.stop.set()
    assert r.run() == 0
    assert read(tmp_path, "performance.jsonl") == []


def test_manual_cycle_takes_the_due_slot_once_then_this_second(tmp_path):
    from bot.app.runner import manual_slot
    bot = make_bot(tmp_path)
    bot.deps.clock.t = utc(2025, 3, 3, 15, 7, 12, 5)
    planner = SlotPlanner(parse_schedule("every 15 minutes"), False)
    assert manual_slot(bot, planner) == utc(2025, 3, 3, 15, 0)
    bot.deps.journal.complete_slot(utc(2025, 3, 3, 15, 0))
    assert manual_slot(bot, planner) == utc(2025, 3, 3, 15, 7, 12)


def test_manual_cycle_in_a_closed_market_sends_nothing(tmp_path):
    from bot.app.runner import manual_slot
    bot = make_bot(tmp_path)
    bot.deps.clock.t = utc(2025, 3, 8, 15)  # a Saturday
    assert manual_slot(bot, SlotPlanner(parse_schedule("every 15 minutes"), True)) is None
    (ev,) = read(tmp_path, "events.jsonl")
    assert ev["event_type"] == "cycle_skipped" and ev["next_slot"] == "2025-03-10T13:30:00+00:00"


def _manual_cycles(bot, planner, n):
    from bot.app.runner import guarded_cycle, manual_slot
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        bot.deps.clock.advance(seconds)

    for _ in range(n):
        guarded_cycle(bot, manual_slot(bot, planner, sleep=sleep))
    return slept


def test_six_manual_cycles_in_one_second_each_get_a_slot_of_their_own(tmp_path):
    bot = make_bot(tmp_path)
    bot.deps.clock.t = utc(2025, 3, 3, 15, 7, 12, 5)
    planner = SlotPlanner(parse_schedule("every 15 minutes"), False)
    bot.deps.journal.complete_slot(utc(2025, 3, 3, 15, 0))
    slept = _manual_cycles(bot, planner, 6)  # the fake clock moves only when slept on
    slots = [p["cycle_timestamp"] for p in read(tmp_path, "performance.jsonl")]
    assert slots == [f"2025-03-03T15:07:1{s}+00:00" for s in range(2, 8)]
    assert len(slept) == 5 and all(0 < s <= 1 for s in slept)


def test_a_manual_cycle_after_a_failed_one_in_the_same_second_takes_the_next(tmp_path):
    from bot.app.runner import manual_slot
    bot = make_bot(tmp_path)
    bot.deps.clock.t = utc(2025, 3, 3, 15, 7, 12, 5)
    planner = SlotPlanner(parse_schedule("every 15 minutes"), False)
    bot.deps.journal.complete_slot(utc(2025, 3, 3, 15, 0))
    bot.deps.journal.start_slot(utc(2025, 3, 3, 15, 7, 12))  # began, never completed
    assert manual_slot(bot, planner, sleep=bot.deps.clock.advance) == utc(2025, 3, 3, 15, 7, 13)


def test_a_manual_cycle_behind_the_trail_by_more_than_a_moment_runs_nothing(tmp_path):
    from bot.app.runner import manual_slot
    from bot.core.errors import Halt
    bot = make_bot(tmp_path)
    bot.deps.journal.complete_slot(utc(2025, 3, 3, 15, 0))
    bot.deps.clock.t = utc(2025, 3, 3, 14, 40)  # the clock stepped back 20 minutes
    planner = SlotPlanner(parse_schedule("every 15 minutes"), False)
    with pytest.raises(Halt, match="behind"):
        manual_slot(bot, planner, sleep=bot.deps.clock.advance)
    assert read(tmp_path, "performance.jsonl") == []


def test_a_clock_stepped_back_across_a_restart_never_reruns_a_completed_slot(tmp_path):
    bot = make_bot(tmp_path)
    bot.deps.clock.t = utc(2025, 3, 3, 15, 7)
    assert runner(bot).run(max_cycles=5) == 5  # 15:00 .. 16:00
    bot.deps.clock.t = utc(2025, 3, 3, 15, 7)  # restart with the clock an hour behind
    r = runner(bot)
    assert r.run(max_cycles=1) == 1
    slots = [p["cycle_timestamp"] for p in read(tmp_path, "performance.jsonl")]
    assert len(slots) == len(set(slots)) == 6
    assert slots[-1] == "2025-03-03T16:15:00+00:00"  # the first slot not completed
    orders = read(tmp_path, "orders.jsonl")
    assert len({o["order_id"] for o in orders}) == len(orders)


def test_completed_slots_survive_a_restart_of_the_state_store(tmp_path):
    from bot.adapters.state_store import StateStore
    store = StateStore(tmp_path / "state.sqlite")
    store.complete_slot(utc(2025, 3, 3, 15, 0))
    store.complete_slot(utc(2025, 3, 5, 15, 0))  # run while the clock was two days ahead
    store.close()
    again = StateStore(tmp_path / "state.sqlite")
    assert again.completed(utc(2025, 3, 3, 15, 0)) and again.completed(utc(2025, 3, 5, 15, 0))
    assert not again.completed(utc(2025, 3, 3, 15, 15))  # real time's next slot may still run
    assert not again.completed(utc(2025, 3, 3, 14, 45))  # never run
    assert again.last_slot == utc(2025, 3, 5, 15, 0)


def test_a_state_store_from_before_counts_every_slot_up_to_its_last_as_completed(tmp_path):
    import sqlite3

    from bot.adapters.state_store import StateStore
    db = sqlite3.connect(tmp_path / "state.sqlite")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('last_slot', ?)", (utc(2025, 3, 3, 15, 0).isoformat(),))
    db.commit()
    db.close()
    store = StateStore(tmp_path / "state.sqlite")
    assert store.completed(utc(2025, 3, 3, 15, 0)) and store.completed(utc(2025, 3, 3, 14, 45))
    assert not store.completed(utc(2025, 3, 3, 15, 15))
    store.close()
    assert StateStore(tmp_path / "state.sqlite").completed(utc(2025, 3, 3, 14, 45))


def test_a_forward_jump_and_back_is_recorded_and_trading_follows_the_real_time(tmp_path):
    from datetime import timedelta
    bot = make_bot(tmp_path)
    bot.deps.clock.t = utc(2025, 3, 3, 15, 7)
    mono = {"t": 1000.0}
    jumps = {1: timedelta(days=2), 2: -timedelta(days=2)}  # after the Nth cycle

    def wait(seconds):
        step = max(seconds, 0.001)
        bot.deps.clock.advance(step)
        mono["t"] += step
        bot.deps.clock.t += jumps.pop(r.cycles, timedelta(0))
        time.sleep(0.002)

    bot.deps.trail.record(BotStarted(message="started", pid=1, command="run", broker="simulated",
                                schedule="every 15 minutes", market_hours="always",
                                models="equal_weight", settings_sha256="0", version="0"))
    r = Runner(bot, SlotPlanner(parse_schedule("every 15 minutes"), False), "run",
               threading.Event(), wait=wait, poll_seconds=0.001, max_wait=86400,
               monotonic=lambda: mono["t"])
    assert r.run(max_cycles=4) == 4
    slots = [p["cycle_timestamp"] for p in read(tmp_path, "performance.jsonl")]
    # the clock came back at 15:30 real time: that slot is due and never ran
    assert slots == ["2025-03-03T15:00:00+00:00", "2025-03-05T15:15:00+00:00",
                     "2025-03-03T15:30:00+00:00", "2025-03-03T15:45:00+00:00"]
    steps = [e for e in read(tmp_path, "events.jsonl") if e["event_type"] == "clock_step"]
    assert [round(e["offset_seconds"]) for e in steps] == [172800, -172800]
    stamped = [p["timestamp"] for p in read(tmp_path, "performance.jsonl")]
    assert stamped == sorted(stamped)
    # replay's check owns the slots the clock stepped over to the clock_step: warnings, no gap
    bot.deps.trail.close()
    findings = check(tmp_path / "logs").findings
    assert not [f for f in findings if f.severity == ERROR], findings
    assert any("clock_step" in f.message for f in findings if f.severity == WARNING)


def test_a_small_drift_is_not_a_clock_step(tmp_path):
    bot = make_bot(tmp_path)
    bot.deps.clock.t = utc(2025, 3, 3, 15, 7)
    mono = {"t": 0.0}

    def wait(seconds):
        bot.deps.clock.advance(seconds)
        mono["t"] += max(seconds, 0.001) * 0.999  # 0.1% slow: NTP slewing, not a step
        time.sleep(0.002)

    r = Runner(bot, SlotPlanner(parse_schedule("every 15 minutes"), False), "run",
               threading.Event(), wait=wait, poll_seconds=0.001, max_wait=86400,
               monotonic=lambda: mono["t"])
    assert r.run(max_cycles=3) == 3
    assert not [e for e in read(tmp_path, "events.jsonl") if e["event_type"] == "clock_step"]


def test_a_restart_with_the_trail_ahead_of_the_clock_runs_the_real_time_slot_not_run(tmp_path):
    from datetime import timedelta
    bot = make_bot(tmp_path)
    bot.deps.journal.complete_slot(utc(2025, 3, 3, 15, 0))
    bot.deps.journal.complete_slot(utc(2025, 3, 5, 15, 0))  # run while the clock was two days ahead
    bot.deps.clock.t = utc(2025, 3, 3, 15, 20)
    r = runner(bot)
    assert r.run(max_cycles=2) == 2
    slots = [p["cycle_timestamp"] for p in read(tmp_path, "performance.jsonl")]
    assert slots == ["2025-03-03T15:15:00+00:00", "2025-03-03T15:30:00+00:00"]
    assert bot.deps.journal.last_slot == utc(2025, 3, 5, 15, 0)
    bot.deps.clock.t = utc(2025, 3, 5, 14, 50) + timedelta(seconds=1)
    r._schedule_after(utc(2025, 3, 5, 14, 45))
    assert r.next_slot == utc(2025, 3, 5, 15, 15)  # the completed 15:00 is skipped


@pytest.mark.slow
def test_the_completed_slots_kept_are_bounded_and_the_older_count_as_completed(tmp_path, monkeypatch):
    from datetime import timedelta

    from bot.adapters import state_store as state_module
    from bot.adapters.state_store import StateStore
    monkeypatch.setattr(state_module, "_KEEP_AT_LEAST", 50)
    monkeypatch.setattr(state_module, "_PRUNE_EVERY", 10)
    store = StateStore(tmp_path / "state.sqlite")
    first = utc(2025, 1, 1)
    for day in range(0, 200, 2):  # every other day: 100 slots over 200 days
        store.complete_slot(first + timedelta(days=day))
    rows = store._db.execute("SELECT COUNT(*) FROM completed_slots").fetchone()[0]
    assert 50 <= rows < 60
    assert store.completed(first) and store.completed(first + timedelta(days=3))  # pruned: done
    assert not store.completed(first + timedelta(days=197))  # kept ones are exact
    assert store.completed(first + timedelta(days=198))
    store.close()
    again = StateStore(tmp_path / "state.sqlite")  # the floor is kept too
    assert again.completed(first + timedelta(days=3))
    assert not again.completed(first + timedelta(days=197))


def test_the_runner_records_the_inbox_notes_before_the_cycle_and_before_recovery():
    from audit.records import AccountChecked, CycleCompleted, LockRefused
    from bot.app.runner import check_broker_at_start, guarded_cycle
    from tests.fakes import SLOT

    at = {"refused_at": "2025-03-03T14:59:00.000000+00:00"}
    notes = [[("lock_refused", "another tradebot holds the lock", {"pid": 7, **at})], [],
             [("lock_refused", "and again", {"pid": 8, **at})]]
    bot = make_bot(take_notes=lambda: notes.pop(0))
    assert check_broker_at_start(bot, "broker sim", "adopt", None)
    assert guarded_cycle(bot, SLOT) is not None
    assert guarded_cycle(bot, SLOT.replace(minute=15)) is not None
    kinds = [type(r) for r in bot.deps.trail.records]
    assert kinds[:2] == [LockRefused, AccountChecked]
    assert kinds.index(LockRefused, 1) == kinds.index(CycleCompleted) + 1  # first of the second
    assert [r.message for r in bot.deps.trail.of(LockRefused)] == [
        "another tradebot holds the lock", "and again"]
    assert not notes  # drained once at start-up and once per cycle
