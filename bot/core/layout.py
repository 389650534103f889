"""The names of the files and folders the bot keeps in its data directory (BOT_DATA_DIR) and the
one it keeps beside the trail (BOT_LOG_DIR). Every module takes them from here; nothing else
spells them.

The trail's own files (the streams, their chains, the archive) are named by `audit/`, and so is
the anchors folder (`audit.anchor.ANCHORS_DIR`): `audit/` imports nothing of the bot, so it keeps
its names and this module lists them where the bot needs the whole set.
"""
from __future__ import annotations

from pathlib import Path

# The data directory.
LOCK_FILE = "tradebot.lock"  # one bot per data directory (bot.app.locking.DataDirLock)
ACCOUNT_DB = "paper_account.sqlite"  # the simulated broker's account
STATE_DB = "state.sqlite"  # the order journal and the cross-cycle state
KEY_FILE = "audit.key"  # the generated audit key, when no BOT_AUDIT_KEY(_FILE) is set
HEARTBEAT_FILE = "heartbeat.json"  # how the last cycle went, for `tradebot health`
KILL_SWITCH_FILE = "KILL_SWITCH"  # touched by an operator: the next cycle places no order
INBOX_DIR = "inbox"  # events posted from outside the cycle, recorded by the next one

# The log directory, beside the trail; the readers never look at it.
LOG_LOCK_FILE = ".tradebot.lock"  # one writer per trail (bot.app.locking.LogDirLock)


def data_files() -> tuple[str, ...]:
    """The names the bot writes in the data directory (directories searched too): a symbolic
    link at any of them stops start-up (see `audit.writer.refuse_links`)."""
    # imported here: any audit module loads the record types (30 ms), which the light commands
    # that take a name from here (`tradebot logs`, `--help`) never need
    from audit.anchor import ANCHORS_DIR
    from audit.writer import sqlite_files
    return (LOCK_FILE, *sqlite_files(ACCOUNT_DB), *sqlite_files(STATE_DB), HEARTBEAT_FILE,
            KEY_FILE, ANCHORS_DIR, INBOX_DIR)


def lock_path(data_dir: Path) -> Path:
    return data_dir / LOCK_FILE


def log_lock_path(log_dir: Path) -> Path:
    return log_dir / LOG_LOCK_FILE


def key_path(data_dir: Path) -> Path:
    return data_dir / KEY_FILE


def heartbeat_path(data_dir: Path) -> Path:
    return data_dir / HEARTBEAT_FILE


def inbox_path(data_dir: Path) -> Path:
    return data_dir / INBOX_DIR
