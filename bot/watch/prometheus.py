"""Prometheus metrics of a live bot, served over HTTP when `BOT_METRICS_PORT` is set.

`Metrics` is both a cycle observer (bot/core/observers.py) and a trail listener (audit/trail.py).
Counts of orders, fills, rejects and errors come from the records the trail wrote, so they match
the trail files by construction; they start at 0 with each process (Prometheus counters do). Each
`Metrics` has its own registry: nothing is registered globally or created at import time. It
never talks to the broker and never writes to the trail.
"""
from __future__ import annotations

import threading
from datetime import datetime
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from audit.records import (
    ERRORS,
    CycleCompleted,
    KillSwitchEngaged,
    OrderFailed,
    OrderSubmitted,
    Record,
    TradeExecuted,
    UnknownRecord,
)
from bot import tradebot_version
from bot.core.errors import ConfigError
from bot.core.observers import CycleReport

PREFIX = "tradebot_"
FSYNC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
KNOWN_ERRORS = ("order_error", "price_error", "data_error", "model_error", "cycle_error",
                "broker_unavailable")


class Metrics:
    """The bot's metrics in its own `registry`; `serve` exposes them at http://host:port/metrics."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        p = PREFIX
        self.last_cycle = Gauge(p + "last_cycle_timestamp_seconds",
                                "When the last cycle finished (Unix time, bot clock)", registry=r)
        self.last_slot = Gauge(p + "last_cycle_slot_timestamp_seconds",
                               "The scheduled slot of the last cycle (Unix time)", registry=r)
        self.last_duration = Gauge(p + "last_cycle_duration_seconds",
                                   "How long the last cycle took", registry=r)
        self.cycles = Counter(p + "cycles_total", "Cycles run, by outcome", ["outcome"], registry=r)
        self.orders = Counter(p + "orders_total", "Orders submitted (orders.jsonl)", registry=r)
        self.fills = Counter(p + "fills_total", "Fills recorded (trades.jsonl)", registry=r)
        self.rejects = Counter(p + "order_rejects_total",
                               "Orders refused or not sent (order_error)", registry=r)
        self.errors = Counter(p + "errors_total", "errors.jsonl records, by event_type",
                              ["event_type"], registry=r)
        self.nav = Gauge(p + "nav_dollars", "Account NAV at the last completed cycle", registry=r)
        self.cash = Gauge(p + "cash_dollars", "Account cash at the last completed cycle", registry=r)
        self.positions = Gauge(p + "positions", "Positions held at the last completed cycle",
                               registry=r)
        self.kill_switch = Counter(p + "kill_switch_engaged_total",
                                   "Cycles in which the kill switch blocked new orders", registry=r)
        self.write_failures = Counter(p + "audit_write_failures_total",
                                      "Audit trail writes or fsyncs that failed", registry=r)
        self.fsync = Histogram(p + "fsync_seconds", "Duration of each audit trail fsync",
                               buckets=FSYNC_BUCKETS, registry=r)
        self.halted_gauge = Gauge(p + "halted", "1 once trading has stopped in this process",
                                  registry=r)
        self.verify_ok = Gauge(p + "trail_verify_ok", "1 if the last self-verify of the trail "
                               "passed, 0 if it failed (BOT_SELF_VERIFY_INTERVAL; absent until "
                               "the first)", registry=r)
        self.verify_time = Gauge(p + "trail_verify_timestamp_seconds",
                                 "When the last self-verify of the trail ran (Unix time, bot clock)",
                                 registry=r)
        self.verify_problems = Gauge(p + "trail_verify_problems",
                                     "Problems the last self-verify of the trail found", registry=r)
        self.verify_duration = Gauge(p + "trail_verify_duration_seconds",
                                     "How long the last self-verify of the trail took", registry=r)
        self.read_retries = Counter(p + "broker_read_retries_total",
                                    "Broker reads retried after a timeout, 429 or 5xx, by operation",
                                    ["operation"], registry=r)
        self.up = Gauge(p + "up", "1 while the bot process runs", registry=r)
        self.build = Gauge(p + "build_info", "The tradebot version (value is always 1)",
                           ["version"], registry=r)
        self.up.set(1)
        self.build.labels(version=tradebot_version()).set(1)
        for outcome in ("completed", "failed"):
            self.cycles.labels(outcome=outcome)
        for kind in KNOWN_ERRORS:
            self.errors.labels(event_type=kind)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    # --- serving ---------------------------------------------------------------------------
    def serve(self, host: str, port: int) -> None:
        """Serve /metrics on host:port from a daemon thread. Port 0 picks a free port (`port`)."""
        if self._server is not None:
            return
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(f"BOT_METRICS_HOST={host} BOT_METRICS_PORT={port} cannot be used "
                              f"({exc.strerror or exc}): pick a free port, or unset "
                              "BOT_METRICS_PORT to turn metrics off") from None

    @staticmethod
    def check_address(host: str, port: int) -> None:
        """Bind host:port once and let go: a port already taken stops start-up with `serve`'s
        one line before the trail and the account are created (port 0 is always free)."""
        import socket
        try:
            family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
        except OSError as exc:
            raise ConfigError(f"BOT_METRICS_HOST={host} BOT_METRICS_PORT={port} cannot be used "
                              f"({getattr(exc, 'strerror', None) or exc}): pick a free port, or "
                              "unset BOT_METRICS_PORT to turn metrics off") from None

    @property
    def port(self) -> int | None:
        """The port actually listened on (None when not serving)."""
        return self._server.server_port if self._server is not None else None

    def close(self) -> None:
        """Stop serving (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # --- CycleObserver ---------------------------------------------------------------------
    def started(self) -> None:
        """Nothing to do at start-up."""

    def cycle_finished(self, report: CycleReport) -> None:
        self.cycles.labels(outcome="completed" if report.ok else "failed").inc()
        self.last_cycle.set(report.started.timestamp() + report.seconds)
        self.last_slot.set(report.slot.timestamp())
        self.last_duration.set(report.seconds)

    def halted(self, reason: str) -> None:
        self.halted_gauge.set(1)

    def waiting(self, next_slot: datetime) -> None:
        """Nothing to do before the first cycle."""

    def stopped(self, reason: str) -> None:
        """A clean stop is not an alert (`close` follows)."""

    # --- broker reads (bot/adapters/alpaca/edge.Reader, wired in bot/wiring.py) ---------------
    def broker_read_retried(self, operation: str) -> None:
        self.read_retries.labels(operation=operation).inc()

    # --- SelfVerify target (bot/watch/selfcheck.py) ---------------------------------------------
    def trail_verified(self, verdict) -> None:
        self.verify_ok.set(1 if verdict.ok else 0)
        self.verify_time.set(verdict.at.timestamp())
        self.verify_problems.set(len(verdict.problems) if not verdict.ok else 0)
        self.verify_duration.set(verdict.seconds)

    # --- TrailListener ---------------------------------------------------------------------
    def recorded(self, rec: Record | UnknownRecord, timestamp: str) -> None:
        if isinstance(rec, OrderSubmitted):
            self.orders.inc()
        elif isinstance(rec, TradeExecuted):
            self.fills.inc()
        elif isinstance(rec, CycleCompleted):
            self.nav.set(rec.nav)
            self.cash.set(rec.cash)
            self.positions.set(len(rec.positions))
        elif rec.stream == ERRORS:
            self.errors.labels(event_type=rec.event_type).inc()
            if isinstance(rec, OrderFailed):
                self.rejects.inc()
        elif isinstance(rec, KillSwitchEngaged):
            self.kill_switch.inc()

    def synced(self, seconds: float) -> None:
        self.fsync.observe(seconds)

    def write_failed(self, error: str) -> None:
        self.write_failures.inc()
