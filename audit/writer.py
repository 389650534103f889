"""What the trail's files share: the private log directory and the write-failure error.

The streams themselves (`stream.py`) do the writing: one whole line per `os.write` on an O_APPEND
descriptor, rotation and the hash chain.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Iterable

DIR_MODE = 0o700


class AuditWriteFailed(OSError):
    """A line could not be written or synced: the trail is no longer trustworthy."""


NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


class PlantedLink(OSError):
    """A symbolic link where the bot's own file should be: never followed (it could point at
    any file on the host). The message names it and the fix."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(f"{path} is a symbolic link (to {os.path.realpath(path)}) where the bot "
                         "keeps its own file: links there are never followed; remove it (and find "
                         "out who put it there), then start again")
        self.path = str(path)


def open_own(path: Path | str, flags: int, mode: int = 0o600) -> int:
    """os.open for the bot's own files: a symbolic link at `path` is refused (PlantedLink),
    never followed."""
    try:
        return os.open(path, flags | NOFOLLOW, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP and os.path.islink(path):
            raise PlantedLink(path) from None
        raise


def refuse_links(directory: Path, names: Iterable[str] | None = None) -> None:
    """Raise PlantedLink for the first symbolic link among `names` in `directory` (every entry
    when `names` is None), searching the directories among them too."""
    try:
        entries = sorted(os.listdir(directory)) if names is None else list(names)
    except FileNotFoundError:
        return
    for name in entries:
        path = directory / name
        if path.is_symlink():
            raise PlantedLink(path)
        if path.is_dir():
            refuse_links(path)


def sqlite_files(name: str) -> tuple[str, ...]:
    """A SQLite database's file and the files SQLite keeps beside it."""
    return tuple(name + suffix for suffix in ("", "-wal", "-shm", "-journal"))


class UnsafeDirectory(OSError):
    """A directory the bot would write its files in is a symbolic link or world-writable: the
    message names it and the fix. Start-up turns it into one line (exit 2); met while running
    (the archive directory, at a rotation) it is a failed write like any other."""


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
