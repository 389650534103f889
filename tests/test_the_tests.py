"""The test suite keeps its own rules, read from its source (nothing is imported or run).

- One way to leave the developer's BOT_ settings out of a test: the `no_bot_env` fixture of
  tests/conftest.py in-process, `tests.trails.clean_env()` for a subprocess; no test strips
  them its own way.
- No test module imports another test module (in its code or in a script it runs): what two
  test modules share lives in a helper module (tests/fakes.py, tests/trails.py, tests/guide.py,
  ...), whose name does not start with `test_`.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"


# -- one way to leave out the developer's BOT_ settings -------------------------------------------
# `k.startswith("BOT_")`, `name.startswith(("BOT_", ...))`: a test filtering the environment itself
STRIPS_BOT_SETTINGS = re.compile(r"""startswith\(\(?(["'])BOT_\1""")


def test_only_the_shared_fixture_and_helper_leave_out_bot_settings():
    own_ways = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
                for path in sorted(TESTS.rglob("*.py"))
                if path not in (TESTS / "trails.py", Path(__file__).resolve())
                for n, line in enumerate(path.read_text().splitlines(), 1)
                if STRIPS_BOT_SETTINGS.search(line)]
    assert not own_ways, ("use the no_bot_env fixture (tests/conftest.py) or tests.trails.clean_env() "
                          "instead of stripping BOT_ settings here:\n" + "\n".join(own_ways))


def test_the_pattern_sees_a_test_that_strips_them_itself():
    assert STRIPS_BOT_SETTINGS.search('env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}')
    assert STRIPS_BOT_SETTINGS.search("if not k.startswith(('BOT_', 'MAKE'))")
    assert not STRIPS_BOT_SETTINGS.search('assert name.startswith("TRADEBOT_")')
    assert not STRIPS_BOT_SETTINGS.search('if ln.startswith("BOT_BROKER=")')


# -- no test module imports another -------------------------------------------------------------
# in the text of a script a test runs: `from tests.x import y`, `import tests.x`
SCRIPT_IMPORT = re.compile(r"^\s*(?:from\s+(tests(?:\.\w+)*)\s+import\s+([\w ,()]+)|import\s+(tests(?:\.\w+)+))",
                           re.M)
def is_test_module(name: str) -> bool:
    return name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_")


def imported_modules(source: str) -> set[str]:
    """The modules under tests/ that `source` imports (`from tests import x` counts x): in its
    code, and in any string of it (a script it runs in a subprocess)."""
    found = set()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for package, names, module in SCRIPT_IMPORT.findall(node.value):
                found.add(module or package)
                found.update(f"{package}.{name}" for name in re.findall(r"\w+", names) if package)
    return {name for name in found if name.startswith("tests.")}


def test_no_test_module_imports_another():
    found = []
    for path in sorted(TESTS.rglob("test_*.py")):
        if path == Path(__file__).resolve():
            continue  # its own examples below
        where = path.relative_to(ROOT).as_posix()
        for name in sorted(imported_modules(path.read_text())):
            if is_test_module(name):
                found.append(f"{where} imports {name}")
    assert not found, ("move what they share to a helper module (not named test_*), such as "
                       "tests/fakes.py:\n" + "\n".join(found))


def test_the_scan_sees_each_way_of_importing_a_test_module():
    script = "import sys\nfrom tests.audit.test_tamper_writer import make, write\n"
    source = "\n".join([
        "from tests.bot.core.test_cycle import SLOT, make_bot",
        "from tests import test_end_to_end as guide",
        "import tests.audit.test_schema",
        "from tests.fakes import FakeClock",
        f"SCRIPT = {script!r}",
    ])
    assert {name for name in imported_modules(source) if is_test_module(name)} == {
        "tests.bot.core.test_cycle", "tests.test_end_to_end", "tests.audit.test_schema",
        "tests.audit.test_tamper_writer"}
