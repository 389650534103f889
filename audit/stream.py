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
"""
from __future__ import annotations

import gzip
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any, Callable

import orjson

from audit.chain import (CHAIN_SUFFIX, SHORT, ChainState, ChainWriter, checkpoint_record,
                         next_hash, read_chain, resume, trusted_records)
from audit.writer import AuditWriteFailed, prepare_directory

FILE_MODE = 0o600
_BUFFER_LIMIT = 1 << 20
_BUILT_IN = ("size", "requested")  # seal reasons of the bot's own rotation
_ROTATED = re.compile(r"^\.(\d+)(\.gz)?$")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_append(path: Path) -> int:
    existed = path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    if os.fstat(fd).st_mode & 0o077:
        os.fchmod(fd, FILE_MODE)
    if not existed:
        _fsync_dir(path.parent)
    return fd


def repair_tail(path: Path, stamp: str, json_lines: bool) -> dict[str, Any] | None:
    """Move a torn last line (no newline, bad JSON, NUL bytes) aside to `<name>.torn-<stamp>` and
    truncate the file to its last whole line. Returns what was done, or None."""
    if not path.is_file() or path.stat().st_size == 0:  # a device (e.g. /dev/full) is left alone
        return None
    data = path.read_bytes()
    end = len(data)
    cut = end
    if not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
    else:
        start = data.rfind(b"\n", 0, end - 1) + 1
        last = data[start:end - 1]
        if b"\x00" in last or (json_lines and not _is_json(last)):
            cut = start
    if cut == end:
        return None
    aside = path.with_name(f"{path.name}.torn-{stamp}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        os.write(fd, data[cut:])
        os.fsync(fd)
    finally:
        os.close(fd)
    with open(path, "r+b") as f:
        f.truncate(cut)
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(path.parent)
    return {"file": path.name, "moved_to": aside.name, "bytes": end - cut, "kept_bytes": cut}


def damaged_lines(path: Path, json_lines: bool, limit: int = 20) -> list[int]:
    """Line numbers (1-based) of broken lines before the end; reported, never truncated."""
    if not path.is_file():
        return []
    bad = []
    for n, raw in enumerate(path.read_bytes().splitlines(), 1):
        if b"\x00" in raw or (json_lines and not _is_json(raw)):
            bad.append(n)
            if len(bad) >= limit:
                break
    return bad


def _is_json(raw: bytes) -> bool:
    try:
        return isinstance(orjson.loads(raw), dict)
    except orjson.JSONDecodeError:
        return False


def _copy_durably(path: Path, target: Path) -> None:
    """Copy `path` to `target` (0600) through `<target>.tmp`, synced, renamed into place whole:
    the archive (another volume, perhaps) never holds half a segment under a segment's name."""
    prepare_directory(target.parent)
    tmp = target.with_name(target.name + ".tmp")
    with open(path, "rb") as src, open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
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
            line = f.readline()
    except (OSError, EOFError):
        return None
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
    lines = path.read_bytes().splitlines(keepends=True)
    if len(lines) != int(seal["lines"]):
        return False
    h = bytes.fromhex(seal["h0"])
    for line in lines:
        h = next_hash(h, line)
    return h.hex() == seal["hash"]


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
                 compress: bool = False, archive_dir: Path | None = None) -> None:
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
        if durable:
            self._repair()
            self._tidy(key)
        self._chain = ChainWriter(directory / (name + CHAIN_SUFFIX), key)
        self.state = resume(read_chain(self._chain.path))
        self._fd = _open_append(self.path)
        self._catch_up()

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

    def _catch_up(self) -> None:
        """Bring the chain state up to the active file: seal a segment rotated while we were
        stopped; chain lines written after the last checkpoint (a crash) as pending."""
        st = os.fstat(self._fd)
        records = read_chain(self._chain.path)
        last = next((r for r in reversed(records) if r.get("type") in ("checkpoint", "seal")), None)
        if last is not None and last.get("type") == "checkpoint" and last.get("inode") not in (None, st.st_ino):
            self._seal("renamed", inode=last.get("inode"))
            self.notices.append(("rotation", f"{self.name} was rotated while the bot was stopped: "
                                 f"segment {self.state.segment - 1} sealed", {"file": self.name}))
        regular = stat.S_ISREG(st.st_mode)
        lines = self.path.read_bytes().splitlines(keepends=True) if regular and st.st_size else []
        s = self.state
        if len(lines) < s.lines:
            self.notices.append(("integrity_warning", f"{self.name} has {len(lines)} lines but its "
                                 f"chain says {s.lines}: `tradebot audit verify` will show where",
                                 {"file": self.name}))
            return
        h = s.h0
        for line in lines[:s.lines]:
            h = next_hash(h, line)
        if h != s.hash:
            self.notices.append(("integrity_warning", f"{self.name} differs from its last checkpoint: "
                                 "`tradebot audit verify` will show where", {"file": self.name}))
        for line in lines[s.lines:]:
            s.add(line)

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
        self.state.add(line)
        self._dirty = True

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
            self._fd = _open_append(self.path)
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
        try:
            self._chain.write(s, checkpoint_record("checkpoint", s, self._stamp(), self._inode()),
                              sync=sync)
        except OSError as exc:
            raise AuditWriteFailed(exc.errno, f"cannot write {self._chain.path}: {exc}") from exc
        s.checkpointed_lines = s.lines
        s.pending = []

    def _inode(self) -> int:
        return os.fstat(self._fd).st_ino

    def _seal(self, reason: str, inode: int | None = None, **extra: Any) -> None:
        s = self.state
        self._chain.write(s, checkpoint_record("seal", s, self._stamp(), inode, reason=reason, **extra))
        s.start_segment()

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
        return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)

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
                      "file": path.name, "archive": self._archive_name(segment, path)}
        chain.write(state, record)
        self._carry_out(record, path)

    def _archive_name(self, segment: int, path: Path) -> str:
        """`<stream>.seg<segment>[.gz]`: never the same for two segments of a trail (another
        trail's file of that name in a shared archive gets a time stamp added, never clobbered)."""
        gz = ".gz" if path.name.endswith(".gz") else ""
        name = f"{self.name}.seg{segment:06d}{gz}"
        if (self.archive_dir / name).exists():
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
            if target.read_bytes() != path.read_bytes():
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
        with open(plain, "rb") as src_f, gzip.open(tmp, "wb") as dst:
            shutil.copyfileobj(src_f, dst)
        os.chmod(tmp, FILE_MODE)
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
        done = repair_tail(chain, self._stamp_compact(), json_lines=True)
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
                    target = self.directory / f"{self.name}.{newest - k + 1}{'.gz' if path.name.endswith('.gz') else ''}"
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

    def close(self) -> None:
        if self._fd >= 0:
            self.checkpoint()
            os.close(self._fd)
            self._fd = -1
            self._chain.close()
