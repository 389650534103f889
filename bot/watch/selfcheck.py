"""The live trail checks itself: `run` verifies its own trail every `BOT_SELF_VERIFY_INTERVAL`
seconds (0: never), as `tradebot audit verify` would, and tells the metrics and the alert webhook.

`SelfVerify` is a cycle observer and a trail listener. Right after a cycle has finished
(completed or failed), when the interval has passed since the last verify (the first one: after
the first cycle), unless the trail could not be written since its last record (trading halts
then, and the alerts say so; a full disk's files may not even be readable), it
verifies the trail on the bot's own thread: no cycle runs and nothing is written meanwhile, so
the files and their chains are read at rest (lines after the last checkpoint are unsealed, which
verify reports as a warning, not a failure). The result goes to every target's
`trail_verified(result)` (the metrics, the alerts), and on a failure, once per failure state, to
events.jsonl as a WARN `trail_verify_failed` event; the next success re-arms it.

Verify itself is called through `verify_trail`, the one place that knows its signature.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Protocol

from audit.anchor import Anchor
from audit.records import TrailVerifyFailed
from bot.core.observers import CycleReport

MAX_PROBLEMS_SHOWN = 5


@dataclass(frozen=True, slots=True)
class TrailVerdict:
    """One verify of the live trail: `ok` (exit 0), the problem lines, the verdict line."""

    ok: bool
    problems: tuple[str, ...]
    summary: str
    at: datetime
    seconds: float

    def describe(self) -> str:
        shown = "; ".join(self.problems[:MAX_PROBLEMS_SHOWN])
        more = len(self.problems) - MAX_PROBLEMS_SHOWN
        return (f"{self.summary}" + (f": {shown}" if shown else "")
                + (f" (and {more} more)" if more > 0 else ""))


def verify_trail(log_dir: Path, key: bytes, *, anchor: Anchor | None = None,
                 archive_dir: Path | None = None) -> tuple[bool, tuple[str, ...], str]:
    """(ok, problem lines, verdict line) of `tradebot audit verify` on `log_dir`, against the
    trail's anchor when given (as `audit verify` does), archived segments in `archive_dir`."""
    from audit.verify import format_report, verify
    report = verify(log_dir, key, anchor=anchor, archive_dir=archive_dir)
    lines = format_report(report).splitlines()
    fine = ("valid", "expired", "unsealed")
    problems = tuple(" ".join(x.split()) for x in lines[:-1] if not x.startswith(fine))
    verdict = lines[-1].split(";")[0] if lines else ""  # without the lines-per-second figures
    return report.exit_code == 0, problems, verdict


class _Target(Protocol):
    def trail_verified(self, verdict: TrailVerdict) -> None: ...


class _Trail(Protocol):
    def record(self, rec: TrailVerifyFailed) -> object: ...
    def log(self, level: str, message: str) -> None: ...


class SelfVerify:
    """Verifies the trail in `log_dir` with `key` every `interval` seconds of `now()`, right after
    a cycle; tells `targets` and records a failure in `trail` (see the module docstring)."""

    def __init__(self, log_dir: Path, key: bytes, interval: float, trail: _Trail,
                 now: Callable[[], datetime], targets: Iterable[_Target] = (),
                 verify: Callable[[Path, bytes], tuple[bool, tuple[str, ...], str]] = verify_trail
                 ) -> None:
        self.log_dir = Path(log_dir)
        self._key = key
        self.interval = interval
        self.trail = trail
        self.now = now
        self.targets = list(targets)
        self._verify = verify
        self.last: TrailVerdict | None = None
        self._failure_recorded = False
        self._writable = True

    def __repr__(self) -> str:  # never show the key
        return f"SelfVerify({str(self.log_dir)!r}, every {self.interval:g} s)"

    def due(self) -> bool:
        if self.interval <= 0:
            return False
        return self.last is None or (self.now() - self.last.at).total_seconds() >= self.interval

    def check(self) -> TrailVerdict:
        """Verify now and tell everyone (never raises: a verify that fails to run is a failure)."""
        started, clock = self.now(), time.perf_counter()
        try:
            ok, problems, summary = self._verify(self.log_dir, self._key)
        except Exception as exc:  # e.g. the log directory is gone: say so, do not stop trading
            ok, problems, summary = False, (f"{type(exc).__name__}: {exc}",), "verify could not run"
        verdict = TrailVerdict(ok, problems, summary, started, time.perf_counter() - clock)
        self.last = verdict
        for target in self.targets:
            try:
                target.trail_verified(verdict)
            except Exception as exc:  # a target's bug must not stop trading
                self.trail.log("ERROR", f"{type(target).__name__} failed: {exc!r}")
        if ok:
            self._failure_recorded = False
        elif not self._failure_recorded:
            self._failure_recorded = True
            self.trail.record(TrailVerifyFailed(
                message=f"the live trail does not verify: {verdict.describe()}; run "
                        "`tradebot audit verify` to see every problem",
                problems=len(problems), summary=summary))
        return verdict

    # --- CycleObserver ---------------------------------------------------------------------
    def started(self) -> None:
        """Nothing to do at start-up (the first verify follows the first cycle)."""

    def cycle_finished(self, report: CycleReport) -> None:
        if self._writable and self.due():
            self.check()

    def waiting(self, next_slot: datetime) -> None:
        """Nothing to do before the first cycle."""

    def halted(self, reason: str) -> None:
        """Nothing to do: the trail may not be writable, and the alerts say so already."""

    def stopped(self, reason: str) -> None:
        """Nothing to do at a clean stop."""

    def close(self) -> None:
        """Nothing to let go."""

    # --- TrailListener ---------------------------------------------------------------------
    def recorded(self, rec: object, timestamp: str) -> None:
        self._writable = True

    def synced(self, seconds: float) -> None:
        pass

    def write_failed(self, error: str) -> None:
        self._writable = False
