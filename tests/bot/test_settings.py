import pytest

from bot.core.errors import ConfigError
from bot.settings import load_settings, parse_model_shares

pytestmark = pytest.mark.usefixtures("no_bot_env")


def test_defaults():
    s = load_settings()
    assert s.broker == "sim" and s.schedule == "every 15 minutes"
    assert s.effective_market_hours == "always" and s.missed_slot == "run"
    assert s.model_shares == [("SectorRotationModel_v1", 1.0)]
    assert s.starting_cash == 100_000 and s.slippage_bps == 2 and s.commission == 0
    assert s.seed == 42 and s.fractional is True


def test_the_risk_limits_have_one_set_of_defaults():
    """The limits a default bot runs with are `RiskLimits()`, the ones tests build."""
    from bot.core.planning import RiskLimits
    from bot.wiring import build_limits
    assert build_limits(load_settings()) == RiskLimits()
    assert (RiskLimits().max_position_weight, RiskLimits().max_order_value) == (1.0, 250_000.0)


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
    ("BOT_STARTING_CASH", "-5", ["BOT_STARTING_CASH='-5'", "at least 1"]),
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


# -- names that are not settings ----------------------------------------------------------------

def test_a_misspelt_name_in_dotenv_stops_naming_the_closest_setting(tmp_path):
    (tmp_path / ".env").write_text("BOT_SEED=7\nBOT_SHEDULE=daily at 15:45\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    msg = str(info.value)
    assert "BOT_SHEDULE" in msg and "BOT_SCHEDULE" in msg and ".env" in msg and "\n" not in msg


def test_an_unknown_name_in_dotenv_stops_even_without_a_close_match(tmp_path):
    (tmp_path / ".env").write_text("BOT_MODEL=EqualWeightModel_v1\nBOT_TOTALLY_ELSE=1\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "BOT_MODEL" in str(info.value) and "BOT_MODELS" in str(info.value)
    (tmp_path / ".env").write_text("BOT_TOTALLY_ELSE=1\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "BOT_TOTALLY_ELSE" in str(info.value) and "tradebot config" in str(info.value)


def test_a_near_miss_in_the_environment_stops(monkeypatch):
    monkeypatch.setenv("BOT_MODEL", "EqualWeightModel_v1")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "BOT_MODEL " in str(info.value) + " " and "did you mean BOT_MODELS" in str(info.value)


def test_another_bot_variable_of_the_environment_is_a_warning_only(monkeypatch, capsys):
    monkeypatch.setenv("BOT_HOSTING_REGION", "eu-west")
    s = load_settings()
    assert s.broker == "sim"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "BOT_HOSTING_REGION" in err and "not a tradebot setting" in err


def test_dotenv_that_is_not_utf8_is_one_line(tmp_path):
    (tmp_path / ".env").write_bytes(b"BOT_SEED=\xff\xfe\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert ".env" in str(info.value) and "UTF-8" in str(info.value) and "\n" not in str(info.value)


# -- values that used to pass validation and fail later --------------------------------------------

@pytest.mark.parametrize("var,value,words", [
    ("BOT_SEED", str(2**64), ["BOT_SEED", "64"]),
    ("BOT_SEED", str(-(2**63) - 1), ["BOT_SEED", "64"]),
    ("BOT_LOG_MAX_BYTES", str(2**64), ["BOT_LOG_MAX_BYTES", "64"]),
    ("BOT_STARTING_CASH", "1e-300", ["BOT_STARTING_CASH='1e-300'", "at least 1"]),
    ("BOT_STARTING_CASH", "1e300", ["BOT_STARTING_CASH='1e300'", "1e12"]),
    ("BOT_STARTING_CASH", "inf", ["BOT_STARTING_CASH='inf'"]),
    ("BOT_METRICS_HOST", "999.1.1.1", ["BOT_METRICS_HOST='999.1.1.1'", "IP address"]),
    ("BOT_METRICS_HOST", "bad host!", ["BOT_METRICS_HOST='bad host!'", "host name"]),
])
def test_values_that_fail_later_are_refused_at_load(monkeypatch, var, value, words):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    for w in words:
        assert w in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1", "::", "::1", "localhost",
                                  "metrics.example.internal"])
def test_good_metrics_hosts_pass(monkeypatch, host):
    monkeypatch.setenv("BOT_METRICS_HOST", host)
    assert load_settings().metrics_host == host


def test_limits_of_64_bits_still_pass(monkeypatch):
    monkeypatch.setenv("BOT_SEED", str(2**63 - 1))
    monkeypatch.setenv("BOT_LOG_MAX_BYTES", str(2**63 - 1))
    s = load_settings()
    assert len(s.fingerprint()) == 64


def test_a_short_audit_key_file_is_refused_at_load(tmp_path, monkeypatch):
    key = tmp_path / "secrets" / "key"
    key.parent.mkdir()
    key.write_text("short\n")
    monkeypatch.setenv("BOT_AUDIT_KEY_FILE", str(key))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "fewer than 16" in str(info.value)


def test_redacted_can_show_absolute_paths(tmp_path):
    s = load_settings()
    assert s.redacted()["log_dir"] == "logs"  # the fingerprint keeps the setting as given
    shown = s.redacted(absolute_paths=True)
    assert shown["log_dir"] == str(tmp_path.resolve() / "logs")
    assert shown["data_dir"] == str(tmp_path.resolve() / "data") and shown["csv_dir"] is None


# -- directories the bot does not own (issue 12) ----------------------------------------------------

def test_metrics_listen_on_loopback_unless_asked_otherwise():
    assert load_settings().metrics_host == "127.0.0.1"


@pytest.mark.parametrize("var", ["BOT_LOG_DIR", "BOT_DATA_DIR"])
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_directory_setting_is_refused(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    msg = str(info.value)
    assert var in msg and "empty" in msg and "\n" not in msg


@pytest.mark.parametrize("logs,data", [("same", "same"), ("d", "d/logs"), ("l/data", "l"),
                                       ("./x/../d", "d")])
def test_log_and_data_directories_apart(tmp_path, monkeypatch, logs, data):
    monkeypatch.setenv("BOT_LOG_DIR", logs)
    monkeypatch.setenv("BOT_DATA_DIR", data)
    with pytest.raises(ConfigError) as info:
        load_settings()
    msg = str(info.value)
    assert "BOT_LOG_DIR" in msg and "BOT_DATA_DIR" in msg and "\n" not in msg
    assert not (tmp_path / "d").exists() and not (tmp_path / "same").exists()


def test_sibling_directories_with_a_common_prefix_are_apart(monkeypatch):
    monkeypatch.setenv("BOT_LOG_DIR", "data-logs")
    monkeypatch.setenv("BOT_DATA_DIR", "data")
    assert load_settings().log_dir.name == "data-logs"


@pytest.mark.parametrize("var", ["BOT_LOG_DIR", "BOT_DATA_DIR"])
def test_a_world_writable_directory_is_refused_and_left_alone(tmp_path, monkeypatch, var):
    shared = tmp_path / "world_writable"
    shared.mkdir()
    shared.chmod(0o1777)
    monkeypatch.setenv(var, str(shared))
    with pytest.raises(ConfigError) as info:
        load_settings()
    msg = str(info.value)
    assert var in msg and "world-writable" in msg and "\n" not in msg
    assert (shared.stat().st_mode & 0o7777) == 0o1777


@pytest.mark.parametrize("var", ["BOT_LOG_DIR", "BOT_DATA_DIR"])
def test_a_directory_setting_that_is_a_symlink_is_refused(tmp_path, monkeypatch, var):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    monkeypatch.setenv(var, str(tmp_path / "link"))
    with pytest.raises(ConfigError) as info:
        load_settings()
    msg = str(info.value)
    assert var in msg and "symbolic link" in msg and str(real) in msg and "\n" not in msg


def test_a_world_writable_archive_directory_is_refused(tmp_path, monkeypatch):
    shared = tmp_path / "world_writable"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("BOT_LOG_ARCHIVE_DIR", str(shared))
    with pytest.raises(ConfigError, match="BOT_LOG_ARCHIVE_DIR=.* is world-writable"):
        load_settings()
    assert (shared.stat().st_mode & 0o777) == 0o777


@pytest.mark.parametrize("value", ["0", "-0.5", "nan", "inf", "lots"])
def test_a_max_close_move_that_is_not_a_positive_fraction_is_refused(value, monkeypatch):
    monkeypatch.setenv("BOT_MAX_CLOSE_MOVE", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "BOT_MAX_CLOSE_MOVE" in str(info.value) and "split" in str(info.value)


def test_max_close_move_defaults_to_half():
    assert load_settings().max_close_move == 0.5
