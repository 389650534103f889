"""The checks of the log and data directories before the bot writes in them (`run`, `cycle`,
`simulate`): each problem is one ConfigError line naming the directory and the fix."""
from __future__ import annotations

from pathlib import Path

from audit.writer import PlantedLink, UnsafeDirectory, check_directory, prepare_directory, refuse_links
from bot.app.health import check_writable
from bot.core.errors import ConfigError
from bot.core.layout import data_files


def check_directories(log_dir: Path, data_dir: Path) -> None:
    """A directory this user cannot write, a link or a world-writable one, or a symbolic link
    where the bot keeps a file, stops start-up with one line naming it (and the UID)."""
    try:
        check_directory(log_dir, f"the log directory {log_dir}")
        check_directory(data_dir, f"the data directory {data_dir}")
        refuse_links(log_dir)  # the trail's own directory: no link in it is the bot's
        refuse_links(data_dir, data_files())
    except (UnsafeDirectory, PlantedLink) as exc:
        raise ConfigError(str(exc)) from None
    check_writable(log_dir, "log directory")
    check_writable(data_dir, "data directory")


def prepare_data_dir(path: Path) -> None:
    try:
        prepare_directory(path, f"the data directory {path}")
    except UnsafeDirectory as exc:
        raise ConfigError(str(exc)) from None
