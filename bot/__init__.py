"""tradebot: a paper-trading bot with a complete, trustworthy audit trail."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def tradebot_version() -> str:
    """The installed package's version; from a source tree that was never installed, the
    version in its pyproject.toml; else "unknown" (never an exception)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("tradebot")
    except PackageNotFoundError:
        pass
    try:
        import tomllib
        with open(Path(__file__).resolve().parent.parent / "pyproject.toml", "rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, ValueError):
        return "unknown"
