"""Notes for the running bot from other processes (a second `run` refused by the lock).

The trail has one writer per file, so a refused process does not append to events.jsonl itself:
it drops a small JSON note here, and the running bot records it at its next cycle or at stop.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson

from audit.writer import open_own


def post(inbox: Path, kind: str, message: str, details: dict[str, Any]) -> None:
    inbox.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = inbox / f"{kind}-{os.getpid()}-{time.time_ns()}.json"
    tmp = name.with_suffix(".tmp")
    fd = open_own(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, orjson.dumps({"kind": kind, "message": message, "details": details}))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, name)  # whole notes only


def drain(inbox: Path | None) -> list[tuple[str, str, dict[str, Any]]]:
    """Take every note, oldest first; a note is deleted once read."""
    if inbox is None or not inbox.is_dir():
        return []
    notes = []
    for path in sorted(inbox.glob("*.json"), key=lambda p: p.stat().st_mtime_ns):
        try:
            data = orjson.loads(path.read_bytes())
            notes.append((str(data["kind"]), str(data["message"]), dict(data.get("details", {}))))
        except (OSError, ValueError, KeyError, TypeError):
            notes.append(("inbox_error", f"unreadable note {path.name}", {"file": path.name}))
        path.unlink(missing_ok=True)
    return notes
