"""The trail's anchor: what the writer remembers, outside the log directory, of how far each
stream was written and signed. Someone who can edit the logs but not the data directory cannot
delete or shorten a stream together with its chain, nor get a line of theirs signed.

Layout, in the data directory (mode 0700 directories, 0600 files):

    anchors/<trail_id>/trail.json      {"trail_id", "key_id", "log_dir", "created"}
    anchors/<trail_id>/<stream>.head   two fixed slots of SLOT bytes each:
        slot 0, WRITTEN: the line about to be appended, pwritten before each append
                         {"segment", "line", "offset", "before", "after"}
                         (`line` is 1-based within its segment; `before`/`after` the running
                         chain hash, hex, before and after that line; `offset` its byte offset)
        slot 1, SIGNED:  where the last signed chain record (checkpoint or seal) stands,
                         pwritten after that record is in the chain
                         {"segment", "lines", "bytes", "hash", "mac", "type"}

One `pwrite` per slot update and no fsync of its own: after a power loss a slot may be older
than the files (a legitimate line may then lack its evidence: it is reported, never signed), but
never newer than the chain (the chain record is fdatasynced before the SIGNED slot is written).
A slot that cannot be parsed reads as None (no evidence).

The trail id is random, made when a trail's first chain is started, and kept in the first record
of each chain (`{"type": "trail", "trail_id", "key_id", ...}`): an anchor is found by trail id,
never by path or inode, so a trail copied or restored elsewhere is still recognised. `key_id`
tells a wrong key (exit 2) from an altered signature (exit 1).

An anchor line carries every stream's signed head for copies kept elsewhere (the console that
`docker logs` keeps, an append-only file, an HTTP endpoint): `tradebot audit verify --anchors
FILE` checks a trail against them.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

ANCHORS_DIR = "anchors"
TRAIL_FILE = "trail.json"
HEAD_SUFFIX = ".head"
SLOT = 256
WRITTEN, SIGNED = 0, 1
ANCHOR_LINE_TAG = "tradebot-anchor "
_DIR_MODE, _FILE_MODE = 0o700, 0o600
_KEY_ID_LABEL = b"tradebot audit key id v1"


def new_trail_id() -> str:
    return secrets.token_hex(16)


def key_id(key: bytes) -> str:
    """A public fingerprint of the audit key: equal ids mean the same key."""
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def _open(path: Path, flags: int) -> int:
    return os.open(path, flags | os.O_CLOEXEC | os.O_NOFOLLOW, _FILE_MODE)


def _encode_slot(record: dict[str, Any]) -> bytes:
    body = orjson.dumps(record)
    if len(body) >= SLOT:
        raise ValueError(f"anchor slot record too long ({len(body)} bytes)")
    return body + b" " * (SLOT - 1 - len(body)) + b"\n"


def _decode_slot(raw: bytes) -> dict[str, Any] | None:
    try:
        rec = orjson.loads(raw.rstrip(b" \n\x00"))
    except orjson.JSONDecodeError:
        return None
    return rec if isinstance(rec, dict) else None


class Head:
    """One stream's head file: the WRITTEN and SIGNED slots."""

    def __init__(self, path: Path, *, create: bool) -> None:
        self.path = path
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        self._fd = _open(path, flags)
        if create and os.fstat(self._fd).st_size < 2 * SLOT:
            os.ftruncate(self._fd, 2 * SLOT)

    def read(self, slot: int) -> dict[str, Any] | None:
        return _decode_slot(os.pread(self._fd, SLOT, slot * SLOT))

    def write(self, slot: int, record: dict[str, Any]) -> None:
        data = _encode_slot(record)
        if os.pwrite(self._fd, data, slot * SLOT) != SLOT:
            raise OSError(0, f"short write to {self.path}")

    def written(self) -> dict[str, Any] | None:
        return self.read(WRITTEN)

    def signed(self) -> dict[str, Any] | None:
        return self.read(SIGNED)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass(frozen=True)
class Anchor:
    """The anchor directory of one trail."""

    directory: Path
    trail_id: str
    key_id: str
    log_dir: str

    @classmethod
    def create(cls, data_dir: Path, trail_id: str, key_id_: str, log_dir: Path) -> Anchor:
        root = Path(data_dir) / ANCHORS_DIR
        root.mkdir(parents=True, exist_ok=True, mode=_DIR_MODE)
        directory = root / trail_id
        directory.mkdir(exist_ok=True, mode=_DIR_MODE)
        meta = {"trail_id": trail_id, "key_id": key_id_, "log_dir": str(Path(log_dir).resolve()),
                "created": datetime.now(timezone.utc).isoformat()}
        path = directory / TRAIL_FILE
        if not path.exists():
            fd = _open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            try:
                os.write(fd, orjson.dumps(meta, option=orjson.OPT_APPEND_NEWLINE))
                os.fsync(fd)
            finally:
                os.close(fd)
        return cls.load(directory) or cls(directory, trail_id, key_id_, meta["log_dir"])

    @classmethod
    def load(cls, directory: Path) -> Anchor | None:
        try:
            fd = _open(directory / TRAIL_FILE, os.O_RDONLY)
        except OSError:
            return None
        try:
            meta = orjson.loads(os.read(fd, 1 << 16))
        except orjson.JSONDecodeError:
            return None
        finally:
            os.close(fd)
        if not isinstance(meta, dict) or not isinstance(meta.get("trail_id"), str):
            return None
        return cls(directory, meta["trail_id"], str(meta.get("key_id", "")),
                   str(meta.get("log_dir", "")))

    @classmethod
    def find(cls, data_dir: Path, *, trail_id: str | None = None,
             log_dir: Path | None = None) -> Anchor | None:
        """The anchor of `trail_id`; without one, the anchor last made for `log_dir` (a log
        directory whose chains are all gone still has its anchor)."""
        root = Path(data_dir) / ANCHORS_DIR
        if trail_id is not None:
            return cls.load(root / trail_id) if trail_id.isalnum() else None
        if log_dir is None or not root.is_dir():
            return None
        wanted = str(Path(log_dir).resolve())
        found = [a for d in root.iterdir() if (a := cls.load(d)) is not None and a.log_dir == wanted]
        return max(found, key=lambda a: (a.directory / TRAIL_FILE).stat().st_mtime, default=None)

    def head(self, stream: str, *, create: bool = False) -> Head | None:
        path = self.directory / (stream + HEAD_SUFFIX)
        if not create and not path.exists():
            return None
        return Head(path, create=create)

    def heads(self) -> dict[str, dict[str, Any]]:
        """stream -> its SIGNED slot, for every stream with a head file."""
        out = {}
        for path in sorted(self.directory.glob("*" + HEAD_SUFFIX)):
            head = Head(path, create=False)
            try:
                signed = head.signed()
            finally:
                head.close()
            if signed is not None:
                out[path.name[:-len(HEAD_SUFFIX)]] = signed
        return out


def format_anchor_line(trail_id: str, ts: str, heads: dict[str, dict[str, Any]]) -> str:
    """One line with every stream's signed head, for copies kept outside the host."""
    body = {"trail_id": trail_id, "ts": ts,
            "heads": {s: {k: h[k] for k in ("segment", "lines", "hash", "mac") if k in h}
                      for s, h in sorted(heads.items())}}
    return ANCHOR_LINE_TAG + orjson.dumps(body).decode()


def parse_anchor_lines(text: str) -> list[dict[str, Any]]:
    """The anchor lines found anywhere in `text` (a console log with its own prefixes, an
    append-only file); lines that do not parse are skipped."""
    out = []
    for line in text.splitlines():
        at = line.find(ANCHOR_LINE_TAG)
        if at < 0:
            continue
        try:
            body = orjson.loads(line[at + len(ANCHOR_LINE_TAG):])
        except orjson.JSONDecodeError:
            continue
        if isinstance(body, dict) and isinstance(body.get("heads"), dict):
            out.append(body)
    return out
