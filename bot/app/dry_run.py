"""`tradebot cycle --dry-run`: plan the latest due slot on a scratch copy of the account and
state; nothing is sent and nothing is recorded (the scratch trail is thrown away)."""
from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from bot.core.clock import Clock
from bot.core.cycle import CyclePlan, KillSwitch, plan_cycle
from bot.core.layout import ACCOUNT_DB, KILL_SWITCH_FILE, STATE_DB
from bot.core.scheduling import SlotPlanner, parse_schedule
from bot.settings import Settings
from bot.wiring import build_bot


@dataclass(frozen=True)
class DryRun:
    slot: datetime
    planned: CyclePlan


def dry_run(settings: Settings, clock: Clock) -> DryRun:
    """The plan of the latest due slot (now, outside the schedule) as the configured bot would
    make it from the real account and state, read through consistent copies."""
    planner = SlotPlanner(parse_schedule(settings.schedule), settings.effective_market_hours == "nyse")
    slot = planner.latest_due(clock.now()) or clock.now().replace(microsecond=0)
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data"
        data.mkdir()
        for name in (ACCOUNT_DB, STATE_DB):
            if (settings.data_dir / name).exists():
                copy_database(settings.data_dir / name, data / name)
        bot = build_bot(settings.model_copy(update={"data_dir": data, "metrics_port": None,
                                                    "alert_webhook_url": None}), clock, live=True,
                        log_dir=Path(scratch) / "logs")
        # the operator's own file, read where it is: its message names the file to delete
        bot.policy = replace(bot.policy, kill_switch=KillSwitch(
            settings.kill_switch, (settings.data_dir / KILL_SWITCH_FILE).absolute()))
        planned = plan_cycle(bot.deps, bot.policy, slot)
        bot.deps.journal.close()
        bot.deps.broker.close()
    return DryRun(slot, planned)


def copy_database(path: Path, dst: Path) -> None:
    """A consistent copy of a live SQLite database (the running bot may be writing it)."""
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with sqlite3.connect(dst) as out:
        src.backup(out)
    src.close()
