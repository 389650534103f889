"""The writer side of the anchor (issue 11): a line the bot cannot show it wrote is never signed;
segments are recognised by content; a malformed chain record never stops start-up."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import orjson
import pytest

from audit.anchor import Anchor, key_id, parse_anchor_lines
from audit.chain import read_chain
from audit.trail import AuditTrail
from audit.writer import AuditKeyMismatch
from tests.audit.writer_trail import KEY, make, write
from tests.fakes import FakeClock, utc
from tests.trails import clean_env


def crash(t: AuditTrail) -> None:
    """The process dies here: nothing is signed or closed by the trail (its descriptors are let
    go, as the kernel would)."""
    for f in (*t._files.values(), t._text):
        f.abandon()


def events(tmp: Path, kind: str | None = None) -> list[dict]:
    recs = [orjson.loads(x) for x in (tmp / "logs" / "events.jsonl").read_bytes().splitlines()]
    return [r for r in recs if kind is None or r["event_type"] == kind]


def chain(tmp: Path, name: str = "errors.jsonl") -> list[dict]:
    return read_chain(tmp / "logs" / (name + ".chain"))


def signed(tmp: Path, name: str = "errors.jsonl") -> list[dict]:
    return [r for r in chain(tmp, name) if r.get("type") in ("checkpoint", "seal")]


def forged_line(i: int) -> bytes:
    return orjson.dumps({"timestamp": "2025-03-03T15:00:00.000000+00:00", "event_type": "order_failed",
                         "forged": i}, option=orjson.OPT_APPEND_NEWLINE)


def the_anchor(tmp: Path) -> Anchor:
    (directory,) = (tmp / "data" / "anchors").iterdir()
    found = Anchor.load(directory)
    assert found is not None
    return found


# -- the trail record and the anchor --------------------------------------------------------
def test_a_new_trail_starts_each_chain_with_its_trail_record_and_makes_its_anchor(tmp_path):
    t = make(tmp_path)
    write(t, 3)
    t.checkpoint()
    t.close()
    anchor = the_anchor(tmp_path)
    assert anchor.key_id == key_id(KEY)
    first = chain(tmp_path)[0]
    assert first["type"] == "trail" and first["trail_id"] == anchor.trail_id
    assert first["key_id"] == key_id(KEY) and first["stream"] == "errors.jsonl"
    assert first["prev_mac"] == ""
    head = anchor.head("errors.jsonl")
    last = signed(tmp_path)[-1]
    assert head.signed() == {"type": "checkpoint", "segment": 0, "lines": 3, "bytes": last["bytes"],
                             "hash": last["hash"], "mac": last["mac"]}
    written = head.written()
    head.close()
    assert written["segment"] == 0 and written["line"] == 3 and written["after"] == last["hash"]


def test_simulation_trails_sign_heads_but_skip_the_written_slot(tmp_path):
    t = make(tmp_path, durable=False)
    write(t, 3)
    t.close()
    head = the_anchor(tmp_path).head("errors.jsonl")
    written, signed_ = head.written(), head.signed()
    head.close()
    assert written is None and signed_["lines"] == 3


# -- rule 1: a line the bot cannot show it wrote is never signed ------------------------------
def test_a_line_appended_while_the_bot_is_stopped_is_never_signed(tmp_path):
    t = make(tmp_path)
    write(t, 4)
    t.close()
    log = tmp_path / "logs" / "errors.jsonl"
    with log.open("ab") as f:
        f.write(forged_line(1))
    t = make(tmp_path)
    write(t, 2, start=10)
    t.close()
    (damage,) = [e for e in events(tmp_path, "damage") if e["file"] == "errors.jsonl"]
    assert damage["at"] == "errors.jsonl:5"
    seals = [r for r in signed(tmp_path) if r["type"] == "seal"]
    assert [(s["lines"], s["reason"], s["damaged"]) for s in seals] == [(4, "damaged", "errors.jsonl:5")]
    # the damaged file was moved aside with the forged line still in it; the stream went on
    aside = tmp_path / "logs" / "errors.jsonl.1"
    assert aside.read_bytes().endswith(forged_line(1))
    assert len(log.read_bytes().splitlines()) == 2
    assert signed(tmp_path)[-1]["segment"] == 1 and signed(tmp_path)[-1]["lines"] == 2


def test_a_changed_unsigned_line_is_damage_at_that_line(tmp_path):
    t = make(tmp_path)
    write(t, 3)
    t.checkpoint()
    write(t, 2, start=3)  # lines 4 and 5: written, not yet signed (a crash comes next)
    log = tmp_path / "logs" / "errors.jsonl"
    data = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(data[:4]) + data[4].replace(b"refused 4", b"refused 9"))
    crash(t)
    make(tmp_path).close()
    (damage,) = [e for e in events(tmp_path, "damage") if e["file"] == "errors.jsonl"]
    assert damage["at"] == "errors.jsonl:5"
    (seal,) = [r for r in signed(tmp_path) if r["type"] == "seal"]
    assert seal["lines"] == 4  # line 4 reproduces the written head's `before`: it is the bot's


def test_a_crash_before_the_line_was_written_is_a_lost_write_not_damage(tmp_path):
    t = make(tmp_path)
    write(t, 3)
    t.checkpoint()
    log = tmp_path / "logs" / "errors.jsonl"
    before = log.read_bytes()
    write(t, 1, start=3)  # WRITTEN head pwritten, then the line...
    log.write_bytes(before)  # ...never reached the file (a crash between the two)
    crash(t)
    t2 = make(tmp_path)
    write(t2, 1, start=7)
    t2.close()
    assert [e for e in events(tmp_path) if e["event_type"] == "damage"] == []
    (lost,) = events(tmp_path, "write_lost")
    assert lost["file"] == "errors.jsonl" and lost["line"] == 4
    assert [r["type"] for r in signed(tmp_path)] == ["checkpoint", "checkpoint"]
    assert signed(tmp_path)[-1]["lines"] == 4


def test_lines_written_before_a_crash_are_signed_at_restart(tmp_path):
    t = make(tmp_path)
    write(t, 3)
    t.checkpoint()
    write(t, 4, start=3)  # no checkpoint: the process dies here (nothing closes it)
    crash(t)
    make(tmp_path).close()
    assert events(tmp_path, "damage") == []
    assert [(r["type"], r["lines"]) for r in signed(tmp_path)] == [("checkpoint", 3), ("checkpoint", 7)]


def test_a_crash_mid_cycle_with_kill_9_gives_no_false_alarm(tmp_path):
    import subprocess
    import sys
    script = f"""
import os, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from tests.audit.writer_trail import make, write
from pathlib import Path
t = make(Path({str(tmp_path)!r}))
write(t, 3)
t.checkpoint()
write(t, 5, start=3)
os.kill(os.getpid(), 9)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    make(tmp_path).close()
    assert events(tmp_path, "damage") == [] and events(tmp_path, "write_lost") == []
    assert signed(tmp_path)[-1]["lines"] == 8


def test_no_written_head_for_an_anchored_trail_signs_nothing_unsigned(tmp_path):
    t = make(tmp_path)
    write(t, 2)
    t.close()
    head = the_anchor(tmp_path).directory / "errors.jsonl.head"
    head.write_bytes(b"\x00" * 512)
    with (tmp_path / "logs" / "errors.jsonl").open("ab") as f:
        f.write(forged_line(2))
    make(tmp_path).close()
    (damage,) = [e for e in events(tmp_path, "damage") if e["file"] == "errors.jsonl"]
    assert damage["at"] == "errors.jsonl:3"
    assert all(r["lines"] <= 2 for r in signed(tmp_path) if r["segment"] == 0)


# -- rule 2: segments are recognised by content -----------------------------------------------
@pytest.mark.parametrize("how", ["copytree", "cp -a"])
def test_a_restored_copy_continues_its_chain_without_a_spurious_segment(tmp_path, how):
    src = tmp_path / "a"
    t = make(src)
    write(t, 3)
    t.close()
    dst = tmp_path / "b"
    if how == "copytree":
        shutil.copytree(src, dst)
    else:
        import subprocess
        subprocess.run(["cp", "-a", str(src), str(dst)], check=True)
    t = make(dst)
    write(t, 2, start=3)
    t.close()
    assert [r["type"] for r in signed(dst)] == ["checkpoint", "checkpoint"]
    assert signed(dst)[-1]["segment"] == 0 and signed(dst)[-1]["lines"] == 5
    assert events(dst, "rotation") == [] and events(dst, "damage") == []


def test_a_file_rotated_while_stopped_is_still_sealed(tmp_path):
    t = make(tmp_path)
    write(t, 3)
    t.close()
    log = tmp_path / "logs" / "errors.jsonl"
    log.rename(log.with_name("errors.jsonl.1"))
    log.touch()
    make(tmp_path).close()
    assert [(r["type"], r.get("reason")) for r in signed(tmp_path)] == [("checkpoint", None),
                                                                          ("seal", "renamed")]


# -- rule 3: a malformed chain record never stops start-up ------------------------------------
@pytest.mark.parametrize("tamper", ["shape", "mac"])
def test_a_malformed_chain_record_is_damage_and_the_stream_goes_on(tmp_path, tamper):
    t = make(tmp_path)
    write(t, 2)
    t.checkpoint()
    write(t, 2, start=2)
    t.checkpoint()
    write(t, 2, start=4)
    t.close()
    path = tmp_path / "logs" / "errors.jsonl.chain"
    raw = path.read_bytes().splitlines(keepends=True)  # trail, checkpoint 2, 4, 6
    if tamper == "shape":
        raw.append(b'{"type":"checkpoint"}\n')
        bad = len(raw)
    else:
        rec = orjson.loads(raw[2])
        rec["mac"] = "0" * 64
        raw[2] = orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE)
        bad = 3
    path.write_bytes(b"".join(raw))
    t = make(tmp_path)  # never raises (it was `KeyError: 'h0'`)
    write(t, 1, start=9)
    t.close()
    (damage,) = [e for e in events(tmp_path, "damage") if e["file"] == "errors.jsonl.chain"]
    assert damage["at"] == f"errors.jsonl.chain:{bad}"
    recs = chain(tmp_path)
    (seal,) = [r for r in recs[bad:] if r.get("type") == "seal"]
    good_lines = 6 if tamper == "shape" else 2
    assert seal["reason"] == "damaged" and seal["lines"] == good_lines
    assert recs[-1]["type"] == "checkpoint" and recs[-1]["segment"] == 1 and recs[-1]["lines"] == 1


def test_a_chain_of_another_key_stops_start_up_with_one_line(tmp_path):
    make(tmp_path).close()
    with pytest.raises(AuditKeyMismatch, match="audit key"):
        make(tmp_path, key=b"another-key-0123456789abc")


# -- legacy trails -----------------------------------------------------------------------------
def test_a_trail_made_before_anchors_gets_its_trail_record_and_anchor_once(tmp_path):
    t = AuditTrail(tmp_path / "logs", FakeClock(utc(2025, 3, 3, 15)), durable=True, key=KEY)
    write(t, 3)
    t.checkpoint()
    write(t, 1, start=3)  # unsigned when it stops (a crash): chained once, as before
    crash(t)
    assert not (tmp_path / "data").exists()
    make(tmp_path).close()
    anchor = the_anchor(tmp_path)
    trail_recs = [r for r in chain(tmp_path) if r.get("type") == "trail"]
    assert [r["trail_id"] for r in trail_recs] == [anchor.trail_id]
    (created,) = events(tmp_path, "anchor_created")
    assert created["trail_id"] == anchor.trail_id and created["legacy"] is True
    assert signed(tmp_path)[-1]["lines"] == 4
    make(tmp_path).close()
    assert len(events(tmp_path, "anchor_created")) == 1


# -- rule 5: anchors outside the host ----------------------------------------------------------
def test_each_checkpoint_round_sends_one_anchor_line_to_the_console_and_the_anchor_file(tmp_path):
    console = io.StringIO()
    out = tmp_path / "elsewhere" / "anchors.log"
    out.parent.mkdir()
    t = make(tmp_path, echo=console, anchor_file=out)
    write(t, 2)
    t.checkpoint()
    write(t, 1, start=2)
    t.checkpoint()
    t.close()
    lines = parse_anchor_lines(console.getvalue())
    assert len(lines) == 2
    assert lines[-1]["trail_id"] == the_anchor(tmp_path).trail_id
    assert lines[-1]["heads"]["errors.jsonl"]["lines"] == 3
    assert parse_anchor_lines(out.read_text()) == lines
    assert "tradebot-anchor" not in (tmp_path / "logs" / "production.log").read_text()


def test_the_console_anchor_line_can_be_turned_off(tmp_path):
    console = io.StringIO()
    t = make(tmp_path, echo=console, anchor_console=False)
    write(t, 2)
    t.checkpoint()
    t.close()
    assert parse_anchor_lines(console.getvalue()) == []
    assert console.getvalue()  # the ordinary console lines still come


def test_anchor_lines_are_posted_to_the_anchor_url(tmp_path):
    posted: list[bytes] = []
    t = make(tmp_path, anchor_post=lambda body: posted.append(body))
    write(t, 2)
    t.checkpoint()
    t.close()
    assert posted and parse_anchor_lines(posted[0].decode())[0]["heads"]["errors.jsonl"]["lines"] == 2


def test_the_last_anchor_line_at_close_covers_the_stop(tmp_path):
    console = io.StringIO()
    t = make(tmp_path, echo=console)
    write(t, 2)
    t.checkpoint()
    write(t, 1, start=2)
    t.close()  # no checkpoint round in between: close sends the last line
    assert parse_anchor_lines(console.getvalue())[-1]["heads"]["errors.jsonl"]["lines"] == 3


# -- the same cases through `tradebot` itself ---------------------------------------------------
def _tradebot(base: Path, *args: str, **extra: str):
    import subprocess
    import sys
    env = clean_env()
    env.update(BOT_LOG_DIR=str(base / "logs"), BOT_DATA_DIR=str(base / "data"), **extra)
    proc = subprocess.run([sys.executable, "-m", "bot", *args], cwd=base, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.slow
def test_a_forged_trade_appended_while_stopped_is_never_signed_by_the_next_cycle(tmp_path):
    _tradebot(tmp_path, "cycle")
    trades = tmp_path / "logs" / "trades.jsonl"
    n = len(trades.read_bytes().splitlines())
    forged = orjson.dumps({"timestamp": "2025-03-03T15:00:00.000000+00:00", "event_type": "trade",
                           "symbol": "SPY", "qty": 1000}, option=orjson.OPT_APPEND_NEWLINE)
    with trades.open("ab") as f:
        f.write(forged)
    proc = _tradebot(tmp_path, "cycle")
    (damage,) = [e for e in events(tmp_path, "damage") if e["file"] == "trades.jsonl"]
    assert damage["at"] == f"trades.jsonl:{n + 1}"
    seal = next(r for r in signed(tmp_path, "trades.jsonl") if r["type"] == "seal")
    assert seal["segment"] == 0 and seal["lines"] == n and seal["reason"] == "damaged"
    assert not any(r["segment"] == 0 and r["lines"] > n for r in signed(tmp_path, "trades.jsonl"))
    assert (tmp_path / "logs" / "trades.jsonl.1").read_bytes().endswith(forged)
    assert "tradebot-anchor " in proc.stdout  # the console keeps each cycle's signed heads


@pytest.mark.slow
def test_a_trail_restored_from_a_backup_goes_on_with_its_chain(tmp_path):
    import tarfile
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    _tradebot(a, "cycle")
    _tradebot(a, "backup", "--out", str(tmp_path / "backup.tar.gz"))
    with tarfile.open(tmp_path / "backup.tar.gz") as tar:
        tar.extractall(b, filter="data")
    before = {name: signed(b, name) for name in ("trades.jsonl", "events.jsonl", "production.log")}
    _tradebot(b, "cycle", BOT_AUDIT_KEY_FILE=str(a / "data" / "audit.key"))
    assert events(b, "rotation") == [] and events(b, "damage") == []
    for name, old in before.items():
        recs = signed(b, name)
        assert recs[:len(old)] == old
        assert all(r["type"] == "checkpoint" and r["segment"] == 0 for r in recs), name


@pytest.mark.slow
def test_a_cycle_with_another_key_stops_with_one_line_and_exit_2(tmp_path):
    import subprocess
    import sys
    _tradebot(tmp_path, "cycle", BOT_AUDIT_KEY="the-first-key-0123456789")
    env = clean_env()
    env.update(BOT_LOG_DIR=str(tmp_path / "logs"), BOT_DATA_DIR=str(tmp_path / "data"),
               BOT_AUDIT_KEY="another-key-0123456789abc")
    proc = subprocess.run([sys.executable, "-m", "bot", "cycle"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "another audit key" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_crash_between_a_seal_and_its_rename_finishes_the_rotation_without_damage(tmp_path):
    t = make(tmp_path)
    write(t, 3)
    t.checkpoint()
    errors = t._files["errors.jsonl"]
    errors._seal("size", inode=errors._inode())  # killed here, before the rename
    before = (tmp_path / "logs" / "errors.jsonl").read_bytes()
    crash(t)
    make(tmp_path).close()
    assert events(tmp_path, "damage") == []
    assert [(r["type"], r["segment"], r["lines"]) for r in signed(tmp_path)] == [
        ("checkpoint", 0, 3), ("seal", 0, 3)]  # sealed once, no empty segment after it
    assert (tmp_path / "logs" / "errors.jsonl.1").read_bytes() == before
    assert (tmp_path / "logs" / "errors.jsonl").read_bytes() == b""


def test_a_trail_copied_without_its_anchor_gets_a_new_one_and_signs_nothing_unsigned(tmp_path):
    src, dst = tmp_path / "a", tmp_path / "b"
    t = make(src)
    write(t, 3)
    t.checkpoint()
    write(t, 1, start=3)  # unsigned when the copy is taken
    crash(t)
    shutil.copytree(src / "logs", dst / "logs")  # the logs only: another host's data directory
    make(dst).close()
    (created,) = events(dst, "anchor_created")
    assert created["legacy"] is False and created["trail_id"] == the_anchor(src).trail_id
    (damage,) = [e for e in events(dst, "damage") if e["file"] == "errors.jsonl"]
    assert damage["at"] == "errors.jsonl:4" and damage["reason"] == "no record of the bot writing it"


def test_lines_lost_in_a_power_failure_are_write_lost_not_damage(tmp_path):
    t = make(tmp_path)
    write(t, 2)
    t.checkpoint()
    log = tmp_path / "logs" / "errors.jsonl"
    signed_part = log.read_bytes()
    write(t, 3, start=2)
    log.write_bytes(signed_part)  # the three unsynced lines never reached the disk
    crash(t)
    make(tmp_path).close()
    assert events(tmp_path, "damage") == []
    (lost,) = events(tmp_path, "write_lost")
    assert lost["line"] == 3 and "lines 3 to 5" in lost["message"]


@pytest.mark.parametrize("edit", [False, True])
def test_a_chain_cut_back_to_its_first_record_is_damage_and_nothing_is_signed_again(tmp_path, edit):
    t = make(tmp_path)
    write(t, 3)
    t.close()
    path = tmp_path / "logs" / "errors.jsonl.chain"
    first = path.read_bytes().splitlines(keepends=True)[0]
    path.write_bytes(first)  # keep only the trail record
    log = tmp_path / "logs" / "errors.jsonl"
    if edit:
        log.write_bytes(log.read_bytes().replace(b"refused 1", b"refused 7"))
    make(tmp_path).close()
    (damage,) = [e for e in events(tmp_path, "damage") if e["file"] == "errors.jsonl.chain"]
    assert damage["at"] == "errors.jsonl.chain:2" and "segment 0, line 3" in damage["reason"]
    assert [(r["type"], r["lines"], r.get("reason")) for r in signed(tmp_path)] == [("seal", 0, "damaged")]
    assert (tmp_path / "logs" / "errors.jsonl.1").exists()


def test_a_deleted_trail_is_damage_at_the_next_start_not_a_fresh_trail(tmp_path):
    t = make(tmp_path)
    write(t, 3)
    t.close()
    trail_id = the_anchor(tmp_path).trail_id
    shutil.rmtree(tmp_path / "logs")
    make(tmp_path).close()
    damaged = {e["file"] for e in events(tmp_path, "damage")}
    assert damaged == {"errors.jsonl.chain", "production.log.chain"}  # the streams that had lines
    assert chain(tmp_path)[0]["trail_id"] == trail_id  # the same trail goes on, its loss recorded
    assert [(r["type"], r["lines"], r["reason"]) for r in signed(tmp_path)] == [("seal", 0, "damaged")]


def test_a_simulation_into_a_directory_emptied_by_hand_starts_afresh(tmp_path):
    t = make(tmp_path, durable=False)
    write(t, 3)
    t.close()
    shutil.rmtree(tmp_path / "logs")
    make(tmp_path, durable=False).close()
    assert events(tmp_path, "damage") == []


def test_chains_stripped_of_their_trail_records_are_not_taken_for_a_legacy_trail(tmp_path):
    t = make(tmp_path)
    write(t, 3)
    t.checkpoint()
    write(t, 1, start=3)  # unsigned, and vouched for by the head: still never signed here
    crash(t)
    with (tmp_path / "logs" / "errors.jsonl").open("ab") as f:
        f.write(forged_line(3))
    for path in (tmp_path / "logs").glob("*.chain"):
        path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[1:]))
    make(tmp_path).close()
    assert events(tmp_path, "anchor_created") == []
    assert len(list((tmp_path / "data" / "anchors").iterdir())) == 1
    (damage,) = [e for e in events(tmp_path, "damage") if e["file"] == "errors.jsonl.chain"]
    assert damage["at"] == "errors.jsonl.chain:1" and damage["reason"] == "out of order"
    assert all(r["segment"] > 0 or r["lines"] <= 3 for r in signed(tmp_path))
