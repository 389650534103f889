"""The anchor kept in the data directory (audit/anchor.py): slots, lookup, anchor lines."""
from __future__ import annotations

import os
import stat

import pytest

from audit.anchor import SIGNED, SLOT, WRITTEN, Anchor, format_anchor_line, key_id, new_trail_id, parse_anchor_lines

HASH = "ab" * 32


def test_slots_round_trip_and_a_garbled_slot_reads_as_no_evidence(tmp_path):
    anchor = Anchor.create(tmp_path / "data", new_trail_id(), key_id(b"k" * 16), tmp_path / "logs")
    head = anchor.head("orders.jsonl", create=True)
    assert head.written() is None and head.signed() is None
    head.write(WRITTEN, {"segment": 0, "line": 3, "offset": 200, "before": HASH, "after": HASH})
    head.write(SIGNED, {"segment": 0, "lines": 2, "bytes": 200, "hash": HASH, "mac": HASH})
    assert head.written()["line"] == 3 and head.signed()["lines"] == 2
    assert head.path.stat().st_size == 2 * SLOT
    assert stat.S_IMODE(head.path.stat().st_mode) == 0o600
    with open(head.path, "r+b") as f:
        f.write(b'{"segment": 0, "line": 4, "off')  # torn: the rest is the old record's tail
    assert head.written() is None and head.signed()["lines"] == 2
    head.close()


def test_an_anchor_is_found_by_trail_id_or_by_the_log_directory_it_was_made_for(tmp_path):
    made = Anchor.create(tmp_path / "data", new_trail_id(), key_id(b"k" * 16), tmp_path / "logs")
    assert Anchor.find(tmp_path / "data", trail_id=made.trail_id) == made
    assert Anchor.find(tmp_path / "data", log_dir=tmp_path / "logs") == made
    assert Anchor.find(tmp_path / "data", log_dir=tmp_path / "other") is None
    assert Anchor.find(tmp_path / "data", trail_id="../etc") is None


def test_a_planted_link_is_not_followed(tmp_path):
    anchor = Anchor.create(tmp_path / "data", new_trail_id(), key_id(b"k" * 16), tmp_path / "logs")
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    os.symlink(victim, anchor.directory / "orders.jsonl.head")
    with pytest.raises(OSError):
        anchor.head("orders.jsonl", create=True)
    assert victim.read_bytes() == b"precious\n"


def test_key_ids_tell_keys_apart_without_revealing_them():
    assert key_id(b"a" * 16) == key_id(b"a" * 16) != key_id(b"b" * 16)
    assert b"a" * 16 not in key_id(b"a" * 16).encode()


def test_anchor_lines_are_found_behind_any_prefix():
    line = format_anchor_line("t1", "2025-03-03T15:00:00.000000+00:00",
                              {"orders.jsonl": {"segment": 1, "lines": 4, "bytes": 9, "hash": HASH,
                                                "mac": HASH}})
    text = f"bot-1  | {line}\nnoise\nbot-1  | tradebot-anchor {{not json\n"
    (found,) = parse_anchor_lines(text)
    assert found["trail_id"] == "t1"
    assert found["heads"] == {"orders.jsonl": {"segment": 1, "lines": 4, "hash": HASH, "mac": HASH}}
