"""The test suite keeps its own rules, read from its source (nothing is imported or run).

- One way to leave the developer's BOT_ settings out of a test: the `no_bot_env` fixture of
  tests/conftest.py in-process, `tests.trails.clean_env()` for a subprocess; no test strips
  them its own way.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
# `k.startswith("BOT_")`, `name.startswith(("BOT_", ...))`: a test filtering the environment itself
STRIPS_BOT_SETTINGS = re.compile(r"""startswith\(\(?(["'])BOT_\1""")


def python_files() -> list[Path]:
    return sorted(TESTS.rglob("*.py"))


def test_only_the_shared_fixture_and_helper_leave_out_bot_settings():
    own_ways = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
                for path in python_files() if path not in (TESTS / "trails.py", Path(__file__).resolve())
                for n, line in enumerate(path.read_text().splitlines(), 1)
                if STRIPS_BOT_SETTINGS.search(line)]
    assert not own_ways, ("use the no_bot_env fixture (tests/conftest.py) or tests.trails.clean_env() "
                          "instead of stripping BOT_ settings here:\n" + "\n".join(own_ways))


def test_the_pattern_sees_a_test_that_strips_them_itself():
    assert STRIPS_BOT_SETTINGS.search('env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}')
    assert STRIPS_BOT_SETTINGS.search("if not k.startswith(('BOT_', 'MAKE'))")
    assert not STRIPS_BOT_SETTINGS.search('assert name.startswith("TRADEBOT_")')
    assert not STRIPS_BOT_SETTINGS.search('if ln.startswith("BOT_BROKER=")')
