"""One stream of the trail: its active file, its rotation, its chain sidecar.

Live streams (`durable=True`) write each line with one `os.write` on an O_APPEND descriptor and
look at the path before every write, as `logging.handlers.WatchedFileHandler` does: a file moved
away (the guide's `mv orders.jsonl orders.jsonl.1; touch orders.jsonl`, logrotate's `create`)
is sealed in the chain and a new file is opened (mode 0600 whatever `touch` made it); a file
shrunk under us (logrotate's `copytruncate`) is sealed and reported as possible loss. With
`max_bytes` the stream rotates itself to `.1`, `.2`, ... (optionally gzipped), keeping
`backups` files and sealing pruned ones as expired (chain records only, no events). Simulation
streams (`durable=False`) buffer
whole lines and write them in large chunks. Each notable thing that happens is appended to
`notices` for the trail to record; this module writes no records of its own.

With an anchor (`audit/anchor.py`, in the data directory) a line the bot cannot show it wrote is
never signed: before each durable append the line's place and running hash go to the stream's
WRITTEN slot (one pwrite, no fsync), and after each signed record its head goes to the SIGNED
slot. At start-up the unsigned lines after the last signed record are chained only if they
reproduce the WRITTEN head; a line beyond it or different from it is damage: the segment is
sealed before it (reason `damaged`), the file is moved aside as a rotated segment (the lines
after its seal stay for `audit verify` to report) and the stream goes on in a new file. The open
segment is recognised by its content (its first lines reproduce the last signed hash), never by
inode, so a restored copy goes on with its chain. A chain record that cannot be trusted
(malformed, out of order, badly signed) ends the trust in the chain there: damage, and a new
segment sealed after the last good record.
"""
from __future__ import annotations

import filecmp
import gzip
import os
import re
import shutil
import stat
import weakref
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson

from audit import files
from audit.anchor import SIGNED, WRITTEN, Anchor, Head, key_id
from audit.chain import (
    CHAIN_SUFFIX,
    SHORT,
    ChainState,
    ChainWriter,
    checkpoint_record,
    next_hash,
    read_chain,
    resume,
    segment_line_hashes,
    trail_record,
    trusted_records,
)
from audit.writer import AuditKeyMismatch, AuditWriteFailed, PlantedLink, open_own, prepare_directory

FILE_MODE = 0o600
_BUFFER_LIMIT = 1 << 20
_BUILT_IN = ("size", "requested")  # seal reasons of the bot's own rotation
_ROTATED = re.compile(r"^\.(\d+)(\.gz)?$")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_append(path: Path) -> int:
    existed = path.exists()
    fd = open_own(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)  # a link: PlantedLink
    if os.fstat(fd).st_mode & 0o077:
        os.fchmod(fd, FILE_MODE)
    if not existed:
        _fsync_dir(path.parent)
    return fd


def repair_tail(path: Path, stamp: str, json_lines: bool, *,
                move_long: bool = False) -> dict[str, Any] | None:
    """Move a torn last line (no newline, bad JSON, NUL bytes) aside to `<name>.torn-<stamp>` and
    truncate the file to its last whole line. Returns what was done, or None. A symbolic link at
    `path` (or at the `.torn` name) is never followed: PlantedLink. Only the tail is read: a last
    line over MAX_LINE is no torn write of the bot's (no record is that long) and is left in
    place, for start-up to report as damage; with `move_long` (a chain, which goes on in its
    file) an unterminated one is still moved aside, copied in blocks."""
    if path.is_symlink():
        raise PlantedLink(path)
    if not path.is_file() or path.stat().st_size == 0:  # a device (e.g. /dev/full) is left alone
        return None
    fd = open_own(path, os.O_RDWR)
    with open(fd, "r+b") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        end = os.fstat(fd).st_size
        if os.pread(fd, 1, end - 1) != b"\n":
            cut = _line_start(fd, end, files.MAX_LINE if not move_long else end)
        else:
            cut = _line_start(fd, end - 1, files.MAX_LINE)
            if cut is not None:
                last = os.pread(fd, end - 1 - cut, cut)
                if not (b"\x00" in last or (json_lines and not _is_json(last))):
                    cut = end
        if cut is None or cut == end:
            return None
        return _cut_tail(path, f, cut, end, stamp)


def _line_start(fd: int, end: int, limit: int, block: int = 1 << 16) -> int | None:
    """Where the line ending at `end` starts (just after the newline before it), reading back in
    blocks; None when it is longer than `limit`."""
    pos = end
    while pos > 0 and end - pos <= limit:
        start = max(0, pos - block)
        nl = os.pread(fd, pos - start, start).rfind(b"\n")
        if nl >= 0:
            return start + nl + 1 if end - (start + nl + 1) <= limit else None
        pos = start
    return 0 if end <= limit else None


def _cut_tail(path: Path, f, cut: int, end: int, stamp: str) -> dict[str, Any]:
    aside = path.with_name(f"{path.name}.torn-{stamp}")
    fd = open_own(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        for at in range(cut, end, files.CHUNK):  # in blocks: the tail may be any size
            os.write(fd, os.pread(f.fileno(), min(files.CHUNK, end - at), at))
        os.fsync(fd)
    finally:
        os.close(fd)
    f.truncate(cut)
    f.flush()
    os.fsync(f.fileno())
    _fsync_dir(path.parent)
    return {"file": path.name, "moved_to": aside.name, "bytes": end - cut, "kept_bytes": cut}


def damaged_lines(path: Path, json_lines: bool, limit: int = 20) -> list[int]:
    """Line numbers (1-based) of broken lines before the end; reported, never truncated. Read in
    blocks: a line over MAX_LINE is broken (no record is that long) and never held in memory."""
    if not path.is_file():
        return []
    bad: list[int] = []
    for n, raw in enumerate(_file_lines(path), 1):
        if raw is TOO_LONG or b"\x00" in raw or (json_lines and not _is_json(raw)):
            bad.append(n)
            if len(bad) >= limit:
                break
    return bad


# Stands for a line over MAX_LINE (never read): no running hash of the bot's can come from it.
TOO_LONG = b"\x00a line over MAX_LINE, not read\x00\n"


def _file_lines(path: Path) -> Iterator[bytes]:
    """The file's lines as `bytes.splitlines(keepends=True)` gives them, read in blocks; a line
    over MAX_LINE is TOO_LONG."""
    longs: list[int] = []
    n = 0
    for chunk in files.iter_chunks(path, on_long=lambda where: longs.append(where.line)):
        for raw in chunk.splitlines(keepends=True):
            n += 1
            yield TOO_LONG if longs and longs[0] == n else raw
            if longs and longs[0] <= n:
                longs.pop(0)
    if longs:  # an unterminated last line over MAX_LINE stands for nothing in the blocks
        yield TOO_LONG


def _is_json(raw: bytes) -> bool:
    try:
        return isinstance(orjson.loads(raw), dict)
    except orjson.JSONDecodeError:
        return False


def _copy_durably(path: Path, target: Path) -> None:
    """Copy `path` to `target` (0600) through `<target>.tmp`, synced, renamed into place whole:
    the archive (another volume, perhaps) never holds half a segment under a segment's name."""
    prepare_directory(target.parent, f"the archive directory {target.parent}")
    tmp = target.with_name(target.name + ".tmp")
    with open(path, "rb") as src, open(open_own(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                                               FILE_MODE), "wb") as dst:
        shutil.copyfileobj(src, dst)
        dst.flush()
        os.fsync(dst.fileno())
    os.rename(tmp, target)
    _fsync_dir(target.parent)


def _first_line(path: Path) -> bytes | None:
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as f:
            line = f.readline(files.MAX_LINE + 1)
    except (OSError, EOFError):
        return None
    if len(line) > files.MAX_LINE:
        return TOO_LONG  # the first line of no segment of the bot's
    return line or None


def _last_segment_record(path: Path, window: int = 1 << 18) -> tuple[dict[str, Any] | None, bool]:
    """The chain's last checkpoint or seal, read from its last `window` bytes (None if that
    window holds none), and whether the window was the whole chain."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - window)
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return None, True
    lines = data.splitlines()
    if start > 0 and lines:
        lines = lines[1:]  # the window's first line is partial
    for raw in reversed(lines):
        try:
            rec = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(rec, dict) and rec.get("type") in ("checkpoint", "seal"):
            return rec, start == 0
    return None, start == 0


def _holds(path: Path, seal: dict[str, Any]) -> bool:
    """Does the file hold exactly the sealed segment (its line count and hash from its h0)?"""
    if not path.is_file():
        return False
    want, n = int(seal["lines"]), 0
    h = bytes.fromhex(seal["h0"])
    for line in _file_lines(path):  # in blocks: a planted 2 GB file is never held whole
        n += 1
        if n > want:
            return False
        h = next_hash(h, line)
    return n == want and h.hex() == seal["hash"]


def _segments(records: list[dict[str, Any]]) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    """Each segment's h0 and first line hash, from the chain; and each pruned segment's record
    (`expired` or `archived`)."""
    segments: dict[int, dict[str, Any]] = {}
    fates: dict[int, dict[str, Any]] = {}
    for rec in records:
        kind = rec.get("type")
        if kind in ("checkpoint", "seal"):
            k = int(rec["segment"])
            seg = segments.setdefault(k, {"h0": bytes.fromhex(rec["h0"]), "first": None})
            hashes = rec.get("line_hashes") or []
            if seg["first"] is None and int(rec.get("from_line", 0)) == 0 and hashes:
                seg["first"] = hashes[0]
        elif kind in ("expired", "archived") and isinstance(rec.get("segment"), int):
            fates[rec["segment"]] = rec
    return segments, fates


class Stream:
    """Writes one stream; see the module docstring."""

    def __init__(self, directory: Path, name: str, key: bytes, *, durable: bool,
                 stamp: Callable[[], str], max_bytes: int = 0, backups: int = 5,
                 compress: bool = False, archive_dir: Path | None = None,
                 anchor: Anchor | None = None, vouch_all: bool = False) -> None:
        """`anchor`: the trail's anchor (None: no data directory, every unsigned line is chained
        as before anchors existed). `vouch_all`: the anchor was just made for a trail that had
        none, so the unsigned lines are chained once without WRITTEN evidence."""
        self.directory = directory
        self.archive_dir = archive_dir
        self.name = name
        self.path = directory / name
        self.durable = durable
        self.max_bytes = max_bytes
        self.backups = backups
        self.compress = compress
        self._stamp = stamp
        self.notices: list[tuple[str, str, dict[str, Any]]] = []  # (kind, message, details)
        self._json = name.endswith(".jsonl")
        self._lines: list[bytes] = []
        self._buffered = 0
        self._dirty = False
        self._anchor = anchor
        self._vouch_all = vouch_all
        self._seal_extra: dict[str, Any] = {}
        self._skip_seal = False
        self.signed_head: dict[str, Any] | None = None
        if durable:
            self._repair()
            self._tidy(key)
        self._chain = ChainWriter(directory / (name + CHAIN_SUFFIX), key)
        records = read_chain(self._chain.path)
        self.state = resume(records, key if anchor is not None else None)
        try:
            self._check_key(records, key)
        except AuditKeyMismatch:
            self._chain.close()
            raise
        self._head: Head | None = anchor.head(name, create=True) if anchor is not None else None
        if self._head is not None:
            self.signed_head = self._head.signed()
            weakref.finalize(self, self._head.close)  # a stream dropped without close()
        trusted = records[:self.state.broken[0] - 1] if self.state.broken else records
        self._check_signed_head(trusted)
        self._fd = _open_append(self.path)
        self._start_trail_record()
        self._catch_up(trusted)

    # -- start-up ------------------------------------------------------------------------
    def _repair(self) -> None:
        done = repair_tail(self.path, self._stamp_compact(), self._json)
        if done:
            self.notices.append(("repair", f"{done['file']}: torn last line ({done['bytes']} bytes) "
                                 f"moved to {done['moved_to']}; the file now ends at its last whole "
                                 "line", done))
        bad = damaged_lines(self.path, self._json)
        if bad:
            self.notices.append(("damage", f"{self.name}: damaged line(s) {bad} inside the file "
                                 "(reported, not changed)", {"file": self.name, "lines": bad}))

    def _check_key(self, records: list[dict[str, Any]], key: bytes) -> None:
        """A chain (or anchor) of another key stops start-up: signing on would mix two keys."""
        if self._anchor is None:
            return
        ours = key_id(key)
        theirs = next((r.get("key_id") for r in records if r.get("type") == "trail"), None)
        if theirs is None and self.state.broken == (1, "bad signature"):
            theirs = "unknown: its first record's signature does not match this key"
        for what, other in ((f"{self.name}{CHAIN_SUFFIX}", theirs), ("its anchor", self._anchor.key_id)):
            if isinstance(other, str) and other != ours:
                raise AuditKeyMismatch(
                    f"{what} in {self.directory} was signed with another audit key (key id {other}; "
                    f"this key's id is {ours}): set BOT_AUDIT_KEY_FILE to the key that made this "
                    "trail, or give the bot a new log directory")

    def _check_signed_head(self, trusted: list[dict[str, Any]]) -> None:
        """The anchor's SIGNED head must be in the chain (it is written only after its record is
        synced): a chain without it was cut back or rewritten, and is trusted no further."""
        head = self.signed_head
        if head is None or self.state.broken is not None:
            return
        keys = ("segment", "lines", "hash", "mac")
        if any(r.get("type") in ("checkpoint", "seal") and all(r.get(k) == head.get(k) for k in keys)
               for r in reversed(trusted)):
            return
        self.state.broken = (len(trusted) + 1, f"missing: the chain was cut back or rewritten (the "
                             f"anchor's signed head, segment {head.get('segment')}, line "
                             f"{head.get('lines')}, is not in it)")

    def _start_trail_record(self) -> None:
        """Each chain begins with the trail record (a chain made before anchors gets one now)."""
        if self._anchor is None or self.state.trail_id is not None:
            return
        self._chain.write(self.state, trail_record(self._anchor.trail_id, self._anchor.key_id,
                                                   self.name, self._stamp()))
        self.state.trail_id = self._anchor.trail_id

    def _catch_up(self, records: list[dict[str, Any]]) -> None:
        """Bring the chain state up to the active file (see the module docstring): an untrusted
        chain record, a segment rotated or altered while we were stopped, and the unsigned lines
        after the last signed record, chained only when the WRITTEN head vouches for them."""
        st = os.fstat(self._fd)
        regular = stat.S_ISREG(st.st_mode)
        lines = list(_file_lines(self.path)) if regular and st.st_size else []
        s = self.state
        broken_at = self._note_broken_chain()
        if self._sealed_but_not_moved(lines):
            if broken_at is not None:
                self._set_aside(broken_at, False)
            return
        if s.lines and not _reproduces(lines[:s.lines], s.h0, s.hash):
            bad = _first_difference(lines, s.h0, segment_line_hashes(records, s.segment))
            if bad is None:  # the file starts another segment: rotated while we were stopped
                last = s.last_signed or {}
                self._seal("renamed", inode=last.get("inode"))
                self.notices.append(("rotation", f"{self.name} was rotated while the bot was stopped: "
                                     f"segment {s.segment - 1} sealed", {"file": self.name}))
            else:
                self.notices.append(("integrity_warning", f"{self.name} differs from its last "
                                     f"checkpoint from line {bad} on: `tradebot audit verify` will "
                                     "show where", {"file": self.name}))
                self._set_aside(f"{self.name}:{bad}", bool(lines))
                return
        unsigned = lines[s.lines:] if regular else []
        damage = None
        if broken_at is not None:  # nothing is signed past an untrusted chain record
            pass
        elif self._anchor is None or self._vouch_all:
            for line in unsigned:
                if line is TOO_LONG:
                    damage = (f"a line over {files.MAX_LINE >> 20} MiB (no record of the bot is "
                              "that long)")
                    break
                s.add(line)
        else:
            damage = self._vouched(unsigned)
        if broken_at is not None:
            self._set_aside(broken_at, bool(lines))
        elif damage is not None:
            at = f"{self.name}:{s.lines + 1}"
            self.notices.append(("damage", f"{at}: {damage}; never signed: the segment is sealed "
                                 f"before it and {self.name} goes on in a new file",
                                 {"file": self.name, "lines": [s.lines + 1], "at": at,
                                  "reason": damage}))
            self._set_aside(at, True)

    def _note_broken_chain(self) -> str | None:
        """`<stream>.chain:<line>` of the first untrusted chain record (a damage notice), or None."""
        if self.state.broken is None:
            return None
        line, why = self.state.broken
        at = f"{self.name}{CHAIN_SUFFIX}:{line}"
        self.notices.append(("damage", f"{at}: chain record {why}; the chain is trusted up to the "
                             f"record before it; {self.name} goes on in a new segment",
                             {"file": self.name + CHAIN_SUFFIX, "lines": [line], "at": at,
                              "reason": why}))
        return at

    def _sealed_but_not_moved(self, lines: list[bytes]) -> bool:
        """A crash between a seal and the rename after it leaves the sealed segment as the
        active file: finish that rotation (the seal is in the chain already) instead of taking
        its lines for new ones. Lines after the seal stay in the rotated file, never signed."""
        s, last = self.state, self.state.last_signed
        if not (self.durable and s.lines == 0 and last is not None and last["type"] == "seal"
                and last["lines"] and len(lines) >= last["lines"]
                and _reproduces(lines[:last["lines"]], bytes.fromhex(last["h0"]),
                                bytes.fromhex(last["hash"]))):
            return False
        extra = len(lines) - last["lines"]
        if extra and last.get("reason") != "damaged":
            at = f"{self.name}:{last['lines'] + 1}"
            self.notices.append(("damage", f"{at}: {extra} line(s) after the seal of segment "
                                 f"{last['segment']}; never signed", {"file": self.name,
                                 "lines": [last["lines"] + 1], "at": at,
                                 "reason": "written after the segment was sealed"}))
        self._skip_seal = True
        try:
            self.rotate(str(last.get("reason", "size")))
        finally:
            self._skip_seal = False
        return True

    def _vouched(self, unsigned: list[bytes]) -> str | None:
        """Chain the unsigned lines the WRITTEN head vouches for; returns why the rest (if any)
        cannot be signed."""
        s = self.state
        head = self._head.written() if self._head is not None else None
        w = _written_head(head)
        if w is None or w[0] != s.segment or w[1] <= s.lines:
            if unsigned:
                return ("no record of the bot writing it" if w is None
                        else "written after the last line the bot recorded")
            return None
        _, line, before, after = w
        covered = line - s.lines  # the unsigned lines up to the head's line
        hashes = [s.hash]
        for raw in unsigned[:covered]:
            hashes.append(next_hash(hashes[-1], raw))
        if len(unsigned) >= covered and hashes[covered] == after:
            take = covered
        elif len(unsigned) >= covered - 1 and hashes[covered - 1] == before:
            take = covered - 1
            if len(unsigned) == covered - 1:
                self.notices.append(("write_lost", f"{self.name}:{line} was about to be written "
                                     "when the bot stopped, and was not (a crash, not tampering)",
                                     {"file": self.name, "line": line, "segment": s.segment}))
        elif len(unsigned) < covered - 1:
            if not unsigned:
                self.notices.append(("write_lost", f"{self.name}: lines {s.lines + 1} to {line} were "
                                     "being written when the bot stopped and are not in the file "
                                     "(a power failure before they reached the disk, or cut)",
                                     {"file": self.name, "line": s.lines + 1, "segment": s.segment}))
                return None
            return (f"the file ends at line {s.lines + len(unsigned)}, before line {line} the "
                       "bot recorded writing (lost in a power failure, or cut)")
        else:
            take = 0
        for raw, h in zip(unsigned[:take], hashes[1:take + 1]):
            s.add_hashed(raw, h)
        if take == len(unsigned):
            return None
        return ("not the line the bot recorded writing" if take < covered
                else "written after the last line the bot recorded")

    def _set_aside(self, at: str, has_lines: bool) -> None:
        """Seal the segment where it is trusted (reason `damaged`, naming `at`) and go on in a
        new file; the damaged file stays as a rotated segment for `audit verify` to report."""
        self._seal_extra = {"damaged": at}
        try:
            if has_lines and self.backups > 0:
                self.rotate("damaged")
            elif has_lines:  # no backups kept: the evidence still must not be deleted
                self._seal("damaged", inode=self._inode())
                os.close(self._fd)
                self.path.rename(self.directory / f"{self.name}.1")
                _fsync_dir(self.directory)
                self._fd = _open_append(self.path)
            else:
                self._seal("damaged", inode=self._inode())
        finally:
            self._seal_extra = {}

    def _stamp_compact(self) -> str:
        return self._stamp()[:19].replace("-", "").replace(":", "") + "Z"

    # -- writing -------------------------------------------------------------------------
    def append(self, line: bytes) -> None:
        if not self.durable:
            self._lines.append(line)
            self._buffered += len(line)
            self.state.add(line)
            if self._buffered >= _BUFFER_LIMIT:
                self.flush()
                self.checkpoint(sync=False)
            return
        self._watch()
        if self.max_bytes and self.state.bytes and self.state.bytes + len(line) > self.max_bytes:
            self.rotate("size")
        s = self.state
        after = next_hash(s.hash, line)
        if self._head is not None:
            self._note_written(after)
        try:
            written = os.write(self._fd, line)
        except OSError as exc:
            raise AuditWriteFailed(exc.errno, f"cannot write {self.path}: {exc.strerror}") from exc
        if written != len(line):  # never leave half a line behind
            try:
                os.ftruncate(self._fd, os.fstat(self._fd).st_size - written)
            except OSError:
                pass
            raise AuditWriteFailed(0, f"short write to {self.path}: {written} of {len(line)} bytes")
        s.add_hashed(line, after)
        self._dirty = True

    def _note_written(self, after: bytes) -> None:
        """The WRITTEN slot: the line about to be appended (one pwrite, no fsync)."""
        s = self.state
        assert self._head is not None
        try:
            self._head.write(WRITTEN, {"segment": s.segment, "line": s.lines + 1, "offset": s.bytes,
                                       "before": s.hash.hex(), "after": after.hex()})
        except OSError as exc:
            raise AuditWriteFailed(exc.errno, f"cannot write {self._head.path}: {exc}") from exc

    def _watch(self) -> None:
        """Notice a file moved away or truncated under us since the last write."""
        try:
            st_path = os.stat(self.path)
        except FileNotFoundError:
            st_path = None
        st_fd = os.fstat(self._fd)
        if st_path is None or (st_path.st_dev, st_path.st_ino) != (st_fd.st_dev, st_fd.st_ino):
            self._seal("renamed", inode=st_fd.st_ino)
            os.close(self._fd)
            try:
                self._fd = _open_append(self.path)
            except OSError as exc:  # a link planted there, a directory no longer writable
                self._fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)  # every write fails
                raise AuditWriteFailed(exc.errno or 0, f"cannot open {self.path}: "
                                       f"{exc.strerror or exc}") from exc
            self.notices.append(("rotation", f"{self.name} was moved away (external rotation): "
                                 f"segment {self.state.segment - 1} sealed, writing a new "
                                 f"{self.name} (mode 0600)", {"file": self.name}))
        elif st_fd.st_size < self.state.bytes:
            lost = self.state.bytes - st_fd.st_size
            self._seal("truncated", inode=st_fd.st_ino)
            self.notices.append(("possible_loss", f"{self.name} was truncated under the bot "
                                 f"(copytruncate?): {lost} bytes were cut; lines written between "
                                 "the copy and the truncation may be lost", {"file": self.name,
                                                                             "bytes_cut": lost}))

    def sync(self) -> None:
        if self.durable and self._dirty:
            try:
                os.fdatasync(self._fd)
            except OSError as exc:
                raise AuditWriteFailed(exc.errno, f"cannot sync {self.path}: {exc.strerror}") from exc
            self._dirty = False

    def flush(self) -> None:
        if not self._lines:
            return
        chunk = b"".join(self._lines)
        self._lines.clear()
        self._buffered = 0
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as exc:
            raise AuditWriteFailed(exc.errno, f"cannot write {self.path}: {exc.strerror}") from exc

    def checkpoint(self, *, sync: bool = True) -> None:
        """Sign where the chain stands (once per cycle and at stop)."""
        self.flush()
        self.sync()
        s = self.state
        if not s.pending:
            return
        record = checkpoint_record("checkpoint", s, self._stamp(), self._inode())
        try:
            self._chain.write(s, record, sync=sync)
        except OSError as exc:
            raise AuditWriteFailed(exc.errno, f"cannot write {self._chain.path}: {exc}") from exc
        s.checkpointed_lines = s.lines
        s.pending = []
        self._note_signed(record)

    def _note_signed(self, record: dict[str, Any]) -> None:
        """The SIGNED slot: where the record just put in the chain stands."""
        self.signed_head = {k: record[k] for k in ("type", "segment", "lines", "bytes", "hash", "mac")}
        if self._head is not None:
            try:
                self._head.write(SIGNED, self.signed_head)
            except OSError as exc:
                raise AuditWriteFailed(exc.errno, f"cannot write {self._head.path}: {exc}") from exc

    def _inode(self) -> int:
        return os.fstat(self._fd).st_ino

    def _seal(self, reason: str, inode: int | None = None, **extra: Any) -> None:
        if self._skip_seal:  # finishing a rotation whose seal is in the chain already
            self._skip_seal = False
            return
        s = self.state
        record = checkpoint_record("seal", s, self._stamp(), inode, reason=reason, **extra,
                                   **self._seal_extra)
        self._chain.write(s, record)
        s.start_segment()
        self._note_signed(record)

    # -- rotation ------------------------------------------------------------------------
    # Record first, then act: the seal is in the chain before the file moves, an `expired` or
    # `archived` record before the file is deleted or moved. A crash at any step leaves a state
    # that `_tidy` recognises by content at the next start and finishes, once.
    def _rotated(self, n: int) -> Path:
        return self.directory / f"{self.name}.{n}{'.gz' if self.compress else ''}"

    def rotate(self, reason: str) -> None:
        """Seal the active file and shift it to `.1` (older ones up by one; the oldest beyond
        `backups` is pruned: deleted and sealed as expired, or moved to the archive)."""
        self.flush()
        self.sync()
        self._seal(reason, inode=self._inode())
        os.close(self._fd)
        try:
            self._shift(self.state.segment - 1)
            self._fd = _open_append(self.path)
        except OSError as exc:
            self._fd = self._refusing_fd()
            raise AuditWriteFailed(exc.errno, f"cannot rotate {self.path}: {exc.strerror or exc} "
                                   "(the next start finishes the rotation)") from exc
        # built-in rotation is ordinary: the seal and expiry records in the chain say it all
        # (a notice here would be written, and could rotate again, without end)

    def _refusing_fd(self) -> int:
        """After a failed rotation: a descriptor every later write fails on (AuditWriteFailed),
        never a closed number another file may reuse. The sealed file still in place is opened
        read-only (nothing is added to a sealed segment); a new active file if it was moved."""
        if not self.path.exists():
            try:
                return _open_append(self.path)
            except OSError:
                return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return open_own(self.path, os.O_RDONLY)
        except OSError:
            return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)

    def _shift(self, newest_sealed: int) -> None:
        for n in range(self.backups, 0, -1):
            src = self._rotated(n)
            if not src.exists():
                continue
            if n == self.backups:
                self._prune(self._chain, self.state, newest_sealed - n, src)
            else:
                src.rename(self._rotated(n + 1))
        if self.backups > 0:
            self._rename_to_first(self.path)
        else:
            self._prune(self._chain, self.state, newest_sealed, self.path)

    def _rename_to_first(self, path: Path) -> None:
        plain = self.directory / f"{self.name}.1"
        path.rename(plain)  # atomic: the sealed segment is whole under one name
        _fsync_dir(self.directory)
        if self.compress:
            self._compress(plain)

    def _prune(self, chain: ChainWriter, state: ChainState, segment: int, path: Path) -> None:
        """Record the segment's fate in the chain (synced), then delete or archive its file."""
        if self.archive_dir is None:
            record = {"type": "expired", "ts": self._stamp(), "segment": segment, "file": path.name}
        else:
            record = {"type": "archived", "ts": self._stamp(), "segment": segment,
                      "file": path.name, "archive": self._archive_name(self.archive_dir, segment, path)}
        chain.write(state, record)
        self._carry_out(record, path)

    def _archive_name(self, archive_dir: Path, segment: int, path: Path) -> str:
        """`<stream>.seg<segment>[.gz]`: never the same for two segments of a trail (another
        trail's file of that name in a shared archive gets a time stamp added, never clobbered)."""
        gz = ".gz" if path.name.endswith(".gz") else ""
        name = f"{self.name}.seg{segment:06d}{gz}"
        if (archive_dir / name).exists():
            name = f"{self.name}.seg{segment:06d}.{self._stamp_compact()}{gz}"
        return name

    def _carry_out(self, record: dict[str, Any], path: Path) -> None:
        """Delete (expired) or move (archived) a pruned segment's file; idempotent."""
        if record["type"] == "expired":
            path.unlink()
            _fsync_dir(self.directory)
            return
        if self.archive_dir is None:
            self.notices.append(("integrity_warning", f"{path.name} was archived in the chain as "
                                 f"{record['archive']} but BOT_LOG_ARCHIVE_DIR is not set: set it "
                                 "to the archive directory so the bot can move it there",
                                 {"file": path.name}))
            return
        target = self.archive_dir / str(record["archive"])
        if target.exists():
            if not filecmp.cmp(target, path, shallow=False):  # compared in blocks
                self.notices.append(("integrity_warning", f"{path.name} cannot be archived: "
                                     f"{target} exists with other content; move one of them away",
                                     {"file": path.name, "archive": str(target)}))
                return
        else:
            _copy_durably(path, target)
        path.unlink()
        _fsync_dir(self.directory)

    def _compress(self, plain: Path) -> None:
        """`.N` -> `.N.gz` through a temporary file: at every instant one whole copy has a
        segment name (a crash in between leaves both, which `_tidy` resolves at start-up)."""
        gz = plain.with_name(plain.name + ".gz")
        tmp = plain.with_name(plain.name + ".gz.tmp")
        with open(plain, "rb") as src_f, \
                open(open_own(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE), "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw) as dst:
            shutil.copyfileobj(src_f, dst)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.rename(tmp, gz)
        plain.unlink()
        _fsync_dir(self.directory)

    def _tidy(self, key: bytes) -> None:
        """At start-up, before the chain is resumed: repair a torn chain tail; finish a rotation
        a crash interrupted (see `_finish_rotation`); drop temporary files, keep one copy of each
        rotated segment, compress what should be compressed."""
        self._repair_chain_tail()
        for tmp in self.directory.glob(self.name + ".*.gz.tmp"):
            tmp.unlink()
        if self.archive_dir is not None:
            for tmp in self.archive_dir.glob(self.name + ".seg*.tmp"):
                tmp.unlink()
        for n in range(1, self.backups + 2):
            plain = self.directory / f"{self.name}.{n}"
            gz = self.directory / f"{self.name}.{n}.gz"
            if plain.exists() and gz.exists():
                plain.unlink()  # the .gz was renamed into place whole: it is the copy to keep
        self._finish_rotation(key)
        for n in range(1, self.backups + 2):
            plain = self.directory / f"{self.name}.{n}"
            if plain.exists() and self.compress:
                self._compress(plain)

    def _repair_chain_tail(self) -> None:
        chain = self.directory / (self.name + CHAIN_SUFFIX)
        done = repair_tail(chain, self._stamp_compact(), json_lines=True, move_long=True)
        if done:
            self.notices.append(("repair", f"{done['file']}: torn last record ({done['bytes']} "
                                 f"bytes, a crash or a full disk) moved to {done['moved_to']}; "
                                 "the chain now ends at its last whole record", done))

    def _finish_rotation(self, key: bytes) -> None:
        """Finish what a crash interrupted, recognising each file by its content:
        - a rotated file holding a segment the chain says expired (or archived) is deleted (or
          moved to the archive);
        - when the chain's last signed segment record is the seal of a built-in rotation and the
          active file still holds that segment (same line count and hash from its h0), the
          rotation is finished: the oldest segments beyond `backups` are pruned (recorded first
          if they were not), the others renamed to `.N` by age, the active file to `.1`.
        A chain that is not whole and signed by this key is left alone (reported elsewhere).
        A crash between any two steps leaves a built-in seal as the last segment record, so only
        then is the whole chain read and checked (one look at its tail otherwise)."""
        chain_path = self.directory / (self.name + CHAIN_SUFFIX)
        tail, whole = _last_segment_record(chain_path)
        if (tail is None and whole) or (tail is not None and (
                tail.get("type") != "seal" or tail.get("reason") not in _BUILT_IN)):
            return
        records = trusted_records(read_chain(chain_path), key)
        if not records:
            return
        segments, fates = _segments(records)
        files = self._identify_rotated(segments)
        last = next((r for r in reversed(records) if r.get("type") in ("checkpoint", "seal")), None)
        unfinished = (last is not None and last["type"] == "seal" and last.get("reason") in _BUILT_IN
                      and int(last["segment"]) not in fates and _holds(self.path, last)
                      and (int(last["lines"]) > 0 or not self._empty_first()))
        if not files and not unfinished:
            return
        newest = int(last["segment"]) if unfinished and last is not None else -1
        if unfinished:
            files[newest] = self.path
        chain, state = None, ChainState(last_mac=records[-1]["mac"])
        try:
            for k in sorted(files):
                path = files[k]
                if k in fates:
                    self._carry_out(fates[k], path)
                elif unfinished and k <= newest - self.backups:
                    chain = chain or ChainWriter(chain_path, key)
                    self._prune(chain, state, k, path)
                elif unfinished and path != self.path:
                    gz = ".gz" if path.name.endswith(".gz") else ""
                    target = self.directory / f"{self.name}.{newest - k + 1}{gz}"
                    if path != target and not target.exists():
                        path.rename(target)
                        _fsync_dir(self.directory)
            if unfinished and self.backups > 0 and self.path.exists():
                if any(p.exists() for p in (self.directory / f"{self.name}.1",
                                            self.directory / f"{self.name}.1.gz")):
                    self.notices.append(("integrity_warning", f"{self.name}: cannot finish an "
                                         f"interrupted rotation, {self.name}.1 is a file the chain "
                                         "does not know: `tradebot audit verify` will show it",
                                         {"file": self.name}))
                    return
                self._rename_to_first(self.path)
        finally:
            if chain is not None:
                chain.close()
        if unfinished:
            self.notices.append(("rotation", f"{self.name}: a rotation interrupted by a crash "
                                 f"was finished (segment {newest} sealed)", {"file": self.name}))

    def _empty_first(self) -> bool:
        """Is there an empty `.1` (an empty segment, which no content identifies, rotated)?"""
        return any(p.exists() and _first_line(p) is None
                   for p in (self.directory / f"{self.name}.1", self.directory / f"{self.name}.1.gz"))

    def _identify_rotated(self, segments: dict[int, dict[str, Any]]) -> dict[int, Path]:
        """Rotated files (`.N`, `.N.gz`) by the sealed segment whose first line hash (from its
        h0) their first line reproduces."""
        firsts = {(seg["h0"], seg["first"]): k for k, seg in segments.items() if seg["first"]}
        out: dict[int, Path] = {}
        for path in self.directory.glob(self.name + ".*"):
            rest = path.name[len(self.name):]
            if not _ROTATED.match(rest):
                continue
            line = _first_line(path)
            for (h0, first), k in firsts.items():
                if line is not None and next_hash(h0, line).hex()[:SHORT] == first:
                    out.setdefault(k, path)
                    break
        return out

    def abandon(self) -> None:
        """Close without signing (start-up stopped before the trail was whole)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self._chain.close()
            if self._head is not None:
                self._head.close()

    def close(self) -> None:
        if self._fd >= 0:
            self.checkpoint()
            os.close(self._fd)
            self._fd = -1
            self._chain.close()
            if self._head is not None:
                self._head.close()


def _reproduces(lines: list[bytes], h0: bytes, expected: bytes) -> bool:
    h = h0
    for line in lines:
        h = next_hash(h, line)
    return h == expected


def _first_difference(lines: list[bytes], h0: bytes, short: list[str]) -> int | None:
    """The first line (1-based) where a file that starts like the signed segment departs from
    it (or where it ends short of it); None when its first line is not the segment's (the file
    is another segment)."""
    if not lines:
        return None
    h = h0
    for n, expected in enumerate(short, 1):
        if n > len(lines):
            return n
        h = next_hash(h, lines[n - 1])
        if h.hex()[:SHORT] != expected:
            return None if n == 1 else n
    return None if not short else len(short) + 1


def _written_head(rec: dict[str, Any] | None) -> tuple[int, int, bytes, bytes] | None:
    """(segment, line, before, after) of a WRITTEN slot; None if absent or unusable."""
    if rec is None:
        return None
    seg, line, before, after = (rec.get(k) for k in ("segment", "line", "before", "after"))
    if not (isinstance(seg, int) and isinstance(line, int) and line >= 1
            and isinstance(before, str) and isinstance(after, str)):
        return None
    try:
        return seg, line, bytes.fromhex(before), bytes.fromhex(after)
    except ValueError:
        return None
