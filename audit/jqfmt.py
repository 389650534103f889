"""Print values the way jq 1.6 prints them, so our answers can be byte-identical to the guide's
`jq` recipes: numbers (`jq_number`), whole values (`jq_dumps`, pretty or `-c`), `@csv` and `@tsv`
rows, and jq's order of values (`jq_key`, used by `group_by` and `sort`).

jq holds every number as an IEEE double and prints the shortest digits that read back as the same
double (David Gay's dtoa, mode 0, like Python's `repr`), laid out by its own rule: exponent form
when plain digits would need 4 or more zeros between the point and the first digit, or more than
15 zeros after the last digit (`1e-05`, `1e+16`, but `0.0001`, `1000000000000000` and
`123000000000000000`), else plain digits with no trailing `.0` (`100000`). An infinity prints as
+-DBL_MAX, `-0.0` as `-0`. Tests check all this against the real jq.
Nothing here reads files.
"""
from __future__ import annotations

import math
import re
from typing import Any, Iterable, Sequence

import orjson

DBL_MAX = 1.7976931348623157e308


def jq_number(x: float | int) -> str:
    """jq 1.6's text for the number `x` (converted to a double first, as jq does)."""
    try:
        x = float(x)
    except OverflowError:  # an int beyond the doubles: jq reads it as infinity, prints DBL_MAX
        x = math.inf if x > 0 else -math.inf
    if x != x:
        return "null"
    if math.isinf(x):
        x = math.copysign(DBL_MAX, x)
    return _layout(repr(x))


def _layout(r: str) -> str:
    """jq's layout of a number given as shortest round-trip text (Python repr or orjson form)."""
    mant, _, exp = r.partition("e")
    sign = ""
    if mant[0] == "-":
        sign, mant = "-", mant[1:]
    ip, _, fp = mant.partition(".")
    digits = ip + fp
    decpt = len(ip) + (int(exp) if exp else 0)
    stripped = digits.lstrip("0")
    decpt -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    if not digits:
        return sign + "0"
    nd = len(digits)
    if decpt <= -4 or decpt > nd + 15:
        e = decpt - 1
        return (sign + digits[0] + ("." + digits[1:] if nd > 1 else "")
                + ("e-" if e < 0 else "e+") + "%02d" % abs(e))
    if decpt <= 0:
        return sign + "0." + "0" * -decpt + digits
    if nd <= decpt:
        return sign + digits + "0" * (decpt - nd)
    return sign + digits[:decpt] + "." + digits[decpt:]


# orjson writes the shortest digits of a double; its layout differs from jq's only in the tokens
# found here (none in a usual trail): exponents +16..+31 (jq spells out those with enough digits:
# 1.2345678901234568e+17 is 123456789012345680), one-digit negative exponents (jq pads them to two)
# and 0.0000... (jq writes those in exponent form). The patterns start with a literal, so the
# scan is fast.
_BIG = re.compile(rb"e\+(1[6-9]|2[0-9]|3[01]),")
_SMALL = re.compile(rb"e-[0-9],|0\.0000")
_ZEROS = [b"0" * k for k in range(16)]


def jq_numbers(values: Sequence[float | None]) -> list[bytes]:
    """jq's text of each float in `values` (None gives b"null"), in bulk: a few C-level passes
    instead of one Python call per number. Every value must be a finite float or None."""
    if not values:
        return []
    blob = orjson.dumps(values)[1:-1] + b","
    blob = blob.replace(b".0,", b",")
    if b"e+" in blob:
        blob = _spell_out(blob)
    if b"e-" in blob or b"0.0000" in blob:
        blob = _relayout(blob)
    out = blob.split(b",")
    out.pop()
    return out


def _spell_out(blob: bytes) -> bytes:
    parts: list[bytes] = []
    put, rfind, pos = parts.append, blob.rfind, 0
    for m in _BIG.finditer(blob):
        hit = m.start()
        start = rfind(b",", 0, hit) + 1
        digits = blob[start:hit].replace(b".", b"")
        zeros = int(m.group(1)) + 1 - len(digits) + (digits[:1] == b"-")
        if zeros <= 15:
            put(blob[pos:start])
            put(digits)
            put(_ZEROS[zeros])
            pos = m.end() - 1
    if not parts:
        return blob
    put(blob[pos:])
    return b"".join(parts)


def _relayout(blob: bytes) -> bytes:
    parts: list[bytes] = []
    pos = 0
    for m in _SMALL.finditer(blob):
        start = blob.rfind(b",", 0, m.start()) + 1
        if start < pos:
            continue
        end = blob.index(b",", m.start())
        token = blob[start:end]
        if m.group() == b"0.0000" and token.lstrip(b"-")[:6] != b"0.0000":
            continue  # digits inside a longer number
        parts += [blob[pos:start], _layout(token.decode()).encode()]
        pos = end
    if not parts:
        return blob
    parts.append(blob[pos:])
    return b"".join(parts)


_ESC = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESC.update({chr(c): "\\u%04x" % c for c in range(0x20) if chr(c) not in _ESC})
_ESC["\x7f"] = "\\u007f"
_NEEDS_ESC = re.compile('["\\\\\x00-\x1f\x7f]')


def jq_string(s: str) -> str:
    """A string as jq prints it: quotes, `\\"`, `\\\\`, short escapes, `\\u00XX` for the other
    control characters and DEL; everything else (non-ASCII too) as it is."""
    if _NEEDS_ESC.search(s) is None:
        return '"' + s + '"'
    return '"' + _NEEDS_ESC.sub(lambda m: _ESC[m.group()], s) + '"'


def jq_dumps(value: Any, indent: int | None = 2) -> str:
    """`value` printed as jq prints it: pretty with 2 spaces (`jq '.'`), or compact with
    indent=None (`jq -c`). Keys keep their order (jq 1.6 does without -S)."""
    out: list[str] = []
    _dump(value, indent, 0, out)
    return "".join(out)


def _dump(v: Any, indent: int | None, level: int, out: list[str]) -> None:
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, (int, float)):
        out.append(jq_number(v))
    elif isinstance(v, str):
        out.append(jq_string(v))
    elif isinstance(v, (list, tuple, dict)):
        is_obj = isinstance(v, dict)
        open_, close = ("{", "}") if is_obj else ("[", "]")
        if not v:
            out.append(open_ + close)
            return
        items = list(v.items()) if isinstance(v, dict) else list(v)
        if indent is None:
            sep, pad, end, colon = ",", "", "", ":"
        else:
            pad = "\n" + " " * (indent * (level + 1))
            sep, end, colon = "," + pad, "\n" + " " * (indent * level), ": "
        out.append(open_ + pad)
        for i, item in enumerate(items):
            if i:
                out.append(sep)
            if is_obj:
                out.append(jq_string(str(item[0])) + colon)
                item = item[1]
            _dump(item, indent, level + 1, out)
        out.append(end + close)
    else:
        raise TypeError(f"not a JSON value: {v!r}")


class RowError(ValueError):
    """A value that jq refuses in an @csv/@tsv row (an object or an array)."""


def _row_value(v: Any) -> str | None:
    """The text of a non-string row value, or None for a string (formatted by the caller)."""
    if v is None:
        return ""
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return jq_number(v)
    if isinstance(v, str):
        return None
    kind = "object" if isinstance(v, dict) else "array"
    text = jq_dumps(v, None)
    if len(text) > 14:  # jq 1.6 shortens the value in this message the same way
        text = text[:11] + "..."
    raise RowError(f"{kind} ({text}) is not valid in a csv row")


def jq_csv(row: Iterable[Any]) -> str:
    """`@csv` of a row: strings quoted with `"` doubled, null empty, numbers as jq prints them."""
    parts = []
    for v in row:
        t = _row_value(v)
        parts.append('"' + v.replace('"', '""') + '"' if t is None else t)
    return ",".join(parts)


_TSV = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def jq_tsv(row: Iterable[Any]) -> str:
    """`@tsv` of a row (jq 1.6): strings with `\\\\`, `\\t`, `\\n`, `\\r` escaped, null empty."""
    parts = []
    for v in row:
        t = _row_value(v)
        parts.append(v.translate(_TSV) if t is None else t)
    return "\t".join(parts)


def jq_key(v: Any) -> tuple:
    """A sort key giving jq's order: null < false < true < numbers < strings < arrays < objects;
    strings by code point, arrays element by element, objects by sorted keys then values."""
    if v is None:
        return (0,)
    if v is False:
        return (1,)
    if v is True:
        return (2,)
    if isinstance(v, (int, float)):
        try:
            return (3, float(v))
        except OverflowError:
            return (3, math.inf if v > 0 else -math.inf)
    if isinstance(v, str):
        return (4, v)
    if isinstance(v, (list, tuple)):
        return (5, tuple(jq_key(x) for x in v))
    keys = sorted(v)
    return (6, tuple(keys), tuple(jq_key(v[k]) for k in keys))


def jq_cmp(a: Any, b: Any) -> int:
    """-1, 0 or 1 as jq compares `a` and `b` (`<`, `==`, `>` on any two values)."""
    ka, kb = jq_key(a), jq_key(b)
    return (ka > kb) - (ka < kb)
