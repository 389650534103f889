"""The two timestamp forms of the guide, formatted by hand (isoformat and orjson drop zero microseconds)."""
from __future__ import annotations

from datetime import datetime, timezone

_UTC = timezone.utc


def format_timestamp(dt: datetime) -> str:
    """`2025-11-18T14:30:00.123456+00:00`: UTC, always six-digit microseconds."""
    if dt.utcoffset():
        dt = dt.astimezone(_UTC)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00" % (
        dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond)


def format_slot(dt: datetime) -> str:
    """`2025-11-18T14:00:00+00:00`: a scheduled slot, UTC, whole seconds."""
    if dt.utcoffset():
        dt = dt.astimezone(_UTC)
    return "%04d-%02d-%02dT%02d:%02d:%02d+00:00" % (
        dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second)
