"""The data directory's file names have one home, `bot.core.layout`: no other module of the bot
spells one of them as a string of its own (a second spelling is how two modules drift apart)."""
from __future__ import annotations

import ast
from pathlib import Path

from audit.writer import sqlite_files
from bot.core import layout

BOT = Path(__file__).resolve().parents[3] / "bot"
NAMES = {layout.LOCK_FILE, layout.LOG_LOCK_FILE, layout.KEY_FILE, layout.HEARTBEAT_FILE,
         layout.KILL_SWITCH_FILE, layout.INBOX_DIR, *sqlite_files(layout.ACCOUNT_DB),
         *sqlite_files(layout.STATE_DB)}


def spelled_names(path: Path) -> list[tuple[int, str]]:
    """(line, name) for each string constant in `path` that is one of the layout's names."""
    tree = ast.parse(path.read_text(), str(path))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in NAMES]


def test_no_module_but_layout_spells_a_data_file_name() -> None:
    found = {f"{path.relative_to(BOT.parent)}:{line}: {name!r}"
             for path in sorted(BOT.rglob("*.py")) if path.name != "layout.py"
             for line, name in spelled_names(path)}
    assert not found, "take these names from bot.core.layout: " + ", ".join(sorted(found))


def test_the_scan_sees_a_spelled_name(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(f'LOCK = {layout.LOCK_FILE!r}\n"""a docstring naming {layout.LOCK_FILE}"""\n')
    assert spelled_names(module) == [(1, layout.LOCK_FILE)]


def test_data_files_lists_every_name_the_bot_writes_in_the_data_directory() -> None:
    files = set(layout.data_files())
    assert NAMES - {layout.LOG_LOCK_FILE, layout.KILL_SWITCH_FILE} <= files  # the operator's file is read only
    assert layout.LOG_LOCK_FILE not in files  # it lives beside the trail
