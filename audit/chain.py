"""The tamper-evident chain kept beside each stream (`<stream>.chain`), CloudTrail-digest style.

Each line's running hash chains over the exact bytes written:
    h_i = sha256(h_{i-1} || line)        (h as 32 raw bytes; a segment starts from h0)
The first segment of a stream starts from 32 zero bytes; each later segment from the seal of the
one before, so a deleted or swapped rotated file breaks the chain.

The sidecar holds signed records, one JSON object per line, each HMAC-SHA256'd with the audit key
over its canonical JSON (sorted keys, without `mac`) and carrying the previous record's mac:
  checkpoint  segment, lines, bytes, hash, h0, line_hashes (the first 16 hex digits of each line's
              running hash since the previous checkpoint), inode
  seal        the same for the segment's end, plus `reason` (size, renamed, truncated)
  expired     a segment the bot deleted by retention (segment, file), written before the delete
  archived    a segment the bot moved to BOT_LOG_ARCHIVE_DIR by retention (segment, file: its
              name in the log directory, archive: its name in the archive), written before the move
  repair      a torn tail moved aside at start-up (what, where)
  trail       the chain's first record: the trail id (which finds the anchor in the data
              directory, `audit/anchor.py`), the key id and the stream; a chain made before
              anchors gets one appended at its next start
This module holds the format and the arithmetic; `stream.py` writes it, `verify.py` checks it.
"""
from __future__ import annotations

import builtins
import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from audit.files import iter_chunks
from audit.writer import open_own

GENESIS = bytes(32)
SHORT = 16  # hex digits of each line's running hash kept in the sidecar
CHAIN_SUFFIX = ".chain"


def next_hash(h: bytes, line: bytes) -> bytes:
    return hashlib.sha256(h + line).digest()


def sign(key: bytes, record: dict[str, Any]) -> str:
    body = orjson.dumps({k: v for k, v in record.items() if k != "mac"}, option=orjson.OPT_SORT_KEYS)
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def signature_ok(key: bytes, record: dict[str, Any]) -> bool:
    mac = record.get("mac")
    return isinstance(mac, str) and hmac.compare_digest(mac, sign(key, record))


@dataclass
class ChainState:
    """Where a stream's chain stands: the current segment and its running hash."""

    segment: int = 0
    h0: bytes = GENESIS
    hash: bytes = GENESIS
    lines: int = 0
    bytes: int = 0
    pending: list[str] = field(default_factory=list)  # short hashes since the last checkpoint
    last_mac: str = ""
    checkpointed_lines: int = 0
    trail_id: str | None = None  # from the chain's first trusted trail record
    broken: tuple[int, str] | None = None  # (1-based chain line, why) of the first untrusted record
    last_signed: dict[str, Any] | None = None  # the last trusted checkpoint or seal

    # `bytes` below is the field (a count): the type is builtins.bytes in this class's methods
    def add(self, line: builtins.bytes) -> None:
        self.add_hashed(line, next_hash(self.hash, line))

    def add_hashed(self, line: builtins.bytes, h: builtins.bytes) -> None:
        """`add` when the caller has already computed `h = next_hash(self.hash, line)`."""
        self.hash = h
        self.lines += 1
        self.bytes += len(line)
        self.pending.append(self.hash.hex()[:SHORT])

    def start_segment(self) -> None:
        """The next segment starts from this one's final hash."""
        self.segment += 1
        self.h0 = self.hash
        self.lines = self.bytes = self.checkpointed_lines = 0
        self.pending = []


class ChainWriter:
    """Appends signed records to one sidecar; one os.write per record, fdatasynced. A short write
    (a full disk) is cut back off, as streams do."""

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self._key = key
        self._fd = open_own(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # never a link
        if os.fstat(self._fd).st_mode & 0o077:
            os.fchmod(self._fd, 0o600)

    def write(self, state: ChainState, record: dict[str, Any], *, sync: bool = True) -> None:
        record["prev_mac"] = state.last_mac
        record["mac"] = sign(self._key, record)
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        written = os.write(self._fd, line)
        if written != len(line):  # a full disk: never leave half a record behind
            try:
                os.ftruncate(self._fd, os.fstat(self._fd).st_size - written)
            except OSError:
                pass  # a torn tail left here is moved aside at the next start (repair_chain_tail)
            raise OSError(0, f"short write to {self.path}: {written} of {len(line)} bytes")
        if sync:
            os.fdatasync(self._fd)
        state.last_mac = record["mac"]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def checkpoint_record(kind: str, state: ChainState, ts: str, inode: int | None,
                      **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"type": kind, "ts": ts, "segment": state.segment,
                           "lines": state.lines, "bytes": state.bytes, "hash": state.hash.hex(),
                           "h0": state.h0.hex(), "from_line": state.checkpointed_lines,
                           "line_hashes": state.pending, "inode": inode}
    rec.update(extra)
    return rec


def read_chain(path: Path) -> list[dict[str, Any]]:
    """The sidecar's records; a torn or unparsable line is returned as {"type": "unreadable"}."""
    if not path.exists():
        return []
    out = []
    for chunk in iter_chunks(path, on_long=None):  # in blocks: a line over MAX_LINE is unreadable
        for raw in chunk.splitlines():
            try:
                rec = orjson.loads(raw)
                out.append(rec if isinstance(rec, dict) else {"type": "unreadable"})
            except orjson.JSONDecodeError:
                out.append({"type": "unreadable"})
    return out


def trail_record(trail_id: str, key_id: str, stream: str, ts: str) -> dict[str, Any]:
    return {"type": "trail", "trail_id": trail_id, "key_id": key_id, "stream": stream, "ts": ts}


def _is_hash(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def record_problem(rec: dict[str, Any], key: bytes | None, prev_mac: str) -> str | None:
    """Why `rec` cannot be trusted as the record after one whose mac is `prev_mac` (None: it can).
    Without `key` signatures are not checked (shape and order only)."""
    kind = rec.get("type")
    if kind == "unreadable":
        return "unreadable"
    if not isinstance(rec.get("mac"), str) or not isinstance(rec.get("prev_mac"), str):
        return "unsigned"
    if kind in ("checkpoint", "seal"):
        if not (all(_is_count(rec.get(k)) for k in ("segment", "lines", "bytes"))
                and _is_hash(rec.get("hash")) and _is_hash(rec.get("h0"))):
            return "malformed " + str(kind)
    elif kind == "trail":
        if not (isinstance(rec.get("trail_id"), str) and isinstance(rec.get("key_id"), str)):
            return "malformed trail"
    elif not isinstance(kind, str):
        return "malformed"
    if key is not None and not signature_ok(key, rec):
        return "bad signature"
    if rec["prev_mac"] != prev_mac:
        return "out of order"
    return None


def resume(records: list[dict[str, Any]], key: bytes | None = None) -> ChainState:
    """The chain state right after the sidecar's last trusted record. The first record that is
    unreadable, malformed, out of order or (with `key`) badly signed ends the trust: it is noted
    in `broken` and nothing after it is used; this never raises."""
    state = ChainState()
    for i, rec in enumerate(records, 1):
        problem = record_problem(rec, key, state.last_mac)
        if problem is not None:
            state.broken = (i, problem)
            break
        kind = rec["type"]
        state.last_mac = rec["mac"]
        if kind == "trail" and state.trail_id is None:
            state.trail_id = rec["trail_id"]
        if kind not in ("checkpoint", "seal"):
            continue
        state.segment = rec["segment"]
        state.h0 = bytes.fromhex(rec["h0"])
        state.hash = bytes.fromhex(rec["hash"])
        state.lines = state.checkpointed_lines = rec["lines"]
        state.bytes = rec["bytes"]
        state.pending = []
        state.last_signed = rec
        if kind == "seal":
            state.start_segment()
    return state


def trusted_records(records: list[dict[str, Any]], key: bytes) -> list[dict[str, Any]] | None:
    """The records if every one is readable, signed by `key` and linked to the one before it;
    None otherwise (nothing in such a chain is acted on: the writer and verify report it)."""
    prev = ""
    for rec in records:
        if not signature_ok(key, rec) or rec.get("prev_mac") != prev:
            return None
        if rec.get("type") in ("checkpoint", "seal") and not _well_formed(rec):
            return None
        prev = rec["mac"]
    return records


def _well_formed(rec: dict[str, Any]) -> bool:
    try:
        int(rec["segment"]), int(rec["lines"]), bytes.fromhex(rec["h0"]), bytes.fromhex(rec["hash"])
        return isinstance(rec.get("line_hashes", []), list)
    except (KeyError, TypeError, ValueError):
        return False


def segment_line_hashes(records: list[dict[str, Any]], segment: int) -> list[str]:
    """The short running hashes of a segment's lines, from its checkpoints and seal."""
    out: list[str] = []
    for rec in records:
        if rec.get("type") in ("checkpoint", "seal") and rec.get("segment") == segment:
            start = rec.get("from_line")
            hashes = rec.get("line_hashes")
            if isinstance(start, int) and isinstance(hashes, list) and start == len(out):
                out.extend(str(h) for h in hashes)
    return out
