"""The import rules the README's *Architecture* section states, checked on the source.

Direct imports only (module level and inside functions), read with `ast`: nothing is imported.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = ("bot.adapters.sim_broker", "bot.adapters.csv_data", "bot.adapters.synthetic_data",
            "bot.adapters.alpaca")
WRITERS = ("audit.trail", "audit.stream", "audit.writer")
CLI = ("bot.cli.main", "bot.cli.logs", "bot.cli.replay", "bot.cli.report")
READ_SIDE = ("bot.review.ledger", "bot.review.check", "bot.review.explain", "bot.review.rerun", "bot.review.report",
             "bot.review.charts", "bot.cli.logs", "bot.cli.replay", "bot.cli.report",
             "audit.files", "audit.query", "audit.jqfmt", "audit.load", "audit.verify")
WATCHERS = ("bot.watch.heartbeat", "bot.watch.prometheus", "bot.watch.alerts")
CYCLE = ("bot.core.cycle", "bot.core.planning", "bot.core.scheduling", "bot.core.reconcile", "bot.core.ports",
         "bot.core.domain", "bot.adapters.state_store")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in ("bot", "audit", "models") for p in (ROOT / pkg).rglob("*.py")}


def imports(path: Path, known: set[str]) -> set[str]:
    """The modules of ours that `path` imports directly (`from bot import x` counts as bot.x
    when x is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names
                         if f"{node.module}.{a.name}" in known)
    return {m for m in found if m.split(".")[0] in ("bot", "audit", "models")}


def under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(importers: tuple[str, ...], forbidden: tuple[str, ...],
               allowed: tuple[str, ...] = ()) -> list[str]:
    mods = all_modules()
    known = set(mods)
    bad = []
    for name, path in sorted(mods.items()):
        if not under(name, importers) or under(name, allowed):
            continue
        bad += [f"{name} imports {m}" for m in sorted(imports(path, known))
                if under(m, forbidden) and not under(m, allowed)]
    return bad


def test_the_scan_sees_real_imports():
    known = set(all_modules())
    assert "bot.adapters.sim_broker" in imports(ROOT / "bot" / "wiring.py", known)
    assert "bot.core.calendar" in imports(ROOT / "bot" / "core" / "cycle.py", known)  # from bot import calendar
    assert violations(("bot.wiring",), ADAPTERS) != []  # the rule below would catch a stray one


def test_models_import_nothing_of_bot_or_audit():
    assert violations(("models",), ("bot", "audit")) == []


def test_audit_imports_nothing_of_bot_or_models():
    assert violations(("audit",), ("bot", "models")) == []


def test_only_bootstrap_imports_an_adapter():
    assert violations(("bot",), ADAPTERS, allowed=("bot.wiring", *ADAPTERS)) == []


def test_the_cycle_imports_no_adapter_command_line_watcher_or_reader():
    assert violations(CYCLE, (*ADAPTERS, *CLI, *WATCHERS, *READ_SIDE, "bot.wiring")) == []


def test_the_read_side_imports_no_writer_and_no_broker():
    assert violations(READ_SIDE, (*WRITERS, "bot.adapters")) == []


def test_the_watchers_import_no_cycle_and_no_adapter():
    assert violations(WATCHERS, ("bot.core.cycle", "bot.app.runner", "bot.core.planning", *ADAPTERS)) == []


def test_the_readers_import_no_cycle_app_wiring_settings_or_adapter():
    """bot/review/ reads the trail after the fact: what it needs from the configuration (the
    re-run's models and data source) comes in from bot.app; its constants live in bot.core."""
    forbidden = ("bot.core.cycle", "bot.app", "bot.wiring", "bot.settings", "bot.adapters", "bot.cli")
    assert violations(("bot.review",), forbidden) == []


def test_the_command_line_imports_no_wiring_adapter_runner_lock_or_watcher():
    """bot/cli/ parses, calls bot.app or bot.review, and prints: start-up and stop (the locks, the
    wiring, the runner, the observers) live in bot.app.live, the dry run in bot.app.dry_run."""
    forbidden = ("bot.wiring", "bot.adapters", "bot.app.runner", "bot.app.locking", "bot.watch")
    assert violations(("bot.cli",), forbidden) == []
