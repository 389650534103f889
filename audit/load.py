"""`load(stream)`: one stream of the trail as a pandas DataFrame, for notebooks.

Reads every file of the stream, oldest first (rotated `NAME.N`, `NAME.N.gz`, then the active
file), parses `timestamp` and `cycle_timestamp` as tz-aware UTC datetimes and leaves every other
field as written (`positions`, `scores`... stay dicts). pandas is imported only when `load` is
called: importing `audit` stays light. It does not verify the trail (`tradebot audit verify`).

Without `logs_dir`, the directory is the one the installed bot names: `audit/` reads no setting
of the bot's, so the bot registers a resolver under the `audit.log_dir` entry point (tradebot's:
BOT_LOG_DIR from the environment or `.env`, as `tradebot logs` reads it, else `logs`).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from audit.files import Line, iter_records
from audit.records import DECISIONS, ERRORS, EVENTS, ORDERS, PERFORMANCE, STREAMS, TRADES

if TYPE_CHECKING:  # pragma: no cover
    import pandas

# The fields the guide shows for its four streams: an empty frame still has them.
GUIDE_COLUMNS: dict[str, tuple[str, ...]] = {
    ORDERS: ("timestamp", "event_type", "order_id", "symbol", "side", "quantity", "price",
             "order_type", "status", "nav", "model"),
    TRADES: ("timestamp", "event_type", "order_id", "symbol", "side", "quantity", "price",
             "value", "new_position", "nav"),
    PERFORMANCE: ("timestamp", "event_type", "nav", "cash", "positions_count", "positions",
                  "buying_power", "cycle_timestamp"),
    ERRORS: ("timestamp", "event_type", "symbol", "side", "quantity", "error", "order_data"),
    DECISIONS: ("timestamp", "event_type"),
    EVENTS: ("timestamp", "event_type"),
}
_TIME_COLUMNS = ("timestamp", "cycle_timestamp")
LOG_DIR_ENTRY_POINT = "audit.log_dir"  # the group a package that writes trails names its resolver in
FALLBACK_LOG_DIR = "logs"  # with no resolver installed


def _resolver() -> Callable[[], str | Path] | None:
    """The installed default-directory resolver (the first by name, if several), or None."""
    from importlib.metadata import entry_points
    found = sorted(entry_points(group=LOG_DIR_ENTRY_POINT), key=lambda ep: ep.name)
    return found[0].load() if found else None


def default_log_dir() -> Path:
    """The directory `load` reads without `logs_dir`: the installed bot's (tradebot: BOT_LOG_DIR,
    from the environment or `.env`, else `logs`), else `logs`."""
    resolve = _resolver()
    return Path(resolve() if resolve is not None else FALLBACK_LOG_DIR)


def stream_file(stream: str) -> str:
    """`orders` or `orders.jsonl` -> `orders.jsonl`; ValueError naming the accepted names."""
    name = stream if stream.endswith(".jsonl") else stream + ".jsonl"
    if name not in STREAMS:
        accepted = ", ".join(s.removesuffix(".jsonl") for s in STREAMS)
        raise ValueError(f"unknown stream {stream!r}: use one of {accepted} "
                         "(with or without .jsonl)")
    return name


def load(stream: str, logs_dir: str | Path | None = None) -> "pandas.DataFrame":
    """The records of `stream` (e.g. "orders") in `logs_dir` (default: `default_log_dir()`,
    the bot's BOT_LOG_DIR with `.env` included, else `logs`), one row each, oldest first. A
    missing or empty stream gives an empty frame (with the guide's columns); unreadable lines are
    skipped with a warning naming the first one.
    Raises ValueError for an unknown stream, FileNotFoundError for a missing directory."""
    import pandas as pd

    name = stream_file(stream)
    directory = Path(logs_dir) if logs_dir is not None else default_log_dir()
    if not directory.is_dir():
        fix = "pass logs_dir= or set BOT_LOG_DIR"
        if logs_dir is None and _resolver() is None:
            fix = ("pass logs_dir= (BOT_LOG_DIR is read by the bot's resolver, which is not "
                   "installed: run `pip install -e .` in the repository)")
        raise FileNotFoundError(f"no log directory {directory}: {fix}")
    bad: list[tuple[Line, str]] = []
    rows = [rec for _where, rec in iter_records(directory, name, lambda w, why: bad.append((w, why)))]
    if bad:
        where, why = bad[0]
        warnings.warn(f"{len(bad)} unreadable line(s) in {directory / name} skipped, the first "
                      f"at {where}: {why} (run `tradebot audit verify`)", stacklevel=2)
    guide = GUIDE_COLUMNS[name]
    if rows:
        df = pd.DataFrame.from_records(rows)
        extra = [c for c in df.columns if c not in guide]
        df = df.reindex(columns=[*guide, *extra])
    else:
        df = pd.DataFrame({c: pd.Series(dtype=object) for c in guide})
    for col in _TIME_COLUMNS:
        if col in df.columns:
            df[col] = (pd.to_datetime(df[col], utc=True, format="ISO8601") if rows
                       else pd.Series(dtype=_utc_dtype(pd)))
    return df


def _utc_dtype(pd):
    """The dtype `to_datetime` gives our timestamps (its resolution depends on the pandas
    version): an empty frame gets the same one."""
    return pd.to_datetime(pd.Series(["2024-01-01T00:00:00.000001+00:00"]), utc=True,
                          format="ISO8601").dtype
