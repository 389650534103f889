"""The tradebot command as a user runs it: subprocesses in a scratch directory."""
from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.trails import clean_env


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = clean_env()
    env.update(BOT_LOG_DIR=str(tmp_path / "logs"), BOT_DATA_DIR=str(tmp_path / "data"))
    env.update(extra)
    return env


def tradebot(tmp_path, *args, timeout=60, **extra):
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path,
                          env=env_for(tmp_path, **extra), capture_output=True, text=True,
                          timeout=timeout)


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_every_command_has_help(tmp_path):
    for cmd in ([], ["run"], ["cycle"], ["simulate"], ["config"]):
        proc = tradebot(tmp_path, *cmd, "--help")
        assert proc.returncode == 0 and "usage: tradebot" in proc.stdout


@pytest.mark.slow
def test_config_hides_secrets(tmp_path):
    proc = tradebot(tmp_path, "config", BOT_ALPACA_SECRET_KEY="CANARY-SECRET-42", BOT_SEED="9")
    assert proc.returncode == 0
    assert "BOT_SEED=9" in proc.stdout and "BOT_ALPACA_SECRET_KEY=**********" in proc.stdout
    assert "CANARY" not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_a_bad_setting_stops_before_anything_with_one_line(tmp_path):
    proc = tradebot(tmp_path, "run", BOT_SLIPPAGE_BPS="lots")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "BOT_SLIPPAGE_BPS='lots'" in proc.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "logs").exists()


@pytest.mark.slow
def test_run_one_cycle_then_restart_in_the_same_slot(tmp_path):
    proc = tradebot(tmp_path, "run", "--max-cycles", "1")
    assert proc.returncode == 0, proc.stderr
    assert "cycle_complete" in proc.stdout
    logs = tmp_path / "logs"
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700
    for name in ("orders.jsonl", "trades.jsonl", "performance.jsonl", "errors.jsonl",
                 "decisions.jsonl", "events.jsonl", "production.log"):
        assert stat.S_IMODE((logs / name).stat().st_mode) == 0o600
    for f in (tmp_path / "data").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f
    perf = lines(logs / "performance.jsonl")
    assert len(perf) == 1
    # `cycle` right after: that slot already ran, so this is a manual cycle of its own
    proc = tradebot(tmp_path, "cycle")
    assert proc.returncode == 0, proc.stderr
    orders = lines(logs / "orders.jsonl")
    assert len({o["order_id"] for o in orders}) == len(orders)
    perf = lines(logs / "performance.jsonl")
    assert len(perf) == 2 and perf[0]["cycle_timestamp"] != perf[1]["cycle_timestamp"]
    assert "manual_cycle" in [e["event_type"] for e in lines(logs / "events.jsonl")]


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    proc = tradebot(tmp_path, "cycle", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "dry run for slot" in proc.stdout and "orders:" in proc.stdout
    assert "risk checks" in proc.stdout
    assert not (tmp_path / "logs").exists()


def _runner_after_its_first_cycle(tmp_path: Path) -> subprocess.Popen:
    """`tradebot run` on a 10-second schedule, once its first cycle (which runs at once) is in."""
    bot = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path,
                           env=env_for(tmp_path, BOT_SCHEDULE="every 10 seconds"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    perf = tmp_path / "logs" / "performance.jsonl"
    deadline = time.time() + 30
    while time.time() < deadline and not (perf.exists() and perf.stat().st_size):
        time.sleep(0.1)
    if not (perf.exists() and perf.stat().st_size):
        bot.kill()
        pytest.fail("the first cycle runs at once, but none was recorded within 30 s")
    return bot


@pytest.mark.slow
def test_a_second_runner_is_refused_and_sigterm_stops_the_first_cleanly(tmp_path):
    first = _runner_after_its_first_cycle(tmp_path)
    try:
        second = tradebot(tmp_path, "run")
        assert second.returncode == 3
        assert "already running" in second.stderr and second.stderr.count("\n") == 1
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    events = [e["event_type"] for e in lines(tmp_path / "logs" / "events.jsonl")]
    assert events[:2] == ["audit_key_generated", "bot_started"]  # a first start makes the key
    assert "lock_refused" in events and events[-1] == "bot_stopped"
    assert "SIGTERM" in (tmp_path / "logs" / "production.log").read_text()


@pytest.mark.slow
def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path):
    first = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path,
                             env=env_for(tmp_path), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    lock = tmp_path / "data" / "tradebot.lock"
    deadline = time.time() + 30
    while time.time() < deadline and not (lock.exists() and lock.read_text().strip()):
        time.sleep(0.05)
    first.kill()
    first.wait()
    proc = tradebot(tmp_path, "cycle")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_simulate_validates_dates(tmp_path):
    proc = tradebot(tmp_path, "simulate", "--start", "2024-02-01", "--end", "2024-01-01")
    assert proc.returncode == 2 and "before --start" in proc.stderr
    proc = tradebot(tmp_path, "simulate", "--start", "2024-13-01", "--end", "2024-01-01")
    assert proc.returncode == 2 and "not a date" in proc.stderr


@pytest.mark.slow
def test_dry_run_reads_the_real_account_and_the_kill_switch(tmp_path):
    assert tradebot(tmp_path, "run", "--max-cycles", "1").returncode == 0
    before = (tmp_path / "logs" / "orders.jsonl").read_bytes()
    (tmp_path / "data" / "KILL_SWITCH").touch()
    proc = tradebot(tmp_path, "cycle", "--dry-run", BOT_MODELS="EqualWeightModel_v1")
    assert proc.returncode == 0, proc.stderr
    assert "positions {" in proc.stdout and "positions {}" not in proc.stdout
    assert "kill switch engaged" in proc.stdout
    assert (tmp_path / "logs" / "orders.jsonl").read_bytes() == before


def test_version_comes_from_the_package_metadata(tmp_path):
    from importlib.metadata import version
    proc = tradebot(tmp_path, "--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"tradebot {version('tradebot')}"


@pytest.mark.slow
def test_the_version_is_recorded_at_start(tmp_path):
    from importlib.metadata import version
    assert tradebot(tmp_path, "run", "--max-cycles", "1").returncode == 0
    started = [e for e in lines(tmp_path / "logs" / "events.jsonl") if e["event_type"] == "bot_started"]
    assert started[0]["version"] == version("tradebot")
    assert list(started[0])[-2:] == ["version", "run_id"]  # new fields go after the existing ones


@pytest.mark.slow
def test_each_start_of_run_has_a_run_id_of_its_own(tmp_path):
    for _ in range(2):
        assert tradebot(tmp_path, "cycle").returncode == 0
    ids = [e["run_id"] for e in lines(tmp_path / "logs" / "events.jsonl")
           if e["event_type"] == "bot_started"]
    assert len(ids) == 2 and ids[0] != ids[1] and all(len(i) == 32 for i in ids)


# -- every setting and argument is checked before anything is created ------------------------------

BAD_SETTINGS = [
    ({"BOT_SEED": str(2**64)}, "BOT_SEED"),
    ({"BOT_LOG_MAX_BYTES": str(2**64)}, "BOT_LOG_MAX_BYTES"),
    ({"BOT_STARTING_CASH": "1e-300"}, "BOT_STARTING_CASH"),
    ({"BOT_METRICS_HOST": "999.1.1.1", "BOT_METRICS_PORT": "9109"}, "BOT_METRICS_HOST"),
    ({"BOT_SCHEDUL": "every 10 seconds"}, "did you mean BOT_SCHEDULE"),
    ({"BOT_LOG_DIR": ""}, "BOT_LOG_DIR='' is not valid: it is empty"),
    ({"BOT_DATA_DIR": " "}, "BOT_DATA_DIR=' ' is not valid: it is empty"),
    ({"BOT_LOG_DIR": "state", "BOT_DATA_DIR": "state"}, "are the same directory"),
    ({"BOT_LOG_DIR": "state/logs", "BOT_DATA_DIR": "state"}, "are one inside the other"),
    ({"BOT_LOG_DIR": "/tmp"}, "BOT_LOG_DIR='/tmp' is world-writable"),
]
BAD_DOTENV = [(b"BOT_SHEDULE=every 10 seconds\n", "did you mean BOT_SCHEDULE"),
              (b"BOT_SEED=\xff\n", "UTF-8")]


@pytest.fixture
def empty_dir(no_bot_env, tmp_path):
    """The working directory: empty, no .env, no BOT_ setting."""
    return tmp_path


def _created(base: Path) -> list[str]:
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.name != ".env")


@pytest.mark.parametrize("command", [["run", "--max-cycles", "1"], ["cycle"],
                                     ["simulate", "--start", "2024-01-02", "--end", "2024-01-10"]])
@pytest.mark.parametrize("env,words", BAD_SETTINGS)
def test_a_bad_setting_creates_nothing(empty_dir, monkeypatch, capsys, command, env, words):
    from bot.cli.main import main
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
    assert _created(empty_dir) == []


@pytest.mark.parametrize("command", [["run", "--max-cycles", "1"], ["cycle"], ["config"],
                                     ["simulate", "--start", "2024-01-02", "--end", "2024-01-10"]])
@pytest.mark.parametrize("dotenv,words", BAD_DOTENV)
def test_a_bad_dotenv_creates_nothing(empty_dir, capsys, command, dotenv, words):
    from bot.cli.main import main
    (empty_dir / ".env").write_bytes(dotenv)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
    assert _created(empty_dir) == []


def test_simulate_into_a_world_writable_directory_creates_nothing(empty_dir, capsys):
    from bot.cli.main import main
    shared = empty_dir / "world_writable"
    shared.mkdir()
    shared.chmod(0o1777)
    assert main(["simulate", "--start", "2024-01-02", "--end", "2024-01-10", "--out", str(shared)]) == 2
    err = capsys.readouterr().err
    assert f"the log directory {shared} is world-writable (mode 1777)" in err and err.count("\n") == 1
    assert _created(empty_dir) == ["world_writable"] and stat.S_IMODE(shared.stat().st_mode) == 0o1777


@pytest.mark.parametrize("args,words", [
    (["--start", "1900-01-01", "--end", "1900-03-01"], "1990-01-01"),
    (["--start", "2099-01-01", "--end", "2101-01-05"], "2100-12-31"),
    (["--start", "2024-01-02", "--end", "2024-01-10", "--seed", str(2**64)], "--seed"),
])
def test_simulate_arguments_out_of_range_create_nothing(empty_dir, capsys, args, words):
    from bot.cli.main import main
    with pytest.raises(SystemExit) as info:
        code = main(["simulate", *args])
        raise SystemExit(code)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert _created(empty_dir) == []


@pytest.mark.slow
def test_simulate_says_where_the_audit_key_it_generated_went(tmp_path):
    args = ("simulate", "--start", "2024-01-02", "--end", "2024-01-10", "--out", "sim")
    proc = tradebot(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    key = tmp_path / "data" / "audit.key"
    assert key.is_file()
    assert f"audit key generated: {key}" in proc.stdout
    proc = tradebot(tmp_path, *args[:-1], "sim2")  # the key exists now: nothing to say
    assert proc.returncode == 0 and "audit key generated" not in proc.stdout


def test_config_shows_absolute_paths(tmp_path):
    proc = tradebot(tmp_path, "config", BOT_LOG_DIR="logs", BOT_DATA_DIR="./data")
    assert proc.returncode == 0, proc.stderr
    assert f"BOT_LOG_DIR={tmp_path.resolve() / 'logs'}\n" in proc.stdout
    assert f"BOT_DATA_DIR={tmp_path.resolve() / 'data'}\n" in proc.stdout


@pytest.mark.slow
def test_the_console_gets_a_short_start_summary_and_production_log_everything(tmp_path):
    proc = tradebot(tmp_path, "run", "--max-cycles", "1", BOT_LOG_DIR="logs", BOT_DATA_DIR="data")
    assert proc.returncode == 0, proc.stderr
    console = [line for line in proc.stdout.splitlines() if not line.startswith("tradebot-anchor ")]
    assert max(len(line) for line in console) < 300  # the anchor lines are for machines
    assert len(proc.stdout.splitlines()) - len(console) == 3  # start-up, the cycle, the stop
    assert not any(" settings: " in line for line in console)
    summary = [line for line in console if " started: " in line]
    assert len(summary) == 1
    for words in ("broker sim", "models SectorRotationModel_v1", "schedule every 15 minutes",
                  f"logs {tmp_path.resolve() / 'logs'}", f"data {tmp_path.resolve() / 'data'}"):
        assert words in summary[0]
    log = (tmp_path / "logs" / "production.log").read_text()
    assert f"settings: BOT_BROKER=sim, BOT_LOG_DIR={tmp_path.resolve() / 'logs'}," in log
    assert summary[0].split(" started: ")[1] in log
    key = tmp_path.resolve() / "data" / "audit.key"
    warning = next(line for line in console if "audit_key_generated" in line)
    assert f"an audit key was generated in {key};" in warning


@pytest.mark.slow
def test_sigint_finishes_and_exits_0_with_the_stop_in_the_heartbeat(tmp_path):
    bot = _runner_after_its_first_cycle(tmp_path)
    try:
        bot.send_signal(signal.SIGINT)
        out, err = bot.communicate(timeout=30)
    finally:
        if bot.poll() is None:
            bot.kill()
    assert bot.returncode == 0 and "Traceback" not in err, err
    assert "bot_stopped: tradebot stopped: SIGINT received" in out
    heartbeat = json.loads((tmp_path / "data" / "heartbeat.json").read_text())
    assert heartbeat["stopped"] == "SIGINT received"


def test_a_metrics_port_in_use_stops_before_anything_is_created(empty_dir, monkeypatch, capsys):
    import socket

    from bot.cli.main import main
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        monkeypatch.setenv("BOT_METRICS_HOST", "127.0.0.1")
        monkeypatch.setenv("BOT_METRICS_PORT", str(taken.getsockname()[1]))
        assert main(["cycle"]) == 2
    finally:
        taken.close()
    err = capsys.readouterr().err
    assert "BOT_METRICS_PORT" in err and err.count("\n") == 1
    assert _created(empty_dir) == []


@pytest.mark.slow
def test_a_second_runner_with_metrics_is_told_about_the_first_not_the_port(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    extra = dict(BOT_SCHEDULE="every 10 seconds", BOT_METRICS_HOST="127.0.0.1", BOT_METRICS_PORT=port)
    first = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path,
                             env=env_for(tmp_path, **extra), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        perf = tmp_path / "logs" / "performance.jsonl"
        deadline = time.time() + 30
        while time.time() < deadline and not (perf.exists() and perf.stat().st_size):
            time.sleep(0.1)
        second = tradebot(tmp_path, "run", **extra)
        assert second.returncode == 3 and "already running" in second.stderr, second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)


def test_version_of_a_source_tree_never_installed_comes_from_pyproject(monkeypatch):
    import importlib.metadata
    import tomllib

    from bot import tradebot_version

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    tradebot_version.cache_clear()
    try:
        root = Path(__file__).resolve().parents[3]
        expected = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
        assert tradebot_version() == expected
    finally:
        tradebot_version.cache_clear()


def _all_parsers(parser, path=("tradebot",)):
    import argparse
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_parsers(sub, (*path, name))


def test_every_command_states_its_exit_codes_and_names_the_log_directory_dir():
    from bot.cli.main import build_parser
    parsers = list(_all_parsers(build_parser()))
    assert len(parsers) > 15
    for path, p in parsers[1:]:
        text = p.format_help()
        assert "exit codes:" in text, " ".join(path)
        for action in p._actions:
            if "--logs-dir" in action.option_strings:
                assert action.metavar == "DIR", " ".join(path)
    verify = dict((" ".join(k), v) for k, v in parsers)["tradebot audit verify"]
    assert [a.dest for a in verify._actions if not a.option_strings] == []  # one way: --logs-dir


@pytest.mark.parametrize("args", [["replay", "--bogus"], ["logs", "nav", "--bogus"],
                                  ["report", "-o", "r.html", "--bogus"], ["audit", "verify", "--logs-dir", "l", "x"],
                                  ["simulate", "--start", "2024-01-02", "--end", "2024-02-01", "x"]])
def test_an_argument_error_shows_the_subcommand_usage(tmp_path, args):
    proc = tradebot(tmp_path, *args)
    assert proc.returncode == 2
    head = " ".join(a for a in args[:2] if not a.startswith("-") and a not in ("r.html", "x"))
    if args[0] in ("replay", "report", "simulate"):
        head = args[0]
    assert proc.stderr.startswith(f"usage: tradebot {head} "), proc.stderr
    assert "unrecognized arguments" in proc.stderr.splitlines()[-1]


@pytest.mark.slow
def test_dry_run_names_the_real_kill_switch_file_not_its_scratch_copy(tmp_path):
    """The dry run plans on a scratch copy of the data directory; deleting a file there resumes
    nothing, so the message must name the operator's own KILL_SWITCH, as an absolute path."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "KILL_SWITCH").touch()
    env = {**env_for(tmp_path), "BOT_DATA_DIR": "data"}  # relative to the working directory
    proc = subprocess.run([sys.executable, "-m", "bot", "cycle", "--dry-run"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("kill switch engaged")]
    assert f"kill-switch file {tmp_path / 'data' / 'KILL_SWITCH'} exists" in line, line
    assert "delete it to resume trading" in line


def test_the_parser_loads_no_trail_settings_app_or_wiring():
    """`tradebot --help` and `tradebot logs --help` stay light: building the parser imports no
    audit module (the record types cost 30 ms), no settings (pydantic), no app, wiring or adapter."""
    heavy = ("audit", "models", "pydantic", "pandas", "bot.settings", "bot.app", "bot.wiring",
             "bot.adapters", "bot.core.cycle")
    code = ("import sys; from bot.cli.main import build_parser; build_parser(); "
            f"print(sorted(m for m in sys.modules if m.startswith({heavy!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_dry_run_prints_a_data_problem_of_the_plan(tmp_path):
    """A symbol without data is a problem of the plan, printed with its kind (it was a traceback:
    the typed records have `event_type`, not `kind`)."""
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "SPY.csv").write_text("date,open,high,low,close,volume\n"
                                              "2024-01-02,1,1,1,100,1000\n")
    proc = tradebot(tmp_path, "cycle", "--dry-run", BOT_CSV_DIR="csv", BOT_MODELS="EqualWeightModel_v1",
                    BOT_EQUAL_WEIGHT_SYMBOLS="SPY,QQQ")
    assert proc.returncode == 0, proc.stderr
    assert "  problem: data_error: QQQ: " in proc.stdout
    assert not (tmp_path / "logs").exists() and not (tmp_path / "data").exists()
