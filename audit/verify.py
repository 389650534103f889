"""`tradebot audit verify`: check every stream of a trail against its signed chain.

Like CloudTrail's `validate-logs`: each segment (the active file and every rotated `.N` or
`.N.gz`) is reported valid or not, and every problem names the file and the first line where it
starts: an edited, deleted, inserted or reordered line, a truncated tail, a missing rotated file,
a broken link between segments. Lines written after the last checkpoint are reported as
unsealed (a warning, not tampering); segments the bot deleted by retention as expired. A key that
does not match the signatures is its own outcome (exit 2), as the chain cannot be trusted then.
"""
from __future__ import annotations

import gzip
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.chain import CHAIN_SUFFIX, GENESIS, SHORT, next_hash, read_chain, signature_ok
from audit.records import PRODUCTION_LOG, STREAMS

VALID, INVALID, MISSING, EXPIRED, UNSEALED = "valid", "INVALID", "MISSING", "expired", "unsealed"
ARCHIVED = "archived"
_ROTATED = re.compile(r"^\.(\d+)(\.gz)?$")


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
        return not self.problems and all(s.status in (VALID, EXPIRED, ARCHIVED, UNSEALED) for s in self.segments)


@dataclass
class Report:
    streams: list[StreamReport]
    lines: int
    seconds: float

    @property
    def bad_key(self) -> bool:
        return any(s.bad_key for s in self.streams)

    @property
    def exit_code(self) -> int:
        if self.bad_key:
            return 2
        return 0 if all(s.ok for s in self.streams) else 1


def rotated_files(log_dir: Path, name: str) -> list[tuple[int, Path]]:
    """(N, path) of `name.N` and `name.N.gz`, newest (N=1) first."""
    out = []
    for p in log_dir.glob(name + ".*"):
        m = _ROTATED.match(p.name[len(name):])
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def read_lines(path: Path) -> list[bytes]:
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    return data.splitlines(keepends=True)


def verify(log_dir: Path, key: bytes) -> Report:
    started = time.perf_counter()
    reports, total = [], 0
    for name in (*STREAMS, PRODUCTION_LOG):
        rep, n = verify_stream(log_dir, name, key)
        if rep is not None:
            reports.append(rep)
        total += n
    return Report(reports, total, time.perf_counter() - started)


def verify_stream(log_dir: Path, name: str, key: bytes) -> tuple[StreamReport | None, int]:
    rep = StreamReport(name)
    records = read_chain(log_dir / (name + CHAIN_SUFFIX))
    active = log_dir / name
    rotated = rotated_files(log_dir, name)
    if not records:
        if not active.exists() and not rotated:
            return None, 0
        n = len(read_lines(active)) if active.exists() else 0
        if rotated:
            rep.problems.append(f"{name}{CHAIN_SUFFIX} is missing: nothing of {name} can be checked")
        elif n:  # written but never signed yet (a first cycle cut short)
            rep.segments.append(SegmentReport(name, 0, UNSEALED, n,
                                              f"{n} line(s), none signed yet (no {name}{CHAIN_SUFFIX})"))
            rep.unsealed += n
        return rep, n

    # 1. the sidecar itself: signatures and order
    prev = ""
    for i, rec in enumerate(records, 1):
        if rec.get("type") == "unreadable":
            rep.problems.append(f"{name}{CHAIN_SUFFIX} line {i}: unreadable")
            continue
        if not signature_ok(key, rec):
            if i == 1:
                rep.bad_key = True
                rep.problems.append(f"{name}{CHAIN_SUFFIX}: signatures do not match this key "
                                    "(wrong or missing key, or the sidecar was rewritten)")
                return rep, 0
            rep.problems.append(f"{name}{CHAIN_SUFFIX} line {i}: record altered (bad signature)")
        elif rec.get("prev_mac") != prev:
            rep.problems.append(f"{name}{CHAIN_SUFFIX} line {i}: a record before it was deleted "
                                "or reordered")
        prev = rec.get("mac", prev)

    # 2. segments as the chain knows them
    segs: dict[int, dict[str, Any]] = {}
    for rec in records:
        kind = rec.get("type")
        if kind in ("checkpoint", "seal"):
            seg = segs.setdefault(int(rec["segment"]), {"checkpoints": [], "seal": None, "expired": False})
            seg["checkpoints"].append(rec)
            if kind == "seal":
                seg["seal"] = rec
        elif kind in ("expired", "archived"):
            segs.setdefault(int(rec["segment"]), {"checkpoints": [], "seal": None, "expired": False})["expired"] = rec
    sealed = sorted((k for k, s in segs.items() if s["seal"] is not None), reverse=True)
    current = max((k for k in segs if segs[k]["seal"] is None), default=(sealed[0] + 1) if sealed else 0)

    # 3. files to segments: the active file is the open segment; .1 the newest sealed, .2 ...
    files: dict[int, Path] = {}
    for i, (_n, path) in enumerate(rotated):
        if i < len(sealed):
            files[sealed[i]] = path
        else:
            rep.segments.append(SegmentReport(path.name, None, INVALID, 0,
                                              "a rotated file the chain does not know"))
    total = 0
    prev_seal_hash: str | None = None
    for k in sorted(segs.keys() | {current}):
        seg = segs.get(k, {"checkpoints": [], "seal": None, "expired": False})
        path = files.get(k) if seg["seal"] is not None else (active if k == current else None)
        if seg["expired"] and (path is None or not path.exists()):
            if seg["expired"]["type"] == "archived":
                rep.segments.append(SegmentReport(f"{name} (segment {k})", k, ARCHIVED, 0,
                                                  f"moved by retention to the archive directory as "
                                                  f"{seg['expired'].get('archive')}"))
            else:
                rep.segments.append(SegmentReport(f"{name} (segment {k})", k, EXPIRED, 0,
                                                  "deleted by retention and sealed as expired"))
            prev_seal_hash = seg["seal"]["hash"] if seg["seal"] else None
            continue
        if path is None or not path.exists():
            if seg["checkpoints"]:
                last = seg["checkpoints"][-1]
                rep.segments.append(SegmentReport(
                    f"{name} (segment {k})", k, MISSING, 0,
                    f"a rotated file is missing: the chain sealed {last['lines']} lines at {last['ts']}"))
            prev_seal_hash = seg["seal"]["hash"] if seg["seal"] else prev_seal_hash
            continue
        h0 = seg["checkpoints"][0]["h0"] if seg["checkpoints"] else (prev_seal_hash or GENESIS.hex())
        if prev_seal_hash is not None and h0 != prev_seal_hash:
            rep.problems.append(f"segment {k} does not start where segment {k - 1} was sealed "
                                "(a segment was replaced)")
        report, n = _check_segment(path, k, seg, bytes.fromhex(h0))
        rep.segments.append(report)
        rep.unsealed += report.lines if report.status == UNSEALED else 0
        total += n
        prev_seal_hash = seg["seal"]["hash"] if seg["seal"] else None
    return rep, total


def _check_segment(path: Path, k: int, seg: dict[str, Any], h0: bytes) -> tuple[SegmentReport, int]:
    lines = read_lines(path)
    expected: list[str] = []
    for rec in seg["checkpoints"]:
        if int(rec.get("from_line", len(expected))) != len(expected):
            return SegmentReport(path.name, k, INVALID, len(lines),
                                 f"chain gap before line {len(expected) + 1}"), len(lines)
        expected.extend(rec.get("line_hashes", []))
    h = h0
    for i, line in enumerate(lines):
        h = next_hash(h, line)
        if i < len(expected) and h.hex()[:SHORT] != expected[i]:
            return SegmentReport(path.name, k, INVALID, len(lines),
                                 f"line {i + 1}: edited, deleted, inserted or reordered "
                                 "(it differs from what was written)"), len(lines)
    if len(lines) < len(expected):
        return SegmentReport(path.name, k, INVALID, len(lines),
                             f"truncated: {len(lines)} lines, the chain has {len(expected)} "
                             f"(line {len(lines) + 1} onwards is gone)"), len(lines)
    seal = seg["seal"]
    if seal is not None:
        if seal.get("reason") == "truncated":
            return SegmentReport(path.name, k, INVALID, len(lines),
                                 "sealed after the file was truncated under the bot (copytruncate): "
                                 "possible loss"), len(lines)
        if len(lines) > len(expected):
            return SegmentReport(path.name, k, INVALID, len(lines),
                                 f"line {len(expected) + 1}: lines added after the segment was sealed"), len(lines)
        return SegmentReport(path.name, k, VALID, len(lines), "sealed"), len(lines)
    if len(lines) > len(expected):
        return SegmentReport(path.name, k, UNSEALED, len(lines) - len(expected),
                             f"{len(lines) - len(expected)} line(s) after the last checkpoint "
                             f"(from line {len(expected) + 1}): not yet signed"), len(lines)
    return SegmentReport(path.name, k, VALID, len(lines)), len(lines)


def format_report(report: Report) -> str:
    out = []
    for s in report.streams:
        for seg in s.segments:
            out.append(f"{seg.status:<9} {seg.file:<28} {'' if seg.segment is None else 'segment ' + str(seg.segment):<11} "
                       f"{seg.lines:>8} lines  {seg.detail}".rstrip())
        for p in s.problems:
            out.append(f"{'INVALID':<9} {p}")
    counts: dict[str, int] = {}
    for s in report.streams:
        for seg in s.segments:
            counts[seg.status] = counts.get(seg.status, 0) + 1
    rate = report.lines / report.seconds if report.seconds > 0 else 0.0
    summary = ", ".join(f"{v} {k.lower()}" for k, v in sorted(counts.items()))
    verdict = ("KEY MISMATCH: cannot verify" if report.bad_key else
               "trail valid" if report.exit_code == 0 else "trail ALTERED or incomplete")
    out.append(f"{verdict}: {summary or 'nothing to check'}; {report.lines} lines checked "
               f"in {report.seconds:.2f}s ({rate:,.0f} lines/s)")
    return "\n".join(out)
