"""A stand-in for the writer side of issue 11 (branch i11-writer), for verify's tests until it
lands: delete this file then and build the trails with `AuditTrail` alone.

`start_trail` writes what the writer writes when a trail's chains start (a signed `trail` record
as each chain's first line, and the anchor in the data directory); `fill_anchor`, after the
trail is closed, fills each stream's head as the writer keeps it: the SIGNED slot from the
chain's last checkpoint or seal, the WRITTEN slot from the active file's last line.
"""
from __future__ import annotations

import os
from pathlib import Path

import orjson

from audit.anchor import SIGNED, WRITTEN, Anchor, key_id, new_trail_id
from audit.chain import CHAIN_SUFFIX, next_hash, read_chain, resume, sign
from audit.verify import ALL_STREAMS


def start_trail(log_dir: Path, data_dir: Path, key: bytes) -> Anchor:
    """Before the AuditTrail opens `log_dir`: each chain starts with a trail record."""
    log_dir.mkdir(parents=True, exist_ok=True)
    tid, kid = new_trail_id(), key_id(key)
    for name in ALL_STREAMS:
        rec = {"type": "trail", "trail_id": tid, "key_id": kid, "stream": name,
               "ts": "2025-03-03T15:00:00.000000+00:00", "prev_mac": ""}
        rec["mac"] = sign(key, rec)
        path = log_dir / (name + CHAIN_SUFFIX)
        path.write_bytes(orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE))
        os.chmod(path, 0o600)
    return Anchor.create(data_dir, tid, kid, log_dir)


def fill_anchor(anchor: Anchor, log_dir: Path) -> None:
    """After the trail is closed: every stream's SIGNED and WRITTEN slots, as the writer keeps
    them."""
    for name in ALL_STREAMS:
        records = read_chain(log_dir / (name + CHAIN_SUFFIX))
        head = anchor.head(name, create=True)
        try:
            last = next((r for r in reversed(records) if r.get("type") in ("checkpoint", "seal")), None)
            if last is not None:
                head.write(SIGNED, {k: last[k] for k in ("type", "segment", "lines", "bytes", "hash", "mac")})
            state = resume(records)
            active = log_dir / name
            lines = active.read_bytes().splitlines(keepends=True) if active.exists() else []
            if lines:
                h, before, offset = state.h0, state.h0, 0
                for line in lines:
                    before, h = h, next_hash(h, line)
                    offset += len(line)
                head.write(WRITTEN, {"segment": state.segment, "line": len(lines),
                                     "offset": offset - len(lines[-1]), "before": before.hex(),
                                     "after": h.hex()})
        finally:
            head.close()


def written_line(anchor: Anchor, log_dir: Path, name: str, line: bytes) -> None:
    """Append `line` to the active file of `name` as the writer does: WRITTEN first, then the
    line (no checkpoint: it stays unsigned, as after a crash)."""
    active = log_dir / name
    lines = active.read_bytes().splitlines(keepends=True) if active.exists() else []
    state = resume(read_chain(log_dir / (name + CHAIN_SUFFIX)))
    h = state.h0
    for old in lines:
        h = next_hash(h, old)
    head = anchor.head(name, create=True)
    try:
        head.write(WRITTEN, {"segment": state.segment, "line": len(lines) + 1,
                             "offset": sum(map(len, lines)), "before": h.hex(),
                             "after": next_hash(h, line).hex()})
    finally:
        head.close()
    with open(active, "ab") as f:
        f.write(line)
