"""The README and .env.example document every setting, and show the two commands."""
from pathlib import Path

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented():
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    for name in Settings.model_fields:
        var = f"BOT_{name.upper()}"
        assert f"`{var}`" in readme, f"{var} missing from README"
        assert var in example, f"{var} missing from .env.example"


def test_quick_start_shows_the_two_commands():
    quick = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "make run" in quick and "make test" in quick


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
