"""`tradebot replay --cycle T --rerun`: the re-run (`bot.review.rerun`) with the configured models
and data source, built from the settings here so that the reader builds no adapter."""
from __future__ import annotations

from pathlib import Path

from bot.core.ports import MarketData
from bot.review.rerun import Configured, RerunResult, rerun_cycle
from bot.settings import Settings
from bot.wiring import build_market_data, build_models


def configured(settings: Settings, market: MarketData | None = None) -> Configured:
    """The models and data source `settings` configure (`market`, when given, instead of the
    configured data source), and the settings the re-run's hints compare with the run's."""
    return Configured(models=build_models(settings),
                      market=market if market is not None else build_market_data(settings),
                      models_setting=settings.models, csv_dir=str(settings.csv_dir or ""),
                      broker=settings.broker, seed=settings.seed,
                      settings_sha256=settings.fingerprint())


def rerun_configured(settings: Settings, log_dir: Path, cycle: str,
                     market: MarketData | None = None) -> list[RerunResult]:
    """Re-run the recorded decisions of `cycle` with the configured models and data source."""
    return rerun_cycle(configured(settings, market), log_dir, cycle)
