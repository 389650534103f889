"""Issue 11, what `audit verify` says: every keyless tamper exits 1, every ordinary operation 0.

Each trail is written by `AuditTrail` with its anchor filled as the writer does
(tests/audit/anchored.py, a stand-in until the writer side lands) and checked through the CLI,
as a user would.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.anchor import Anchor, format_anchor_line
from audit.chain import sign
from audit.records import encode
from audit.trail import AuditTrail
from audit.verify import format_report, verify
from bot.cli.main import main
from tests.audit.anchored import KEY, fill_anchor, make_trail, trade, write_cycles, written_line
from tests.fakes import FakeClock, utc

pytestmark = pytest.mark.usefixtures("no_bot_env")


def the_anchor(data: Path) -> Anchor:
    (d,) = (data / "anchors").iterdir()
    return Anchor.load(d)


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("BOT_AUDIT_KEY", KEY.decode())


def verify_cli(capsys, logs: Path, data: Path, *extra: str) -> tuple[int, str]:
    code = main(["audit", "verify", "--logs-dir", str(logs), "--data-dir", str(data), *extra])
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    return code, out.out + out.err


def edit_every_line(path: Path) -> None:
    recs = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    for r in recs:
        r["price"] = 1.0
    path.write_bytes(b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in recs))


# -- keyless tampering: exit 1 ------------------------------------------------------------------
def test_an_untouched_trail_is_valid(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path)
    code, out = verify_cli(capsys, logs, data)
    assert code == 0, out
    assert "trail valid" in out


@pytest.mark.parametrize("how", ["delete", "empty"])
def test_a_deleted_or_emptied_chain_with_every_trade_edited_is_caught(tmp_path, env, capsys, how):
    logs, data = make_trail(tmp_path)
    chain = logs / "trades.jsonl.chain"
    chain.unlink() if how == "delete" else chain.write_bytes(b"")
    edit_every_line(logs / "trades.jsonl")
    code, out = verify_cli(capsys, logs, data)
    assert code == 1, out
    assert f"trades.jsonl.chain is {'missing' if how == 'delete' else 'empty'}" in out


def test_a_stream_deleted_with_its_chain_is_caught(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path)
    (logs / "trades.jsonl").unlink()
    (logs / "trades.jsonl.chain").unlink()
    code, out = verify_cli(capsys, logs, data)
    assert code == 1, out
    assert "trades.jsonl and trades.jsonl.chain are missing" in out


def test_a_deleted_trail_is_not_nothing_to_check(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path)
    for f in logs.iterdir():
        f.unlink()
    code, out = verify_cli(capsys, logs, data)
    assert code == 1, out
    assert "nothing to check" not in out and "orders.jsonl and orders.jsonl.chain are missing" in out


def test_chains_cut_to_their_first_record_and_lines_edited_are_caught(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path)
    for chain in logs.glob("*.chain"):
        chain.write_bytes(chain.read_bytes().splitlines(keepends=True)[0])
    edit_every_line(logs / "trades.jsonl")
    code, out = verify_cli(capsys, logs, data)
    assert code == 1, out
    assert "trades.jsonl.chain was shortened or rewritten" in out


def test_a_trade_appended_while_the_bot_is_stopped_is_not_the_bots(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path)
    forged = orjson.loads((logs / "trades.jsonl").read_bytes().splitlines()[-1])
    forged["fill_id"] = "forged"
    with open(logs / "trades.jsonl", "ab") as f:
        f.write(orjson.dumps(forged, option=orjson.OPT_APPEND_NEWLINE))
    code, out = verify_cli(capsys, logs, data)
    assert code == 1, out
    assert "trades.jsonl" in out and "line 4: not written by the bot" in out


def test_a_malformed_chain_record_is_damage_with_file_and_line(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path)
    with open(logs / "trades.jsonl.chain", "ab") as f:
        f.write(b'{"type":"checkpoint"}\n')
    n = len((logs / "trades.jsonl.chain").read_bytes().splitlines())
    code, out = verify_cli(capsys, logs, data)
    assert code == 1, out
    assert f"trades.jsonl.chain:{n}: damage" in out


def test_a_changed_first_chain_record_is_tampering_not_a_key_mismatch(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path)
    chain = logs / "trades.jsonl.chain"
    lines = chain.read_bytes().splitlines(keepends=True)
    first = orjson.loads(lines[0])
    first["ts"] = "2025-03-03T16:00:00.000000+00:00"
    chain.write_bytes(orjson.dumps(first, option=orjson.OPT_APPEND_NEWLINE) + b"".join(lines[1:]))
    code, out = verify_cli(capsys, logs, data)
    assert code == 1, out
    assert "KEY MISMATCH" not in out and "trades.jsonl.chain:1: record altered" in out


def test_a_really_wrong_key_is_a_key_mismatch(tmp_path, monkeypatch, capsys):
    logs, data = make_trail(tmp_path)
    monkeypatch.setenv("BOT_AUDIT_KEY", "another-key-0123456789-abcdef")
    code, out = verify_cli(capsys, logs, data)
    assert code == 2 and "KEY MISMATCH" in out


def test_a_changed_first_record_of_a_legacy_trail_is_tampering_too(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path, anchor=False)
    chain = logs / "trades.jsonl.chain"
    lines = chain.read_bytes().splitlines(keepends=True)
    first = orjson.loads(lines[0])
    first["lines"] = 0
    chain.write_bytes(orjson.dumps(first, option=orjson.OPT_APPEND_NEWLINE) + b"".join(lines[1:]))
    code, out = verify_cli(capsys, logs, data, "--no-anchor")
    assert code == 1 and "KEY MISMATCH" not in out, out


# -- what the anchor's WRITTEN head allows ------------------------------------------------------
def test_lines_the_bot_wrote_but_did_not_sign_yet_are_unsealed(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path)
    line = encode(trade(9), "2025-03-03T15:09:00.000000+00:00")
    written_line(the_anchor(data), logs, "trades.jsonl", line)
    code, out = verify_cli(capsys, logs, data)
    assert code == 0, out
    assert "unsealed" in out and "not yet signed" in out


def test_a_line_recorded_as_intended_but_never_written_is_a_crash_not_tampering(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path)
    before = (logs / "trades.jsonl").read_bytes()
    line = encode(trade(9), "2025-03-03T15:09:00.000000+00:00")
    written_line(the_anchor(data), logs, "trades.jsonl", line)
    (logs / "trades.jsonl").write_bytes(before)  # the crash came between the head and the line
    assert verify_cli(capsys, logs, data)[0] == 0


def test_an_unsigned_line_the_bot_wrote_then_edited_is_caught(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path)
    line = encode(trade(9), "2025-03-03T15:09:00.000000+00:00")
    written_line(the_anchor(data), logs, "trades.jsonl", line)
    path = logs / "trades.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"f-9"', b'"f-8"'))
    code, out = verify_cli(capsys, logs, data)
    assert code == 1 and "line 4: differs from what the bot wrote" in out, out


# -- without the anchor -------------------------------------------------------------------------
def test_a_trail_copied_to_another_host_needs_no_anchor_to_be_said(tmp_path, env, capsys):
    logs, _data = make_trail(tmp_path / "here")
    copy = shutil.copytree(logs, tmp_path / "there" / "logs")
    elsewhere = tmp_path / "there" / "data"
    elsewhere.mkdir()
    code, out = verify_cli(capsys, copy, elsewhere)
    assert code == 2 and "no anchor" in out and "--no-anchor" in out, out
    code, out = verify_cli(capsys, copy, elsewhere, "--no-anchor")
    assert code == 0, out
    assert "cannot rule out" in out and "a stream deleted together with its chain" in out


def test_without_the_anchor_a_chain_deleted_from_a_new_trail_is_still_caught(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path)
    (logs / "orders.jsonl.chain").unlink()
    code, out = verify_cli(capsys, logs, data, "--no-anchor")
    assert code == 1 and "orders.jsonl.chain is missing" in out, out


def test_a_legacy_trail_with_an_anchor_found_by_its_log_directory(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path, anchor=False)
    # the writer's first start on a legacy trail makes its anchor and adds its trail records
    AuditTrail(logs, FakeClock(utc(2025, 3, 3, 16)), durable=True, key=KEY, data_dir=data).close()
    assert the_anchor(data).log_dir == str(logs.resolve())
    assert verify_cli(capsys, logs, data)[0] == 0
    (logs / "trades.jsonl").unlink()
    (logs / "trades.jsonl.chain").unlink()
    code, out = verify_cli(capsys, logs, data)
    assert code == 1 and "trades.jsonl and trades.jsonl.chain are missing" in out, out


def the_key_id() -> str:
    from audit.anchor import key_id
    return key_id(KEY)


# -- anchors kept elsewhere ---------------------------------------------------------------------
def test_collected_anchors_expose_a_trail_cut_back_with_its_anchor(tmp_path, env, capsys):
    """A same-user attacker who rewrites logs and data directory alike (here: puts back an older
    copy of both) passes the local anchor; the anchor lines collected elsewhere expose it."""
    logs, data = make_trail(tmp_path, cycles=2)
    old_logs, old_data = tmp_path / "old-logs", tmp_path / "old-data"
    shutil.copytree(logs, old_logs)
    shutil.copytree(data, old_data)
    clock = FakeClock(utc(2025, 3, 3, 16))
    t = AuditTrail(logs, clock, durable=True, key=KEY, data_dir=data)
    write_cycles(t, clock, 2, start=10)
    t.close()
    anc = the_anchor(data)
    collected = tmp_path / "docker-logs.txt"
    line = format_anchor_line(anc.trail_id, "2025-03-03T16:05:00Z", anc.heads())
    collected.write_text("2025-03-03T16:05:00Z stdout " + line + "\n")
    assert verify_cli(capsys, logs, data, "--anchors", str(collected))[0] == 0
    shutil.rmtree(logs)
    shutil.rmtree(data)
    old_logs.rename(logs)
    old_data.rename(data)
    assert verify_cli(capsys, logs, data)[0] == 0  # consistent with its own (rewritten) anchor
    code, out = verify_cli(capsys, logs, data, "--anchors", str(collected))
    assert code == 1, out
    assert "the chain was rewritten or shortened after 2025-03-03T16:05:00Z" in out


def test_an_anchors_file_without_anchor_lines_is_a_bad_argument(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path)
    empty = tmp_path / "nothing.txt"
    empty.write_text("no anchors here\n")
    code, out = verify_cli(capsys, logs, data, "--anchors", str(empty))
    assert code == 2 and "no tradebot-anchor line" in out


# -- ordinary operations: exit 0 ----------------------------------------------------------------
def test_rotated_files_renumbered_are_recognised_by_content(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path, rotations=2)
    one, two = logs / "orders.jsonl.1", logs / "orders.jsonl.2"
    one.rename(logs / "orders.jsonl.7")
    two.rename(one)
    assert verify_cli(capsys, logs, data)[0] == 0


def test_a_rotated_file_moved_to_the_archive_directory_is_found_there(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path, rotations=1)
    archive = tmp_path / "archive"
    archive.mkdir()
    (logs / "orders.jsonl.1").rename(archive / "orders.jsonl.1")
    code, out = verify_cli(capsys, logs, data)
    assert code == 1 and "MISSING" in out
    assert verify_cli(capsys, logs, data, "--archive-dir", str(archive))[0] == 0


def test_a_cp_a_copy_of_the_trail_verifies(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path / "a", rotations=1)
    dest = tmp_path / "b"
    dest.mkdir()
    subprocess.run(["cp", "-a", str(logs), str(data), str(dest)], check=True)
    assert verify_cli(capsys, dest / "logs", dest / "data")[0] == 0


def test_a_cp_a_copy_verifies_after_one_more_cycle(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path / "a", rotations=1)
    dest = tmp_path / "b"
    dest.mkdir()
    subprocess.run(["cp", "-a", str(logs), str(data), str(dest)], check=True)
    clock = FakeClock(utc(2025, 3, 3, 17))
    t = AuditTrail(dest / "logs", clock, durable=True, key=KEY, data_dir=dest / "data")
    write_cycles(t, clock, 1, start=20)
    t.close()
    assert verify_cli(capsys, dest / "logs", dest / "data")[0] == 0


def test_a_sealed_segment_with_lines_after_a_damage_seal_keeps_being_reported(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path)
    chain = logs / "trades.jsonl.chain"
    records = [orjson.loads(x) for x in chain.read_bytes().splitlines()]
    last = records[-1]
    seal = {**last, "type": "seal", "reason": "damaged", "from_line": last["lines"], "line_hashes": [],
            "prev_mac": last["mac"]}
    seal.pop("mac")
    seal["mac"] = sign(KEY, seal)  # as the writer seals before a damaged line
    with open(chain, "ab") as f:
        f.write(orjson.dumps(seal, option=orjson.OPT_APPEND_NEWLINE))
    (logs / "trades.jsonl").rename(logs / "trades.jsonl.1")
    with open(logs / "trades.jsonl.1", "ab") as f:
        f.write(b'{"forged": true}\n')
    fill_anchor(the_anchor(data), logs)
    code, out = verify_cli(capsys, logs, data)
    assert code == 1 and "recorded as damage" in out, out


@pytest.mark.slow
def test_a_bot_writing_while_verify_runs_is_never_a_false_alarm(tmp_path, env, capsys):
    """The writer notes a line as written before it appends it, and a head as signed after its
    chain record: verify reads the signed heads before the chains and the written head after the
    file, so lines appended meanwhile are never 'not written by the bot' nor a truncation."""
    import threading
    logs, data = make_trail(tmp_path)
    anc = the_anchor(data)
    stop = threading.Event()

    def bot() -> None:
        i = 100
        while not stop.is_set():
            line = encode(trade(i), "2025-03-03T15:09:00.000000+00:00")
            written_line(anc, logs, "trades.jsonl", line)
            i += 1

    thread = threading.Thread(target=bot)
    thread.start()
    try:
        codes = [verify_cli(capsys, logs, data) for _ in range(30)]
    finally:
        stop.set()
        thread.join()
    assert [c for c, _out in codes if c != 0] == [], next(o for c, o in codes if c != 0)


def append_signed(chain: Path, record: dict) -> None:
    """A chain record the bot would write (signed with the key, after the last record)."""
    last = orjson.loads(chain.read_bytes().splitlines()[-1])
    record = {**record, "prev_mac": last["mac"]}
    record["mac"] = sign(KEY, record)
    with open(chain, "ab") as f:
        f.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))


def test_a_segment_archived_by_retention_is_checked_in_the_archive_directory(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path, rotations=1)
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "orders.jsonl.seg000000.20250101T000000Z").write_bytes(b'{"another": "trail"}\n')
    append_signed(logs / "orders.jsonl.chain", {"type": "archived", "ts": "2025-03-03T16:00:00.000000+00:00",
                                                "segment": 0, "file": "orders.jsonl.1",
                                                "archive": "orders.jsonl.seg000000"})
    (logs / "orders.jsonl.1").rename(archive / "orders.jsonl.seg000000")
    fill_anchor(the_anchor(data), logs)
    code, out = verify_cli(capsys, logs, data)
    assert code == 0 and "archived" in out, out
    code, out = verify_cli(capsys, logs, data, "--archive-dir", str(archive))
    assert code == 0 and "orders.jsonl.seg000000 " in out, out
    (archive / "orders.jsonl.seg000000").unlink()
    code, out = verify_cli(capsys, logs, data, "--archive-dir", str(archive))
    assert code == 1 and "MISSING" in out and "not found in" in out, out


@pytest.mark.slow
def test_unsigned_lines_the_bot_was_writing_lost_in_a_power_failure_are_not_tampering(tmp_path, env, capsys):
    """The WRITTEN head says two more lines were being written; none reached the file (the
    writer records write_lost at its next start): nothing signed is missing."""
    logs, data = make_trail(tmp_path)
    before = (logs / "trades.jsonl").read_bytes()
    for i in (9, 10):
        line = encode(trade(i), "2025-03-03T15:09:00.000000+00:00")
        written_line(the_anchor(data), logs, "trades.jsonl", line)
    (logs / "trades.jsonl").write_bytes(before)
    code, out = verify_cli(capsys, logs, data)
    assert code == 0 and "lost" in out and "lines 4 to 5 were being written" in out, out


@pytest.mark.slow
def test_unsigned_lines_cut_from_the_middle_of_what_the_bot_wrote_are_caught(tmp_path, env, capsys):
    """Three lines written after the last checkpoint, the last two cut: the one left is not
    where the bot's WRITTEN head says the file ends (the writer calls it damage too)."""
    logs, data = make_trail(tmp_path)
    lines = [encode(trade(i), "2025-03-03T15:09:00.000000+00:00")
             for i in (9, 10, 11)]
    before = (logs / "trades.jsonl").read_bytes()
    for line in lines:
        written_line(the_anchor(data), logs, "trades.jsonl", line)
    (logs / "trades.jsonl").write_bytes(before + lines[0])
    code, out = verify_cli(capsys, logs, data)
    assert code == 1 and "truncated: 4 lines, the bot wrote 5 or more" in out, out


def test_a_deleted_log_directory_with_an_anchor_is_altered_not_a_bad_argument(tmp_path, env, capsys):
    logs, data = make_trail(tmp_path)
    shutil.rmtree(logs)
    code, out = verify_cli(capsys, logs, data)
    assert code == 1 and "orders.jsonl and orders.jsonl.chain are missing" in out, out
    code, out = verify_cli(capsys, tmp_path / "never-a-trail", data)
    assert code == 2 and "is not a directory" in out, out


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300), st.binary(max_size=300), st.sampled_from(["chain", "written", "signed", "trail"]))
def test_anchored_verify_never_crashes_on_garbage(tmp_path_factory, garbage, more, where):
    """Whatever a chain line, a head slot or the anchor's trail.json holds, verify answers with
    an exit code, never a traceback."""
    from audit.anchor import SLOT
    logs, data = make_trail(tmp_path_factory.mktemp("fuzz"), cycles=1)
    anc = the_anchor(data)
    if where == "chain":
        with open(logs / "trades.jsonl.chain", "ab") as f:
            f.write(garbage + b"\n" + more)
    elif where == "trail":
        (anc.directory / "trail.json").write_bytes(garbage)
    else:
        with open(anc.directory / "trades.jsonl.head", "r+b") as f:
            f.seek(0 if where == "written" else SLOT)
            f.write((garbage + more)[:SLOT])
    report = verify(logs, KEY, anchor=Anchor.load(anc.directory) or anc)
    assert report.exit_code in (0, 1, 2)
    format_report(report)


def test_a_forged_last_line_without_its_newline_is_not_taken_for_one_being_written(tmp_path, env, capsys):
    """verify leaves aside a last line still being written only where the anchor says the bot is
    writing that very line: a line appended by hand without its newline is not the bot's."""
    logs, data = make_trail(tmp_path)
    with open(logs / "trades.jsonl", "ab") as f:
        f.write(encode(trade(99), "2025-03-03T15:09:00.000000+00:00").rstrip(b"\n"))
    code, out = verify_cli(capsys, logs, data)
    assert code == 1 and "not written by the bot" in out, out
