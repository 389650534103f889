"""Durability, rotation and integrity of the trail (stream.py, chain.py, verify.py)."""
from __future__ import annotations

import gzip
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.files import iter_lines
from audit.records import STREAMS, OrderFailed, event_from_notice
from audit.trail import AuditTrail
from audit.verify import EXPIRED, INVALID, MISSING, UNSEALED, VALID, verify
from audit.writer import AuditWriteFailed
from tests.fakes import FakeClock, at, fill_disk, utc
from tests.trails import clean_env

KEY = b"test-audit-key-0123456789"


def trail(d: Path, **kw) -> AuditTrail:
    return AuditTrail(d, FakeClock(utc(2025, 3, 3, 15)), durable=kw.pop("durable", True), key=KEY, **kw)


def err(i: int) -> OrderFailed:
    return OrderFailed(symbol="SPY", side="buy", quantity=1.0 + i, error=f"refused {i}",
                       order_data={"n": i}, model="M", order_id=f"tb-{i}",
                       cycle_timestamp=at("2025-03-03T15:00:00+00:00"))


def write(t: AuditTrail, n: int, start: int = 0, checkpoint_every: int = 5) -> None:
    for i in range(start, start + n):
        t.record(err(i))
        if (i + 1) % checkpoint_every == 0:
            t.checkpoint()


def lines(path: Path) -> list[dict]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return [orjson.loads(x) for x in data.splitlines()]


def events(d: Path) -> list[dict]:
    return lines(d / "events.jsonl")


def status(report, stream: str) -> list[tuple[str, str]]:
    (s,) = [s for s in report.streams if s.stream == stream]
    return [(seg.status, seg.detail) for seg in s.segments]


# -- durability -------------------------------------------------------------------------------
@pytest.mark.parametrize("tail", [b'{"timestamp": "2025-03-03T15:00:00.0', b'{"a": 1}\x00\x00\n',
                                  b'not json at all\n'])
def test_a_torn_tail_is_moved_aside_and_recorded(tmp_path, tail):
    t = trail(tmp_path)
    write(t, 3)
    t.close()
    with open(tmp_path / "errors.jsonl", "ab") as f:
        f.write(tail)
    t = trail(tmp_path)
    t.close()
    assert [r["error"] for r in lines(tmp_path / "errors.jsonl")] == ["refused 0", "refused 1", "refused 2"]
    (aside,) = tmp_path.glob("errors.jsonl.torn-*")
    assert aside.read_bytes() == tail and stat.S_IMODE(aside.stat().st_mode) == 0o600
    (rep,) = [e for e in events(tmp_path) if e["event_type"] == "repair"]
    assert rep["moved_to"] == aside.name and rep["bytes"] == len(tail)
    assert verify(tmp_path, KEY).exit_code == 0


def test_damage_in_the_middle_is_reported_never_truncated(tmp_path):
    t = trail(tmp_path)
    write(t, 4)
    t.close()
    raw = (tmp_path / "errors.jsonl").read_bytes().splitlines(keepends=True)
    raw[1] = b"garbage\n"
    (tmp_path / "errors.jsonl").write_bytes(b"".join(raw))
    trail(tmp_path).close()
    # kept whole, moved aside as a rotated segment sealed before the damage (never signed)
    assert (tmp_path / "errors.jsonl.1").read_bytes() == b"".join(raw)
    assert (tmp_path / "errors.jsonl").read_bytes() == b""
    (dmg,) = [e for e in events(tmp_path) if e["event_type"] == "damage"]
    assert dmg["lines"] == [2]


def test_a_failing_write_is_an_error_not_a_half_line(tmp_path, monkeypatch):
    t = trail(tmp_path)
    fill_disk(tmp_path / "errors.jsonl", monkeypatch.setattr)  # every write: ENOSPC
    with pytest.raises(AuditWriteFailed, match="errors.jsonl.*No space left"):
        t.record(err(0))
    assert (tmp_path / "errors.jsonl").read_bytes() == b""


@pytest.mark.slow
def test_a_full_disk_halts_run_with_one_line(tmp_path):
    env = clean_env()
    env.update(BOT_LOG_DIR=str(tmp_path / "logs"), BOT_DATA_DIR=str(tmp_path / "data"),
               BOT_AUDIT_KEY="test-audit-key-0123456789")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    driver = ("import sys; from tests.fakes import fill_disk; "
              f"fill_disk({str(tmp_path / 'logs' / 'decisions.jsonl')!r}); "
              "from bot.cli.main import main; sys.exit(main(['run', '--max-cycles', '1']))")
    proc = subprocess.run([sys.executable, "-c", driver], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "halted: the audit trail cannot be written" in proc.stderr
    assert "decisions.jsonl" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "logs" / "orders.jsonl").read_bytes()  # no order without a trail


# -- rotation ---------------------------------------------------------------------------------
def test_the_guides_manual_rotation_while_running_loses_nothing(tmp_path):
    t = trail(tmp_path)
    write(t, 4)
    os.rename(tmp_path / "errors.jsonl", tmp_path / "errors.jsonl.1")
    (tmp_path / "errors.jsonl").touch()
    os.chmod(tmp_path / "errors.jsonl", 0o644)
    write(t, 3, start=4)
    t.close()
    assert [r["n"] for r in (x["order_data"] for x in lines(tmp_path / "errors.jsonl.1"))] == [0, 1, 2, 3]
    assert [x["order_data"]["n"] for x in lines(tmp_path / "errors.jsonl")] == [4, 5, 6]
    assert stat.S_IMODE((tmp_path / "errors.jsonl").stat().st_mode) == 0o600
    assert any(e["event_type"] == "rotation" for e in events(tmp_path))
    report = verify(tmp_path, KEY)
    assert report.exit_code == 0 and [s for s, _ in status(report, "errors.jsonl")] == [VALID, VALID]


def test_rotation_while_stopped_is_sealed_at_start(tmp_path):
    t = trail(tmp_path)
    write(t, 3)
    t.close()
    os.rename(tmp_path / "errors.jsonl", tmp_path / "errors.jsonl.1")
    t = trail(tmp_path)
    write(t, 2, start=3)
    t.close()
    assert verify(tmp_path, KEY).exit_code == 0


def test_copytruncate_is_detected_as_possible_loss(tmp_path):
    t = trail(tmp_path)
    write(t, 4)
    shutil.copyfile(tmp_path / "errors.jsonl", tmp_path / "errors.jsonl.1")
    os.truncate(tmp_path / "errors.jsonl", 0)
    write(t, 2, start=4)
    t.close()
    (loss,) = [e for e in events(tmp_path) if e["event_type"] == "possible_loss"]
    assert loss["bytes_cut"] > 0
    report = verify(tmp_path, KEY)
    assert report.exit_code == 1
    assert any("copytruncate" in d for _, d in status(report, "errors.jsonl"))


@pytest.mark.parametrize("compress", [False, True])
def test_built_in_size_rotation_keeps_backups_and_seals_expired(tmp_path, compress):
    t = trail(tmp_path, max_bytes=600, backups=2, compress=compress)
    write(t, 20, checkpoint_every=1)
    t.close()
    suffix = ".gz" if compress else ""
    rotated = sorted(p.name for p in tmp_path.glob(f"errors.jsonl.*{suffix}") if not p.name.endswith(".chain"))
    assert rotated == [f"errors.jsonl.1{suffix}", f"errors.jsonl.2{suffix}"]
    for p in tmp_path.glob("errors.jsonl*"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    report = verify(tmp_path, KEY)
    statuses = [s for s, _ in status(report, "errors.jsonl")]
    assert report.exit_code == 0 and EXPIRED in statuses and statuses.count(VALID) == 3
    kept = [x["order_data"]["n"] for name in (f"errors.jsonl.2{suffix}", f"errors.jsonl.1{suffix}", "errors.jsonl")
            for x in lines(tmp_path / name)]
    assert kept == list(range(20 - len(kept), 20))  # the newest, in order, nothing lost in between
    # `tradebot audit check` reads every segment, .N.gz ones too; every line conforms
    lines_of_trail = sum(1 for name in STREAMS for _ in iter_lines(tmp_path, name))
    assert sum(1 for _ in iter_lines(tmp_path, "errors.jsonl")) == len(kept)
    proc = subprocess.run([sys.executable, "-m", "bot", "audit", "check", "--logs-dir", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [f"{lines_of_trail + 1} passed, 0 failed"]  # + production.log


def test_a_deleted_rotated_file_is_reported_missing(tmp_path):
    t = trail(tmp_path, max_bytes=600, backups=3)
    write(t, 12, checkpoint_every=1)
    t.close()
    os.unlink(tmp_path / "errors.jsonl.2")
    report = verify(tmp_path, KEY)
    assert report.exit_code == 1
    assert any(s == MISSING for s, _ in status(report, "errors.jsonl"))


# -- verify -----------------------------------------------------------------------------------
def damaged(tmp_path: Path, how: str) -> Path:
    t = trail(tmp_path)
    write(t, 10)
    t.close()
    path = tmp_path / "errors.jsonl"
    raw = path.read_bytes().splitlines(keepends=True)
    if how == "edit":
        raw[3] = raw[3].replace(b"refused 3", b"refused 9")
    elif how == "delete":
        del raw[3]
    elif how == "insert":
        raw.insert(3, raw[0])
    elif how == "reorder":
        raw[3], raw[4] = raw[4], raw[3]
    elif how == "truncate":
        raw = raw[:7]
    path.write_bytes(b"".join(raw))
    return path


@pytest.mark.parametrize("how,line", [("edit", 4), ("delete", 4), ("insert", 4), ("reorder", 4),
                                      ("truncate", 8)])
def test_verify_names_the_file_and_first_line_of_a_change(tmp_path, how, line):
    damaged(tmp_path, how)
    report = verify(tmp_path, KEY)
    assert report.exit_code == 1
    ((st_, detail),) = status(report, "errors.jsonl")
    assert st_ == INVALID and f"line {line}" in detail


def test_lines_after_the_last_checkpoint_are_unsealed_not_tampering(tmp_path):
    t = trail(tmp_path)
    write(t, 5)
    t.record(err(5))  # written, not yet signed: then the process dies
    t._files["errors.jsonl"].flush()
    report = verify(tmp_path, KEY)
    assert report.exit_code == 0
    assert status(report, "errors.jsonl")[0][0] == UNSEALED


def test_a_restart_resumes_the_chain(tmp_path):
    t = trail(tmp_path)
    write(t, 5)
    t.record(err(5))  # a crash before the checkpoint...
    t = trail(tmp_path)  # ...and a restart: the unsigned line is chained and signed
    write(t, 4, start=6)
    t.close()
    assert verify(tmp_path, KEY).exit_code == 0


def test_a_wrong_key_is_exit_2(tmp_path):
    t = trail(tmp_path)
    write(t, 3)
    t.close()
    assert verify(tmp_path, b"some-other-key-0123456").exit_code == 2


def test_an_edited_chain_record_is_caught(tmp_path):
    t = trail(tmp_path)
    write(t, 10)
    t.close()
    chain = tmp_path / "errors.jsonl.chain"
    recs = chain.read_bytes().splitlines(keepends=True)
    recs[1] = recs[1].replace(b'"lines":10', b'"lines":11')
    chain.write_bytes(b"".join(recs))
    report = verify(tmp_path, KEY)
    assert report.exit_code == 1


@pytest.mark.slow
def test_verify_cli_exit_codes(tmp_path):
    t = trail(tmp_path / "logs")
    write(t, 3)
    t.close()
    env = clean_env()
    env.update(BOT_DATA_DIR=str(tmp_path / "data"))

    def run(*args, **extra):
        return subprocess.run([sys.executable, "-m", "bot", "audit", "verify", "--logs-dir", *args],
                              cwd=tmp_path,
                              env={**env, **extra}, capture_output=True, text=True)
    ok = run(str(tmp_path / "logs"), "--no-anchor", BOT_AUDIT_KEY=KEY.decode())
    assert ok.returncode == 0 and "trail valid" in ok.stdout and "lines/s" in ok.stdout
    no_anchor = run(str(tmp_path / "logs"), BOT_AUDIT_KEY=KEY.decode())  # a trail with no anchor
    assert no_anchor.returncode == 2 and "--no-anchor" in no_anchor.stderr
    assert len(no_anchor.stderr.splitlines()) == 1 and "Traceback" not in no_anchor.stderr
    assert run(str(tmp_path / "logs")).returncode == 2  # no key anywhere
    assert run(str(tmp_path / "logs"), BOT_AUDIT_KEY="a-wrong-key-0123456789").returncode == 2
    assert run(str(tmp_path / "nowhere"), BOT_AUDIT_KEY=KEY.decode()).returncode == 2


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400), st.binary(max_size=400), st.integers(0, 3))
def test_verify_never_crashes_on_garbage(tmp_path_factory, log_bytes, chain_bytes, mode):
    d = tmp_path_factory.mktemp("fuzz")
    t = trail(d)
    write(t, 3)
    t.close()
    if mode in (0, 2):
        (d / "errors.jsonl").write_bytes(log_bytes)
    if mode in (1, 2):
        (d / "errors.jsonl.chain").write_bytes(chain_bytes)
    if mode == 3:
        (d / "errors.jsonl.1.gz").write_bytes(log_bytes)
    report = verify(d, KEY)
    assert report.exit_code in (0, 1, 2)


def test_a_new_key_is_generated_once_outside_the_logs(tmp_path, no_bot_env):
    from bot.audit_key import load_key
    from bot.settings import load_settings
    s = load_settings(data_dir=tmp_path / "data", log_dir=tmp_path / "logs")
    key, origin = load_key(s, create=True)
    assert origin.startswith("generated") and stat.S_IMODE((tmp_path / "data" / "audit.key").stat().st_mode) == 0o600
    assert load_key(s, create=False)[0] == key
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "k").write_text("x" * 32)
    from bot.core.errors import ConfigError
    with pytest.raises(ConfigError, match="inside BOT_LOG_DIR"):
        load_settings(audit_key_file=tmp_path / "logs" / "k", log_dir=tmp_path / "logs")


@pytest.mark.undeclared_kinds
@pytest.mark.filterwarnings("ignore:events.jsonl. .x. records are not known")  # on purpose
def test_events_of_a_trail_stay_valid_json_lines(tmp_path):
    t = trail(tmp_path)
    t.record(event_from_notice("x", "y", {}))
    t.close()
    assert events(tmp_path)[0]["event_type"] == "x"


def test_recovery_finds_a_line_that_was_rotated_away(tmp_path):
    from audit.tail import tail_lines
    t = trail(tmp_path, compress=True)
    write(t, 3)
    t._files["errors.jsonl"].rotate("size")
    t.close()
    assert not (tmp_path / "errors.jsonl").read_bytes()
    (line,) = tail_lines(tmp_path / "errors.jsonl", b'"order_id":"tb-2"')
    assert line.startswith(b'{"timestamp":') and line.endswith(b"}")
    assert list(tail_lines(tmp_path / "errors.jsonl", b'"order_id":"tb-9"')) == []
