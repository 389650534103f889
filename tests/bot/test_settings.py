import pytest

from bot.errors import ConfigError
from bot.settings import load_settings, parse_model_shares


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for k in list(__import__("os").environ):
        if k.startswith("BOT_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults():
    s = load_settings()
    assert s.broker == "sim" and s.schedule == "every 15 minutes"
    assert s.effective_market_hours == "always" and s.missed_slot == "run"
    assert s.model_shares == [("SectorRotationModel_v1", 1.0)]
    assert s.starting_cash == 100_000 and s.slippage_bps == 2 and s.commission == 0
    assert s.seed == 42 and s.fractional is True


def test_plain_strings_work_without_json_quoting(monkeypatch):
    monkeypatch.setenv("BOT_MODELS", "SectorRotationModel_v1=0.7,EqualWeightModel_v1")
    monkeypatch.setenv("BOT_EQUAL_WEIGHT_SYMBOLS", "SPY, QQQ")
    s = load_settings()
    assert s.model_shares == [("SectorRotationModel_v1", 0.7), ("EqualWeightModel_v1", pytest.approx(0.3))]


def test_dotenv_is_read(tmp_path):
    (tmp_path / ".env").write_text("BOT_SEED=7\nBOT_SCHEDULE=daily at 15:45\n")
    s = load_settings()
    assert s.seed == 7 and s.schedule == "daily at 15:45"


@pytest.mark.parametrize("var,value,words", [
    ("BOT_SLIPPAGE_BPS", "abc", ["BOT_SLIPPAGE_BPS='abc'", "0 to 1000"]),
    ("BOT_BROKER", "ib", ["BOT_BROKER='ib'", "'sim'"]),
    ("BOT_SCHEDULE", "every fortnight", ["BOT_SCHEDULE='every fortnight'", "daily at HH:MM"]),
    ("BOT_MODELS", "Nope_v9", ["BOT_MODELS='Nope_v9'", "unknown model 'Nope_v9'"]),
    ("BOT_MODELS", "SectorRotationModel_v1=0.8,EqualWeightModel_v1=0.5", ["add up to 1.3"]),
    ("BOT_MISSED_SLOT", "later", ["BOT_MISSED_SLOT='later'", "'run', 'skip' or 'record'"]),
    ("BOT_STARTING_CASH", "-5", ["BOT_STARTING_CASH='-5'", "> 0"]),
    ("BOT_FRACTIONAL", "maybe", ["BOT_FRACTIONAL='maybe'", "true or false"]),
])
def test_bad_value_gives_one_line_naming_variable_value_and_fix(monkeypatch, var, value, words):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    msg = str(info.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_alpaca_needs_both_keys(monkeypatch):
    monkeypatch.setenv("BOT_BROKER", "alpaca")
    monkeypatch.setenv("BOT_ALPACA_API_KEY", "PKCANARY")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith("BOT_ALPACA_SECRET_KEY is missing")
    assert "CANARY" not in str(info.value) and "\n" not in str(info.value)
    monkeypatch.setenv("BOT_ALPACA_SECRET_KEY", "SKCANARY")
    s = load_settings()
    assert s.effective_market_hours == "nyse" and s.alpaca_feed == "iex"


def test_secrets_are_hidden(monkeypatch):
    monkeypatch.setenv("BOT_ALPACA_API_KEY", "PKCANARY123")
    monkeypatch.setenv("BOT_ALPACA_SECRET_KEY", "SECRETCANARY456")
    s = load_settings()
    assert "CANARY" not in repr(s) and "CANARY" not in str(s.redacted())
    assert s.redacted()["alpaca_secret_key"] == "**********"


def test_model_shares_split_the_rest():
    assert parse_model_shares("EqualWeightModel_v1=0.5,SectorRotationModel_v1") == [
        ("EqualWeightModel_v1", 0.5), ("SectorRotationModel_v1", 0.5)]
