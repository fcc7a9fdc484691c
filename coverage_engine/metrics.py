"""Prometheus metrics: what the engine counts, and the endpoint that serves them.

All metrics live on one `Metrics` object with its own registry (no global
state: a test makes its own and reads it back). `serve_metrics` serves that
registry on 127.0.0.1 by default, inside the engine's event loop; the
endpoint tells nothing about callers (no numbers, no call ids), only counts.

`MeteredRecorder` wraps the journey recorder so that the metrics about calls
come from the very writes that make the call record: the two cannot disagree.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from coverage_engine.droplog import http_server_logger
from coverage_engine.records.recorder import (
    Ack,
    AddEvent,
    FinishJourney,
    JourneyRecorder,
    RecorderBase,
    StartJourney,
    Write,
)
from coverage_engine.records.vocabulary import EventKind

P = ParamSpec("P")
R = TypeVar("R")

# Seconds to a person: the contract threshold (30 s) is a bucket edge, so the
# service level can be read straight off the histogram.
TIME_TO_PERSON_BUCKETS = (5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0)
# Routing is pure computation: it should take well under a millisecond.
DECISION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class Metrics:
    """Every metric the engine exposes, on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.calls = Counter(
            "coverage_calls",
            "Calls ended, by practice and outcome.",
            ["practice", "outcome"],
            registry=r,
        )
        self.time_to_person = Histogram(
            "coverage_time_to_person_seconds",
            "Seconds from the call entering the engine to a person answering.",
            ["practice"],
            buckets=TIME_TO_PERSON_BUCKETS,
            registry=r,
        )
        self.calls_in_progress = Gauge(
            "coverage_calls_in_progress", "Calls the engine is carrying now.", registry=r
        )
        self.ari_connected = Gauge(
            "coverage_ari_connected", "1 while the ARI event websocket is connected.", registry=r
        )
        self.routing_decision = Histogram(
            "coverage_routing_decision_seconds",
            "Seconds spent deciding who answers a call.",
            buckets=DECISION_BUCKETS,
            registry=r,
        )
        self.config_reloads = Counter(
            "coverage_config_reloads",
            "Configuration reloads, by result (success / failure).",
            ["result"],
            registry=r,
        )
        self.record_write_failures = Counter(
            "coverage_record_write_failures",
            "Call-record writes that failed (the call went on; the record is incomplete).",
            registry=r,
        )

    def count_calls_in_progress(self, count: Callable[[], int]) -> None:
        """Read calls-in-progress from `count` at each scrape (the engine's own tally)."""
        self.calls_in_progress.set_function(lambda: float(count()))

    def timed(self, decide: Callable[P, R]) -> Callable[P, R]:
        """`decide` (the routing core) with each decision's duration observed."""

        def timed_decide(*args: P.args, **kwargs: P.kwargs) -> R:
            start = time.perf_counter()
            try:
                return decide(*args, **kwargs)
            finally:
                self.routing_decision.observe(time.perf_counter() - start)

        return timed_decide

    def set_ari_connected(self, connected: bool) -> None:
        """Record whether the ARI websocket is up."""
        self.ari_connected.set(1 if connected else 0)

    def config_reloaded(self, ok: bool) -> None:
        """Count one configuration reload."""
        self.config_reloads.labels(result="success" if ok else "failure").inc()

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return generate_latest(self.registry)


@dataclass
class _Live:
    started_at: datetime | None  # None: picked up after a restart, the start is not ours
    practice: str = ""
    answered_at: datetime | None = None


class MeteredRecorder(RecorderBase):
    """A `JourneyRecorder` that counts ended calls and times to a person, passing writes on."""

    def __init__(self, inner: JourneyRecorder, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self._live: dict[str, _Live] = {}

    def _submit(self, write: Write | None) -> Ack:
        if write is None:
            return self._inner.flush()
        if isinstance(write, StartJourney):
            self._live[write.call_id] = _Live(write.at)
            return self._inner.start(
                write.call_id,
                at=write.at,
                did=write.did,
                caller_number=write.caller_number,
                caller_name=write.caller_name,
            )
        if isinstance(write, AddEvent):
            self._observe(write.call_id, write.event.kind, write.event.at, write.event.details)
            return self._inner.event(
                write.call_id, write.event.kind, at=write.event.at, details=write.event.details
            )
        self._finished(write)
        return self._inner.finish(
            write.call_id,
            at=write.at,
            outcome=write.outcome,
            answered_by=write.answered_by,
            time_to_person=write.time_to_person,
            talk_time=write.talk_time,
            details=write.details,
        )

    def _observe(
        self, call_id: str, kind: EventKind, at: datetime, details: Mapping[str, Any]
    ) -> None:
        live = self._live.get(call_id)
        if live is None:
            if kind is not EventKind.DECIDED:
                return
            # A call taken on after a restart: count it under its practice, but
            # its time to a person is unknown here (it started in another run).
            live = self._live[call_id] = _Live(started_at=None)
        if kind is EventKind.DECIDED:
            live.practice = str(details.get("practice") or "")
        elif kind in (EventKind.BRIDGED, EventKind.OPERATOR_ANSWERED) and live.answered_at is None:
            live.answered_at = at

    def _finished(self, write: FinishJourney) -> None:
        live = self._live.pop(write.call_id, None)
        practice = live.practice if live else ""
        self._metrics.calls.labels(practice=practice, outcome=write.outcome.value).inc()
        ttp: timedelta | None = write.time_to_person
        if ttp is None and live is not None and live.answered_at and live.started_at:
            ttp = live.answered_at - live.started_at
        if write.outcome.answered and ttp is not None:
            self._metrics.time_to_person.labels(practice=practice).observe(ttp.total_seconds())


async def serve_metrics(
    metrics: Metrics, *, host: str = "127.0.0.1", port: int = 9464
) -> web.AppRunner:
    """Serve `/metrics` on host:port in the running loop; `await runner.cleanup()` stops it.

    Port 0 picks a free port (see `runner.addresses`).
    """

    async def handle(_request: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/metrics", handle)
    # A malformed request (a scanner, TLS spoken to plain HTTP) is one short,
    # rate-limited log line, not a traceback each.
    runner = web.AppRunner(
        app, access_log=None, logger=http_server_logger("coverage_engine.metrics.http")
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise MetricsServerError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc} "
            "(another program uses that port? set metrics.port in the config)"
        ) from exc
    return runner


class MetricsServerError(Exception):
    """The metrics endpoint could not be started; the message says what to change."""
