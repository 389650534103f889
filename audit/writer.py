"""What the trail's files share: the private log directory and the write-failure error.

The streams themselves (`stream.py`) do the writing: one whole line per `os.write` on an O_APPEND
descriptor, rotation and the hash chain.
"""
from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700


class AuditWriteFailed(OSError):
    """A line could not be written or synced: the trail is no longer trustworthy."""


def prepare_directory(path: Path) -> None:
    """Create the log directory with mode 0700 (tighten it if we own it and it is looser)."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    st = path.stat()
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        os.chmod(path, DIR_MODE)


class AuditKeyMismatch(Exception):
    """The trail's chains (or its anchor) were signed with another audit key: writing on with
    this one would leave a trail no key verifies. The message says which key ids differ."""
