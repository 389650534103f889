"""The README's examples of simulate, debugging a run, report and backup work as shown, on the
trail of the README's own `simulate --out` command (a newcomer's first trail)."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trails import ROOT, clean_env

SIM_DIR = "/tmp/sim20"  # where the README's simulate command writes; the test uses its own


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    return text.split(title, 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]


def _blocks(section: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced block, in order."""
    return re.findall(r"```(\w*)\n(.*?)```", section, re.S)


def _commands(body: str) -> list[list[str]]:
    out = []
    for line in body.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == [".venv/bin/tradebot"]:
            out.append(words[1:])
    return out


@pytest.fixture(scope="module")
def readme_trail(tmp_path_factory):
    """The README's simulate command, run as written but into a private directory."""
    base = tmp_path_factory.mktemp("readme")
    sim = [c for _lang, body in _blocks(_section("### Debugging a run")) for c in _commands(body)
           if c[0] == "simulate"]
    assert sim == [["simulate", "--start", "2005-01-01", "--end", "2024-12-31", "--out", SIM_DIR]]
    logs = base / "sim20"
    proc = _run(base, logs, [a.replace(SIM_DIR, str(logs)) for a in sim[0]])
    assert proc.returncode == 0, proc.stderr
    return base, logs


def _run(cwd: Path, logs: Path, argv: list[str]) -> subprocess.CompletedProcess:
    env = clean_env(PYTHONPATH=str(ROOT), BOT_LOG_DIR=str(logs), BOT_DATA_DIR=str(cwd / "data"))
    return subprocess.run([sys.executable, "-m", "bot", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_every_debugging_example_runs_and_shows_what_the_readme_shows(readme_trail):
    base, logs = readme_trail
    blocks = _blocks(_section("### Debugging a run"))
    ran = compared = 0
    for i, (lang, body) in enumerate(blocks):
        if lang != "bash":
            continue
        commands = _commands(body)
        for n, argv in enumerate(commands):
            if argv[0] == "simulate":
                continue
            proc = _run(base, logs, [a.replace(SIM_DIR, str(logs)) for a in argv])
            assert proc.returncode == 0, (argv, proc.stderr)
            assert "Traceback" not in proc.stderr
            ran += 1
            shown = blocks[i + 1][1] if i + 1 < len(blocks) and blocks[i + 1][0] == "" else None
            if shown is not None and n == len(commands) - 1:  # the output shown right after it
                assert proc.stdout.replace(str(logs), SIM_DIR) == shown, argv
                compared += 1
    assert ran >= 7 and compared == 2


@pytest.mark.slow
def test_the_query_table_examples_run_on_that_trail(readme_trail):
    base, logs = readme_trail
    table = _section("### Debugging a run").split("| `tradebot logs ...` |", 1)[1].split("\n\n")[0]
    queries = re.findall(r"^\| `([^`]+)` \|", table, re.M)
    assert len(queries) == 9
    for q in queries:
        proc = _run(base, logs, ["logs", *shlex.split(q)])
        assert proc.returncode == 0 and (proc.stdout or q.startswith("errors")), (q, proc.stderr)
