"""What the writer does to the anchor, for states verify's tests build by hand (a seal or an
archive record appended to a chain, a line written but not signed, as after a crash): the trails
themselves are written by `AuditTrail` with its anchor.

`fill_anchor` fills each stream's head as the writer keeps it: the SIGNED slot from the chain's
last checkpoint or seal, the WRITTEN slot from the active file's last line; `written_line` appends
a line as the writer does (WRITTEN first) without signing it.
"""
from __future__ import annotations

from pathlib import Path

from audit.anchor import SIGNED, WRITTEN, Anchor
from audit.chain import CHAIN_SUFFIX, next_hash, read_chain, resume
from audit.verify import ALL_STREAMS


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
