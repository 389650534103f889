"""`tradebot simulate` over two years, then the format check and every recipe of the trail's doc.

Every jq, Python and pandas recipe is read from docs/audit-trail.md (the guide's recipes, with
`logs/` as their path) and run verbatim in a directory holding the trail as `logs/`; so is every
`tradebot logs` equivalent the doc shows beside them, whose answer must be the recipe's.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.guide import (
    check_format,
    check_jq_recipes,
    check_logs_equivalents,
    check_pandas_snippet,
    check_python_and_pandas_equivalents,
    check_python_snippet,
    check_trades_add_up,
    records,
)
from tests.trails import clean_env

pytestmark = pytest.mark.slow  # a two-year simulation in a subprocess, then every recipe of the guide


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    env = clean_env()
    env.update(BOT_DATA_DIR=str(base / "data"),
               BOT_MODELS="SectorRotationModel_v1=0.6,EqualWeightModel_v1=0.4",
               BOT_COMMISSION="1")
    proc = subprocess.run([sys.executable, "-m", "bot", "simulate", "--start", "2024-01-01",
                           "--end", "2025-12-31", "--out", str(base / "logs")],
                          cwd=base, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "buy&hold SPY" in proc.stdout and "Sharpe" in proc.stdout
    return base


def test_audit_check_passes_on_the_run(run_dir):
    check_format(run_dir)


def test_every_jq_recipe_of_the_guide(run_dir):
    orders = records(run_dir, "orders.jsonl")
    assert len(orders) > 50 and any(o["symbol"] == "SPY" for o in orders)
    assert any(t.get("pnl") is not None for t in records(run_dir, "trades.jsonl"))
    check_jq_recipes(run_dir)


def test_every_logs_equivalent_gives_the_recipes_answer(run_dir):
    check_logs_equivalents(run_dir)


def test_the_python_and_pandas_equivalents_run(run_dir):
    check_python_and_pandas_equivalents(run_dir)


def test_guide_python_snippet(run_dir):
    check_python_snippet(run_dir)


def test_guide_pandas_snippet(run_dir):
    check_pandas_snippet(run_dir)


def test_trades_add_up_to_the_last_snapshot(run_dir):
    check_trades_add_up(run_dir)


def test_every_order_names_its_model_and_has_a_decision(run_dir):
    orders = records(run_dir, "orders.jsonl")
    decisions = {(d["cycle_timestamp"], d["model"]) for d in records(run_dir, "decisions.jsonl")}
    assert {o["model"] for o in orders} == {"SectorRotationModel_v1", "EqualWeightModel_v1"}
    assert all((o["cycle_timestamp"], o["model"]) in decisions for o in orders)
    assert all(t.get("commission") == 1.0 for t in records(run_dir, "trades.jsonl"))


def test_simulate_refuses_a_directory_with_records(run_dir):
    proc = subprocess.run([sys.executable, "-m", "bot", "simulate", "--start", "2024-01-01",
                           "--end", "2024-02-01", "--out", str(run_dir / "logs")],
                          cwd=run_dir, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "already holds records" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
