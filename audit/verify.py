"""`tradebot audit verify`: check every stream of a trail against its signed chain and anchor.

Like CloudTrail's `validate-logs`: each segment (the active file and every rotated `.N` or
`.N.gz`) is reported valid or not, and every problem names the file and the first line where it
starts: an edited, deleted, inserted or reordered line, a truncated tail, a missing rotated file,
a broken link between segments. Segments are recognised by content (the hash of their first
line from the segment's signed start), never by file name, number or inode, so a renumbered,
copied or restored trail is checked as it is.

The set of streams is known (the six `.jsonl` files and production.log) and so is each chain.
With the trail's anchor (`audit/anchor.py`, in the data directory) verify also knows how far
each stream was signed (a deleted, emptied or shortened chain, a stream deleted with its chain)
and written (lines beyond what the bot recorded as written are not the bot's). Without the
anchor (`anchor=None`) it checks the chains alone; `CAVEATS` says what that cannot rule out.
Lines after the last signed record that the anchor shows the bot wrote are unsealed (a warning,
not tampering). A key whose id differs from the trail's is its own outcome (exit 2); a record
whose signature fails under the right key is tampering (exit 1). Nothing here raises on what
it reads: a malformed record is damage named `file:line`.
"""
from __future__ import annotations

import gzip
import re
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.anchor import SIGNED, WRITTEN, Anchor, key_id
from audit.chain import CHAIN_SUFFIX, GENESIS, SHORT, next_hash, read_chain, signature_ok
from audit.files import Line, iter_chunks, warn_long
from audit.records import PRODUCTION_LOG, STREAMS

VALID, INVALID, MISSING, EXPIRED, UNSEALED = "valid", "INVALID", "MISSING", "expired", "unsealed"
ARCHIVED, LOST = "archived", "lost"
_OK = (VALID, EXPIRED, ARCHIVED, UNSEALED, LOST)
ALL_STREAMS = (*STREAMS, PRODUCTION_LOG)
_ROTATED = re.compile(r"^\.(\d+)(\.gz)?$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SIGNED_KINDS = ("checkpoint", "seal")
_GONE_KINDS = ("expired", "archived")
_CATCH_UP_TRIES, _CATCH_UP_PAUSE = 20, 0.05  # a bot appending while verify reads

CAVEATS = (
    "checked without the anchor, so this cannot rule out:",
    "  - a stream deleted together with its chain (or every file of the trail deleted)",
    "  - a stream and its chain both shortened to an earlier checkpoint",
    "  - lines appended while the bot was stopped (they show as unsealed, not as tampering)",
)


@dataclass
class SegmentReport:
    file: str
    segment: int | None
    status: str
    lines: int = 0
    detail: str = ""


@dataclass
class StreamReport:
    stream: str
    segments: list[SegmentReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # chain-level problems
    bad_key: bool = False
    unsealed: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and all(s.status in _OK for s in self.segments)


@dataclass
class Report:
    streams: list[StreamReport]
    lines: int
    seconds: float
    problems: list[str] = field(default_factory=list)  # trail-level problems
    key_mismatch: str = ""  # why the key cannot verify this trail
    anchored: bool = False

    @property
    def bad_key(self) -> bool:
        return bool(self.key_mismatch) or any(s.bad_key for s in self.streams)

    @property
    def exit_code(self) -> int:
        if self.bad_key:
            return 2
        return 0 if not self.problems and all(s.ok for s in self.streams) else 1


@dataclass
class _Seg:
    """One segment as the chain knows it."""

    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    seal: dict[str, Any] | None = None
    gone: str = ""  # "expired" or "archived"

    @property
    def h0(self) -> str | None:
        return self.checkpoints[0]["h0"] if self.checkpoints else None

    @property
    def first_short(self) -> str | None:
        """The first line's short running hash, when the chain has it."""
        for rec in self.checkpoints:
            if rec["from_line"] == 0 and rec["line_hashes"]:
                return rec["line_hashes"][0]
        return None


def rotated_files(log_dir: Path, name: str) -> list[tuple[int, Path]]:
    """(N, path) of `name.N` and `name.N.gz`, newest (N=1) first."""
    out = []
    for p in log_dir.glob(name + ".*"):
        m = _ROTATED.match(p.name[len(name):])
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def read_lines(path: Path) -> list[bytes]:
    """The file's lines with their newlines. A line over MAX_LINE is never read into memory: it
    stands as an empty line (named on stderr), so its hash fails and the file is reported as
    altered, as it is (no line the bot writes is near that size)."""
    longs: list[Line] = []

    def too_long(where: Line) -> None:
        longs.append(where)
        warn_long(where)

    lines = [line for block in iter_chunks(path, on_long=too_long)
             for line in block.splitlines(keepends=True)]
    if longs and longs[-1].line > len(lines):  # an unterminated last line: it still is there
        lines.append(b"\0")
    return lines


def _safe_lines(path: Path) -> tuple[list[bytes], str]:
    """The file's lines, or an empty list and why it could not be read."""
    try:
        return read_lines(path), ""
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        return [], f"cannot be read: {exc}"


# -- the chain's records ------------------------------------------------------------------------
def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def malformed(rec: dict[str, Any]) -> str:
    """Why a chain record cannot be used ('' when it can)."""
    kind = rec.get("type")
    if kind == "unreadable":
        return "unreadable (not a JSON object)"
    if kind in _SIGNED_KINDS:
        if not all(_int(rec.get(k)) for k in ("segment", "lines", "bytes", "from_line")):
            return f"a {kind} record without segment, lines, bytes or from_line"
        if not all(isinstance(rec.get(k), str) and _HEX64.match(rec[k]) for k in ("hash", "h0")):
            return f"a {kind} record without a valid hash or h0"
        hashes = rec.get("line_hashes")
        if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
            return f"a {kind} record without line_hashes"
    elif kind in _GONE_KINDS:
        if not _int(rec.get("segment")):
            return f"an {kind} record without a segment"
    elif kind == "trail":
        if not all(isinstance(rec.get(k), str) for k in ("trail_id", "key_id")):
            return "a trail record without trail_id or key_id"
    elif not isinstance(kind, str):
        return "a record without a type"
    if not isinstance(rec.get("mac"), str) or not isinstance(rec.get("prev_mac"), str):
        return "a record without mac or prev_mac"
    return ""


def _key_verdict(key: bytes, anchor: Anchor | None, chains: dict[str, list[dict[str, Any]]]) -> str:
    """'' when `key` is the trail's key, else why not. The key is the trail's when any record's
    signature verifies with it, or when its id is the anchor's (or a trail record's): then a
    signature that fails is tampering, not a wrong key."""
    kid = key_id(key)
    ids = {r.get("key_id") for recs in chains.values() for r in recs if r.get("type") == "trail"}
    if anchor is not None and anchor.key_id:
        if anchor.key_id == kid:
            return ""
        return (f"the trail was signed with the key whose id is {anchor.key_id} (its anchor says "
                f"so); this key's id is {kid}")
    if kid in ids:
        return ""
    signed = [r for recs in chains.values() for r in recs if isinstance(r.get("mac"), str)]
    if not signed or any(signature_ok(key, r) for r in signed):
        return ""
    others = sorted(i for i in ids if isinstance(i, str))
    return ("no signature of the trail matches this key"
            + (f" (the trail's key id is {', '.join(others)}; this key's is {kid})" if others else ""))


def trail_ids(chains: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The trail ids the chains' trail records name, first stream first."""
    out: list[str] = []
    for name in ALL_STREAMS:
        for rec in chains.get(name, []):
            tid = rec.get("trail_id") if rec.get("type") == "trail" else None
            if isinstance(tid, str) and tid not in out:
                out.append(tid)
    return out


def read_chains(log_dir: Path) -> dict[str, list[dict[str, Any]]]:
    return {name: read_chain(log_dir / (name + CHAIN_SUFFIX)) for name in ALL_STREAMS}


def find_anchor(data_dir: Path, log_dir: Path) -> Anchor | None:
    """The trail's anchor: by the trail id in its chains, else the one last made for `log_dir`
    (every chain may be gone)."""
    for tid in trail_ids(read_chains(log_dir)):
        found = Anchor.find(data_dir, trail_id=tid)
        if found is not None:
            return found
    return Anchor.find(data_dir, log_dir=log_dir)


# -- the trail ----------------------------------------------------------------------------------
def verify(log_dir: Path, key: bytes, *, anchor: Anchor | None = None,
           collected: list[dict[str, Any]] | None = None,
           archive_dir: Path | None = None) -> Report:
    """Check the trail in `log_dir`; with `anchor`, against it too; with `collected` (anchor
    lines kept elsewhere), that every head they hold is still in the chains."""
    started = time.perf_counter()
    log_dir = Path(log_dir)
    signed = _signed_heads(anchor)  # before the chains: a head read first is always in them
    chains = read_chains(log_dir)
    report = Report([], 0, 0.0, anchored=anchor is not None)
    report.key_mismatch = _key_verdict(key, anchor, chains)
    if report.key_mismatch:
        report.seconds = time.perf_counter() - started
        return report
    ids = trail_ids(chains)
    if anchor is not None and ids and anchor.trail_id not in ids:
        report.problems.append(f"the chains belong to trail {', '.join(ids)}, the anchor to trail "
                               f"{anchor.trail_id}: the chains were replaced")
    tid = anchor.trail_id if anchor is not None else (ids[0] if ids else None)
    trusted: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for name in ALL_STREAMS:
        ctx = _StreamContext(log_dir, name, key, chains[name], tid, anchor, signed.get(name),
                             with_trail=bool(ids),
                             archive_dir=archive_dir)
        rep, n = ctx.run()
        trusted[name] = ctx.trusted
        if rep is not None:
            report.streams.append(rep)
        report.lines += n
    if collected:
        report.problems.extend(_check_collected(collected, tid, trusted))
    report.seconds = time.perf_counter() - started
    return report


def _slot(anchor: Anchor | None, name: str, slot: int) -> dict[str, Any] | None:
    """One slot of a stream's head in the anchor (None: no anchor, no head, unreadable)."""
    if anchor is None:
        return None
    try:
        head = anchor.head(name)
    except OSError:
        return None
    if head is None:
        return None
    try:
        return head.read(slot)
    finally:
        head.close()


def _signed_heads(anchor: Anchor | None) -> dict[str, dict[str, Any] | None]:
    return {name: _slot(anchor, name, SIGNED) for name in ALL_STREAMS}


def _same_head(rec: dict[str, Any], head: dict[str, Any]) -> bool:
    return (rec.get("type") in _SIGNED_KINDS
            and all(rec.get(k) == head.get(k) for k in ("segment", "lines", "hash", "mac")))


def _check_collected(collected: list[dict[str, Any]], tid: str | None,
                     trusted: dict[str, list[tuple[int, dict[str, Any]]]]) -> list[str]:
    """Every head collected elsewhere must still be in its chain."""
    out = []
    for body in collected:
        ts = body.get("ts", "?")
        if tid is not None and body.get("trail_id") != tid:
            out.append(f"the anchor collected at {ts} is of trail {body.get('trail_id')}, this "
                       f"trail is {tid}: the trail was replaced after {ts}")
            continue
        for name, head in sorted(body["heads"].items()):
            if not isinstance(head, dict) or name not in trusted:
                continue
            if not any(_same_head(rec, head) for _i, rec in trusted[name]):
                out.append(f"{name}{CHAIN_SUFFIX}: the chain was rewritten or shortened after {ts} "
                           f"(the head collected then, segment {head.get('segment')} signed through "
                           f"line {head.get('lines')}, is not in it)")
    return out


class _StreamContext:
    """Verifies one stream: its chain, then each of its segments."""

    def __init__(self, log_dir: Path, name: str, key: bytes, records: list[dict[str, Any]],
                 tid: str | None, anchor: Anchor | None, signed: dict[str, Any] | None, *,
                 with_trail: bool, archive_dir: Path | None) -> None:
        self.log_dir, self.name, self.key, self.records = log_dir, name, key, records
        self.tid, self.anchor, self.archive_dir = tid, anchor, archive_dir
        self.anchored = anchor is not None
        self.with_trail = with_trail  # the trail's chains start with a trail record
        self.signed = signed
        self.chain_name = name + CHAIN_SUFFIX
        self.rep = StreamReport(name)
        self.trusted: list[tuple[int, dict[str, Any]]] = []  # (line, record)

    @property
    def written(self) -> dict[str, Any] | None:
        """The WRITTEN slot, read now: after the file, so it is never behind what was read."""
        return _slot(self.anchor, self.name, WRITTEN)

    def run(self) -> tuple[StreamReport | None, int]:
        active = self.log_dir / self.name
        rotated = rotated_files(self.log_dir, self.name)
        chain_exists = (self.log_dir / self.chain_name).exists()
        self._check_records()
        self._check_expected(chain_exists, active.exists() or bool(rotated))
        if not self.records and not active.exists() and not rotated:
            return (self.rep if self.rep.problems else None), 0
        return self.rep, self._check_segments(active, rotated)

    # -- the chain itself: shape, signatures, order, the trail, the anchor's signed head --------
    def _check_records(self) -> None:
        prev = ""
        for i, rec in enumerate(self.records, 1):
            where = f"{self.chain_name}:{i}"
            why = malformed(rec)
            if why:
                self.rep.problems.append(f"{where}: damage: {why}")
                continue
            if not signature_ok(self.key, rec):
                self.rep.problems.append(f"{where}: record altered (its signature does not match)")
                continue
            if rec["prev_mac"] != prev:
                self.rep.problems.append(f"{where}: a record before it was deleted or reordered")
            prev = rec["mac"]
            if rec.get("type") == "trail" and self.tid is not None and rec["trail_id"] != self.tid:
                self.rep.problems.append(f"{where}: a chain of another trail ({rec['trail_id']})")
                continue
            self.trusted.append((i, rec))

    def _check_expected(self, chain_exists: bool, stream_exists: bool) -> None:
        """Each stream's chain is expected; with the anchor, with the head it signed last. A
        trail made before trail records (legacy) may have empty chains (nothing signed yet)."""
        has_trail = any(r.get("type") == "trail" for _i, r in self.trusted)
        gone = ("missing" if not chain_exists else "empty") if not self.records else ""
        what = f"{self.name} and {self.chain_name} are" if gone and not stream_exists else f"{self.chain_name} is"
        if self.anchored:
            s = self.signed
            if s is not None and not any(_same_head(r, s) for _i, r in self.trusted):
                self.rep.problems.append(
                    f"{what if gone else self.chain_name + ' was'} {gone or 'shortened or rewritten'}: "
                    f"the anchor says segment {s.get('segment')} was signed through line "
                    f"{s.get('lines')}, and that record is not in the chain")
            elif gone and self.with_trail:
                self.rep.problems.append(f"{what} {gone}: every stream of the trail has a chain "
                                         "from its start")
            elif gone and not chain_exists and stream_exists:
                self.rep.problems.append(f"{self.chain_name} is missing: nothing of {self.name} "
                                         "can be checked")
            elif self.records and self.with_trail and not has_trail:
                self.rep.problems.append(f"{self.chain_name} has no record of trail {self.tid}: "
                                         "it was replaced or rewritten")
        elif self.with_trail and gone:
            self.rep.problems.append(f"{what} {gone}: every stream of this trail has a chain "
                                     "from its start")
        elif not chain_exists and stream_exists:
            self.rep.problems.append(f"{self.chain_name} is missing: nothing of {self.name} can "
                                     "be checked")

    # -- segments -----------------------------------------------------------------------------
    def _segments(self) -> dict[int, _Seg]:
        segs: dict[int, _Seg] = {}
        for _i, rec in self.trusted:
            kind = rec["type"]
            if kind in _SIGNED_KINDS:
                seg = segs.setdefault(rec["segment"], _Seg())
                seg.checkpoints.append(rec)
                if kind == "seal":
                    seg.seal = rec
            elif kind in _GONE_KINDS:
                segs.setdefault(rec["segment"], _Seg()).gone = kind
        return segs

    def _check_segments(self, active: Path, rotated: list[tuple[int, Path]]) -> int:
        segs = self._segments()
        sealed = sorted((k for k, s in segs.items() if s.seal is not None), reverse=True)
        current = max((k for k in segs if segs[k].seal is None and not segs[k].gone),
                      default=(sealed[0] + 1) if sealed else 0)
        starts = self._starts(segs, current)
        files = [(p, *_safe_lines(p)) for _n, p in rotated]
        archived = [(p, *_safe_lines(p)) for p in self._archived()]
        act = (active, *_safe_lines(active)) if active.exists() else None
        assigned, extra = self._match(segs, starts, current, act, files, archived)
        total = 0
        for path, lines, why in extra:
            total += len(lines)
            self.rep.segments.append(SegmentReport(path.name, None, INVALID, len(lines),
                                                   why or "a rotated file the chain does not know"))
        prev_seal: str | None = None
        for k in sorted(segs.keys() | {current}):
            seg = segs.get(k, _Seg())
            got = assigned.get(k, [])
            if seg.gone and not got:
                where = (f"archived, not found in {self.archive_dir}" if seg.gone == "archived" and self.archive_dir
                         else "archived (give --archive-dir DIR to check it)" if seg.gone == "archived"
                         else "deleted by retention and sealed as expired")
                status = (EXPIRED if seg.gone == "expired" else MISSING if self.archive_dir
                          else ARCHIVED)
                self.rep.segments.append(SegmentReport(f"{self.name} (segment {k})", k, status, 0, where))
                prev_seal = seg.seal["hash"] if seg.seal else None
                continue
            if not got:
                if seg.checkpoints and seg.checkpoints[-1]["lines"] > 0:
                    last = seg.checkpoints[-1]
                    self.rep.segments.append(SegmentReport(
                        f"{self.name} (segment {k})", k, MISSING, 0,
                        f"a rotated file is missing: the chain signed {last['lines']} lines at "
                        f"{last.get('ts', '?')}"))
                elif k == current:
                    self._check_absent_open(k)
                prev_seal = seg.seal["hash"] if seg.seal else prev_seal
                continue
            h0 = starts[k]
            if prev_seal is not None and seg.h0 is not None and seg.h0 != prev_seal:
                self.rep.problems.append(f"segment {k} does not start where segment {k - 1} was "
                                         "sealed (a segment was replaced)")
            for path, lines, why in got:
                report = (SegmentReport(path.name, k, INVALID, 0, why) if why else
                          self._check_segment(path, lines, k, seg, bytes.fromhex(h0), k == current))
                self.rep.segments.append(report)
                self.rep.unsealed += report.lines if report.status == UNSEALED else 0
                total += len(lines)
            prev_seal = seg.seal["hash"] if seg.seal else None
        return total

    def _starts(self, segs: dict[int, _Seg], current: int) -> dict[int, str]:
        """Each segment's h0: from its records, else from the seal before it."""
        out: dict[int, str] = {}
        prev = GENESIS.hex()
        for k in sorted(segs.keys() | {current}):
            seg = segs.get(k, _Seg())
            out[k] = seg.h0 or prev
            prev = seg.seal["hash"] if seg.seal else out[k]
        return out

    def _archived(self) -> list[Path]:
        if self.archive_dir is None or not self.archive_dir.is_dir():
            return []
        return sorted(p for p in self.archive_dir.glob(self.name + ".*")
                      if p.is_file() and not p.name.endswith((CHAIN_SUFFIX, ".tmp")))

    def _match(self, segs: dict[int, _Seg], starts: dict[int, str], current: int,
               act: tuple[Path, list[bytes], str] | None,
               files: list[tuple[Path, list[bytes], str]],
               archived: list[tuple[Path, list[bytes], str]]):
        """Files to segments by content: a file is the segment whose first line's running hash
        (from the segment's h0) it reproduces. The active file is the open segment unless it is
        another one; rotated files left over are matched to the sealed segments left over, newest
        first (an edited first line is then reported as such). Files of the archive directory
        that match no segment are left alone (it may hold other trails' segments)."""
        firsts = {k: s.first_short for k, s in segs.items() if s.first_short}
        assigned: dict[int, list[tuple[Path, list[bytes], str]]] = {}
        left: list[tuple[Path, list[bytes], str]] = []

        def by_content(entry) -> int | None:
            _p, lines, why = entry
            if why or not lines:
                return None
            for k, short in firsts.items():
                if next_hash(bytes.fromhex(starts[k]), lines[0]).hex()[:SHORT] == short:
                    return k
            return None

        if act is not None:
            k = by_content(act)
            assigned.setdefault(current if k is None else k, []).append(act)
        for entry in files + archived:
            k = by_content(entry)
            if k is not None:
                assigned.setdefault(k, []).append(entry)
            elif any(entry is f for f in files):
                left.append(entry)
        free = [k for k in sorted(segs, reverse=True)
                if segs[k].seal is not None and not segs[k].gone and k not in assigned]
        extra = []
        for entry in left:
            if free:
                assigned[free.pop(0)] = [entry]
            else:
                extra.append(entry)
        return assigned, extra

    def _check_absent_open(self, k: int) -> None:
        """The open segment has no file: with the anchor, lines the bot wrote in it are gone."""
        w = self.written
        if self.anchored and w is not None and w.get("segment") == k and _int(w.get("line")) \
                and w["line"] > 1:
            self.rep.segments.append(SegmentReport(
                f"{self.name} (segment {k})", k, MISSING, 0,
                f"{self.name} is missing: the anchor says the bot wrote {w['line'] - 1} or more "
                "lines to it"))

    def _check_segment(self, path: Path, lines: list[bytes], k: int, seg: _Seg, h0: bytes,
                       is_open: bool) -> SegmentReport:
        expected: list[str] = []
        for rec in seg.checkpoints:
            if rec["from_line"] != len(expected):
                return SegmentReport(path.name, k, INVALID, len(lines),
                                     f"chain gap before line {len(expected) + 1}")
            expected.extend(rec["line_hashes"])
        keep = self.anchored and is_open  # the running hashes, for the written head
        if keep and len(lines) > len(expected) and not lines[-1].endswith(b"\n") \
                and self._being_written(k, len(lines)):
            # the line the bot recorded as being written, read before its end (reads are not
            # atomic with writes), or torn by a crash (the writer moves it aside at its next start)
            lines = lines[:-1]
        h = h0
        hashes: list[bytes] = []
        for i, line in enumerate(lines):
            h = next_hash(h, line)
            if keep:
                hashes.append(h)
            if i < len(expected) and h.hex()[:SHORT] != expected[i]:
                return SegmentReport(path.name, k, INVALID, len(lines),
                                     f"line {i + 1}: edited, deleted, inserted or reordered "
                                     "(it differs from what was written)")
        if len(lines) < len(expected):
            return SegmentReport(path.name, k, INVALID, len(lines),
                                 f"truncated: {len(lines)} lines, the chain has {len(expected)} "
                                 f"(line {len(lines) + 1} onwards is gone)")
        seal = seg.seal
        if seal is not None:
            if seal.get("reason") == "truncated":
                return SegmentReport(path.name, k, INVALID, len(lines),
                                     "sealed after the file was truncated under the bot "
                                     "(copytruncate): possible loss")
            if len(lines) > len(expected):
                why = ("recorded as damage: never signed, not shown to be the bot's"
                       if seal.get("reason") == "damaged" else "lines added after the segment was sealed")
                return SegmentReport(path.name, k, INVALID, len(lines),
                                     f"line {len(expected) + 1}: {why}")
            return SegmentReport(path.name, k, VALID, len(lines), "sealed")
        if self.anchored and is_open:
            bad = self._beyond_written(path, lines, hashes, k, len(expected), h0)
            if bad is not None:
                return bad
        if len(lines) > len(expected):
            return SegmentReport(path.name, k, UNSEALED, len(lines) - len(expected),
                                 f"{len(lines) - len(expected)} line(s) after the last checkpoint "
                                 f"(from line {len(expected) + 1}): not yet signed")
        return SegmentReport(path.name, k, VALID, len(lines))

    def _being_written(self, k: int, line: int) -> bool:
        """Does the WRITTEN head (read now, or once more after a pause) say line `line` of
        segment `k` is (or was, at a crash) being written?"""
        for _attempt in range(2):
            w = self.written
            if w is not None and w.get("segment") == k and w.get("line") == line:
                return True
            time.sleep(_CATCH_UP_PAUSE)
        return False

    def _beyond_written(self, path: Path, lines: list[bytes], hashes: list[bytes], k: int,
                        signed: int, h0: bytes) -> SegmentReport | None:
        """With the anchor, the unsigned lines of the open segment must be the ones the bot
        recorded as written (its WRITTEN head): lines up to `line - 1` hash to `before`, line
        `line` to `after`. None when they are (or when there are none). A head ahead of what was
        read is a bot writing now: the new lines are read (`lines` and `hashes` grow) and checked
        too."""
        for _attempt in range(_CATCH_UP_TRIES):
            w = self.written
            if w is not None and _int(w.get("segment")) and w["segment"] > k and len(lines) > signed:
                return SegmentReport(path.name, k, INVALID, len(lines),
                                     f"the bot started segment {w['segment']} while verify read "
                                     "this one: run verify again")
            ahead = (w is not None and w.get("segment") == k and _int(w.get("line"))
                     and w["line"] - 1 > len(lines))
            if not ahead:
                break
            time.sleep(_CATCH_UP_PAUSE)
            more, _why = _safe_lines(path)
            h = hashes[-1] if hashes else h0
            for line in more[len(lines):]:
                if not line.endswith(b"\n"):
                    break  # being written
                h = next_hash(h, line)
                hashes.append(h)
                lines.append(line)
        w = w if w is not None else {}  # no head: nothing was being written
        n = len(lines)
        here = w.get("segment") == k and _int(w.get("line")) and w["line"] > 0
        last = w["line"] if here else 0
        if here and n == signed and n < last - 1:  # as the writer says at its next start
            return SegmentReport(path.name, k, LOST, n,
                                 f"lines {n + 1} to {last} were being written when the bot stopped "
                                 "and are not in the file (a crash or power failure before they "
                                 "reached the disk, or cut): nothing signed is missing")
        if here and n < last - 1:
            return SegmentReport(path.name, k, INVALID, n,
                                 f"truncated: {n} lines, the bot wrote {last - 1} or more "
                                 f"(line {n + 1} onwards is gone)")
        if n <= signed:
            return None
        if not here or last <= signed:
            return SegmentReport(path.name, k, INVALID, n,
                                 f"line {signed + 1}: not written by the bot ({n - signed} line(s) "
                                 "after the last signed one, beyond what the anchor recorded as "
                                 "written)")
        if last - 1 > 0 and hashes[last - 2].hex() != w.get("before"):
            return SegmentReport(path.name, k, INVALID, n,
                                 f"line {signed + 1}..{last - 1}: differ from what the bot wrote")
        if n >= last and hashes[last - 1].hex() != w.get("after"):
            return SegmentReport(path.name, k, INVALID, n,
                                 f"line {last}: differs from what the bot wrote")
        if n > last:
            return SegmentReport(path.name, k, INVALID, n,
                                 f"line {last + 1}: not written by the bot ({n - last} line(s) "
                                 "beyond what the anchor recorded as written)")
        return None


def format_report(report: Report, *, caveats: bool = False) -> str:
    out = []
    for s in report.streams:
        for seg in s.segments:
            segment = "" if seg.segment is None else f"segment {seg.segment}"
            out.append(f"{seg.status:<9} {seg.file:<28} {segment:<11} "
                       f"{seg.lines:>8} lines  {seg.detail}".rstrip())
        for p in s.problems:
            out.append(f"{'INVALID':<9} {p}")
    for p in report.problems:
        out.append(f"{'INVALID':<9} {p}")
    if report.key_mismatch:
        out.append(f"{'KEY':<9} {report.key_mismatch}")
    counts: dict[str, int] = {}
    for s in report.streams:
        for seg in s.segments:
            counts[seg.status] = counts.get(seg.status, 0) + 1
    rate = report.lines / report.seconds if report.seconds > 0 else 0.0
    summary = ", ".join(f"{v} {k.lower()}" for k, v in sorted(counts.items()))
    verdict = ("KEY MISMATCH: cannot verify (give the key that signed this trail)" if report.bad_key else
               "trail valid" if report.exit_code == 0 else "trail ALTERED or incomplete")
    if caveats and not report.bad_key:
        out.extend(CAVEATS)
    empty = "nothing to check" if report.exit_code == 0 else "no segment found"
    out.append(f"{verdict}: {summary or empty}; {report.lines} lines checked "
               f"in {report.seconds:.2f}s ({rate:,.0f} lines/s)")
    return "\n".join(out)
