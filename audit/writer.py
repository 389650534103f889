"""What the trail's files share: the private log directory and the write-failure error.

The streams themselves (`stream.py`) do the writing: one whole line per `os.write` on an O_APPEND
descriptor, rotation and the hash chain.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700


class AuditWriteFailed(OSError):
    """A line could not be written or synced: the trail is no longer trustworthy."""


class UnsafeDirectory(ValueError):
    """A directory the bot would write its files in is a symbolic link or world-writable: the
    message names it and the fix."""


def check_directory(path: Path, subject: str | None = None) -> None:
    """Refuse a directory that is a symbolic link (the bot never follows a planted link) or that
    anyone may write (anyone could plant links in it); its mode is never changed. `subject` names
    it in the message (default: "the log directory PATH")."""
    subject = subject or f"the log directory {path}"
    if path.is_symlink():
        raise UnsafeDirectory(f"{subject} is a symbolic link (to {os.path.realpath(path)}): the "
                              "bot does not follow links to its own directories; give the real "
                              "directory")
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_IWOTH:
        raise UnsafeDirectory(f"{subject} is world-writable (mode {stat.S_IMODE(st.st_mode):04o}): "
                              "anyone could plant files or links in it; give a private directory "
                              "of this user (created 0700 if absent)")


def prepare_directory(path: Path, subject: str | None = None) -> None:
    """Create the directory with mode 0700, or use it as it is: the mode of a directory the bot
    did not create is never changed. A link or a world-writable directory is refused."""
    check_directory(path, subject)
    try:
        path.mkdir(parents=True, mode=DIR_MODE)
    except FileExistsError:
        check_directory(path, subject)  # made by someone else meanwhile: check it again
        if not path.is_dir():
            raise


class AuditKeyMismatch(Exception):
    """The trail's chains (or its anchor) were signed with another audit key: writing on with
    this one would leave a trail no key verifies. The message says which key ids differ."""
