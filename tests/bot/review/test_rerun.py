"""`rerun_cycle`: a recorded cycle's decisions made again with the current code and settings."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bot.app.rerun import rerun_configured
from bot.review.rerun import format_rerun
from bot.settings import Settings
from models.base import History
from tests.trails import TWO_MODELS, copy_trail

CYCLE = "2024-03-28T19:45:00+00:00"


pytestmark = pytest.mark.usefixtures("no_bot_env")


@pytest.fixture
def trail(sim_trail, tmp_path) -> Path:
    return copy_trail(sim_trail, tmp_path / "logs")


def settings(tmp_path: Path, **changes) -> Settings:
    """The fixture's settings (tests/trails.py TWO_MODELS, its data dir), plus `changes`."""
    base = {k.removeprefix("BOT_").lower(): v for k, v in TWO_MODELS.items()}
    return Settings(_env_file=None, data_dir=tmp_path / "data", **{**base, **changes})


def contents(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def by_model(results):
    return {r.model: r for r in results}


def test_same_settings_same_inputs_no_change_and_nothing_written(trail, tmp_path):
    before = contents(trail)
    results = rerun_configured(settings(tmp_path), trail, CYCLE)
    assert contents(trail) == before
    assert not (tmp_path / "data").exists()  # no account, no state, no key
    assert [r.model for r in results] == ["SectorRotationModel_v1", "EqualWeightModel_v1"]
    assert all(r.inputs_match and r.unchanged for r in results)
    text = format_rerun(results)
    assert text.count("inputs match") == 2 and text.count("no change") == 2
    assert "INPUTS DIFFER" not in text and "decisions.jsonl:" in text


def test_changed_top_n_shows_the_decision_difference(trail, tmp_path):
    r = by_model(rerun_configured(settings(tmp_path, sector_top_n=2), trail, CYCLE))
    sector, equal = r["SectorRotationModel_v1"], r["EqualWeightModel_v1"]
    assert sector.inputs_match and equal.inputs_match and equal.unchanged
    whats = {c.what for c in sector.changes}
    assert {"target weight", "reason"} <= whats and "score" not in whats
    grown = [c for c in sector.changes if c.what == "target weight" and c.after == 0.5]
    assert len(grown) == 2 and all(c.before == pytest.approx(1 / 3) for c in grown)
    text = format_rerun([sector])
    assert "33.33% -> 50.00%" in text and "-> (none)" in text and "top 2 by" in text
    assert "no change" not in text


def test_changed_seed_reports_the_input_mismatch_and_its_cause(trail, tmp_path):
    results = rerun_configured(settings(tmp_path, seed=7), trail, CYCLE)
    assert results and not any(r.inputs_match for r in results)
    text = format_rerun(results)
    assert text.count("INPUTS DIFFER") == 2
    assert "seed 42, now BOT_SEED=7: set BOT_SEED=42" in text
    assert results[0].recorded_sha256 in text and results[0].rerun_sha256 in text


def test_model_no_longer_configured_is_reported(trail, tmp_path):
    r = by_model(rerun_configured(settings(tmp_path, models="EqualWeightModel_v1"), trail, CYCLE))
    gone = r["SectorRotationModel_v1"]
    assert not gone.configured and not gone.inputs_match and "BOT_MODELS" in gone.note
    assert r["EqualWeightModel_v1"].inputs_match
    assert r["EqualWeightModel_v1"].changes[0].what == "capital share"  # 40% then, 100% now
    text = format_rerun(list(r.values()))
    assert "SectorRotationModel_v1 is not configured now" in text and "40.00% -> 100.00%" in text


class EmptyMarket:
    """A data source that has nothing: every symbol unusable."""

    def history(self, symbols, before, bars) -> History:
        return History(None, {}, {s: "no file" for s in symbols})

    def price(self, symbol, at):  # pragma: no cover - the re-run never asks for prices
        raise AssertionError("a re-run asks for no price")


def test_other_data_source_names_what_is_missing(trail, tmp_path):
    r = by_model(rerun_configured(settings(tmp_path), trail, CYCLE, market=EmptyMarket()))
    equal = r["EqualWeightModel_v1"]
    assert not equal.inputs_match and equal.problems == {"SPY": "no file", "QQQ": "no file",
                                                         "TLT": "no file"}
    text = format_rerun([equal])
    assert "SPY is unusable now: no file" in text
    assert "then ended on 2024-03-27, now on no date (no data)" in text
    assert "hold: False -> True" in text and "target weight SPY: 33.33% -> (none)" in text


def test_a_date_reruns_its_cycle_and_unknown_cycles_name_neighbours(trail, tmp_path):
    assert {r.cycle_timestamp for r in rerun_configured(settings(tmp_path), trail, "2024-03-28")} == {CYCLE}
    with pytest.raises(LookupError, match=r"2024-03-28T19:45:00\+00:00 \(before\)"):
        rerun_configured(settings(tmp_path), trail, "2024-03-30")
