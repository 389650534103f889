"""The README, .env.example and docs/audit-trail.md say what the code does.

docs/audit-trail.md is checked against the code in three ways: every record kind the source can
write has its field table under the right file; the records real runs write (a simulation, and
live cycles that provoke start-up, kill-switch, repair and rotation events) match those tables
field by field, in order, with their JSON types; and its shell recipe for rotated files runs.
Its jq, Python and pandas recipes, and their `tradebot logs` equivalents, are run by
tests/test_end_to_end.py.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from audit.records import PRODUCTION_LOG, STREAMS
from bot.settings import Settings
from tests.trails import clean_env

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "audit-trail.md"
JSON_TYPES = {"string", "number", "integer", "boolean", "object", "array"}
HEADING = re.compile(r"^### `([a-z_]+)` \(([a-z_.]+)\)$", re.M)


def test_every_setting_is_documented():
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    for name in Settings.model_fields:
        var = f"BOT_{name.upper()}"
        assert f"`{var}`" in readme, f"{var} missing from README"
        assert var in example, f"{var} missing from .env.example"


def test_quick_start_shows_the_two_commands():
    quick = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "make run" in quick and "make test" in quick


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_ci_runs_the_checks_before_the_tests_and_a_fresh_clone_has_them():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci.index("make lint") < ci.index("make test")
    lint = (ROOT / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "$(DEV_STAMP)" in lint and "$(BIN)/ruff check" in lint and "$(BIN)/mypy" in lint
    assert "$(BIN)/lint-imports" in lint  # the import contracts of pyproject.toml
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dev = pyproject["project"]["optional-dependencies"]["dev"]
    assert {re.split(r"[=<>]", pin, maxsplit=1)[0] for pin in dev} >= {"ruff", "mypy", "import-linter"}
    assert pyproject["tool"]["importlinter"]["contracts"], "no import contract to check"
    assert "make lint" in (ROOT / "README.md").read_text()


def test_every_make_target_the_readme_names_is_in_the_makefile():
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"^make ([a-z][\w-]*)", readme, re.M)) | set(re.findall(r"`make ([a-z][\w-]*)", readme))
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))
    assert {"run", "test", "test-fast", "lint"} <= named, named
    assert named <= targets, f"named in the README, not in the Makefile: {sorted(named - targets)}"


def test_make_test_runs_everything_and_make_test_fast_leaves_out_the_slow_tests():
    makefile = (ROOT / "Makefile").read_text()
    recipe = {name: body.strip() for name, body in re.findall(r"^([a-z][\w-]*):[^\n]*\n((?:\t[^\n]*\n)+)",
                                                               makefile, re.M)}
    assert recipe["test"] == "$(BIN)/python -m pytest"
    assert recipe["test-fast"] == '$(BIN)/python -m pytest -m "not slow"'
    pytest_options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert any(m.startswith("slow:") for m in pytest_options["markers"])
    assert "--strict-markers" in pytest_options["addopts"]  # a misspelt @pytest.mark.slow fails


def test_the_readme_links_the_trail_reference():
    assert "](docs/audit-trail.md)" in (ROOT / "README.md").read_text()


# ---------------------------------------------------------------- docs/audit-trail.md

class Field:
    def __init__(self, row: list[str]) -> None:
        name, kind, self.unit, self.meaning, self.origin = row
        self.name = name.strip("`")
        self.nullable = kind.endswith(" or null")
        self.json_type = kind.removesuffix(" or null")
        self.optional = "(optional" in self.meaning

    def accepts(self, value: object) -> bool:
        if value is None:
            return self.nullable
        return {"string": lambda v: isinstance(v, str),
                "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
                "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
                "boolean": lambda v: isinstance(v, bool),
                "object": lambda v: isinstance(v, dict),
                "array": lambda v: isinstance(v, list)}[self.json_type](value)


def documented() -> dict[tuple[str, str], list[Field]]:
    """(stream, event_type) -> the doc's fields in file order, from each `### `kind` (file)` table."""
    text = DOC.read_text()
    tables = {}
    for m in HEADING.finditer(text):
        rows = []
        for line in text[m.end():].lstrip("\n").splitlines()[2:]:
            if not line.startswith("| `"):
                break
            rows.append([c.strip() for c in line.strip().strip("|").split(" | ")])
        assert (m.group(2), m.group(1)) not in tables, f"{m.group(1)} documented twice"
        tables[(m.group(2), m.group(1))] = [Field(r) for r in rows]
    return tables


def test_every_table_has_the_agreed_shape():
    text = DOC.read_text()
    for m in HEADING.finditer(text):
        assert text[m.end():].lstrip("\n").startswith(
            "| field | type | unit | meaning | from |\n|---|---|---|---|---|\n"), m.group(0)
    tables = documented()
    assert len(tables) >= 30
    for (stream, kind), fields in tables.items():
        assert stream in STREAMS, f"{kind}: {stream} is not a stream"
        assert [f.name for f in fields[:2]] == ["timestamp", "event_type"], kind
        names = [f.name for f in fields]
        assert len(names) == len(set(names)), f"{kind}: a field listed twice"
        for f in fields:
            assert f.json_type in JSON_TYPES and f.origin in ("guide", "tradebot"), (kind, f.name)
        origins = [f.origin for f in fields]
        assert origins == sorted(origins), f"{kind}: the guide's fields come first"


def test_the_doc_describes_every_file_and_has_a_section_per_stream():
    text = DOC.read_text()
    files = text.split("## The files", 1)[1].split("\n## ", 1)[0]
    for name in (*STREAMS, PRODUCTION_LOG):
        assert f"| `{name}` |" in files, f"{name} missing from the doc's file table"
    for name in STREAMS:
        assert f"\n## {name}\n" in text, f"no section for {name}"


def test_the_index_of_record_types_matches_the_tables():
    text = DOC.read_text()
    index = text.split("## Record types", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z_]+)` \| `([a-z_.]+)` \|", index, flags=re.M))
    assert listed == {(kind, stream) for stream, kind in documented()}


def test_the_doc_tables_are_the_declared_format():
    """docs/audit-trail.md and audit/format.py (the field lists generated from the record types,
    which the writers' tests and `tradebot audit check` use) list the same kinds, and for each
    the same fields in the same order, with the same JSON type, nullability, optionality and
    origin (guide or ours)."""
    from audit.format import RECORD_FORMATS
    declared = {(stream, kind): specs for stream, kinds in RECORD_FORMATS.items()
                for kind, specs in kinds.items()}
    tables = documented()
    assert len(declared) >= 30
    assert sorted(set(declared) - set(tables)) == [], "declared kinds missing from the doc"
    assert sorted(set(tables) - set(declared)) == [], "documented kinds nothing declares"
    for key, specs in declared.items():
        doc = [(f.name, f.json_type, f.nullable, f.optional, f.origin) for f in tables[key]]
        code = [(s.name, s.json_type, s.nullable, s.optional, s.origin) for s in specs]
        assert doc == code, f"{key}: the doc's fields differ from audit/format.py"


def check_against_the_doc(log_dir: Path) -> set[tuple[str, str]]:
    """Every record of every stream in `log_dir` has its doc table's fields, in the doc's order,
    with the doc's types, and nothing else. Returns the (stream, kind) pairs seen."""
    tables = documented()
    seen = set()
    for stream in STREAMS:
        path = log_dir / stream
        for n, line in enumerate(path.read_text().splitlines(), 1):
            rec = json.loads(line)
            where = f"{stream}:{n} ({rec.get('event_type')})"
            fields = tables.get((stream, rec.get("event_type")))
            assert fields is not None, f"{where}: not documented"
            seen.add((stream, rec["event_type"]))
            expected = [f.name for f in fields if not f.optional or f.name in rec]
            assert list(rec) == expected, f"{where}: fields {list(rec)}, the doc says {expected}"
            for f in fields:
                if f.name in rec:
                    assert f.accepts(rec[f.name]), f"{where}: {f.name}={rec[f.name]!r} is not {f.json_type}"
    return seen


def test_a_simulated_trail_matches_the_doc_field_by_field(sim_trail):
    seen = check_against_the_doc(sim_trail)
    assert {("orders.jsonl", "order_submitted"), ("trades.jsonl", "trade_executed"),
            ("performance.jsonl", "cycle_complete"), ("decisions.jsonl", "model_decision"),
            ("events.jsonl", "simulation_started"), ("events.jsonl", "account_checked")} <= seen


def _cycle(base: Path, **settings: str) -> None:
    env = clean_env(BOT_LOG_DIR=str(base / "logs"), BOT_DATA_DIR=str(base / "data"), **settings)
    proc = subprocess.run([sys.executable, "-m", "bot", "cycle"], cwd=base, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_live_start_up_kill_switch_repair_and_rotation_records_match_the_doc(tmp_path):
    _cycle(tmp_path, BOT_MODELS="EqualWeightModel_v1")
    logs = tmp_path / "logs"
    (tmp_path / "data" / "KILL_SWITCH").touch()
    with open(logs / "decisions.jsonl", "ab") as f:
        f.write(b'{"torn": ')                                # a crash in the middle of a line
    os.rename(logs / "orders.jsonl", logs / "orders.jsonl.1")  # rotated while stopped
    _cycle(tmp_path, BOT_MODELS="EqualWeightModel_v1=0.5,SectorRotationModel_v1=0.5")
    seen = check_against_the_doc(logs)
    assert {("events.jsonl", k) for k in ("bot_started", "bot_stopped", "account_checked",
                                          "audit_key_generated", "manual_cycle",
                                          "kill_switch_engaged", "repair", "rotation")} <= seen


ROTATED_SECTION = "## Reading rotated files"


def test_the_recipe_for_rotated_files_reads_every_file_oldest_first(tmp_path):
    text = DOC.read_text()
    section = text.split(ROTATED_SECTION, 1)[1].split("\n## ", 1)[0]
    (recipe,) = re.findall(r"^```bash\n(.*?)^```$", section, flags=re.S | re.M)
    logs = tmp_path / "logs"
    logs.mkdir()
    values = {"trades.jsonl.10.gz": 1, "trades.jsonl.9.gz": 20, "trades.jsonl.2": 300,
              "trades.jsonl.1": 4000, "trades.jsonl": 50000}
    for name, value in values.items():
        data = b'{"value":%d}\n' % value
        (logs / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    (logs / "trades.jsonl.chain").write_text('{"type":"checkpoint"}\n')  # not a record
    (logs / "trades.jsonl.torn-20251118T143000Z").write_text('{"value": 9')  # nor this
    proc = subprocess.run(["bash", "-c", recipe], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == sum(values.values())
    order = subprocess.run(["bash", "-c", recipe.split("segments trades.jsonl")[0]
                            + "segments trades.jsonl"], cwd=tmp_path, capture_output=True, text=True)
    assert order.stdout.split() == [f"logs/{name}" for name in values]


@pytest.mark.parametrize("heading", ["## Querying with jq", "## Querying with Python",
                                     "## Loading into pandas", ROTATED_SECTION])
def test_every_recipe_path_is_logs(heading):
    section = DOC.read_text().split("\n" + heading + "\n", 1)[1].split("\n## ", 1)[0]
    assert "production/docker" not in section and "logs/" in section
