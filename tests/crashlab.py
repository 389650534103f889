"""Crash lab: run the real `tradebot run` as a subprocess, `kill -9` it, restart it, and check
that the audit trail and the paper account still agree.

Used by tests/test_crash_recovery.py (a few kills) and benchmarks/kill_restart.py (hundreds).

`check_trail(tmp)` returns every violated invariant as a message starting with its letter
("b: ..."), an empty list when all hold:

  a  every line of every *.jsonl (and rotated `name.N` / `name.N.gz`) is a JSON object and every
     file ends with a newline (a torn tail must have been repaired by the restart)
  b  orders.jsonl: order ids unique; one order_submitted line per broker order not rejected;
     no order line without a broker order (or for a rejected one)
  c  trades.jsonl: fill ids unique; one trade_executed line per broker fill with the same
     quantity and price; no trade line without a broker fill
  d  performance.jsonl: a slot completes once (cycle_timestamp unique)
  e  decisions.jsonl: (cycle_timestamp, model) unique; every completed cycle has its decisions
  f  errors.jsonl: no two order_error lines for one order id
  g  trade lines summed per symbol (buy +, sell -) equal the broker's positions table
  h  no order sent twice: one broker_order_id per order id in orders.jsonl, at most one order
     per (cycle_timestamp, model, symbol, side)
  i  every order the broker rejected has exactly one order_error line (not lost)
  j  no cycle_error: the lab injects nothing but kills, so every cycle must carry on
  k  (strict=True only) no `reconciliation` record: nothing but the bot trades this account, so
     the broker and the trail never really differ

The check may run while the bot is running (the benchmark checks after every restart): the
broker and the trail are compared only for orders whose slot (from the client order id
`tb-<YYYYmmddTHHMMSSZ>-...`) is at or before the latest completed cycle; later ones may be in
flight. Positions are compared the same way (the broker's positions less its fills of later
slots, read in one SQLite snapshot). Run it when at least one cycle has completed since the
last kill.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tests.trails import clean_env

LAB_SETTINGS = {
    "BOT_SCHEDULE": "every 1 second",
    "BOT_MARKET_HOURS": "always",
    "BOT_MODELS": "SectorRotationModel_v1=0.5,EqualWeightModel_v1=0.5",
    "BOT_REBALANCE_BAND": "0",
    "BOT_MIN_TRADE_VALUE": "0",
    "BOT_FILL_TIMEOUT": "2",
}
STREAM_NAMES = ("orders.jsonl", "trades.jsonl", "performance.jsonl", "errors.jsonl",
                "decisions.jsonl", "events.jsonl")
_CID_SLOT = re.compile(r"^tb-(\d{8}T\d{6})(?:\.(\d{1,6}))?Z-")
_TOL = 1e-6
_NAN = float("nan")


# -- processes ----------------------------------------------------------------------------

def log_dir(tmp: Path) -> Path:
    return Path(tmp) / "logs"


def data_dir(tmp: Path) -> Path:
    return Path(tmp) / "data"


def account_db(tmp: Path) -> Path:
    return data_dir(tmp) / "paper_account.sqlite"


def env_for(tmp: Path, **overrides: str) -> dict[str, str]:
    """A clean environment (no inherited BOT_*) for a lab in `tmp`; `overrides` are BOT_* too."""
    env = clean_env()
    env.update(LAB_SETTINGS)
    env["BOT_LOG_DIR"] = str(log_dir(tmp))
    env["BOT_DATA_DIR"] = str(data_dir(tmp))
    env["PYTHONFAULTHANDLER"] = "1"  # a hung bot shows its stack on SIGABRT (see `stop`)
    env.update(overrides)
    return env


# `python -c CRASH_DRIVER SPEC run ...`: the real CLI, which SIGKILLs itself at one precise point
# (the same death as an outside `kill -9`, without the timing lottery). SPEC is one of
#   record:<event_type>:<n>   just after the n-th record of that type is written to the trail
#   broker:<n>                just after the paper broker committed its n-th fill (the order is
#                             placed and filled; nothing of it is in the trail yet)
#   broker-rejected:<n>       just after the paper broker stored its n-th rejection
#   state:<method>:<n>        just after the n-th call of StateStore.<method> (e.g. fill_writing)
#   after:<module>:<name>:<n> just after the n-th call of <module>.<name> (a function or
#                             Class.method, e.g. after:shutil:copyfileobj:1)
#   before-move:<file>:<n>    just before the n-th rename/replace/unlink of a file named <file>
#                             (a rotation moving or removing the active stream)
#   after-move:<file>:<n>     just after it
#   sigterm-in-event-wait:<n> no crash: a SIGTERM delivered inside the n-th wait of the
#                             scheduler for its next slot
#   none                      no crash
# Any of them dumps every thread's traceback to stderr on SIGUSR1 (faulthandler).
CRASH_DRIVER = r"""
import faulthandler, os, signal, sys
faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1`: where is it stuck?
spec, argv = sys.argv[1], sys.argv[2:]
kind, _, rest = spec.partition(":")
seen = [0]

def hit(n):
    seen[0] += 1
    if seen[0] == n:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

if kind == "record":
    event, n = rest.rsplit(":", 1)
    import audit.trail as trail
    orig_record = trail.AuditTrail.record
    def record(self, rec, *a, **k):
        out = orig_record(self, rec, *a, **k)
        if rec.event_type == event:
            hit(int(n))
        return out
    trail.AuditTrail.record = record
elif kind in ("broker", "broker-rejected"):
    import bot.adapters.sim_broker as sim
    orig_persist = sim.SimulatedBroker._persist
    def _persist(self, order, fill):
        orig_persist(self, order, fill)
        if (fill is not None) if kind == "broker" else (order.status == "rejected"):
            hit(int(rest))
    sim.SimulatedBroker._persist = _persist
elif kind in ("state", "after"):
    import importlib
    if kind == "state":
        rest = "bot.adapters.state_store:StateStore." + rest
    module, name, n = rest.split(":")
    owner = importlib.import_module(module)
    *path, attr = name.split(".")
    for part in path:
        owner = getattr(owner, part)
    orig = getattr(owner, attr)
    def patched(*a, **k):
        out = orig(*a, **k)
        hit(int(n))
        return out
    setattr(owner, attr, patched)
elif kind in ("before-move", "after-move"):
    # the n-th rename/replace/unlink of a file with this name (a rotation moving or removing
    # the active file): just before it, or just after it
    target, n = rest.rsplit(":", 1)
    for fname in ("rename", "replace", "unlink", "remove"):
        def make(orig):
            def moved(src, *a, **k):
                mine = os.path.basename(os.fspath(src)) == target
                if mine and kind == "before-move":
                    hit(int(n))
                out = orig(src, *a, **k)
                if mine and kind == "after-move":
                    hit(int(n))
                return out
            return moved
        setattr(os, fname, make(getattr(os, fname)))
elif kind == "sigterm-in-event-wait":
    # SIGTERM arrives while the scheduler waits for its next slot (the runner's StopFlag.wait;
    # an earlier threading.Event there deadlocked when the handler called Event.set()).
    import time
    import bot.app.runner as runner
    orig_wait = runner.StopFlag.wait
    def wait(self, seconds):
        seen[0] += 1
        if seen[0] == int(rest):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)  # the Python-level handler runs here
        return orig_wait(self, seconds)
    runner.StopFlag.wait = wait
elif kind != "none":  # none: no crash, only the traceback dump on SIGUSR1
    raise SystemExit(f"unknown crash point {spec!r}")
sys.argv = ["tradebot", *argv]
from bot.cli.main import main
raise SystemExit(main())
"""


# Two capital splits to alternate at each restart: prices of the synthetic market move at most
# once a minute (and not at all outside NYSE sessions), so without a change every cycle after
# the first one trades only dust; a new split makes the restart's first cycle rebalance for real.
CHURN_MODELS = ("SectorRotationModel_v1=0.5,EqualWeightModel_v1=0.5",
                "SectorRotationModel_v1=0.2,EqualWeightModel_v1=0.8")


def churn_env(tmp: Path, n: int, **overrides: str) -> dict[str, str]:
    """`env_for` with the n-th capital split of CHURN_MODELS."""
    return env_for(tmp, BOT_MODELS=CHURN_MODELS[n % len(CHURN_MODELS)], **overrides)


def start(tmp: Path, env: dict[str, str] | None = None, *args: str,
          crash_at: str | None = None, command: str = "run") -> subprocess.Popen:
    """Start `python -m bot <command>` (run by default) in `tmp`; its stdout/stderr go to
    tmp/run-<n>.out/.err. `crash_at` (see CRASH_DRIVER) makes it SIGKILL itself at that point."""
    tmp = Path(tmp)
    n = sum(1 for _ in tmp.glob("run-*.out")) + 1
    out = open(tmp / f"run-{n:04d}.out", "wb")
    err = open(tmp / f"run-{n:04d}.err", "wb")
    cmd = [sys.executable, "-m", "bot", command, *args]
    if crash_at is not None:
        cmd = [sys.executable, "-c", CRASH_DRIVER, crash_at, command, *args]
    try:
        proc = subprocess.Popen(cmd, cwd=tmp, env=env or env_for(tmp), stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
    finally:
        out.close()
        err.close()
    proc.lab_err = tmp / f"run-{n:04d}.err"  # type: ignore[attr-defined]
    proc.started_at = time.monotonic()  # type: ignore[attr-defined]
    return proc


def kill9(proc: subprocess.Popen) -> None:
    """SIGKILL the process (it may have exited already) and reap it."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


class StopTimeout(AssertionError):
    """The bot did not exit after SIGTERM."""


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> int:
    """SIGTERM and wait; returns the exit code (see `wait_exit`)."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
    return wait_exit(proc, timeout)


def wait_exit(proc: subprocess.Popen, timeout: float = 15.0) -> int:
    """The exit code. A bot still running after `timeout` gets SIGABRT (faulthandler, on
    through PYTHONFAULTHANDLER, prints where every thread is) and StopTimeout is raised with
    that traceback."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGABRT)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            kill9(proc)
        raise StopTimeout(f"still running after {timeout:g}s (SIGTERM sent?); its stack then:\n"
                          f"{stderr_of(proc, 3000)}") from None


def stderr_of(proc: subprocess.Popen, limit: int = 4000) -> str:
    path = getattr(proc, "lab_err", None)
    if path is None or not Path(path).exists():
        return ""
    return Path(path).read_text(errors="replace")[-limit:]


def count_cycles(tmp: Path) -> int:
    """cycle_complete lines written so far (rotated segments included)."""
    return sum(_raw(p).count(b'"event_type":"cycle_complete"')
               for p in stream_files(log_dir(tmp), "performance.jsonl"))


def wait_for_records(tmp: Path, n_cycles: int, timeout: float,
                     proc: subprocess.Popen | None = None) -> int:
    """Wait until performance.jsonl holds at least `n_cycles` cycle_complete lines.

    Raises TimeoutError, or RuntimeError when `proc` exits first (with its stderr)."""
    deadline = time.monotonic() + timeout
    while True:
        n = count_cycles(tmp)
        if n >= n_cycles:
            return n
        if proc is not None and proc.poll() is not None:
            n = count_cycles(tmp)
            if n >= n_cycles:
                return n
            raise RuntimeError(f"the bot exited ({proc.returncode}) after {n} of {n_cycles} "
                               f"cycles: {stderr_of(proc)}")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{n} of {n_cycles} cycles after {timeout:g}s"
                               + (f"; stderr: {stderr_of(proc)}" if proc is not None else ""))
        time.sleep(0.02)


# -- reading the trail --------------------------------------------------------------------

def stream_files(directory: Path, name: str) -> list[Path]:
    """Rotated siblings oldest first (`name.N`/`name.N.gz`, N descending), then the active file."""
    rotated = []
    pattern = re.compile(rf"^{re.escape(name)}\.(\d+)(\.gz)?$")
    if directory.is_dir():
        for p in directory.iterdir():
            m = pattern.match(p.name)
            if m:
                rotated.append((int(m.group(1)), p))
    files = [p for _n, p in sorted(rotated, key=lambda t: -t[0])]
    if (directory / name).exists():
        files.append(directory / name)
    return files


def _raw(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return b""
    if path.name.endswith(".gz"):
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:  # a gzip being written, or damaged
            return f"<<unreadable gzip: {exc}>>".encode()
    return data


def _read_whole(path: Path, settle: float = 0.3) -> bytes:
    """The file's bytes; an unterminated last line is read again for up to `settle` seconds
    (a running bot may be in the middle of its write)."""
    data = _raw(path)
    deadline = time.monotonic() + settle
    while data and not data.endswith(b"\n") and time.monotonic() < deadline:
        time.sleep(0.02)
        data = _raw(path)
    return data


def read_records(directory: Path, name: str, problems: list[str] | None = None) -> list[dict]:
    """Every record of a stream (rotated segments first); unreadable lines go to `problems`."""
    out: list[dict] = []
    for path in stream_files(directory, name):
        data = _read_whole(path)
        if data and not data.endswith(b"\n") and problems is not None:
            tail = data[data.rfind(b"\n") + 1:][:80]
            problems.append(f"a: {path.name} does not end with a newline (torn last line {tail!r})")
        for n, line in enumerate(data.split(b"\n"), 1):
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                rec = None
            if not isinstance(rec, dict):
                if problems is not None and not (n == data.count(b"\n") + 1):
                    problems.append(f"a: {path.name} line {n} is not a JSON object: {line[:80]!r}")
                continue
            out.append(rec)
    return out


def slot_of_order(cid: str) -> datetime | None:
    m = _CID_SLOT.match(cid or "")
    if not m:
        return None
    t = datetime.strptime(m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
    if m.group(2):
        t = t.replace(microsecond=int(m.group(2).ljust(6, "0")))
    return t


def _slot(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def broker_snapshot(tmp: Path) -> dict[str, Any]:
    """orders, fills and positions of the paper account, read in one read-only snapshot."""
    con = sqlite3.connect(f"file:{account_db(tmp)}?mode=ro", uri=True, isolation_level=None,
                          timeout=10)
    try:
        con.row_factory = sqlite3.Row
        con.execute("BEGIN")
        orders = [dict(r) for r in con.execute("SELECT * FROM orders ORDER BY rowid")]
        fills = [dict(r) for r in con.execute("SELECT * FROM fills ORDER BY rowid")]
        positions = {r["symbol"]: r["qty"] for r in con.execute("SELECT symbol, qty FROM positions")}
        con.execute("COMMIT")
    finally:
        con.close()
    return {"orders": orders, "fills": fills, "positions": positions}


def _close(a: Any, b: float) -> bool:
    try:
        a = float(a)
    except (TypeError, ValueError):
        return False
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def check_trail(tmp: Path, *, strict: bool = False) -> list[str]:
    """Every violated invariant (see the module docstring); [] when all hold."""
    logs = log_dir(tmp)
    v: list[str] = []

    # performance first: it fixes the cut-off for the broker comparison (see module docstring)
    perf = read_records(logs, "performance.jsonl", v)
    cycles = [r for r in perf if r.get("event_type") == "cycle_complete"]
    slots = [s for s in (_slot(r.get("cycle_timestamp")) for r in cycles) if s is not None]
    cutoff = max(slots) if slots else None
    if cutoff is None:
        v.append("d: no cycle_complete record: the check needs a completed cycle")

    def settled(cid: str) -> bool:
        s = slot_of_order(cid)
        return cutoff is not None and (s is None or s <= cutoff)

    try:
        broker = broker_snapshot(tmp)
    except sqlite3.Error as exc:
        v.append(f"g: cannot read the paper account {account_db(tmp)}: {exc}")
        broker = {"orders": [], "fills": [], "positions": {}}
    orders = read_records(logs, "orders.jsonl", v)
    trades = read_records(logs, "trades.jsonl", v)
    errors = read_records(logs, "errors.jsonl", v)
    decisions = read_records(logs, "decisions.jsonl", v)
    events = read_records(logs, "events.jsonl", v)
    # (a) also for any other *.jsonl in the directory
    for p in sorted(logs.glob("*.jsonl")):
        if p.name not in STREAM_NAMES:
            read_records(logs, p.name, v)

    # (b) orders
    submitted = [r for r in orders if r.get("event_type") == "order_submitted"]
    by_cid: dict[str, list[dict]] = defaultdict(list)
    for r in submitted:
        by_cid[r.get("order_id")].append(r)
    for cid, rs in by_cid.items():
        if len(rs) > 1:
            v.append(f"b: order_id {cid} has {len(rs)} order_submitted lines")
    border = {o["cid"]: o for o in broker["orders"]}
    for cid, o in border.items():
        if not settled(cid):
            continue
        n = len(by_cid.get(cid, ()))
        if o["status"] != "rejected" and n != 1:
            v.append(f"b: broker order {cid} ({o['status']}) has {n} order_submitted lines")
        if o["status"] == "rejected" and n:
            v.append(f"b: broker order {cid} was rejected but has {n} order_submitted lines")
    for cid in by_cid:
        if settled(cid) and cid not in border:
            v.append(f"b: order_submitted {cid} has no broker order")

    # (c) trades
    executed = [r for r in trades if r.get("event_type") == "trade_executed"]
    by_fill: dict[str, list[dict]] = defaultdict(list)
    for r in executed:
        by_fill[r.get("fill_id")].append(r)
    for fid, rs in by_fill.items():
        if len(rs) > 1:
            v.append(f"c: fill_id {fid} has {len(rs)} trade_executed lines")
    bfill = {f["fill_id"]: f for f in broker["fills"]}
    for fid, f in bfill.items():
        if not settled(f["cid"]):
            continue
        rs = by_fill.get(fid, [])
        if len(rs) != 1:
            v.append(f"c: broker fill {fid} has {len(rs)} trade_executed lines")
        for r in rs:
            if not (_close(r.get("quantity", _NAN), f["qty"])
                    and _close(r.get("price", _NAN), f["price"])):
                v.append(f"c: trade line {fid}: {r.get('quantity')} @ {r.get('price')}, "
                         f"broker {f['qty']} @ {f['price']}")
    for fid, rs in by_fill.items():
        if settled(rs[0].get("order_id", "")) and fid not in bfill:
            v.append(f"c: trade_executed {fid} has no broker fill")

    # (d) a slot completes once
    for cts, n in Counter(r.get("cycle_timestamp") for r in cycles).items():
        if n > 1:
            v.append(f"d: cycle {cts} has {n} cycle_complete lines")

    # (e) one decision per model per slot; a completed cycle has them all
    decided = [r for r in decisions if r.get("event_type") == "model_decision"]
    pairs = Counter((r.get("cycle_timestamp"), r.get("model")) for r in decided)
    for (cts, model), n in pairs.items():
        if n > 1:
            v.append(f"e: cycle {cts} has {n} model_decision lines for {model}")
    models = {m for _c, m in pairs}
    for r in cycles:
        missing = sorted(m for m in models if (r.get("cycle_timestamp"), m) not in pairs)
        if missing:
            v.append(f"e: cycle {r.get('cycle_timestamp')} completed without a model_decision "
                     f"for {', '.join(missing)}")

    # (f) order errors once
    order_errors = [r for r in errors if r.get("event_type") == "order_error"]
    for cid, n in Counter(r.get("order_id") for r in order_errors).items():
        if n > 1:
            v.append(f"f: order_id {cid} has {n} order_error lines")

    # (g) positions: trade lines vs the broker (less its fills of later, maybe in-flight slots)
    from_trail: dict[str, float] = defaultdict(float)
    for r in executed:
        if settled(r.get("order_id", "")):
            sign = 1.0 if r.get("side") == "buy" else -1.0
            from_trail[r.get("symbol")] += sign * float(r.get("quantity") or 0.0)
    at_broker: dict[str, float] = defaultdict(float, broker["positions"])
    for f in broker["fills"]:
        if not settled(f["cid"]):
            at_broker[f["symbol"]] -= f["qty"] if f["side"] == "buy" else -f["qty"]
    for sym in sorted(set(from_trail) | set(at_broker)):
        a, b = from_trail.get(sym, 0.0), at_broker.get(sym, 0.0)
        if abs(a - b) > _TOL:
            v.append(f"g: {sym}: trade lines sum to {a:.9g}, the broker holds {b:.9g}")

    # (h) never sent twice
    for cid, rs in by_cid.items():
        ids = {r.get("broker_order_id") for r in rs}
        if len(ids) > 1:
            v.append(f"h: order_id {cid} has {len(ids)} broker_order_ids: {sorted(map(str, ids))}")
        o = border.get(cid)
        if o is not None and any(i != o["broker_id"] for i in ids):
            v.append(f"h: order_id {cid}: broker_order_id in the trail differs from the broker's "
                     f"{o['broker_id']}")
    keys = Counter((r.get("cycle_timestamp"), r.get("model"), r.get("symbol"), r.get("side"))
                   for r in submitted)
    for key, n in keys.items():
        if n > 1:
            v.append(f"h: {n} orders for (cycle, model, symbol, side) {key}")

    # (i) a rejection the broker knows is in errors.jsonl exactly once
    err_by_cid = Counter(r.get("order_id") for r in order_errors)
    for cid, o in border.items():
        if settled(cid) and o["status"] == "rejected" and err_by_cid.get(cid, 0) != 1:
            v.append(f"i: broker rejected {cid} ({o['reason']}) but errors.jsonl has "
                     f"{err_by_cid.get(cid, 0)} order_error lines for it")

    # (j) cycles carry on
    for r in errors:
        if r.get("event_type") == "cycle_error":
            v.append(f"j: cycle_error at {r.get('cycle_timestamp')}: {str(r.get('error'))[:200]}")

    # (k) strict: the broker and the trail never really differed
    if strict:
        for r in events:
            if r.get("event_type") == "reconciliation":
                v.append(f"k: reconciliation record at {r.get('timestamp')} "
                         f"(cycle {r.get('cycle_timestamp', 'start-up')}): {r.get('message')}")
    return v


def summary(tmp: Path) -> dict[str, int]:
    """Counts for reports: cycles, orders and fills at the broker, trail lines, notable events."""
    logs = log_dir(tmp)
    out: dict[str, int] = {"cycles": count_cycles(tmp)}
    try:
        b = broker_snapshot(tmp)
        out["broker_orders"] = len(b["orders"])
        out["broker_fills"] = len(b["fills"])
        out["broker_rejected"] = sum(1 for o in b["orders"] if o["status"] == "rejected")
    except sqlite3.Error:
        pass
    out["order_lines"] = len(read_records(logs, "orders.jsonl"))
    out["trade_lines"] = len(read_records(logs, "trades.jsonl"))
    kinds = Counter(r.get("event_type") for r in read_records(logs, "events.jsonl"))
    for kind in ("bot_started", "bot_stopped", "slot_missed", "reconciliation", "order_not_placed",
                 "order_skipped", "order_canceled", "repair"):
        out[kind] = kinds.get(kind, 0)
    out["torn_files"] = sum(1 for _ in logs.glob("*.torn-*")) if logs.is_dir() else 0
    return out
