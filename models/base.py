"""The model interface and the data it sees."""
from __future__ import annotations

import hashlib
import json
import struct
import sys
from array import array
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Mapping, Protocol, Sequence


@dataclass(frozen=True, slots=True)
class History:
    """Daily closes a model sees: for each symbol, oldest first, ending at the session `as_of`.

    Only symbols with usable data are in `closes`; `problems` names the ones left out and why.
    """

    as_of: date | None
    closes: Mapping[str, Sequence[float]]  # tuples, or array('d') for speed
    problems: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DecisionWarning:
    """A fact about a decision that the trail records as a warning in every cycle it holds.

    The model only returns it (models stay pure); the cycle writes it to events.jsonl as a WARN
    record whose `event_type` is `kind`, with the model, the cycle and `details`.
    """

    kind: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """What a model wants: target weights of its capital (sum <= 1), the scores behind them, why.

    `hold=True` means the model cannot decide (not enough data) and the current holdings stay.
    `warnings` are facts about the decision the trail should record (see DecisionWarning).
    """

    target_weights: Mapping[str, float]
    scores: Mapping[str, float]
    reason: str
    hold: bool = False
    warnings: tuple[DecisionWarning, ...] = ()


class Model(Protocol):
    name: str
    version: str  # bumped when the same inputs and params would decide differently
    symbols: tuple[str, ...]
    lookback: int  # the most daily closes `decide` needs of any symbol
    bars: Mapping[str, int]  # how many closes it needs of each symbol (what the cycle asks for)

    def params(self) -> Mapping[str, Any]:
        """The parameters that shape its decisions (JSON values), as it was built with them."""
        ...

    def decide(self, history: History) -> Decision:
        """Pure: the same history always gives the same decision."""
        ...


def params_sha256(model: Model) -> str:
    """sha256 of the model's parameters as canonical JSON (sorted keys, no spaces): two
    decisions with the same version and hash came from the same rule with the same settings."""
    text = json.dumps(dict(model.params()), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def input_sha256(history: History) -> str:
    """sha256 of the exact inputs: as-of date, then each symbol (sorted) and its closes as
    little-endian float64. Replay recomputes it from rebuilt inputs to prove they match."""
    h = hashlib.sha256((history.as_of.isoformat() if history.as_of else "").encode())
    closes = history.closes
    for sym in sorted(closes):
        values = closes[sym]
        h.update(b"\x00" + sym.encode() + b"\x00")
        if _LITTLE and isinstance(values, array) and values.typecode == "d":
            h.update(values)  # array('d'): its bytes are already little-endian float64
        else:
            h.update(struct.pack(f"<{len(values)}d", *values))
    return h.hexdigest()


_LITTLE = sys.byteorder == "little"
