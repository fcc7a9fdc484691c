"""Prometheus metrics: what the engine counts, and the endpoint that serves them.

All metrics live on one `Metrics` object with its own registry (no global
state: a test makes its own and reads it back). `serve_metrics` serves that
registry on 127.0.0.1 by default, inside the engine's event loop; the
endpoint tells nothing about callers (no numbers, no call ids), only counts.

The metrics about calls come from the journeys themselves: `Metrics.watch`
follows the live journeys (`journey.live.LiveJourneys`), so the practice, the
outcome and the time to a person counted are those of the same fold that
makes the call record: the two cannot disagree.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from coverage_engine.droplog import http_server_logger
from coverage_engine.journey import Ended, Journey, Stamped
from coverage_engine.journey.live import LiveJourneys, from_arrival

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
        # Several engines share a PBX: each says which it is, and how many of
        # the callers offered to every engine it won.
        self.engine_info = Gauge(
            "coverage_engine_info",
            "1, labelled with this engine's ARI application.",
            ["app"],
            registry=r,
        )
        self.takeovers = Counter(
            "coverage_takeovers",
            "Calls this engine took over from an engine that stopped beating.",
            registry=r,
        )
        self.claims = Counter(
            "coverage_claims",
            "Callers offered by StasisBroadcast that this engine claimed, by result (won / lost).",
            ["result"],
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

    def engine_is(self, app: str) -> None:
        """Name this engine (its ARI application) in `coverage_engine_info`."""
        self.engine_info.labels(app=app).set(1)

    def took_over(self, dead: str, calls: int) -> None:
        """Count the calls taken over from a dead engine."""
        self.takeovers.inc(calls)

    def claimed(self, won: bool) -> None:
        """Count one claim of a broadcast caller."""
        self.claims.labels(result="won" if won else "lost").inc()

    def config_reloaded(self, ok: bool) -> None:
        """Count one configuration reload."""
        self.config_reloads.labels(result="success" if ok else "failure").inc()

    def watch(self, live: LiveJourneys) -> None:
        """Count every call that ends among `live`'s journeys."""
        live.subscribe(self._journey_changed)

    def _journey_changed(self, journey: Journey, stamped: Stamped) -> None:
        if not isinstance(stamped.event, Ended) or journey.outcome is None:
            return
        practice = journey.practice
        self.calls.labels(practice=practice, outcome=journey.outcome.value).inc()
        # A call taken on after a restart began in another run: its start is not ours.
        if journey.time_to_person is not None and from_arrival(journey):
            seconds = journey.time_to_person.total_seconds()
            self.time_to_person.labels(practice=practice).observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return generate_latest(self.registry)


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
