"""`tradebot health` (the container's HEALTHCHECK) and the start-up writability check.

Health reads the heartbeat file the cycle writes (bot/watch/heartbeat.py) and looks at the log and
data directories. It never calls the broker, never writes to the trail and never creates
anything; the only files it opens are the heartbeat (to read) and the trail's files (opened for
append and closed again without writing, to prove they can be written).
"""
from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

from audit.chain import CHAIN_SUFFIX
from audit.records import PRODUCTION_LOG, STREAMS
from audit.timestamps import format_slot
from bot.core.errors import ConfigError
from bot.core.layout import heartbeat_path
from bot.core.scheduling import SlotPlanner, parse_schedule
from bot.settings import Settings

_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class HealthReport:
    """`ok` only when `reasons` is empty; `details` say what was seen when healthy. `state`:
    "healthy", "starting" (no cycle yet in this process, its first slot still ahead: ok),
    "stopped" (a clean stop was written: not ok) or "unhealthy"."""

    ok: bool
    reasons: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    state: str = "healthy"


def _who() -> str:
    return f"UID {os.geteuid()}"


def _parse_time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text)).astimezone(timezone.utc)
    except (TypeError, ValueError):
        return None


def format_age(seconds: float) -> str:
    """`45s`, `3m 12s`, `2h 05m`, `3d 4h`; a negative age (clock skew) reads as `0s`."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def read_heartbeat(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(document, None) or (None, why it cannot be used)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, (f"no heartbeat at {path}: no cycle has finished with this data directory "
                      "(is the bot running, and has its first cycle run?)")
    except OSError as exc:
        return None, f"cannot read the heartbeat {path} as {_who()}: {exc.strerror or exc}"
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, f"the heartbeat {path} is not valid JSON: the bot rewrites it after the next cycle"
    if not isinstance(doc, dict):
        return None, f"the heartbeat {path} is not a JSON object"
    return doc, None


def _check_schedule(settings: Settings, doc: dict[str, Any], now: datetime,
                    reasons: list[str], details: list[str]) -> None:
    """The last cycle's slot must cover the latest due slot, unless that slot's cycle may still
    be running (within grace + fill timeout of it, with the slot before it covered)."""
    slot = _parse_time(doc.get("slot"))
    if slot is None:
        if "halted" not in doc:  # a halt before any cycle is reported as the halt
            reasons.append("the heartbeat names no cycle slot: no cycle has finished yet")
        return
    finished = _parse_time(doc.get("finished"))
    planner = SlotPlanner(parse_schedule(settings.schedule),
                          settings.effective_market_hours == "nyse")
    due = planner.latest_due(now)
    ago = f" (finished {format_age((now - finished).total_seconds())} ago)" if finished else ""
    ahead = slot > now  # run while the clock was ahead: it covers no slot of the real time
    if ahead:
        ago = ", ahead of the clock (was it stepped back?),"
    if due is None or (due <= slot and not ahead):
        return
    window = timedelta(seconds=settings.health_grace + settings.fill_timeout)
    previous = planner.latest_due(due - _TICK)
    if now <= due + window and (previous is None or previous <= slot or ahead):
        since = format_age((now - due).total_seconds())
        details.append(f"slot {format_slot(due)} is due since {since}: its cycle may still be running")
        return
    late = due if now > due + window or previous is None else previous
    reasons.append(
        f"stale: the last cycle was slot {format_slot(slot)}{ago} but slot {format_slot(late)} was due "
        f"{format_age((now - late).total_seconds())} ago (BOT_SCHEDULE={settings.schedule!r}, "
        f"{settings.effective_market_hours} market hours, grace {settings.health_grace:g}s "
        f"+ fill timeout {settings.fill_timeout:g}s)")


def _starting(settings: Settings, doc: dict[str, Any], now: datetime) -> str | None:
    """"starting, ..." while this process has run no cycle yet and its first slot (or the first
    cycle, running since the start) is within grace + fill timeout; else None."""
    started = _parse_time(doc.get("process_started"))
    finished = _parse_time(doc.get("finished"))
    if started is None or (finished is not None and finished >= started) or doc.get("halted"):
        return None
    window = timedelta(seconds=settings.health_grace + settings.fill_timeout)
    first = _parse_time(doc.get("next_slot"))
    if first is not None:
        if now > first + window:
            return None
        when = (f"in {format_age((first - now).total_seconds())}" if now < first else
                f"due {format_age((now - first).total_seconds())} ago")
        return f"starting, first slot at {format_slot(first)} ({when})"
    if now > started + window:
        return None
    return (f"starting, the first cycle is running (started "
            f"{format_age((now - started).total_seconds())} ago)")


def _stopped(doc: dict[str, Any], now: datetime) -> str | None:
    if not doc.get("stopped"):
        return None
    at = doc.get("stopped_at", "?")
    when = _parse_time(at)
    ago = f" ({format_age((now - when).total_seconds())} ago)" if when else ""
    return f"the bot stopped at {at}{ago}: {doc['stopped']}"


def _check_cycle(doc: dict[str, Any], reasons: list[str]) -> None:
    slot = doc.get("slot", "?")
    if doc.get("halted"):
        reasons.append(f"trading halted: {doc['halted']}")
    if "slot" not in doc:
        return
    if doc.get("ok") is not True:
        reasons.append(f"the last cycle (slot {slot}) failed: {doc.get('error') or 'no reason given'}")
    elif doc.get("broker_ok") is not True:
        reasons.append(f"the broker did not answer at the last cycle (slot {slot}): "
                       f"{doc.get('error') or 'no reason given'}")


def _dir_problem(path: Path, what: str) -> str | None:
    if not path.is_dir():
        return f"the {what} {path} does not exist (or is not a directory)"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"the {what} {path} is not writable by {_who()}"
    return None


def _file_problem(path: Path) -> str | None:
    """None when `path` is missing or can be opened for append (nothing is written)."""
    if not path.exists():
        return None
    if not os.access(path, os.W_OK):
        return f"the audit file {path} is not writable by {_who()}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    except OSError as exc:
        return f"the audit file {path} cannot be opened for writing by {_who()}: {exc.strerror or exc}"
    os.close(fd)
    return None


def _check_files(settings: Settings, reasons: list[str]) -> None:
    problem = _dir_problem(settings.log_dir, "log directory")
    if problem:
        reasons.append(problem)
    else:
        for name in (*STREAMS, PRODUCTION_LOG):
            for path in (settings.log_dir / name, settings.log_dir / (name + CHAIN_SUFFIX)):
                problem = _file_problem(path)
                if problem:
                    reasons.append(problem)
    problem = _dir_problem(settings.data_dir, "data directory")
    if problem:
        reasons.append(problem)


def check_health(settings: Settings, now: datetime) -> HealthReport:
    """Healthy when the heartbeat shows a recent completed cycle whose broker answered, no halt,
    and the trail's files and the data directory can be written."""
    reasons: list[str] = []
    details: list[str] = []
    state = "healthy"
    doc, problem = read_heartbeat(heartbeat_path(settings.data_dir))
    if doc is None:
        reasons.append(problem or "no heartbeat")
    elif (stopped := _stopped(doc, now)) is not None:
        state = "stopped"
        reasons.append(stopped)
        if doc.get("halted"):
            reasons.append(f"trading halted: {doc['halted']}")
    elif (starting := _starting(settings, doc, now)) is not None:
        state = "starting"
        details.append(starting)
    else:
        _check_cycle(doc, reasons)
        _check_schedule(settings, doc, now, reasons, details)
        finished = _parse_time(doc.get("finished"))
        if finished is not None and "slot" in doc and state == "healthy":
            nav = doc.get("nav")
            nav_text = f"nav {nav:,.2f}" if isinstance(nav, (int, float)) else "nav unknown"
            details.insert(0, f"last cycle {doc['slot']} finished "
                              f"{format_age((now - finished).total_seconds())} ago ({nav_text})")
    _check_files(settings, reasons)
    if reasons and state != "stopped":
        state = "unhealthy"
    return HealthReport(not reasons, reasons, details, state)


def health_main(settings: Settings, now: datetime | None = None) -> int:
    """Print one line: `healthy: ...` or `starting, first slot at ...` (exit 0), `stopped: ...`
    or `unhealthy: reason; reason` (exit 1; never 2: Docker reserves it)."""
    try:
        report = check_health(settings, now or datetime.now(timezone.utc))
    except Exception as exc:  # noqa: BLE001 - a health check answers, whatever happens
        print(f"unhealthy: the health check failed: {type(exc).__name__}: {exc}")
        return 1
    if report.state == "starting":
        print(report.details[0])
        return 0
    if report.ok:
        print("healthy: " + (report.details[0] if report.details else "all checks passed"))
        return 0
    print(f"{report.state}: " + "; ".join(report.reasons))
    return 1


# -- start-up check ---------------------------------------------------------------------------

def _name(uid: int, gid: int) -> str:
    """`UID 1000 (GID 1000)`; names are left out (a container's /etc/passwd is not the host's)."""
    return f"UID {uid} (GID {gid})"


def _owner_and_mode(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return "its owner and mode cannot be read"
    return f"it belongs to UID {st.st_uid} with mode {stat.S_IMODE(st.st_mode):04o}"


def check_writable(path: Path, what: str) -> None:
    """Create `path` (and parents) if missing and prove it is writable by creating and removing
    a temporary file; else a ConfigError of one line naming the directory, the UID/GID this
    process runs as, the directory's owner and mode, and the fix."""
    uid, gid = os.geteuid(), os.getegid()
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:
        raise ConfigError(f"the {what} {path} is a file, not a directory: remove it or point "
                          "the setting at a directory") from None
    except OSError as exc:
        parent = _existing_parent(path)
        raise ConfigError(
            f"the {what} {path} cannot be created by {_name(uid, gid)} ({exc.strerror or exc}): "
            f"its parent {parent} {_owner_and_mode(parent).removeprefix('it ')}; create it and "
            f"{_ownership_fix(parent, what, uid, gid)}") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tradebot-write-test-", dir=path)
    except OSError as exc:
        if exc.errno == 30:  # EROFS
            raise ConfigError(f"the {what} {path} is on a read-only file system: mount a writable "
                              "volume or bind mount there") from None
        if isinstance(exc, PermissionError):
            raise ConfigError(f"the {what} {path} is not writable by {_name(uid, gid)}: "
                              f"{_owner_and_mode(path)}; {_ownership_fix(path, what, uid, gid)}"
                              ) from None
        raise ConfigError(f"the {what} {path} cannot be written by {_name(uid, gid)}: "
                          f"{exc.strerror or exc}: check the disk and the mount") from None
    os.close(fd)
    os.unlink(tmp)


def _ownership_fix(path: Path, what: str, uid: int, gid: int) -> str:
    """chown to us; or, when the directory belongs to another user (not root: the bot never runs
    as root), run the container as that user. A directory owned by root is the usual case of a
    clone made as root on a server: the Docker mount is the clone's logs/."""
    chown = f"chown it to {uid}:{gid} on the host"
    try:
        owner = path.stat().st_uid
    except OSError:
        owner = None
    if owner == 0:
        docker = f" (Docker: `sudo chown {uid}:{gid} logs` in the clone)" if what == "log directory" else ""
        return f"{chown}{docker}; tradebot does not run as root"
    return (f"{chown}, or run the container as the directory's owner (TRADEBOT_UID and "
            "TRADEBOT_GID in docker/.env, then `docker compose build`)")


def _existing_parent(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p

