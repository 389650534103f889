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
import shutil
import stat
from pathlib import Path
from typing import Any, Callable

import orjson

from audit.chain import (CHAIN_SUFFIX, ChainState, ChainWriter, checkpoint_record, next_hash,
                         read_chain, resume)
from audit.writer import AuditWriteFailed

FILE_MODE = 0o600
_BUFFER_LIMIT = 1 << 20


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


class Stream:
    """Writes one stream; see the module docstring."""

    def __init__(self, directory: Path, name: str, key: bytes, *, durable: bool,
                 stamp: Callable[[], str], max_bytes: int = 0, backups: int = 5,
                 compress: bool = False) -> None:
        self.directory = directory
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
            self._tidy()
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
    def _rotated(self, n: int) -> Path:
        return self.directory / f"{self.name}.{n}{'.gz' if self.compress else ''}"

    def rotate(self, reason: str) -> None:
        """Seal the active file and shift it to `.1` (older ones up by one; the oldest beyond
        `backups` is deleted and sealed as expired)."""
        self.flush()
        self.sync()
        inode = self._inode()
        self._seal(reason, inode=inode)
        os.close(self._fd)
        newest_sealed = self.state.segment - 1
        for n in range(self.backups, 0, -1):
            src = self._rotated(n)
            if not src.exists():
                continue
            if n == self.backups:
                src.unlink()
                self._chain.write(self.state, {"type": "expired", "ts": self._stamp(),
                                               "segment": newest_sealed - n, "file": src.name})
            else:
                src.rename(self._rotated(n + 1))
        if self.backups > 0:
            plain = self.directory / f"{self.name}.1"
            self.path.rename(plain)  # atomic: the sealed segment is whole under one name
            _fsync_dir(self.directory)
            if self.compress:
                self._compress(plain)
        else:
            self.path.unlink()
            self._chain.write(self.state, {"type": "expired", "ts": self._stamp(),
                                           "segment": newest_sealed, "file": self.name})
        self._fd = _open_append(self.path)
        # built-in rotation is ordinary: the seal and expiry records in the chain say it all
        # (a notice here would be written, and could rotate again, without end)

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

    def _tidy(self) -> None:
        """Finish a rotation a crash interrupted: drop temporary files, keep one copy of each
        rotated segment, compress what should be compressed. First a torn chain tail."""
        self._repair_chain_tail()
        for tmp in self.directory.glob(self.name + ".*.gz.tmp"):
            tmp.unlink()
        for n in range(1, self.backups + 2):
            plain = self.directory / f"{self.name}.{n}"
            gz = self.directory / f"{self.name}.{n}.gz"
            if plain.exists() and gz.exists():
                plain.unlink()  # the .gz was renamed into place whole: it is the copy to keep
            elif plain.exists() and self.compress:
                self._compress(plain)

    def _repair_chain_tail(self) -> None:
        chain = self.directory / (self.name + CHAIN_SUFFIX)
        done = repair_tail(chain, self._stamp_compact(), json_lines=True)
        if done:
            self.notices.append(("repair", f"{done['file']}: torn last record ({done['bytes']} "
                                 f"bytes, a crash or a full disk) moved to {done['moved_to']}; "
                                 "the chain now ends at its last whole record", done))

    def close(self) -> None:
        if self._fd >= 0:
            self.checkpoint()
            os.close(self._fd)
            self._fd = -1
            self._chain.close()
