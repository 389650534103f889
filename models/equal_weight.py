"""Buy-and-hold equal weight: 1/n of the capital in each of the symbols that have data.

Pure: no I/O, no clock. It does not look at prices beyond "is the symbol there"; drift between
rebalances is left to the planner's rebalance band.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from models.base import Decision, History

DEFAULT_SYMBOLS: tuple[str, ...] = ("SPY", "QQQ", "TLT")


class EqualWeightModel:
    """Equal weight over `symbols` present in the history; holds when none is present."""

    name = "EqualWeightModel_v1"
    version = "1"
    lookback = 1

    def __init__(self, symbols: Sequence[str] = DEFAULT_SYMBOLS) -> None:
        if isinstance(symbols, str):
            raise ValueError(f"symbols must be a sequence of symbols, not the string {symbols!r}")
        syms = tuple(symbols)
        if not syms:
            raise ValueError("symbols must name at least one symbol")
        for s in syms:
            if not isinstance(s, str) or not s.strip() or s != s.strip():
                raise ValueError(f"symbols must be non-empty strings without spaces, got {s!r}")
        if len(set(syms)) != len(syms):
            dupes = sorted({s for s in syms if syms.count(s) > 1})
            raise ValueError(f"symbols has duplicates: {', '.join(dupes)}")
        self.symbols: tuple[str, ...] = syms
        self.bars: Mapping[str, int] = dict.fromkeys(syms, 1)

    def __repr__(self) -> str:
        return f"EqualWeightModel(symbols={self.symbols!r})"

    def params(self) -> Mapping[str, Any]:
        return {"symbols": list(self.symbols)}

    def decide(self, history: History) -> Decision:
        """1/n in each symbol with at least one close; `hold=True` when no symbol has any."""
        closes = history.closes
        present = [s for s in self.symbols if closes.get(s)]
        if not present:
            return Decision({}, {}, f"hold: none of {', '.join(self.symbols)} has closes", hold=True)
        w = 1.0 / len(present)
        missing = [s for s in self.symbols if s not in present]
        reason = f"equal weight {w:.1%} each in {', '.join(present)}"
        if missing:
            reason += f"; no closes for {', '.join(missing)}"
        return Decision(dict.fromkeys(present, w), {}, reason)
