"""A user that file modes apply to, for the permission cases (tests of health, of the container's
start-up): root ignores modes, so as root they run in a subprocess as `nobody` (UID 65534), or
as root without the capabilities that bypass modes, inside a world-traversable temporary
directory.

The fixtures `unprivileged` and `shared_tmp` are offered to every test by tests/conftest.py.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.trails import clean_env

NOBODY = 65534

PR_CAPBSET_DROP = 24
DAC_CAPS = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


def _as_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def _as_root_without_dac_caps() -> None:
    """Root that obeys file modes: the capabilities that bypass them leave the bounding set,
    so the interpreter started next never has them (for when `nobody` cannot reach Python)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in DAC_CAPS:
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


@dataclass(frozen=True)
class User:
    """Who the permission cases run as, and how a process is started as them."""

    uid: int
    gid: int
    preexec: Callable[[], None] | None

    def run(self, code: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", code, *args], cwd="/", timeout=120,
                              env=clean_env(PYTHONDONTWRITEBYTECODE="1"), capture_output=True,
                              text=True, preexec_fn=self.preexec)


PROBE = """
import os, tempfile, bot.app.health
d = tempfile.mkdtemp(dir={d!r}); os.rmdir(d)  # may write where root alone may
print(os.geteuid(), os.getegid())
"""


@pytest.fixture(scope="module")
def unprivileged(tmp_path_factory):
    """A user for whom modes count: ourselves when not root; as root, `nobody` when it can run
    the project's Python, else root without CAP_DAC_OVERRIDE; skip when neither works."""
    if os.geteuid() != 0:
        return User(os.geteuid(), os.getegid(), None)
    locked = tmp_path_factory.mktemp("probe")
    locked.chmod(0o555)
    tried = []
    for preexec in (_as_nobody, _as_root_without_dac_caps):
        try:
            proc = subprocess.run([sys.executable, "-c", PROBE.format(d=str(locked))], cwd="/",
                                  timeout=120, env=clean_env(PYTHONDONTWRITEBYTECODE="1"),
                                  capture_output=True, text=True, preexec_fn=preexec)
        except (OSError, subprocess.SubprocessError) as exc:
            tried.append(f"{preexec.__name__}: {exc}")
            continue
        if proc.returncode != 0 and "PermissionError" in proc.stderr and "mkdtemp" in proc.stderr:
            uid, gid = (NOBODY, NOBODY) if preexec is _as_nobody else (0, 0)
            return User(uid, gid, preexec)  # modes apply to it: the probe could not write
        tried.append(f"{preexec.__name__}: {(proc.stderr or proc.stdout).strip()[-200:]}")
    pytest.skip("running as root and no process that obeys file modes can be started: "
                + "; ".join(tried))


@pytest.fixture
def shared_tmp():
    """A temporary directory the unprivileged user can reach (pytest's tmp_path is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="tradebot-health-"))
    base.chmod(0o755)
    yield base
    for p in [base, *base.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)  # so a non-root run can remove what it made read-only
    shutil.rmtree(base)


def give_to(user: User, base: Path) -> None:
    for p in base.rglob("*"):
        os.chown(p, user.uid, user.gid)
