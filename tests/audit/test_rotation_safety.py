"""Ordinary operations never make `audit verify` cry "altered" (issue 11, part 2): a crash in the
middle of the built-in rotation (prune, seal, shift, compress), a full disk during a checkpoint,
a torn chain tail, and retention into an archive directory instead of deletion.

A crash is simulated in-process: the step after the chosen point raises `Crash` (a
BaseException nothing in the trail catches), the trail is abandoned as a killed process would
leave it, and a new trail is opened on the same directory (the restart)."""
from __future__ import annotations

import errno
import gzip
import os
import stat
from pathlib import Path

import orjson
import pytest

import audit.chain
from audit.chain import ChainWriter, read_chain
from audit.records import OrderFailed
from audit.trail import AuditTrail
from audit.verify import MISSING, verify
from audit.writer import AuditWriteFailed
from tests.fakes import FakeClock, at, utc

KEY = b"test-audit-key-0123456789"
STREAM = "errors.jsonl"


class Crash(BaseException):
    """The process dies here (nothing after this point runs)."""


def trail(d: Path, **kw) -> AuditTrail:
    return AuditTrail(d, FakeClock(utc(2025, 3, 3, 15)), durable=True, key=KEY, **kw)


def err(i: int) -> OrderFailed:
    return OrderFailed(symbol="SPY", side="buy", quantity=1.0 + i, error=f"refused {i}",
                       order_data={"n": i}, model="M", order_id=f"tb-{i}",
                       cycle_timestamp=at("2025-03-03T15:00:00+00:00"))


def write(t: AuditTrail, start: int, n: int, written: list[int]) -> None:
    """Record errors start..start+n-1, checkpointing after each; `written` gets each one whose
    record() returned (a crash inside record() leaves that one out)."""
    for i in range(start, start + n):
        t.record(err(i))
        written.append(i)
        t.checkpoint()


def read(path: Path) -> list[bytes]:
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    return data.splitlines()


def kept_numbers(files: list[Path]) -> list[int]:
    return [orjson.loads(x)["order_data"]["n"] for p in files for x in read(p)]


def rotated_names(d: Path) -> list[str]:
    return sorted(p.name for p in d.glob(STREAM + ".*")
                  if p.name[len(STREAM) + 1:].split(".")[0].isdigit())


def crash_at_move(monkeypatch, name: str, nth: int, when: str) -> None:
    """Crash just before or after the nth rename/unlink of a file called `name`."""
    seen = [0]
    for fname in ("rename", "replace", "unlink", "remove"):
        orig = getattr(os, fname)

        def moved(src, *a, _orig=orig, **k):
            mine = os.path.basename(os.fspath(src)) == name
            if mine:
                seen[0] += 1
            if mine and seen[0] == nth and when == "before":
                raise Crash(f"before moving {name}")
            out = _orig(src, *a, **k)
            if mine and seen[0] == nth and when == "after":
                raise Crash(f"after moving {name}")
            return out
        monkeypatch.setattr(os, fname, moved)


def crash_after_chain_record(monkeypatch, kind: str, nth: int) -> None:
    """Crash right after the nth chain record of this type is written (and synced)."""
    seen = [0]
    orig = ChainWriter.write

    def write_then_die(self, state, record, **k):
        orig(self, state, record, **k)
        if record.get("type") == kind and self.path.name == STREAM + ".chain":
            seen[0] += 1
            if seen[0] == nth:
                raise Crash(f"after the {kind} record")
    monkeypatch.setattr(ChainWriter, "write", write_then_die)


def abandon(t: AuditTrail) -> None:
    """Close what a killed process would leave to the kernel (the stream and chain descriptors;
    one closed just before the crash is already closed, and nothing has reused its number)."""
    for f in (*t._files.values(), t._text):
        for fd in (f._fd, f._chain._fd):
            try:
                os.close(fd)
            except OSError:
                pass


def run_until_crash(d: Path, written: list[int], **kw) -> None:
    t = trail(d, **kw)
    with pytest.raises(Crash):
        write(t, 0, 60, written)
    abandon(t)


def restart_and_check(d: Path, monkeypatch, written: list[int], backups: int, compress: bool,
                      **kw) -> AuditTrail:
    """Restart after the crash, write some more, stop; the trail verifies and nothing retained
    is lost or duplicated."""
    monkeypatch.undo()
    t = trail(d, max_bytes=600, backups=backups, compress=compress, **kw)
    write(t, 1000, 8, written)
    t.close()
    report = verify(d, KEY)
    problems = [(s.stream, seg.status, seg.file, seg.detail) for s in report.streams
                for seg in s.segments if seg.status not in ("valid", "expired", "archived")]
    problems += [(s.stream, p) for s in report.streams for p in s.problems]
    assert report.exit_code == 0 and not problems, problems
    suffix = ".gz" if compress else ""
    expected = [f"{STREAM}.{n}{suffix}" for n in range(1, backups + 1)]
    assert rotated_names(d) == expected  # one consistent set: .1 .. .N, nothing doubled
    files = [d / n for n in reversed(expected)] + [d / STREAM]
    kept = kept_numbers(files)
    assert kept == written[len(written) - len(kept):]  # the newest, in order, nothing lost
    return t


# -- 1 and 2: kill -9 in the middle of a built-in rotation -----------------------------------
MOVES = [
    # (file, nth move of it, before/after): with max_bytes=600 a file holds 2-3 records; the
    # third rotation is the first that prunes (backups=2)
    ("{s}.2{gz}", 1, "after"),      # the oldest pruned, its `expired` record not yet written (main)
    ("{s}.2{gz}", 1, "before"),     # about to prune
    ("{s}.1{gz}", 2, "after"),      # .1 shifted to .2, the active file not yet renamed
    ("{s}", 3, "after"),            # the active file renamed to .1, not yet compressed
    ("{s}.1.gz.tmp", 3, "before"),  # compressed into .gz.tmp, not yet renamed into place
]


@pytest.mark.parametrize("compress,move", [(c, m) for c in (False, True) for m in MOVES
                                           if c or not m[0].endswith(".tmp")],
                         ids=lambda v: f"{v[2]}-{v[0]}-{v[1]}" if isinstance(v, tuple) else f"gz={v}")
def test_a_crash_during_rotation_leaves_no_missing_segment(tmp_path, monkeypatch, compress, move):
    name, nth, when = move
    name = name.format(s=STREAM, gz=".gz" if compress else "")
    crash_at_move(monkeypatch, name, nth, when)
    written: list[int] = []
    run_until_crash(tmp_path, written, max_bytes=600, backups=2, compress=compress)
    restart_and_check(tmp_path, monkeypatch, written, 2, compress)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("kind,nth", [("seal", 1), ("seal", 3), ("expired", 1)])
def test_a_crash_right_after_a_rotation_record_is_finished_at_restart(tmp_path, monkeypatch,
                                                                       compress, kind, nth):
    """Record first, then act: a seal (or expired) record with nothing moved yet is finished
    (shift, rename, compress, prune) at the next start, once."""
    crash_after_chain_record(monkeypatch, kind, nth)
    written: list[int] = []
    run_until_crash(tmp_path, written, max_bytes=600, backups=2, compress=compress)
    restart_and_check(tmp_path, monkeypatch, written, 2, compress)
    records = read_chain(tmp_path / (STREAM + ".chain"))
    expired = [r["segment"] for r in records if r.get("type") == "expired"]
    assert len(expired) == len(set(expired))  # idempotent: each segment expired once


def test_a_crash_in_the_middle_of_the_shift_ends_in_a_consistent_set(tmp_path, monkeypatch):
    """backups=3: .2 already shifted to .3, .1 not yet to .2, the active file not renamed."""
    crash_at_move(monkeypatch, f"{STREAM}.2", 2, "after")
    written: list[int] = []
    run_until_crash(tmp_path, written, max_bytes=600, backups=3)
    assert (tmp_path / f"{STREAM}.1").exists() and not (tmp_path / f"{STREAM}.2").exists()
    restart_and_check(tmp_path, monkeypatch, written, 3, False)


def test_a_crash_while_pruning_with_no_backups(tmp_path, monkeypatch):
    """backups=0: the sealed active file itself is pruned; a crash after its seal (before its
    `expired` record and the unlink) prunes it at restart."""
    crash_after_chain_record(monkeypatch, "seal", 2)
    written: list[int] = []
    run_until_crash(tmp_path, written, max_bytes=600, backups=0)
    monkeypatch.undo()
    t = trail(tmp_path, max_bytes=600, backups=0)
    write(t, 1000, 3, written)
    t.close()
    report = verify(tmp_path, KEY)
    assert report.exit_code == 0, [(s.stream, [(g.status, g.detail) for g in s.segments], s.problems)
                                   for s in report.streams]
    assert rotated_names(tmp_path) == []


def test_an_expired_segment_left_behind_is_deleted_at_start(tmp_path, monkeypatch):
    """The `expired` record is in the chain, its file is still there (killed before the
    unlink): the next start deletes it, and verify does not call it an unknown file."""
    crash_after_chain_record(monkeypatch, "expired", 1)
    written: list[int] = []
    run_until_crash(tmp_path, written, max_bytes=600, backups=2)
    assert (tmp_path / f"{STREAM}.2").exists()
    restart_and_check(tmp_path, monkeypatch, written, 2, False)


def test_a_completed_rotation_is_left_alone_at_start(tmp_path):
    """No crash: a restart right after a rotation changes nothing and writes no record."""
    t = trail(tmp_path, max_bytes=600, backups=2)
    written: list[int] = []
    write(t, 0, 20, written)
    t._files[STREAM].rotate("requested")
    t.close()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    t = trail(tmp_path, max_bytes=600, backups=2)
    t.close()
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert {k: v for k, v in after.items() if k.startswith(STREAM)} == \
        {k: v for k, v in before.items() if k.startswith(STREAM)}


# -- 3: a full disk during a checkpoint -------------------------------------------------------
def half_write(monkeypatch) -> None:
    real = os.write

    def write_half(fd, data):
        return real(fd, bytes(data[:len(data) // 2]))
    monkeypatch.setattr(audit.chain.os, "write", write_half)


def no_space(monkeypatch) -> None:
    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(audit.chain.os, "write", full)


@pytest.mark.parametrize("disk_full", [half_write, no_space])
def test_a_full_disk_during_a_checkpoint_leaves_no_torn_chain_line(tmp_path, monkeypatch, disk_full):
    t = trail(tmp_path)
    written: list[int] = []
    write(t, 0, 5, written)
    t.record(err(5))
    chain = tmp_path / (STREAM + ".chain")
    size = chain.stat().st_size
    disk_full(monkeypatch)
    with pytest.raises(AuditWriteFailed):
        t.checkpoint()
    assert chain.stat().st_size == size  # the short write was undone
    monkeypatch.undo()  # space freed
    write(t, 6, 5, written)
    t.close()
    assert all(r.get("type") != "unreadable" for r in read_chain(chain))
    report = verify(tmp_path, KEY)
    assert report.exit_code == 0, [(s.stream, s.problems, [g.detail for g in s.segments])
                                   for s in report.streams]


def test_a_torn_chain_tail_is_moved_aside_at_start(tmp_path):
    """A power loss in the middle of a chain record (or a short write that could not be undone)
    leaves half a line at the chain's end: the next start moves it aside like a torn stream tail,
    records a `repair` event, and the trail verifies."""
    t = trail(tmp_path)
    written: list[int] = []
    write(t, 0, 5, written)
    t.record(err(5))
    t.close()
    chain = tmp_path / (STREAM + ".chain")
    torn = b'{"type":"checkpoint","ts":"2025-03-03T15:00:00.000000+00:00","segm'
    with open(chain, "ab") as f:
        f.write(torn)
    t = trail(tmp_path)
    write(t, 6, 3, written)
    t.close()
    aside = list(tmp_path.glob(STREAM + ".chain.torn-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == torn
    assert stat.S_IMODE(aside[0].stat().st_mode) == 0o600
    repairs = [e for e in map(orjson.loads, (tmp_path / "events.jsonl").read_bytes().splitlines())
               if e["event_type"] == "repair"]
    assert [e["file"] for e in repairs] == [STREAM + ".chain"]
    report = verify(tmp_path, KEY)
    assert report.exit_code == 0, [(s.stream, s.problems, [g.detail for g in s.segments])
                                   for s in report.streams]


# -- 4: an archive directory instead of deletion ----------------------------------------------
def archived(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


@pytest.mark.parametrize("compress", [False, True])
def test_retention_moves_pruned_segments_to_the_archive(tmp_path, compress):
    logs, archive = tmp_path / "logs", tmp_path / "archive"
    t = trail(logs, max_bytes=600, backups=1, compress=compress, archive_dir=archive)
    written: list[int] = []
    write(t, 0, 20, written)
    t.close()
    assert stat.S_IMODE(archive.stat().st_mode) == 0o700
    gz = ".gz" if compress else ""
    names = [n for n in archived(archive) if n.startswith(STREAM + ".")]
    assert names and names == [f"{STREAM}.seg{k:06d}{gz}" for k in range(len(names))]
    for n in names:
        assert stat.S_IMODE((archive / n).stat().st_mode) == 0o600
    files = [archive / n for n in names] + [logs / f"{STREAM}.1{gz}", logs / STREAM]
    assert kept_numbers(files) == written  # nothing deleted: every line is somewhere
    records = [r for r in read_chain(logs / (STREAM + ".chain")) if r.get("type") == "archived"]
    assert [(r["segment"], r["archive"]) for r in records] == list(enumerate(names))
    assert not any(r.get("type") == "expired" for r in read_chain(logs / (STREAM + ".chain")))
    report = verify(logs, KEY)
    assert report.exit_code == 0
    assert not any(seg.status == MISSING for s in report.streams for seg in s.segments)


@pytest.mark.parametrize("point", ["record", "copy"])
def test_a_crash_while_archiving_is_finished_at_start(tmp_path, monkeypatch, point):
    """Record first (`archived`), then move (copy to a temporary name, rename, unlink the
    original): a crash at either step is finished at the next start, never duplicated."""
    logs, archive = tmp_path / "logs", tmp_path / "archive"
    if point == "record":
        crash_after_chain_record(monkeypatch, "archived", 2)
    else:
        crash_at_move(monkeypatch, f"{STREAM}.seg000001.tmp", 1, "before")
    written: list[int] = []
    t = trail(logs, max_bytes=600, backups=1, archive_dir=archive)
    with pytest.raises(Crash):
        write(t, 0, 60, written)
    abandon(t)
    monkeypatch.undo()
    t = trail(logs, max_bytes=600, backups=1, archive_dir=archive)
    write(t, 1000, 6, written)
    t.close()
    names = archived(archive)
    assert not [n for n in names if n.endswith(".tmp")]
    names = [n for n in names if n.startswith(STREAM + ".")]
    assert names == [f"{STREAM}.seg{k:06d}" for k in range(len(names))]
    files = [archive / n for n in names] + [logs / f"{STREAM}.1", logs / STREAM]
    assert kept_numbers(files) == written
    records = [r["segment"] for r in read_chain(logs / (STREAM + ".chain")) if r.get("type") == "archived"]
    assert records == list(range(len(names)))
    assert rotated_names(logs) == [f"{STREAM}.1"]
    assert verify(logs, KEY).exit_code == 0


def test_the_archive_directory_cannot_be_the_log_directory(tmp_path):
    with pytest.raises(ValueError, match="BOT_LOG_ARCHIVE_DIR"):
        trail(tmp_path, max_bytes=600, archive_dir=tmp_path)


def test_a_failed_archive_move_stops_cleanly_and_is_finished_at_start(tmp_path, monkeypatch):
    """The archive's volume is full: the rotation fails with AuditWriteFailed (never a raw
    OSError), later writes fail the same way and go nowhere else; the next start finishes it."""
    logs, archive = tmp_path / "logs", tmp_path / "archive"
    import audit.stream

    def full(path, target):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(audit.stream, "_copy_durably", full)
    t = trail(logs, max_bytes=600, backups=1, archive_dir=archive)
    written: list[int] = []
    with pytest.raises(AuditWriteFailed, match="cannot rotate"):
        write(t, 0, 60, written)
    sealed = (logs / STREAM).read_bytes()
    with pytest.raises(AuditWriteFailed):
        t.record(err(500))
    assert (logs / STREAM).read_bytes() == sealed  # nothing added to the sealed segment
    abandon(t)
    monkeypatch.undo()
    t = trail(logs, max_bytes=600, backups=1, archive_dir=archive)
    write(t, 1000, 6, written)
    t.close()
    names = [n for n in archived(archive) if n.startswith(STREAM + ".")]
    files = [archive / n for n in names] + [logs / f"{STREAM}.1", logs / STREAM]
    assert kept_numbers(files) == written
    assert verify(logs, KEY).exit_code == 0


def test_an_empty_segment_rotated_on_request_is_not_rotated_again(tmp_path):
    """`AuditTrail.rotate` seals streams that have no lines: at the next start the empty active
    file is not taken for that unfinished segment (no warning, no extra rotation)."""
    t = trail(tmp_path, backups=2)
    t.rotate()
    t.close()
    t = trail(tmp_path, backups=2)
    t.close()
    assert rotated_names(tmp_path) == [f"{STREAM}.1"]
    warnings = [e for e in map(orjson.loads, (tmp_path / "events.jsonl").read_bytes().splitlines())
                if e["event_type"] in ("integrity_warning", "rotation")]
    assert warnings == []
    assert verify(tmp_path, KEY).exit_code == 0


# -- the real `tradebot run`, killed with SIGKILL at the points ----------------------
@pytest.mark.slow
@pytest.mark.parametrize("point", ["after-move:production.log.3.gz:1",    # pruned, not recorded (main)
                                   "before-move:production.log.3.gz:1",   # recorded, not pruned
                                   "before-move:production.log:4"],       # sealed, shifted, not renamed
                         ids=["after-prune", "before-prune", "before-rename"])
def test_kill9_during_the_real_rotation_then_audit_verify_is_valid(tmp_path, point):
    import subprocess
    import sys
    import time

    from tests import crashlab as lab
    env = lab.env_for(tmp_path, BOT_LOG_MAX_BYTES="1000", BOT_LOG_BACKUPS="3",
                      BOT_LOG_COMPRESS="true")
    crashed = lab.start(tmp_path, env, "--max-cycles", "3", crash_at=point)
    try:
        rc = lab.wait_exit(crashed, 30)
    finally:
        lab.kill9(crashed)
    assert rc == -9, f"{point} was not reached (exit code {rc}): {lab.stderr_of(crashed)}"
    time.sleep(1.0)  # a later slot
    proc = lab.start(tmp_path, env, "--max-cycles", "1")
    assert lab.wait_exit(proc, 20) == 0, lab.stderr_of(proc)
    verified = subprocess.run([sys.executable, "-m", "bot", "audit", "verify"], cwd=tmp_path,
                              env=env, capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "MISSING" not in verified.stdout
    logs = lab.log_dir(tmp_path)
    assert sorted(p.name for p in logs.glob("production.log.*") if not p.name.endswith(".chain")) == \
        [f"production.log.{n}.gz" for n in (1, 2, 3)]


# -- BOT_LOG_ARCHIVE_DIR ----------------------------------------------------------------------
@pytest.mark.parametrize("value,words", [("./logs", "is BOT_LOG_DIR"), ("logs/", "is BOT_LOG_DIR"),
                                         ("a-file", "is not a directory")])
def test_a_bad_archive_directory_is_refused_at_load(no_bot_env, tmp_path, monkeypatch, value, words):
    from bot.core.errors import ConfigError
    from bot.settings import load_settings
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("BOT_LOG_ARCHIVE_DIR", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "BOT_LOG_ARCHIVE_DIR" in message and words in message and "\n" not in message
    assert not (tmp_path / "logs").exists()  # nothing created


def test_the_archive_setting_reaches_the_live_trail(no_bot_env, tmp_path, monkeypatch):
    from bot.settings import load_settings
    from bot.wiring import build_bot
    monkeypatch.setenv("BOT_LOG_ARCHIVE_DIR", str(tmp_path / "archive"))
    monkeypatch.setenv("BOT_AUDIT_KEY", KEY.decode())
    s = load_settings()
    assert s.log_archive_dir == tmp_path / "archive" and load_settings().log_archive_dir is not None
    bot = build_bot(s, FakeClock(utc(2025, 3, 3, 15)), live=True)
    try:
        assert {f.archive_dir for f in bot.deps.trail._files.values()} == {tmp_path / "archive"}
    finally:
        bot.deps.trail.close()
        bot.deps.journal.close()
        bot.deps.broker.close()
    assert load_settings().redacted()["log_archive_dir"] == str(tmp_path / "archive")


def test_a_start_after_a_clean_stop_does_not_reread_the_whole_chain(tmp_path, monkeypatch):
    """Finishing a rotation is needed only when the chain's last segment record is a built-in
    seal; otherwise start-up reads the chain's tail, not all of it again (a year of 15-minute
    cycles is 35,040 records per stream)."""
    import audit.stream
    t = trail(tmp_path, max_bytes=600, backups=2)
    written: list[int] = []
    write(t, 0, 12, written)
    t.close()

    def whole_chain_checked(*a, **k):
        raise AssertionError("the whole chain was read and checked again")
    monkeypatch.setattr(audit.stream, "trusted_records", whole_chain_checked)
    trail(tmp_path, max_bytes=600, backups=2).close()
