"""What retention removed from a trail: which streams lost old segments, and from when each one
is whole again. `replay`, `report` and `logs explain` read it so that a pruned trail is replayed
from its first retained snapshot instead of being taken for one with missing fills.

A stream lost segments when its chain (`<stream>.chain`) has `expired` records (built-in
retention deleted them) or seals more segments than the rotated files present (an outside
rotation deleted some). Reading only, through `audit.files` and `audit.chain.read_chain`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from audit.chain import CHAIN_SUFFIX, read_chain
from audit.files import iter_typed, segments
from audit.records import ERRORS, EVENTS, ORDERS, PERFORMANCE, TRADES
from audit.timestamps import format_timestamp

# the streams replay reads for the books and their checks (decisions only give capital shares,
# which their retained records still give)
BOOK_STREAMS = (TRADES, ORDERS, PERFORMANCE, EVENTS, ERRORS)


@dataclass(frozen=True, slots=True)
class Pruned:
    """`segments`: stream -> how many of its old segments are gone. `since`: the latest of those
    streams' first retained record time (before it, at least one of them is incomplete)."""

    segments: Mapping[str, int]
    since: str | None

    def __bool__(self) -> bool:
        return bool(self.segments)

    def describe(self) -> str:
        gone = ", ".join(f"{name} {n} segment{'s' if n != 1 else ''}"
                         for name, n in self.segments.items())
        return f"retention removed old segments ({gone})"


def pruned_segments(log_dir: Path, name: str) -> int:
    """How many old segments of stream `name` are gone, by its chain (0 without a chain)."""
    records = read_chain(log_dir / (name + CHAIN_SUFFIX))
    expired = sum(1 for r in records if r.get("type") == "expired")
    sealed = sum(1 for r in records if r.get("type") == "seal")
    rotated = len(segments(log_dir, name)) - (1 if (log_dir / name).is_file() else 0)
    return max(expired, sealed - rotated, 0)


def first_retained(log_dir: Path, name: str) -> str | None:
    """The timestamp of the stream's oldest retained record; without one, the time its last
    segment was sealed (nothing of it is retained before then)."""
    for _where, record in iter_typed(log_dir, name):
        if record.timestamp is not None:
            return format_timestamp(record.timestamp)
    seals = [ts for r in read_chain(log_dir / (name + CHAIN_SUFFIX))
             if r.get("type") in ("seal", "expired") and isinstance(ts := r.get("ts"), str)]
    return max(seals) if seals else None


def pruned(log_dir: Path, streams: tuple[str, ...] = BOOK_STREAMS) -> Pruned:
    """What retention removed from `streams` of the trail in `log_dir`."""
    gone = {name: n for name in streams if (n := pruned_segments(log_dir, name))}
    starts = [ts for name in gone if (ts := first_retained(log_dir, name)) is not None]
    return Pruned(gone, max(starts) if starts else None)
