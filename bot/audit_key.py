"""The audit trail's HMAC key: from BOT_AUDIT_KEY, from BOT_AUDIT_KEY_FILE (a Docker secret), or
generated once into the data directory (never the log directory) so a first start needs no
set-up. It is never logged."""
from __future__ import annotations

import os
import secrets

from audit.writer import open_own
from bot.core.errors import ConfigError
from bot.core.layout import key_path
from bot.settings import Settings


def load_key(settings: Settings, *, create: bool) -> tuple[bytes, str]:
    """(key, where it came from). With `create`, a missing key is generated into the data
    directory; without it (verify), a missing key is a ConfigError."""
    if settings.audit_key is not None:
        return settings.audit_key.get_secret_value().encode(), "BOT_AUDIT_KEY"
    if settings.audit_key_file is not None:
        key = settings.audit_key_file.read_bytes().strip()
        if len(key) < 16:
            raise ConfigError(f"BOT_AUDIT_KEY_FILE={str(settings.audit_key_file)!r} holds fewer than "
                              "16 bytes: put a longer random key in it")
        return key, f"BOT_AUDIT_KEY_FILE ({settings.audit_key_file})"
    path = key_path(settings.data_dir)
    if path.exists():
        return path.read_bytes().strip(), f"{path}"
    if not create:
        raise ConfigError(f"no audit key: set BOT_AUDIT_KEY or BOT_AUDIT_KEY_FILE, or keep "
                          f"{path} (generated at the first start)")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = open_own(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never through a link
    try:
        os.write(fd, secrets.token_hex(32).encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)  # a whole key or none, even if killed right here
    return path.read_bytes().strip(), f"generated {path}"


def is_generated(origin: str) -> bool:
    return origin.startswith("generated ")
