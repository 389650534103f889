"""The trail's contract: one frozen, keyword-only type per kind of record, and nothing else can
appear in the trail. This module is the single list of what the streams hold.

A record type's declaration order is its field order in the file: `timestamp` (stamped by the
trail when it writes the record), then `event_type` (the class's tag), then the type's fields.
Inside the bot times travel as `datetime`; they become the trail's two forms only here, in the
encoder: a record's `timestamp` with six-digit microseconds, a scheduled slot (`cycle_timestamp`,
`next_slot`...) in whole seconds, both UTC with `+00:00`.

A field marked `guide` is one of the audit-log guide's fields. A field may be left out of the line
when it has no value: `omit="none"` (absent when None), `omit="zero"` (absent when 0) and
`omit="unset"` (absent when `UNSET`; a price_error's `price` is null for a bad price and absent
when there was none).

`encode(record)` / `to_dict()` write a record, `decode(stream, line)` and `from_dict` read one back
as its type; a kind this version does not know (written by a newer one) decodes to an
`UnknownRecord` with a warning, never an error. `has(...)`-style questions about the trail are
answered by `audit.trail`, which is where the bytes are.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import typing
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping

import orjson

from audit.timestamps import format_slot, format_timestamp

ORDERS, TRADES, PERFORMANCE, ERRORS, DECISIONS, EVENTS = (
    "orders.jsonl", "trades.jsonl", "performance.jsonl", "errors.jsonl",
    "decisions.jsonl", "events.jsonl")
STREAMS = (ORDERS, TRADES, PERFORMANCE, ERRORS, DECISIONS, EVENTS)
PRODUCTION_LOG = "production.log"

# how a field's value is written (the `form` of a field): a datetime as a slot (whole seconds) or
# a stamp (six-digit microseconds), a date as YYYY-MM-DD
SLOT, STAMP, DAY = "slot", "stamp", "day"


class Unset:
    """The value of a field that is left out of the line (see `omit="unset"`)."""

    _instance: ClassVar[Unset | None] = None

    def __new__(cls) -> Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET = Unset()


def _field(*, guide: bool = False, form: str | None = None, omit: str | None = None,
           default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING,
           init: bool = True) -> Any:
    meta = {"guide": guide, "form": form, "omit": omit}
    return field(default=default, default_factory=factory, init=init, metadata=meta)


def guide(**kw: Any) -> Any:
    """A field of the audit-log guide."""
    return _field(guide=True, **kw)


def slot(**kw: Any) -> Any:
    """A scheduled slot: a datetime written in whole seconds (`2026-01-02T14:30:00+00:00`)."""
    return _field(form=SLOT, **kw)


def day(**kw: Any) -> Any:
    """A calendar day, written `2026-01-02`."""
    return _field(form=DAY, **kw)


def stamp(**kw: Any) -> Any:
    """A moment: a datetime written with six-digit microseconds."""
    return _field(form=STAMP, **kw)


def absent_when_none(**kw: Any) -> Any:
    return _field(omit="none", default=None, **kw)


class RecordError(ValueError):
    """A line that is not a record of the type its `event_type` names (a field missing or of
    the wrong JSON type)."""


# ---------------------------------------------------------------- the base of every record
@dataclass(frozen=True, kw_only=True, slots=True)
class Record:
    """What every line of a stream is. `timestamp` is None until the trail writes the record."""

    stream: ClassVar[str]
    event_type: ClassVar[str]
    level: ClassVar[str] = "INFO"  # its level in production.log

    timestamp: datetime | None = guide(form=STAMP, default=None)

    def describe(self) -> str:
        """The production.log line's text after `event_type: `."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The record as its line holds it (`timestamp` left out while it has none)."""
        return encode_fields(self, None if self.timestamp is None else format_timestamp(self.timestamp))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        """The record of a line's fields; RecordError when they do not make one of this type."""
        return _build(cls, data)


@dataclass(frozen=True, kw_only=True, slots=True)
class Event(Record):
    """A record of events.jsonl: something a machine should be able to query."""

    stream: ClassVar[str] = EVENTS
    message: str

    def describe(self) -> str:
        return self.message


@dataclass(frozen=True, kw_only=True, slots=True)
class Problem(Record):
    """A record of errors.jsonl."""

    stream: ClassVar[str] = ERRORS
    level: ClassVar[str] = "ERROR"

    if TYPE_CHECKING:  # every kind declares `error` (the guide's) itself, where it goes in the line
        error: str

    def describe(self) -> str:
        return self.error


# ---------------------------------------------------------------- orders, trades, snapshots
@dataclass(frozen=True, kw_only=True, slots=True)
class OrderSubmitted(Record):
    stream: ClassVar[str] = ORDERS
    event_type: ClassVar[str] = "order_submitted"
    order_id: str = guide()
    symbol: str = guide()
    side: str = guide()
    quantity: float = guide()
    price: float = guide()
    order_type: str = guide()
    status: str = guide()
    nav: float = guide()
    model: str = guide()
    broker_order_id: str
    cycle_timestamp: datetime = slot()
    limit_price: float | None = absent_when_none()

    def describe(self) -> str:
        return (f"{self.side} {self.quantity:g} {self.symbol} {self.order_type} ref {self.price:.2f} "
                f"[{self.model}] {self.order_id} {self.status}")


@dataclass(frozen=True, kw_only=True, slots=True)
class TradeExecuted(Record):
    stream: ClassVar[str] = TRADES
    event_type: ClassVar[str] = "trade_executed"
    order_id: str = guide()
    symbol: str = guide()
    side: str = guide()
    quantity: float = guide()
    price: float = guide()
    value: float = guide()
    new_position: float = guide()
    nav: float = guide()
    pnl: float | None = absent_when_none()        # realized by a sell
    commission: float = _field(omit="zero", default=0.0)
    model: str
    fill_id: str
    cycle_timestamp: datetime = slot()

    def describe(self) -> str:
        pnl = f" pnl {self.pnl:.2f}" if self.pnl is not None else ""
        return (f"{self.side} {self.quantity:g} {self.symbol} @ {self.price:.4f} = {self.value:.2f}"
                f"{pnl}; position {self.new_position:g}, nav {self.nav:.2f} ({self.order_id})")


@dataclass(frozen=True, kw_only=True, slots=True)
class CycleCompleted(Record):
    stream: ClassVar[str] = PERFORMANCE
    event_type: ClassVar[str] = "cycle_complete"
    nav: float = guide()
    cash: float = guide()
    positions_count: int = guide(init=False, default=0)  # len(positions), set from them
    positions: Mapping[str, float] = guide()
    buying_power: float = guide()
    cycle_timestamp: datetime = guide(form=SLOT)
    orders: int = 0
    fills: int = 0
    errors: int = 0
    prices: Mapping[str, float] = _field(factory=dict)  # marks of the positions + benchmark

    def __post_init__(self) -> None:
        object.__setattr__(self, "positions_count", len(self.positions))

    def describe(self) -> str:
        return (f"cycle {_slot_text(self.cycle_timestamp)} done: nav {self.nav:.2f}, cash "
                f"{self.cash:.2f}, {len(self.positions)} positions, {self.orders} orders, "
                f"{self.fills} fills, {self.errors} errors")


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelDecided(Record):
    """Why a model decided what it did (decisions.jsonl)."""

    stream: ClassVar[str] = DECISIONS
    event_type: ClassVar[str] = "model_decision"
    model: str
    cycle_timestamp: datetime = slot()
    capital_share: float
    as_of: date | None = day()
    symbols: tuple[str, ...]
    input_sha256: str
    scores: Mapping[str, float]
    target_weights: Mapping[str, float]
    final_weights: Mapping[str, float]
    risk_checks: tuple[Mapping[str, Any], ...]
    reason: str
    hold: bool
    # provenance: the model's rule version and a hash of its parameters (None: an older trail)
    model_version: str | None = absent_when_none()
    params_sha256: str | None = absent_when_none()

    def describe(self) -> str:
        checks = f"; {len(self.risk_checks)} risk checks changed the plan" if self.risk_checks else ""
        return f"{self.model}: {self.reason}{checks}"


# ---------------------------------------------------------------- errors.jsonl
@dataclass(frozen=True, kw_only=True, slots=True)
class OrderFailed(Problem):
    """An order the broker refused, or that could not be sent."""

    event_type: ClassVar[str] = "order_error"
    symbol: str = guide()
    side: str = guide()
    quantity: float = guide()
    error: str = guide()
    order_data: Mapping[str, Any] = guide()
    model: str
    order_id: str
    cycle_timestamp: datetime = slot()

    def describe(self) -> str:
        return f"{self.side} {self.quantity:g} {self.symbol} [{self.model}] {self.order_id}: {self.error}"


@dataclass(frozen=True, kw_only=True, slots=True)
class DataUnusable(Problem):
    """A symbol's data was missing or refused; the models that wanted it hold it."""

    event_type: ClassVar[str] = "data_error"
    error: str = guide()
    cycle_timestamp: datetime = slot()
    symbol: str
    model: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelFailed(Problem):
    """A model raised; it holds this cycle."""

    event_type: ClassVar[str] = "model_error"
    error: str = guide()
    cycle_timestamp: datetime = slot()
    model: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PriceUnusable(Problem):
    """No usable price for a symbol (`price` absent) or a bad one (`price` null)."""

    event_type: ClassVar[str] = "price_error"
    error: str = guide()
    cycle_timestamp: datetime = slot()
    symbol: str
    price: float | None | Unset = _field(omit="unset", default=UNSET)


@dataclass(frozen=True, kw_only=True, slots=True)
class CycleFailed(Problem):
    """A cycle failed as a whole; the runner carries on at the next slot."""

    event_type: ClassVar[str] = "cycle_error"
    error: str = guide()
    cycle_timestamp: datetime = slot()


@dataclass(frozen=True, kw_only=True, slots=True)
class BrokerUnavailable(Problem):
    """The broker could not be reached at start-up; `retry_in_seconds` None: not retried."""

    event_type: ClassVar[str] = "broker_unavailable"
    error: str = guide()
    attempt: int
    retry_in_seconds: float | None


# ---------------------------------------------------------------- events.jsonl: start and stop
@dataclass(frozen=True, kw_only=True, slots=True)
class BotStarted(Event):
    event_type: ClassVar[str] = "bot_started"
    pid: int
    command: str
    broker: str
    schedule: str
    market_hours: str
    models: str
    settings_sha256: str
    version: str
    run_id: str | None = absent_when_none()  # a new random id each start (None: an older trail)


@dataclass(frozen=True, kw_only=True, slots=True)
class BotStopped(Event):
    event_type: ClassVar[str] = "bot_stopped"
    pid: int
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class SimulationStarted(Event):
    event_type: ClassVar[str] = "simulation_started"
    start: date = day()
    end: date = day()
    days: int
    seed: int
    csv_dir: str
    settings_sha256: str
    version: str
    run_id: str | None = absent_when_none()  # from the simulation's inputs (None: older trail)


@dataclass(frozen=True, kw_only=True, slots=True)
class SimulationFinished(Event):
    event_type: ClassVar[str] = "simulation_finished"
    days: int
    orders: int
    trades: int


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditKeyGenerated(Event):
    event_type: ClassVar[str] = "audit_key_generated"
    level: ClassVar[str] = "WARN"
    key_file: str


# ---------------------------------------------------------------- the account and the broker
@dataclass(frozen=True, kw_only=True, slots=True)
class AccountChecked(Event):
    """The account as the broker reported it at start-up: replay opens from it."""

    event_type: ClassVar[str] = "account_checked"
    nav: float
    cash: float
    buying_power: float
    positions: Mapping[str, float]
    prices: Mapping[str, float]


@dataclass(frozen=True, kw_only=True, slots=True)
class Reconciliation(Event):
    """The broker's positions or open orders differed from the trail's."""

    event_type: ClassVar[str] = "reconciliation"
    level: ClassVar[str] = "WARN"
    positions: Mapping[str, Any]
    unknown_open_orders: tuple[Any, ...]
    policy: str
    cycle_timestamp: datetime | None = absent_when_none(form=SLOT)


# ---------------------------------------------------------------- cycles and slots
@dataclass(frozen=True, kw_only=True, slots=True)
class CycleSkipped(Event):
    event_type: ClassVar[str] = "cycle_skipped"
    reason: str
    from_slot: datetime | None = absent_when_none(form=SLOT)
    next_slot: datetime = slot()
    policy: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ManualCycle(Event):
    event_type: ClassVar[str] = "manual_cycle"
    cycle_timestamp: datetime = slot()


@dataclass(frozen=True, kw_only=True, slots=True)
class SlotResumed(Event):
    event_type: ClassVar[str] = "slot_resumed"
    level: ClassVar[str] = "WARN"
    cycle_timestamp: datetime = slot()


@dataclass(frozen=True, kw_only=True, slots=True)
class SlotMissed(Event):
    event_type: ClassVar[str] = "slot_missed"
    level: ClassVar[str] = "WARN"
    missed: int
    last_completed: datetime | None = absent_when_none(form=SLOT)
    latest_due: datetime = slot()
    policy: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ClockStepped(Event):
    event_type: ClassVar[str] = "clock_step"
    level: ClassVar[str] = "WARN"
    offset_seconds: float
    expected: datetime = stamp()
    clock: datetime = stamp()


@dataclass(frozen=True, kw_only=True, slots=True)
class KillSwitchEngaged(Event):
    event_type: ClassVar[str] = "kill_switch_engaged"
    level: ClassVar[str] = "WARN"
    cycle_timestamp: datetime = slot()
    blocked_orders: int


@dataclass(frozen=True, kw_only=True, slots=True)
class RiskOffHeld(Event):
    """A model's decision warned: risk-off, but its defensive symbol could not be bought."""

    event_type: ClassVar[str] = "risk_off_held"
    level: ClassVar[str] = "WARN"
    cycle_timestamp: datetime = slot()
    model: str
    trend_symbol: str
    defensive_symbol: str


# ---------------------------------------------------------------- orders
@dataclass(frozen=True, kw_only=True, slots=True)
class OrderSkipped(Event):
    event_type: ClassVar[str] = "order_skipped"
    level: ClassVar[str] = "WARN"
    order_id: str
    cycle_timestamp: datetime = slot()


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderNotPlaced(Event):
    event_type: ClassVar[str] = "order_not_placed"
    order_id: str
    cycle_timestamp: datetime = slot()


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderCanceled(Event):
    event_type: ClassVar[str] = "order_canceled"
    level: ClassVar[str] = "WARN"
    order_id: str
    cycle_timestamp: datetime = slot()


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderOpenAtDeadline(Event):
    event_type: ClassVar[str] = "order_open_at_deadline"
    level: ClassVar[str] = "WARN"
    order_id: str
    status: str | None
    cycle_timestamp: datetime = slot()


# ---------------------------------------------------------------- notes from other processes
@dataclass(frozen=True, kw_only=True, slots=True)
class LockRefused(Event):
    """A second `run` was refused the lock (noted by it, recorded by the running bot)."""

    event_type: ClassVar[str] = "lock_refused"
    level: ClassVar[str] = "WARN"
    pid: int
    refused_at: datetime = stamp()


@dataclass(frozen=True, kw_only=True, slots=True)
class InboxNoteUnreadable(Event):
    event_type: ClassVar[str] = "inbox_error"
    level: ClassVar[str] = "WARN"
    file: str


# ---------------------------------------------------------------- what the streams notice
@dataclass(frozen=True, kw_only=True, slots=True)
class TailRepaired(Event):
    event_type: ClassVar[str] = "repair"
    level: ClassVar[str] = "WARN"
    file: str
    moved_to: str
    bytes: int
    kept_bytes: int


@dataclass(frozen=True, kw_only=True, slots=True)
class DamageFound(Event):
    event_type: ClassVar[str] = "damage"
    level: ClassVar[str] = "WARN"
    file: str
    lines: tuple[Any, ...]
    at: str | None = absent_when_none()
    reason: str | None = absent_when_none()


@dataclass(frozen=True, kw_only=True, slots=True)
class WriteLost(Event):
    event_type: ClassVar[str] = "write_lost"
    level: ClassVar[str] = "WARN"
    file: str
    line: int
    segment: int


@dataclass(frozen=True, kw_only=True, slots=True)
class AnchorCreated(Event):
    event_type: ClassVar[str] = "anchor_created"
    level: ClassVar[str] = "WARN"
    trail_id: str
    legacy: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamRotated(Event):
    event_type: ClassVar[str] = "rotation"
    file: str


@dataclass(frozen=True, kw_only=True, slots=True)
class IntegrityWarning(Event):
    event_type: ClassVar[str] = "integrity_warning"
    level: ClassVar[str] = "WARN"
    file: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PossibleLoss(Event):
    event_type: ClassVar[str] = "possible_loss"
    level: ClassVar[str] = "WARN"
    file: str
    bytes_cut: int


@dataclass(frozen=True, kw_only=True, slots=True)
class TrailVerifyFailed(Event):
    """The live trail's periodic self-verify found problems."""

    event_type: ClassVar[str] = "trail_verify_failed"
    level: ClassVar[str] = "WARN"
    problems: int
    summary: str


# ---------------------------------------------------------------- a kind this version lacks
@dataclass(frozen=True, kw_only=True, slots=True)
class UnknownRecord:
    """A record of a kind this version does not know (a newer version wrote it): its fields as
    they are in the line, `timestamp` and `event_type` included."""

    stream: str
    event_type: str
    timestamp: datetime | None
    fields: Mapping[str, Any]
    level: ClassVar[str] = "INFO"

    def describe(self) -> str:
        return str(self.fields.get("message") or self.fields.get("error") or self.event_type)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.fields)


RECORD_TYPES: tuple[type[Record], ...] = tuple(
    c for c in list(globals().values())
    if isinstance(c, type) and issubclass(c, Record) and "event_type" in c.__dict__)
"""Every kind of record the trail can hold, in declaration order."""

_BY_KIND: dict[str, dict[str, type[Record]]] = {name: {} for name in STREAMS}
for _cls in RECORD_TYPES:
    if _cls.event_type in _BY_KIND[_cls.stream]:  # pragma: no cover - a declaration mistake
        raise TypeError(f"two record types for {_cls.stream} {_cls.event_type}")
    _BY_KIND[_cls.stream][_cls.event_type] = _cls
RECORD_KINDS: Mapping[str, Mapping[str, type[Record]]] = MappingProxyType(
    {name: MappingProxyType(kinds) for name, kinds in _BY_KIND.items()})
"""stream file name -> event_type -> its record type."""


def record_type(stream: str, event_type: str) -> type[Record] | None:
    """The type of `event_type` records in `stream`; None for a kind this version lacks."""
    kinds = _BY_KIND.get(stream)
    return None if kinds is None else kinds.get(event_type)


# ---------------------------------------------------------------- encoding
_PLAIN, _SLOT, _STAMP, _DAY, _MAPPING = range(5)
_FORMS = {SLOT: _SLOT, STAMP: _STAMP, DAY: _DAY}
_Plan = tuple[tuple[str, int, str | None], ...]
_PLANS: dict[type, _Plan] = {}


def _plan(cls: type) -> _Plan:
    """(name, how it is converted, when it is left out) for each field after `timestamp`."""
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        steps = []
        for f in dataclasses.fields(cls):
            if f.name == "timestamp":
                continue
            form = f.metadata.get("form")
            origin = typing.get_origin(hints[f.name]) or hints[f.name]
            how = _FORMS[form] if form else (
                _MAPPING if origin is collections.abc.Mapping else _PLAIN)
            steps.append((f.name, how, f.metadata.get("omit")))
        plan = _PLANS[cls] = tuple(steps)
    return plan


_Encoder = Callable[[Any, "str | None"], dict[str, Any]]
_ENCODERS: dict[type, _Encoder] = {}


def _encoder(cls: type[Record]) -> _Encoder:
    """The function that writes `cls`'s line fields, generated once from its plan: straight-line
    code, field by field in declaration order (the hot path of `simulate`)."""
    body = ["def encode(record, timestamp):",
            "    line = {} if timestamp is None else {'timestamp': timestamp}",
            f"    line['event_type'] = {cls.event_type!r}"]
    for name, how, omit in _plan(cls):
        body.append(f"    value = record.{name}")
        indent = "    "
        if omit is not None:
            test = {"unset": "value is not UNSET", "none": "value is not None",
                    "zero": "value"}[omit]
            body.append(f"    if {test}:")
            indent = "        "
        convert = {_PLAIN: "value", _SLOT: "slot_text(value)", _STAMP: "format_timestamp(value)",
                   _DAY: "value.isoformat()",
                   _MAPPING: "value if type(value) is dict else dict(value)"}[how]
        if how != _PLAIN:
            convert = f"None if value is None else {convert}"
        body.append(f"{indent}line[{name!r}] = {convert}")
    body.append("    return line")
    scope: dict[str, Any] = {"UNSET": UNSET, "slot_text": _slot_text,
                             "format_timestamp": format_timestamp}
    exec(compile("\n".join(body), f"<encoder of {cls.__name__}>", "exec"), scope)
    encode: _Encoder = scope["encode"]
    return encode


def _remembering_format_slot() -> Callable[[datetime], str]:
    """`format_slot` that remembers the last slot it formatted: a cycle writes the same slot
    (the same datetime object) in each of its records."""
    last: list[Any] = [None, ""]

    def slot_text(value: datetime) -> str:
        if value is not last[0]:
            last[0], last[1] = value, format_slot(value)
        return str(last[1])
    return slot_text


_slot_text = _remembering_format_slot()


def encode_fields(record: Record, timestamp: str | None) -> dict[str, Any]:
    """The fields of `record`'s line in order, stamped with `timestamp` (the trail's form of it;
    None: no `timestamp` field). Slots and stamps become their forms, a Mapping a dict."""
    cls = type(record)
    encode = _ENCODERS.get(cls)
    if encode is None:
        encode = _ENCODERS[cls] = _encoder(cls)
    return encode(record, timestamp)


_DUMPS = orjson.dumps
_NEWLINE = orjson.OPT_APPEND_NEWLINE


def encode(record: Record | UnknownRecord, timestamp: str | None = None) -> bytes:
    """One line of the trail, newline included. `timestamp` (the trail's form) stamps it;
    without it the record's own `timestamp` is written (none when it has none)."""
    if isinstance(record, UnknownRecord):
        fields = dict(record.fields)
        if timestamp is not None:
            fields = {"timestamp": timestamp, **{k: v for k, v in fields.items() if k != "timestamp"}}
        return _DUMPS(fields, option=_NEWLINE)
    if timestamp is None and record.timestamp is not None:
        timestamp = format_timestamp(record.timestamp)
    return _DUMPS(encode_fields(record, timestamp), option=_NEWLINE)


# ---------------------------------------------------------------- decoding
_UTC = timezone.utc


def _parse_time(name: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise RecordError(f"`{name}` is {type(value).__name__}, not a time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise RecordError(f"`{name}` is not a time: {value!r}") from None
    return parsed.astimezone(_UTC) if parsed.tzinfo else parsed.replace(tzinfo=_UTC)


def _parse_day(name: str, value: Any) -> date:
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise RecordError(f"`{name}` is {type(value).__name__}, not a day")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RecordError(f"`{name}` is not a day: {value!r}") from None


_DECODE_PLANS: dict[type, tuple[tuple[str, int, bool, bool], ...]] = {}


def _decode_plan(cls: type) -> tuple[tuple[str, int, bool, bool], ...]:
    """(name, how, required, a tuple) for each field a line sets."""
    plan = _DECODE_PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        steps = []
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            form = f.metadata.get("form")
            hint = hints[f.name]
            origin = typing.get_origin(hint) or hint
            required = (f.default is dataclasses.MISSING
                        and f.default_factory is dataclasses.MISSING)
            steps.append((f.name, _FORMS[form] if form else _PLAIN, required, origin is tuple))
        plan = _DECODE_PLANS[cls] = tuple(steps)
    return plan


def _build(cls: type[Record], data: Mapping[str, Any]) -> Record:
    kwargs: dict[str, Any] = {}
    for name, how, required, is_tuple in _decode_plan(cls):
        if name not in data:
            if required:
                raise RecordError(f"{cls.event_type} lacks `{name}`")
            continue
        value = data[name]
        if value is not None:
            if how == _SLOT or how == _STAMP:
                value = _parse_time(name, value)
            elif how == _DAY:
                value = _parse_day(name, value)
            elif is_tuple and type(value) is not tuple:  # a tuple: from a record's to_dict()
                if not isinstance(value, list):
                    raise RecordError(f"`{name}` is {type(value).__name__}, not an array")
                value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


_warned: set[tuple[str, str]] = set()


def from_fields(stream: str, data: Mapping[str, Any]) -> Record | UnknownRecord:
    """The typed record of a line's parsed fields (see `decode`)."""
    kind = data.get("event_type")
    if not isinstance(kind, str):
        raise RecordError(f"{stream}: a line without an `event_type`")
    cls = record_type(stream, kind)
    if cls is None:
        if (stream, kind) not in _warned:
            _warned.add((stream, kind))
            warnings.warn(f"{stream}: `{kind}` records are not known to this version of tradebot "
                          "(a newer one wrote them?): read as UnknownRecord", stacklevel=3)
        raw = data.get("timestamp")
        try:
            when = _parse_time("timestamp", raw) if raw is not None else None
        except RecordError:
            when = None
        return UnknownRecord(stream=stream, event_type=kind, timestamp=when, fields=dict(data))
    return _build(cls, data)


def decode(stream: str, line: bytes | str) -> Record | UnknownRecord:
    """The typed record of one line of `stream` (e.g. `decode("orders.jsonl", line)`).
    RecordError when the line is not JSON, or not a record of the kind it names; a kind this
    version does not know is an `UnknownRecord` (with a warning, once per kind)."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise RecordError(f"{stream}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RecordError(f"{stream}: a line that is not a JSON object")
    from audit.check import reader_problems  # the fields' JSON types (audit.check needs us)
    problems = reader_problems(stream, data)
    if problems:
        raise RecordError(f"{stream}: " + "; ".join(problems))
    try:
        return from_fields(stream, data)
    except TypeError as exc:  # a field of the wrong kind for the constructor
        raise RecordError(f"{stream}: {exc}") from None


def event_from_notice(kind: str, message: str, details: Mapping[str, Any]) -> Record | UnknownRecord:
    """The events.jsonl record of a notice `(kind, message, details)` (what a stream noticed, a
    note from another process, a model's warning)."""
    return from_fields(EVENTS, {"event_type": kind, "message": message, **details})
