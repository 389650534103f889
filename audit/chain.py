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
This module holds the format and the arithmetic; `stream.py` writes it, `verify.py` checks it.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

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

    def add(self, line: bytes) -> None:
        self.hash = next_hash(self.hash, line)
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
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
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
    for raw in path.read_bytes().splitlines():
        try:
            rec = orjson.loads(raw)
            out.append(rec if isinstance(rec, dict) else {"type": "unreadable"})
        except orjson.JSONDecodeError:
            out.append({"type": "unreadable"})
    return out


def resume(records: list[dict[str, Any]]) -> ChainState:
    """The chain state right after the sidecar's last good record."""
    state = ChainState()
    for rec in records:
        kind = rec.get("type")
        if kind not in ("checkpoint", "seal"):
            if isinstance(rec.get("mac"), str):
                state.last_mac = rec["mac"]
            continue
        state.segment = int(rec["segment"])
        state.h0 = bytes.fromhex(rec["h0"])
        state.hash = bytes.fromhex(rec["hash"])
        state.lines = state.checkpointed_lines = int(rec["lines"])
        state.bytes = int(rec["bytes"])
        state.pending = []
        state.last_mac = rec["mac"]
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
