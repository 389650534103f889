"""Where alpaca-py meets tradebot: SDK hardening, error conversion, bounded read retries.

alpaca-py 0.44 (`alpaca/common/rest.py`) retries 429 and 504 three times with a fixed 3 s wait on
every call, order POSTs included, and gives `requests` no timeout, and its constructors expose
neither. `harden` therefore sets three private attributes of `RESTClient` on each client:
`_retry = 0` and `_retry_codes = []` (one HTTP attempt per call), and `_session`, replaced by a
`requests.Session` that puts a timeout on every request. `check_sdk` fails loudly if a new SDK
renames them. Reads are retried here (tenacity: exponential backoff with jitter, bounded); order
POSTs never are. Each retry is told to the reader's listeners (a WARN line in production.log and
a metrics counter, wired in bot/wiring.py). Error messages carry the broker's words and never a key.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from bot.core.errors import ConfigError, RetryLater, SkipAndRecord

T = TypeVar("T")
SDK_ATTRIBUTES = ("_retry", "_retry_codes", "_session")
_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


class BrokerAuthError(ConfigError):
    """The broker refused the API keys: nothing can be traded until they are fixed."""


class BrokerRefused(SkipAndRecord):
    """The broker answered with an error about this request (4xx other than 401/429)."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _TimeoutSession(requests.Session):
    """A Session whose every request has a timeout unless the caller gives one."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


def check_sdk(client: object) -> None:
    """Raise if the SDK no longer has the private attributes `harden` relies on."""
    missing = [a for a in SDK_ATTRIBUTES if not hasattr(client, a)]
    if missing:
        raise RuntimeError(
            f"alpaca-py {type(client).__name__} has no {', '.join(missing)}: this SDK version "
            "changed its retry/session internals; tradebot pins alpaca-py==0.44.* for this reason")


def harden(client: T, timeout: float) -> T:
    """One HTTP attempt per call (no SDK retry) and a timeout on every request."""
    check_sdk(client)
    client._retry = 0  # type: ignore[attr-defined]
    client._retry_codes = []  # type: ignore[attr-defined]
    client._session = _TimeoutSession(timeout)  # type: ignore[attr-defined]
    return client


def broker_words(exc: BaseException) -> tuple[int | None, str]:
    """(HTTP status, the broker's message) of an alpaca-py APIError; an HTML page is summarised.
    Branches on `status_code`: `APIError.code` raises on a non-JSON body."""
    status = getattr(exc, "status_code", None)
    raw = str(getattr(exc, "_error", None) or exc)
    try:
        body = json.loads(raw)
        message = str(body.get("message") or body) if isinstance(body, dict) else str(body)
    except ValueError:
        text = _SPACE.sub(" ", _TAGS.sub(" ", raw)).strip()
        message = (f"non-JSON error page: {text[:120]}" if "<" in raw else text[:200]) or "empty body"
    return status, message


def convert(exc: BaseException, what: str) -> Exception:
    """An SDK or HTTP failure as one of ours: RetryLater, BrokerAuthError or BrokerRefused."""
    from alpaca.common.exceptions import APIError

    if isinstance(exc, requests.Timeout):
        return RetryLater(f"{what}: no answer within the timeout ({type(exc).__name__})")
    if isinstance(exc, requests.ConnectionError):
        return RetryLater(f"{what}: connection failed ({type(exc).__name__})")
    if isinstance(exc, APIError):
        status, message = broker_words(exc)
        if status == 401:
            return BrokerAuthError(f"Alpaca refused the API keys (401 {message}): check "
                                   "BOT_ALPACA_API_KEY and BOT_ALPACA_SECRET_KEY (paper keys)")
        if status == 429 or (status is not None and status >= 500):
            return RetryLater(f"{what}: HTTP {status} {message}")
        return BrokerRefused(status, message)
    if isinstance(exc, requests.RequestException):
        return RetryLater(f"{what}: {type(exc).__name__}")
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


@dataclass(frozen=True, slots=True)
class ReadRetry:
    """A read that failed with a transient error (timeout, connection, 429, 5xx) and is tried
    again: `operation` ("get account"...), the failure in the broker's words, the attempt that
    failed, how many attempts there are in all, and the wait before the next one."""

    operation: str
    error: str
    attempt: int
    attempts: int
    wait: float

    def describe(self) -> str:
        return (f"broker read retried: {self.error} (attempt {self.attempt} of {self.attempts}); "
                f"next attempt in {self.wait:.2f}s")


class _Asked(stop_base):
    """A tenacity stop condition: stop retrying once `asked()` is true (run asked to stop)."""

    def __init__(self, asked: Callable[[], bool]) -> None:
        self.asked = asked

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.asked()


class Reader:
    """Runs read calls with bounded retries of transient failures; converts every failure.
    `listeners` hear each retry (`ReadRetry`) before its wait; one that fails is ignored.
    `give_up()` true (`run` asked to stop while it starts): the wait before a retry ends within
    0.2 s and no further attempt is made; the last failure is raised."""

    def __init__(self, retries: int = 3, sleep: Callable[[float], None] | None = None,
                 max_wait: float = 8.0, give_up: Callable[[], bool] | None = None) -> None:
        self.retries = retries
        self._sleep = sleep
        self._max_wait = max_wait
        self._give_up = give_up
        self.listeners: list[Callable[[ReadRetry], object]] = []

    def _gave_up(self) -> bool:
        return self._give_up is not None and self._give_up()

    def _nap(self, seconds: float) -> None:
        """The wait before a retry, in slices of 0.2 s that end once `give_up()` is true."""
        sleep = self._sleep or time.sleep
        end = time.monotonic() + seconds
        while not self._gave_up() and (left := end - time.monotonic()) > 0:
            sleep(min(left, 0.2))

    def __call__(self, what: str, call: Callable[[], T]) -> T:
        kwargs: dict[str, Any] = {}
        if self._give_up is not None:
            kwargs["sleep"] = self._nap
        elif self._sleep is not None:
            kwargs["sleep"] = self._sleep

        def tell(state: Any) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            retry = ReadRetry(what, str(exc), state.attempt_number, self.retries + 1,
                              state.next_action.sleep if state.next_action else 0.0)
            for listener in self.listeners:
                try:
                    listener(retry)
                except Exception:  # noqa: BLE001 - telling of a retry never fails the read
                    pass

        stop = stop_any(stop_after_attempt(self.retries + 1), _Asked(self._gave_up))
        last: RetryLater | None = None
        for attempt in Retrying(stop=stop,
                                wait=wait_exponential_jitter(multiplier=0.5, max=self._max_wait),
                                retry=retry_if_exception_type(RetryLater), reraise=True,
                                before_sleep=tell, **kwargs):
            with attempt:
                if last is not None and self._gave_up():
                    raise last  # asked to stop during the wait: no further request
                try:
                    return once(what, call)
                except RetryLater as exc:
                    last = exc
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


def once(what: str, call: Callable[[], T]) -> T:
    """One call, its failure converted (no retry: for order POSTs and cancels)."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - converted at the edge, re-raised
        converted = convert(exc, what)
        if converted is exc:
            raise
        raise converted from exc
