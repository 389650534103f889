"""Benchmark: `kill -9` the running bot again and again, restart it each time, check the trail.

Starts `tradebot run` on a fresh lab directory (every 1 second, two models, every price move
traded; see tests/crashlab.py), waits for two cycles, then repeats until --kills kills are done:
kill -9 at a random point, restart, wait for a cycle to complete after the restart and check
every invariant of `crashlab.check_trail` (orders, fills, positions, duplicates). Kill points:

  uniform   a random 0-1 s after the last check (anywhere: waiting, mid-cycle)
  aimed     just after an order, trade or decision line appears (mid-cycle, between the steps
            of recovery-sensitive writes), plus 0-30 ms
  startup   kill the process just restarted, 0-0.8 s after its start (imports, start-up checks,
            the first cycle), then restart it again

Finally stops the bot with SIGTERM (exit code 0 expected) and checks once more. Prints kills,
restarts, cycles, orders, fills, notable events, every violation (first few messages, with the
kill after which each first appeared) and the wall time. Exit 1 if any invariant was violated.

    .venv/bin/python benchmarks/kill_restart.py --kills 200 [--seed 1] [--keep DIR] [--strict]
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import crashlab as lab  # noqa: E402 - once the repository is on sys.path

MODES = ("uniform", "aimed", "startup")
WEIGHTS = (0.45, 0.35, 0.20)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _last_line(path: Path) -> str:
    try:
        data = path.read_bytes()[-2000:]
    except FileNotFoundError:
        return ""
    lines = data.rstrip(b"\n").split(b"\n")
    return lines[-1].decode(errors="replace")[:160] if lines else ""


def _aim(tmp: Path, rng: random.Random, proc, timeout: float = 3.0) -> str:
    """Wait until the chosen stream grows (a step of a cycle just happened); returns its name."""
    name = rng.choice(("orders.jsonl", "trades.jsonl", "decisions.jsonl", "performance.jsonl"))
    path = lab.log_dir(tmp) / name
    before = _size(path)
    deadline = time.monotonic() + timeout
    while _size(path) == before and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.002)
    time.sleep(rng.uniform(0, 0.03))
    return name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", type=Path, help="lab directory to use and keep (must not exist)")
    ap.add_argument("--strict", action="store_true",
                    help="also count reconciliation records as violations (invariant k)")
    ap.add_argument("--cycle-timeout", type=float, default=30.0,
                    help="seconds a restart has to complete a cycle")
    ap.add_argument("--no-churn", action="store_true",
                    help="keep one capital split (by default each restart alternates between "
                    "two, so its first cycle really trades: prices move at most once a minute)")
    ap.add_argument("--env", action="append", default=[], metavar="BOT_NAME=VALUE",
                    help="an extra setting for the bot (repeatable), e.g. BOT_LOG_MAX_BYTES=20000")
    args = ap.parse_args(argv)

    rng = random.Random(args.seed)
    if args.keep:
        args.keep.mkdir(parents=True)
        tmp = args.keep
    else:
        tmp = Path(tempfile.mkdtemp(prefix="kill_restart-"))
    extra = dict(e.split("=", 1) for e in args.env)

    def env():
        n = 0 if args.no_churn else restarts
        return lab.churn_env(tmp, n, **extra) if "BOT_MODELS" not in extra else lab.env_for(tmp, **extra)
    t0 = time.perf_counter()
    kills = restarts = checks = 0
    modes = dict.fromkeys(MODES, 0)
    first_seen: dict[str, str] = {}  # violation -> when it first appeared
    no_cycle: list[str] = []
    kill_points: list[str] = []  # what the trail said last, at each kill since the last check

    def check(when: str) -> None:
        nonlocal checks
        checks += 1
        for msg in lab.check_trail(tmp, strict=args.strict):
            if msg not in first_seen:
                first_seen[msg] = f"{when}; kill points since the previous check: " + \
                    " | ".join(kill_points[-3:])
        kill_points.clear()

    def kill(proc) -> None:
        nonlocal kills
        lab.kill9(proc)
        kills += 1
        kill_points.append(f"#{kills}: {_last_line(lab.log_dir(tmp) / 'production.log')}")

    proc = lab.start(tmp, env())
    lab.wait_for_records(tmp, 2, args.cycle_timeout, proc)
    check("after the first two cycles")
    last_report = time.perf_counter()
    while kills < args.kills:
        mode = rng.choices(MODES, WEIGHTS)[0]
        if mode == "startup" and kills + 2 > args.kills:  # it kills twice
            mode = "uniform"
        modes[mode] += 1
        if mode == "uniform":
            time.sleep(rng.uniform(0, 1.0))
        elif mode == "aimed":
            _aim(tmp, rng, proc)
        else:  # startup: kill what runs, restart, kill the new one early
            kill(proc)
            proc = lab.start(tmp, env())
            restarts += 1
            time.sleep(rng.uniform(0, 0.8))
        kill(proc)
        n = lab.count_cycles(tmp)
        proc = lab.start(tmp, env())
        restarts += 1
        try:
            lab.wait_for_records(tmp, n + 1, args.cycle_timeout, proc)
        except (TimeoutError, RuntimeError) as exc:
            no_cycle.append(f"after kill #{kills} ({mode}): {exc}")
            if proc.poll() is not None:  # it died: start again so the run goes on
                proc = lab.start(tmp, env())
                restarts += 1
                lab.wait_for_records(tmp, lab.count_cycles(tmp) + 1, args.cycle_timeout, proc)
        check(f"after kill #{kills} ({mode})")
        if time.perf_counter() - last_report > 30:
            last_report = time.perf_counter()
            print(f"  ... {kills} kills, {len(first_seen)} distinct violations, "
                  f"{time.perf_counter() - t0:.0f}s", flush=True)

    time.sleep(rng.uniform(0, 1.0))
    hang = None
    try:
        rc = lab.stop(proc)
    except lab.StopTimeout as exc:  # a hang after SIGTERM; its stack is in the message
        rc, hang = None, str(exc)
    check("after the final SIGTERM")
    wall = time.perf_counter() - t0
    s = lab.summary(tmp)

    print(f"kill -9 / restart benchmark (seed {args.seed}) in {tmp}")
    print(f"  kills done          {kills}  ({', '.join(f'{m} {n}' for m, n in modes.items())}"
          f" iterations)")
    print(f"  restarts            {restarts}")
    print(f"  trail checks        {checks}")
    print(f"  cycles completed    {s.get('cycles')}")
    print(f"  orders              {s.get('broker_orders')} at the broker "
          f"({s.get('broker_rejected')} rejected), {s.get('order_lines')} order lines")
    print(f"  fills               {s.get('broker_fills')} at the broker, "
          f"{s.get('trade_lines')} trade lines")
    print("  events              " + ", ".join(
        f"{k} {s.get(k, 0)}" for k in ("bot_started", "slot_missed", "order_not_placed",
                                       "order_skipped", "order_canceled", "reconciliation",
                                       "repair", "torn_files")))
    print(f"  final SIGTERM       exit code {rc}")
    print(f"  wall time           {wall:.1f}s ({wall / max(kills, 1):.2f}s per kill)")
    problems = list(first_seen) + no_cycle + ([f"exit code {rc} after SIGTERM"] if rc else []) \
        + ([f"SIGTERM: {hang}"] if hang else [])
    by_letter = Counter(m.split(":", 1)[0] for m in first_seen)
    print(f"  invariant violations {len(problems)}"
          + (f" (by invariant: {', '.join(f'{k} {n}' for k, n in sorted(by_letter.items()))})"
             if by_letter else ""))
    for msg in problems[:10]:
        print(f"    - {msg}")
        if msg in first_seen:
            print(f"        first seen {first_seen[msg]}")
    if len(problems) > 10:
        print(f"    ... and {len(problems) - 10} more")
    if problems or args.keep:
        print(f"  lab directory kept: {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
