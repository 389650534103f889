"""Settings from the environment and `.env` (prefix `BOT_`), validated with one-line errors.

`load_settings` returns `Settings` or raises `ConfigError` whose message names the variable, the
bad value and what is allowed. Secrets are `SecretStr`: never printed, logged or put in a repr.
"""
from __future__ import annotations

import difflib
import hashlib
import ipaddress
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any, Literal, Mapping

import orjson
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.core.errors import ConfigError
from bot.core.planning import RiskLimits

_LIMITS = RiskLimits()  # the risk limits' defaults: one set, declared with the limits

# What each setting allows, quoted in error messages and in the README.
ALLOWED: dict[str, str] = {
    "broker": "'sim' (embedded simulated paper broker) or 'alpaca'",
    "log_dir": "a directory path",
    "data_dir": "a directory path",
    "csv_dir": "a directory of SYMBOL.csv files, or unset for the synthetic market",
    "schedule": "'every N seconds|minutes|hours', 'daily at HH:MM' (New York time) or 'at market open'",
    "market_hours": "'always' or 'nyse'",
    "missed_slot": "'run', 'skip' or 'record'",
    "models": "comma-separated Name or Name=share, e.g. 'SectorRotationModel_v1=0.7,EqualWeightModel_v1=0.3'",
    "starting_cash": "a number of dollars, at least 1 and at most 1e12 (an account of cents "
                     "rounds to nothing and cannot trade; beyond 1e12 floating point loses the cents)",
    "slippage_bps": "a number from 0 to 1000 (basis points)",
    "commission": "a number >= 0 (dollars per order)",
    "seed": "a whole number that fits in 64 bits (-9223372036854775808 to 9223372036854775807)",
    "fractional": "true or false",
    "margin_multiplier": "a number from 1 to 4 (1 = cash account)",
    "order_type": "'market' or 'limit'",
    "limit_offset_bps": "a number from 0 to 1000 (basis points)",
    "min_trade_value": "a number >= 0 (dollars)",
    "rebalance_band": "a number from 0 to 1 (weight)",
    "cash_buffer": "a number from 0 to 0.99 (fraction of NAV)",
    "max_position_weight": "a number from 0.01 to 1 (fraction of a model's capital)",
    "max_order_value": "a number > 0 (dollars)",
    "kill_switch": "true or false",
    "sector_lookback": "a whole number from 5 to 756 (trading days)",
    "sector_top_n": "a whole number from 1 to 11",
    "sector_trend_window": "a whole number from 2 to 756 (trading days)",
    "sector_trend_symbol": "a ticker such as SPY",
    "sector_defensive_symbol": "a ticker such as TLT",
    "equal_weight_symbols": "comma-separated tickers, e.g. SPY,QQQ,TLT",
    "alpaca_api_key": "your Alpaca paper API key id",
    "alpaca_secret_key": "your Alpaca paper secret key",
    "alpaca_trading_url": "an http(s) URL (default Alpaca's paper trading host)",
    "alpaca_data_url": "an http(s) URL (default Alpaca's market data host)",
    "alpaca_feed": "'iex' (free plan), 'sip' or 'delayed_sip'",
    "max_close_move": "a fraction above 0 (0.5 = 50%) a close may move from the last accepted "
                      "one; raise it to accept a real move (a split)",
    "http_timeout": "a number of seconds from 0.1 to 300",
    "read_retries": "a whole number from 0 to 10",
    "fill_timeout": "a number of seconds from 0 to 3600",
    "reconcile": "'adopt' (record and carry on) or 'halt' (record and stop trading)",
    "audit_key": "a secret string of at least 16 characters",
    "audit_key_file": "a readable file outside the log directory (e.g. a Docker secret)",
    "log_max_bytes": "a whole number of bytes up to 9223372036854775807 (64 bits), 0 to turn "
                     "built-in rotation off",
    "log_backups": "a whole number from 0 to 1000",
    "log_compress": "true or false",
    "log_archive_dir": "a directory path other than BOT_LOG_DIR, or unset to delete pruned segments",
    "on_audit_failure": "'exit' (stop with exit code 1) or 'wait' (stay up, trade nothing)",
    "log_level": "'info' or 'debug' (debug adds the HTTP libraries' own log lines)",
    "health_grace": "a number of seconds from 0 to 86400",
    "metrics_port": "a port number from 1 to 65535, or unset to turn metrics off",
    "metrics_host": ("an IP address or host name to listen on, e.g. 127.0.0.1 (this host only, the default) "
                     "or 0.0.0.0 (all)"),
    "alert_webhook_url": "an http(s) URL that takes a JSON POST, or unset for no alerts",
    "alert_after_failures": "a whole number from 1 to 1000 (cycles failing in a row)",
    "self_verify_interval": "a number of seconds from 0 (off) to 31536000 (a year)",
    "anchor_console": "true or false",
    "anchor_file": "a file on another volume (not in the log or data directory), in an existing "
                   "directory, or unset",
    "anchor_url": "an http(s) URL that takes a POST of the anchor line, or unset",
}


# Whole numbers are written to the trail as JSON, which the trail's encoder keeps to 64 bits.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_STARTING_CASH = 1e12
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class Settings(BaseSettings):
    """Every setting, `BOT_` + the field name in capitals. See README for each one."""

    model_config = SettingsConfigDict(env_prefix="BOT_", env_file=".env", extra="ignore",
                                      case_sensitive=False, frozen=True)

    broker: Literal["sim", "alpaca"] = "sim"
    log_dir: Path = Path("./logs")
    data_dir: Path = Path("./data")
    csv_dir: Path | None = None
    max_close_move: float = Field(0.5, gt=0, le=1e308, allow_inf_nan=False)
    schedule: str = "every 15 minutes"
    market_hours: Literal["always", "nyse"] | None = None
    missed_slot: Literal["run", "skip", "record"] = "run"
    models: str = "SectorRotationModel_v1"
    starting_cash: float = Field(100_000.0, ge=1, le=1e12, allow_inf_nan=False)
    slippage_bps: float = Field(2.0, ge=0, le=1000, allow_inf_nan=False)
    commission: float = Field(0.0, ge=0, allow_inf_nan=False)
    seed: int = Field(42, ge=INT64_MIN, le=INT64_MAX)
    fractional: bool = _LIMITS.fractional
    margin_multiplier: float = Field(1.0, ge=1, le=4, allow_inf_nan=False)
    order_type: Literal["market", "limit"] = _LIMITS.order_type.value
    limit_offset_bps: float = Field(_LIMITS.limit_offset_bps, ge=0, le=1000, allow_inf_nan=False)
    min_trade_value: float = Field(_LIMITS.min_trade_value, ge=0, allow_inf_nan=False)
    rebalance_band: float = Field(_LIMITS.rebalance_band, ge=0, le=1, allow_inf_nan=False)
    cash_buffer: float = Field(_LIMITS.cash_buffer, ge=0, le=0.99, allow_inf_nan=False)
    max_position_weight: float = Field(_LIMITS.max_position_weight, ge=0.01, le=1,
                                       allow_inf_nan=False)
    max_order_value: float = Field(_LIMITS.max_order_value, gt=0, allow_inf_nan=False)
    kill_switch: bool = False
    sector_lookback: int = Field(63, ge=5, le=756)
    sector_top_n: int = Field(3, ge=1, le=11)
    sector_trend_window: int = Field(200, ge=2, le=756)
    sector_trend_symbol: str = Field("SPY", pattern=r"^[A-Z][A-Z.]{0,9}$")
    sector_defensive_symbol: str = Field("TLT", pattern=r"^[A-Z][A-Z.]{0,9}$")
    equal_weight_symbols: str = "SPY,QQQ,TLT"
    alpaca_api_key: SecretStr | None = None
    alpaca_secret_key: SecretStr | None = None
    alpaca_trading_url: str = Field("https://paper-api.alpaca.markets", pattern=r"^https?://\S+$")
    alpaca_data_url: str = Field("https://data.alpaca.markets", pattern=r"^https?://\S+$")
    alpaca_feed: Literal["iex", "sip", "delayed_sip"] = "iex"
    http_timeout: float = Field(10.0, ge=0.1, le=300, allow_inf_nan=False)
    read_retries: int = Field(3, ge=0, le=10)
    fill_timeout: float = Field(30.0, ge=0, le=3600, allow_inf_nan=False)
    reconcile: Literal["adopt", "halt"] = "adopt"
    audit_key: SecretStr | None = None
    audit_key_file: Path | None = None
    log_max_bytes: int = Field(10_000_000, ge=0, le=INT64_MAX)
    log_backups: int = Field(5, ge=0, le=1000)
    log_compress: bool = False
    log_archive_dir: Path | None = None
    on_audit_failure: Literal["exit", "wait"] = "exit"
    log_level: Literal["info", "debug"] = "info"
    health_grace: float = Field(300.0, ge=0, le=86400, allow_inf_nan=False)
    metrics_port: int | None = Field(None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    alert_webhook_url: SecretStr | None = None
    alert_after_failures: int = Field(3, ge=1, le=1000)
    self_verify_interval: float = Field(3600.0, ge=0, le=31_536_000, allow_inf_nan=False)
    anchor_console: bool = True
    anchor_file: Path | None = None
    anchor_url: SecretStr | None = None

    @field_validator("schedule")
    @classmethod
    def _schedule_parses(cls, v: str) -> str:
        from bot.core.scheduling import parse_schedule
        parse_schedule(v)  # raises ValueError with the reason
        return v.strip()

    @field_validator("log_dir", "data_dir", mode="before")
    @classmethod
    def _directory_not_empty(cls, v: Any) -> Any:
        return not_empty_directory(v)

    @model_validator(mode="after")
    def _directories_the_bot_may_own(self) -> "Settings":
        for name, d in (("BOT_LOG_DIR", self.log_dir), ("BOT_DATA_DIR", self.data_dir)):
            check_own_directory(name, d)
        logs, data = self.log_dir.resolve(), self.data_dir.resolve()
        if logs.is_relative_to(data) or data.is_relative_to(logs):
            how = "are the same directory" if logs == data else "are one inside the other"
            raise ValueError(f"BOT_LOG_DIR={str(self.log_dir)!r} and BOT_DATA_DIR="
                             f"{str(self.data_dir)!r} {how}: "
                             "the data directory holds the audit key and the anchor, which must "
                             "stay apart from the logs they protect; give them two separate "
                             "directories (e.g. ./logs and ./data)")
        return self

    @field_validator("metrics_host")
    @classmethod
    def _host_is_an_address_or_name(cls, v: str) -> str:
        check_host(v)
        return v

    @field_validator("models")
    @classmethod
    def _models_parse(cls, v: str) -> str:
        parse_model_shares(v)
        return v

    @field_validator("equal_weight_symbols")
    @classmethod
    def _symbols_parse(cls, v: str) -> str:
        parse_symbols(v)
        return v

    @model_validator(mode="after")
    def _audit_key_outside_logs(self) -> "Settings":
        if self.audit_key is not None and len(self.audit_key.get_secret_value()) < 16:
            raise ValueError("BOT_AUDIT_KEY is too short: use at least 16 characters")
        f = self.audit_key_file
        if f is not None:
            if not f.is_file():
                raise ValueError(f"BOT_AUDIT_KEY_FILE={str(f)!r} is not a readable file: point it at "
                                 "your key file (for example a Docker secret)")
            if f.resolve().parent == self.log_dir.resolve():
                raise ValueError("BOT_AUDIT_KEY_FILE is inside BOT_LOG_DIR: keep the key away from "
                                 "the logs it protects")
            try:
                key = f.read_bytes().strip()
            except PermissionError:
                raise ValueError(_unreadable_key_file(f)) from None
            except OSError as exc:
                raise ValueError(f"BOT_AUDIT_KEY_FILE={str(f)!r} cannot be read "
                                 f"({exc.strerror or exc}): give this user read access") from None
            if len(key) < 16:
                raise ValueError(f"BOT_AUDIT_KEY_FILE={str(f)!r} holds fewer than 16 bytes: put a "
                                 "longer random key in it")
        return self

    @model_validator(mode="after")
    def _archive_apart_from_logs(self) -> "Settings":
        a = self.log_archive_dir
        if a is not None and a.resolve() == self.log_dir.resolve():
            raise ValueError(f"BOT_LOG_ARCHIVE_DIR={str(a)!r} is BOT_LOG_DIR: archive pruned "
                             "segments in another directory (ideally another volume), or leave it "
                             "unset to delete them")
        if a is not None:
            check_own_directory("BOT_LOG_ARCHIVE_DIR", a)
        if a is not None and a.exists() and not a.is_dir():
            raise ValueError(f"BOT_LOG_ARCHIVE_DIR={str(a)!r} is not a directory: point it at a "
                             "directory (it is created if absent)")
        return self

    @field_validator("alert_webhook_url")
    @classmethod
    def _webhook_is_http(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().strip():
            return None
        if v is not None and not v.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("BOT_ALERT_WEBHOOK_URL must start with http:// or https://")
        return v

    @field_validator("anchor_url")
    @classmethod
    def _anchor_url_is_http(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().strip():
            return None
        if v is not None and not v.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("BOT_ANCHOR_URL must start with http:// or https://")
        return v

    @model_validator(mode="after")
    def _anchor_file_elsewhere(self) -> "Settings":
        """The anchor file must be where the trail is not: a copy beside the logs proves nothing."""
        f = self.anchor_file
        if f is None:
            return self
        where = f.resolve()
        for name, d in (("BOT_LOG_DIR", self.log_dir), ("BOT_DATA_DIR", self.data_dir)):
            if where.is_relative_to(d.resolve()):
                raise ValueError(f"BOT_ANCHOR_FILE={str(f)!r} is inside {name} ({d}): put it on "
                                 "another volume, where the bot's own files are not")
        if not where.parent.is_dir():
            raise ValueError(f"BOT_ANCHOR_FILE={str(f)!r}: its directory {where.parent} does not "
                             "exist: create it (on another volume) or unset BOT_ANCHOR_FILE")
        if where.is_dir():
            raise ValueError(f"BOT_ANCHOR_FILE={str(f)!r} is a directory: give a file name in it")
        return self

    @model_validator(mode="after")
    def _broker_ready(self) -> "Settings":
        if self.broker == "alpaca":
            for name in ("alpaca_api_key", "alpaca_secret_key"):
                value = getattr(self, name)
                if value is None or not value.get_secret_value().strip():
                    raise ValueError(f"BOT_{name.upper()} is missing: BOT_BROKER=alpaca needs "
                                     "your Alpaca paper keys (in .env or the environment)")
        return self

    @property
    def effective_market_hours(self) -> str:
        return self.market_hours or ("nyse" if self.broker == "alpaca" else "always")

    @property
    def model_shares(self) -> list[tuple[str, float]]:
        return parse_model_shares(self.models)

    def redacted(self, *, absolute_paths: bool = False) -> dict[str, Any]:
        """All settings as plain values, secrets shown as `**********`; with `absolute_paths`,
        directories and files resolved from the working directory (what `config` and the start
        line show: a bot started elsewhere opens another account)."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "**********"
            elif isinstance(value, Path):
                value = str(value.resolve() if absolute_paths else value)
            out[name] = value
        out["market_hours"] = self.effective_market_hours
        return out

    def fingerprint(self) -> str:
        """sha256 of the redacted settings: tells runs with different settings apart."""
        return hashlib.sha256(orjson.dumps(self.redacted(), option=orjson.OPT_SORT_KEYS)).hexdigest()


def check_host(text: str) -> None:
    """An IP address (v4 or v6) or a host name; dotted numbers must be a real IPv4 address."""
    try:
        ipaddress.ip_address(text)
        return
    except ValueError:
        pass
    labels = text.rstrip(".").split(".")
    if all(label.isdigit() for label in labels):
        raise ValueError(f"{text!r} is not an IP address (each of its four numbers must be 0 to 255)")
    if len(text) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError(f"{text!r} is neither an IP address nor a host name (letters, digits, "
                         "'-' and '.')")


def parse_symbols(text: str) -> list[str]:
    symbols = [s.strip().upper() for s in text.split(",") if s.strip()]
    if not symbols:
        raise ValueError("no symbols given")
    return symbols


def parse_model_shares(text: str) -> list[tuple[str, float]]:
    """`A=0.6,B` -> [(A, 0.6), (B, 0.4)]: names without a share split what is left equally."""
    from models.registry import available_models

    entries: list[tuple[str, float | None]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, share = part.partition("=")
        name = name.strip()
        if name not in available_models():
            raise ValueError(f"unknown model {name!r}; available: {', '.join(available_models())}")
        if any(n == name for n, _ in entries):
            raise ValueError(f"model {name!r} is listed twice")
        if share.strip():
            try:
                value = float(share)
            except ValueError:
                raise ValueError(f"share {share.strip()!r} of {name} is not a number") from None
            if not 0 < value <= 1:
                raise ValueError(f"share of {name} must be > 0 and <= 1, got {value}")
            entries.append((name, value))
        else:
            entries.append((name, None))
    if not entries:
        raise ValueError("no model given")
    fixed = sum(s for _, s in entries if s is not None)
    if fixed > 1 + 1e-9:
        raise ValueError(f"model shares add up to {fixed:g}, more than 1")
    free = [n for n, s in entries if s is None]
    rest = (1 - fixed) / len(free) if free else 0.0
    if free and rest <= 0:
        raise ValueError("the shares given leave nothing for the models without one")
    return [(n, s if s is not None else rest) for n, s in entries]


ENV_FILE = ".env"
PREFIX = "BOT_"


def known_names() -> list[str]:
    return [PREFIX + name.upper() for name in Settings.model_fields]


def closest_name(name: str) -> str | None:
    """The setting `name` most likely misspells (compared without the BOT_ prefix), or None."""
    stems = {n.removeprefix(PREFIX): n for n in known_names()}
    match = difflib.get_close_matches(name.upper().removeprefix(PREFIX), stems, n=1, cutoff=0.8)
    return stems[match[0]] if match else None


def dotenv_names(path: Path) -> list[str]:
    """The `BOT_*` names a `.env` file sets (none when there is no file), parsed as the settings
    loader parses it; a file that is not UTF-8 is a one-line ConfigError."""
    if not path.is_file():
        return []
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                          f"{exc.start}): save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read ({exc.strerror or exc}): give this user read "
                          "access, or remove it") from None
    import io

    from dotenv import dotenv_values
    return [k for k in dotenv_values(stream=io.StringIO(text)) if k.upper().startswith(PREFIX)]


def check_names(environ: Mapping[str, str], env_file: Path, *, strict: bool = True) -> None:
    """A `BOT_*` name that is not a setting is most likely a typo that would be ignored silently.
    In `.env` (ours alone) it stops start-up; in the environment it stops start-up when it is a
    near miss of a setting, else it is a warning (a host may set its own BOT_* variables). With
    `strict=False` every such name is a warning only."""
    known = set(known_names())
    for name in dotenv_names(env_file):
        if name.upper() not in known:
            _unknown(name, f"in {env_file}", closest_name(name), strict)
    for name in sorted(environ):
        if name.upper().startswith(PREFIX) and name.upper() not in known:
            close = closest_name(name)
            _unknown(name, "in the environment", close, strict and close is not None)


def _unknown(name: str, where: str, close: str | None, stop: bool) -> None:
    fix = (f"did you mean {close}? Rename it" if close else "remove or rename it") + \
        " (`tradebot config` lists every setting)"
    if stop:
        raise ConfigError(f"{name} {where} is not a tradebot setting: {fix}")
    print(f"tradebot: warning: {name} {where} is not a tradebot setting and is ignored"
          + (f" (did you mean {close}?)" if close else ""), file=sys.stderr)


def not_empty_directory(v: Any) -> Any:
    """An empty BOT_LOG_DIR or BOT_DATA_DIR would be the working directory: never what was meant."""
    if isinstance(v, str) and not v.strip():
        raise ValueError("it is empty, which would put the bot's files in the working directory; "
                         "give a directory path, or remove the line to use the default")
    return v


def check_own_directory(name: str, path: Path) -> None:
    """The bot's own directories are private: one that is a symbolic link (planted, perhaps, in a
    shared parent) or that anyone may write (like /tmp) is refused, and its mode never changed."""
    from audit.writer import UnsafeDirectory, check_directory
    try:
        check_directory(path, f"{name}={str(path)!r}")
    except UnsafeDirectory as exc:
        raise ValueError(str(exc)) from None


class TrailSettings(BaseSettings):
    """Only what the trail tools (`logs`, `replay`, `report`) need: a bad trading setting does
    not stop someone reading the logs."""

    model_config = SettingsConfigDict(env_prefix="BOT_", env_file=".env", extra="ignore",
                                      case_sensitive=False, frozen=True)

    log_dir: Path = Path("./logs")

    @field_validator("log_dir", mode="before")
    @classmethod
    def _directory_not_empty(cls, v: Any) -> Any:
        return not_empty_directory(v)


def _unreadable_key_file(path: Path) -> str:
    """Why this process cannot read the key file, and the fix (a Docker secret is the host's file
    as it is: one made as root, mode 0600, is unreadable by the container's user)."""
    uid, gid = os.geteuid(), os.getegid()
    st = path.stat()
    return (f"BOT_AUDIT_KEY_FILE={str(path)!r} cannot be read by UID {uid} (GID {gid}): it belongs "
            f"to UID {st.st_uid} with mode {stat.S_IMODE(st.st_mode):04o}; chown it to {uid}:{gid} "
            f"on the host (Docker: `sudo chown {uid}:{gid} secrets/audit.key` in the clone)")


def trail_log_dir() -> Path:
    """BOT_LOG_DIR (environment, then .env), else ./logs. Names that are not settings are only
    warned about here: reading the logs never stops for a trading setting."""
    check_names(os.environ, Path(ENV_FILE), strict=False)
    try:
        return TrailSettings().log_dir
    except ValidationError as exc:
        why = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"BOT_LOG_DIR is not usable ({why}): give a directory path, or pass "
                          "--logs-dir DIR") from None


def load_settings(**overrides: Any) -> Settings:
    """Read settings (overrides > environment > .env > defaults) or raise a one-line ConfigError.
    A `BOT_*` name that is not a setting stops here too (see `check_names`)."""
    check_names(os.environ, Path(ENV_FILE))
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None


def _one_line(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    var = f"BOT_{field.upper()}" if field else "settings"
    msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if field:
        value = first.get("input")
        shown = "**********" if "key" in field or "url" in field and "alert" in field else repr(value)
        allowed = ALLOWED.get(field, "see README")
        line = f"{var}={shown} is not valid: {msg}. Allowed: {allowed}."
    else:
        line = f"settings are not valid: {msg}."
    if not field and msg.startswith("BOT_"):
        line = msg + "."
    more = len(errors) - 1
    return line + (f" ({more} more problem{'s' if more > 1 else ''}: fix this one first)" if more else "")
