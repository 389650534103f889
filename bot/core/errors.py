"""What to do about a failure. The cycle runner is the one place that applies this policy.

- `RetryLater`: transient (network, 5xx); the step may be retried; the cycle records it and goes on.
- `SkipAndRecord`: this item cannot proceed (bad price, order rejected); record it, carry on.
- `Halt`: trading must stop (bad settings, broken audit trail, lock held elsewhere).
"""
from __future__ import annotations

# The exit codes of `run` and `cycle` (the command line maps errors to them; the app returns them)
EXIT_HALTED = 1  # halted or stopped: the trail could not be written, the broker failed
EXIT_CONFIG = 2  # a bad setting or argument
EXIT_LOCKED = 3  # another run/cycle holds the data directory's lock


class TradebotError(Exception):
    """Base of every error tradebot raises on purpose."""


class RetryLater(TradebotError):
    """A transient failure: try again at a later step or cycle."""


class SkipAndRecord(TradebotError):
    """This item is skipped and recorded in errors.jsonl; the cycle carries on."""


class Halt(TradebotError):
    """Stop trading: nothing more can be done safely."""


class ConfigError(Halt):
    """A setting is invalid. The message is one line that names it, its value and the fix."""


class LockHeld(Halt):
    """Another process holds the data directory's lock."""


class OrderRejected(SkipAndRecord):
    """The broker refused an order; `reason` is the broker's words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DataError(SkipAndRecord):
    """Market data is missing or unusable for a symbol (gap, NaN, bad row, missing file)."""

    def __init__(self, symbol: str, reason: str, kind: str = "price_error") -> None:
        super().__init__(f"{symbol}: {reason}")
        self.symbol = symbol
        self.reason = reason
        self.kind = kind  # the errors.jsonl kind: data_error when the data itself is refused


class AuditWriteError(Halt):
    """The audit trail cannot be written; trading without a trail is never an option."""
