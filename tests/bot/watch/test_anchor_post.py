"""BOT_ANCHOR_CONSOLE, BOT_ANCHOR_FILE, BOT_ANCHOR_URL: settings and the background poster."""
from __future__ import annotations

import threading

import pytest

from bot.core.errors import ConfigError
from bot.settings import load_settings
from bot.watch.anchor_post import AnchorPoster, AnchorPostFailed

pytestmark = pytest.mark.usefixtures("no_bot_env")


def test_anchor_defaults_console_on_file_and_url_off():
    s = load_settings()
    assert s.anchor_console is True and s.anchor_file is None and s.anchor_url is None


@pytest.mark.parametrize("where,words", [
    ("logs/anchors.log", ["BOT_ANCHOR_FILE=", "inside BOT_LOG_DIR", "another volume"]),
    ("data/anchors.log", ["inside BOT_DATA_DIR"]),
    ("missing/anchors.log", ["does not exist", "create it"]),
])
def test_an_anchor_file_beside_the_trail_or_nowhere_stops_with_one_line(monkeypatch, tmp_path,
                                                                         where, words):
    monkeypatch.setenv("BOT_ANCHOR_FILE", str(tmp_path / where))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "\n" not in str(info.value)
    for w in words:
        assert w in str(info.value)


def test_the_anchor_url_must_be_http_and_is_never_shown(monkeypatch):
    monkeypatch.setenv("BOT_ANCHOR_URL", "ftp://x")
    with pytest.raises(ConfigError, match="BOT_ANCHOR_URL must start with http"):
        load_settings()
    monkeypatch.setenv("BOT_ANCHOR_URL", "https://anchors.example/t0ken-secret")
    s = load_settings()
    assert "t0ken-secret" not in repr(s) and "t0ken-secret" not in str(s.redacted())


def test_the_poster_sends_in_the_background_and_reports_failures_later_without_the_url():
    sent: list[bytes] = []
    gate = threading.Event()

    def post(url: str, body: bytes, timeout: float) -> None:
        gate.wait(5)
        if body == b"bad\n":
            raise OSError(f"refused by {url}")
        sent.append(body)

    poster = AnchorPoster("https://anchors.example/t0ken-secret", post=post)
    poster(b"one\n")  # returns at once although the endpoint has not answered
    assert sent == []
    gate.set()
    poster.join(5)
    assert sent == [b"one\n"]
    poster(b"bad\n")
    poster.join(5)
    with pytest.raises(AnchorPostFailed) as info:
        poster(b"two\n")
    assert "t0ken-secret" not in str(info.value) and "refused by the anchor URL" in str(info.value)
    poster.join(5)
    assert sent == [b"one\n", b"two\n"] and "secret" not in repr(poster)
