"""Trails for tests, made the way a user makes them: `tradebot simulate` in a subprocess."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TWO_MODELS = {"BOT_MODELS": "SectorRotationModel_v1=0.6,EqualWeightModel_v1=0.4",
              "BOT_COMMISSION": "1"}


def is_bot_setting(name: str) -> bool:
    """A variable the bot reads as a setting: the developer's own must not reach a test (the
    `no_bot_env` fixture of tests/conftest.py removes them; `clean_env` leaves them out)."""
    return name.startswith("BOT_")


def clean_env(**settings: str) -> dict[str, str]:
    """The environment for a subprocess: this one without any BOT_ setting of the developer's,
    plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not is_bot_setting(k)}
    env.update(settings)
    return env


def simulate_trail(base: Path, start: str = "2024-01-01", end: str = "2024-06-30",
                   **settings: str) -> Path:
    """Run `tradebot simulate` into `base/logs` (data in `base/data`); returns the log directory."""
    env = clean_env(BOT_DATA_DIR=str(base / "data"), **settings)
    proc = subprocess.run([sys.executable, "-m", "bot", "simulate", "--start", start, "--end", end,
                           "--out", str(base / "logs")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return base / "logs"


def copy_trail(logs: Path, dest: Path) -> Path:
    """A private copy of a shared trail, to damage on purpose."""
    shutil.copytree(logs, dest)
    return dest
