"""`tradebot audit verify`: find the key and the trail's anchor, verify, print, and exit with
verify's code. `tradebot restore` ends with the same check."""
from __future__ import annotations

import argparse
from pathlib import Path

from bot.core.errors import ConfigError
from bot.settings import Settings


def _collected(path: Path | None) -> list[dict] | None:
    from audit.anchor import parse_anchor_lines
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"--anchors {path}: cannot be read ({exc.strerror or exc}): give the file "
                          "the anchor lines were collected in") from None
    found = parse_anchor_lines(text)
    if not found:
        raise ConfigError(f"--anchors {path}: no tradebot-anchor line in it: give the console log "
                          "(docker logs) or BOT_ANCHOR_FILE the bot wrote them to")
    return found


def run_verify(settings: Settings, logs: Path, data_dir: Path, *, no_anchor: bool = False,
               anchors: Path | None = None, archive_dir: Path | None = None,
               no_anchor_hint: str = "") -> int:
    """Verify the trail in `logs` against its anchor in `data_dir`; print the report."""
    from audit.anchor import Anchor
    from audit.verify import find_anchor, format_report, verify
    from bot.audit_key import load_key

    if not logs.is_dir() and (no_anchor or Anchor.find(data_dir, log_dir=logs) is None):
        raise ConfigError(f"{logs} is not a directory: give the log directory to verify")
    if archive_dir is not None and not archive_dir.is_dir():
        raise ConfigError(f"--archive-dir {archive_dir} is not a directory: give the directory "
                          "archived segments were moved to")
    collected = _collected(anchors)
    key, _origin = load_key(settings, create=False)
    anchor = None if no_anchor else find_anchor(data_dir, logs)
    if anchor is None and not no_anchor:
        raise ConfigError(f"no anchor for the trail in {logs} in the data directory {data_dir}: "
                          + (no_anchor_hint or "give the bot's data directory with --data-dir DIR "
                             "(or BOT_DATA_DIR), or check the chains alone with --no-anchor (a "
                             "trail copied to another host)"))
    report = verify(logs, key, anchor=anchor, collected=collected, archive_dir=archive_dir)
    print(format_report(report, caveats=anchor is None))
    return report.exit_code


def verify_main(args: argparse.Namespace, settings: Settings) -> int:
    archive = args.archive_dir or getattr(settings, "log_archive_dir", None)
    return run_verify(settings, args.logs_dir or settings.log_dir, args.data_dir or settings.data_dir,
                      no_anchor=args.no_anchor, anchors=args.anchors, archive_dir=archive)
