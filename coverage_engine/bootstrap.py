"""The one composition root: builds the running engine from its parts.

Production wiring is the default (the aiohttp ARI client, the real config
loader and routing core, the system clock, a logging journey sink); tests and
the demo pass their own parts here instead of patching anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from aiohttp import web

from coverage_engine.ami import Ami, AmiError, AmiSettings, PanoramiskAmi, PresenceTracker
from coverage_engine.ami.gate import PresenceGate
from coverage_engine.ari import Ari, AriError, AriSettings
from coverage_engine.ari.astdb import AstDb, DialplanPort
from coverage_engine.ari.client import AriClient
from coverage_engine.callflow import CallSettings
from coverage_engine.changes.files import loaded_status_path
from coverage_engine.clock import Clock, SystemClock
from coverage_engine.config import CoverageConfig, load_config
from coverage_engine.config.feedcache import watched_files
from coverage_engine.config.overlay import overlay_path
from coverage_engine.engine import Engine
from coverage_engine.engine.liveness import Liveness, LivenessPort
from coverage_engine.feeds import FeedGauges, run_refresher
from coverage_engine.journey.live import LiveJourneys
from coverage_engine.journey.sink import Fanout, JourneySink
from coverage_engine.metrics import Metrics, MetricsServerError, serve_metrics
from coverage_engine.paging.setup import start_paging
from coverage_engine.plan import Plan, Router
from coverage_engine.records.location import (
    RecordsLocation,
    open_connection,
    open_recorder,
    records_location,
)
from coverage_engine.records.postgres import PostgresRecorder
from coverage_engine.records.recorder import JourneyRecorder
from coverage_engine.records.retention import keep_records
from coverage_engine.records.sink import RecorderSink
from coverage_engine.records.sqlite import RecordStore, SqliteRecorder, StoreError
from coverage_engine.reload import ConfigHolder
from coverage_engine.routing import decide
from coverage_engine.safetynet.collect import NotesCollector
from coverage_engine.safetynet.publish import SafetyNetPublisher, SoundCheck
from coverage_engine.unknown_numbers import counted
from coverage_engine.web import ConsoleThread, ConsoleUnavailable

log = structlog.get_logger("coverage_engine.bootstrap")


def router_for(holder: ConfigHolder[CoverageConfig]) -> Router:
    """The routing core, always deciding with the holder's current configuration.

    A reload swaps `holder.current`; the next call is decided with it, while
    calls in progress keep the plan they were given.
    """

    def route(instant: datetime, did: str, caller: str) -> Plan:
        return decide(holder.current, instant, did, caller)

    return route


def presence_gate(current: Callable[[], CoverageConfig], tracker: PresenceTracker) -> PresenceGate:
    """A gate on the tracker's live presence with each practice's waiting-callers limit."""

    def max_waiting(practice_id: str) -> int | None:
        practice = current().practice(practice_id)
        return practice.operators.max_waiting_callers if practice is not None else None

    return PresenceGate(lambda: tracker.presence, max_waiting)


@dataclass
class EngineParts:
    """What `run_engine` needs; every part has a production default."""

    config_path: Path
    ari_settings: AriSettings
    clock: Clock = field(default_factory=SystemClock)
    # The call records the engine writes to (set by run_engine once opened):
    # the safety net's notes are collected into it, with their own keys.
    recorder: JourneyRecorder | None = None
    # Where journey events go. None: the SQLite call records at the config's
    # records.path, opened (and recovered after a crash) before any call.
    sink: JourneySink | None = None
    metrics: Metrics = field(default_factory=Metrics)
    # The journeys of the calls in progress, fed with the records (metrics and
    # anything showing live calls read them here).
    live: LiveJourneys = field(default_factory=LiveJourneys)
    # (host, port) of the Prometheus endpoint; None serves none (tests).
    metrics_address: tuple[str, int] | None = None
    call_settings: CallSettings = field(default_factory=CallSettings)
    # Builds the ARI client; tests may hand in a fake. The default is the aiohttp client.
    ari_factory: Callable[[AriSettings], Ari] | None = None
    # A stat of two files per poll: cheap, and a change made with a command
    # reaches the next call within a second.
    reload_poll_seconds: float = 0.5
    # Operator presence over AMI (None: not configured, operators steps are never skipped).
    ami_settings: AmiSettings | None = None
    # Connects to AMI; tests may hand in a fake. The default is the panoramisk adapter.
    ami_factory: Callable[[AmiSettings], Awaitable[Ami]] | None = None
    # (host, port) of the operators' console; None serves none.
    console_address: tuple[str, int] | None = None
    # Mark the console's cookies Secure (it is reached over HTTPS through a proxy).
    console_secure_cookies: bool = False
    # Builds the voice pages' ARI client (their own application); None with a
    # fake `ari_factory` means no voice pages, with the real client the default.
    page_ari_factory: Callable[[AriSettings], Ari] | None = None
    # Where paging's secrets may come from ($COVERAGE_WEBHOOK_SECRET, $COVERAGE_SMTP_PASSWORD).
    environ: Mapping[str, str] = field(default_factory=dict)


#: Container allocations (net of frees) between two young-generation collections:
#: CPython's default is 700.
GC_YOUNG_THRESHOLD = 10_000


def tune_garbage_collector() -> None:
    """Set the cyclic garbage collector for an engine process (`run`, and the benchmark's).

    Each call allocates thousands of short-lived containers (events decoded
    from JSON, requests, log records), nearly all freed by reference
    counting. With CPython's default, 700 of them start a young collection
    (several per call), every tenth of those an older one, and as often as
    every hundredth a full one over every object the process holds. Raising
    the first threshold keeps the ratios between generations and makes every
    kind of collection 14 times rarer. Measured engine-only: a median 10%
    less CPU per call and the event loop's lag p99 from 59-77 to 19-26 ms,
    at the same peak memory (docs/performance.md).
    """
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def load_holder(parts: EngineParts) -> ConfigHolder[CoverageConfig]:
    """The configuration holder, with the file loaded once (raises if it is invalid)."""
    holder = config_holder(
        parts.config_path,
        poll_interval=parts.reload_poll_seconds,
        on_reload=parts.metrics.config_reloaded,
        status=True,
    )
    holder.load_initial()
    return holder


def config_holder(
    config_path: Path,
    *,
    poll_interval: float = 0.5,
    on_reload: Callable[[bool], None] | None = None,
    status: bool = False,
) -> ConfigHolder[CoverageConfig]:
    """A holder of the configuration at `config_path` as every reader sees it.

    It watches the changes file that `override`/`swap` write and the local
    copies of the on-call feeds, which are part of the configuration. With
    `status` (the engine), each load is reported in the status file that
    tells those commands the engine has their change.
    """

    def companions() -> list[Path]:
        paths = [overlay_path(config_path)]
        with contextlib.suppress(RuntimeError):  # before the first load
            paths += watched_files(config_path, holder.current)
        return paths

    holder: ConfigHolder[CoverageConfig] = ConfigHolder(
        config_path,
        load_config,
        poll_interval=poll_interval,
        on_reload=on_reload,
        companions=companions,
        status_path=(lambda: loaded_status_path(config_path, holder.current)) if status else None,
    )
    return holder


def build_engine(
    ari: Ari,
    holder: ConfigHolder[CoverageConfig],
    parts: EngineParts,
    gate: PresenceGate | None = None,
    on_link: Callable[[bool], None] | None = None,
    may_act: Callable[[], bool] | None = None,
    settled: Callable[[], bool] | None = None,
) -> Engine:
    """The engine wired to ARI, to the (reloadable) current config and to the metrics."""
    metrics = parts.metrics

    def link(up: bool) -> None:
        metrics.set_ari_connected(up)
        if on_link is not None:
            on_link(up)

    engine = Engine(
        ari,
        metrics.timed(counted(router_for(holder), metrics.registry)),
        clock=parts.clock,
        sink=parts.sink,
        settings=parts.call_settings,
        on_link=link,
        on_claim=metrics.claimed,
        may_act=may_act,
        settled=settled,
        operators_check=gate.skip_reason if gate is not None else None,
    )
    metrics.count_calls_in_progress(lambda: engine.calls_in_progress)
    metrics.engine_is(ari.app)
    return engine


def keep_days(config: CoverageConfig) -> int | None:
    """The retention period in days (`records.keep_days`), None to keep every call."""
    return config.records.keep_days if config.records else None


def open_records(
    parts: EngineParts, holder: ConfigHolder[CoverageConfig]
) -> SqliteRecorder | PostgresRecorder:
    """Open the call records (records.path or records.url) before any call (blocking)."""
    location = records_location(holder.current.records, parts.config_path)
    return open_recorder(location, now=parts.clock.now())


def sink_for(
    recorder: JourneyRecorder, metrics: Metrics, live: LiveJourneys | None = None
) -> JourneySink:
    """Where journey events go: the call records, and the live view the metrics count from."""
    live = live if live is not None else LiveJourneys()
    metrics.watch(live)
    return Fanout(RecorderSink(recorder, on_failure=metrics.record_write_failures.inc), live)


async def run_engine(
    parts: EngineParts, holder: ConfigHolder[CoverageConfig], stop: asyncio.Event
) -> None:
    """Open the records, connect to ARI, carry calls, reload the config, until `stop` is set."""
    if parts.sink is None:
        # Before the first call: a file that cannot be opened stops the start
        # with its message, rather than running calls that leave no record.
        recorder = await asyncio.to_thread(open_records, parts, holder)
        retention = asyncio.create_task(
            keep_records(
                records_location(holder.current.records, parts.config_path),
                lambda: keep_days(holder.current),
                parts.clock.now,
            ),
            name="records-retention",
        )
        try:
            sink = sink_for(recorder, parts.metrics, parts.live)
            await run_engine(replace(parts, sink=sink, recorder=recorder), holder, stop)
        finally:
            retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retention
            # Writes everything queued before returning: a clean stop loses nothing.
            await asyncio.to_thread(recorder.close)
        return
    if parts.ari_factory is not None:
        ari = parts.ari_factory(parts.ari_settings)
        await _serve(ari, holder, parts, stop)
        return
    async with AriClient(parts.ari_settings) as client:
        await _serve(client, holder, parts, stop)


async def _serve(
    ari: Ari, holder: ConfigHolder[CoverageConfig], parts: EngineParts, stop: asyncio.Event
) -> None:
    ami = await _connect_ami(parts)
    tracker = PresenceTracker(ami) if ami is not None else None
    gate = presence_gate(lambda: holder.current, tracker) if tracker is not None else None
    astdb = astdb_for(ari, parts)
    publisher = safety_net_publisher(ari, astdb, holder, parts)
    # Engines on one PBX watch each other (engine/liveness.py); a test fake
    # without dialplan globals runs alone, always allowed to act.
    liveness: list[Liveness] = []
    collector = (
        NotesCollector(astdb, parts.recorder)
        if parts.recorder is not None and astdb is not None
        else None
    )

    def link(up: bool) -> None:
        for watch in liveness:
            watch.link(up)
        if publisher is not None and up:
            publisher.nudge()
        if collector is not None and up:
            collector.nudge()

    engine = build_engine(
        ari,
        holder,
        parts,
        gate,
        on_link=link,
        may_act=(lambda: liveness[0].may_act()) if isinstance(ari, LivenessPort) else None,
        settled=(lambda: liveness[0].settled()) if isinstance(ari, LivenessPort) else None,
    )
    if isinstance(ari, LivenessPort):
        liveness.append(Liveness(ari, engine, on_takeover=parts.metrics.took_over))
    metrics_runner = await _start_metrics(parts)
    console = await _start_console(parts, holder, tracker)
    paging = await start_paging(
        records_location(holder.current.records, parts.config_path),
        config=lambda: holder.current,
        now=parts.clock.now,
        ari_settings=parts.ari_settings,
        ari_factory=parts.page_ari_factory,
        production_ari=parts.ari_factory is None,
        registry=parts.metrics.registry,
        environ=parts.environ,
    )
    log.info(
        "engine.started",
        ari=parts.ari_settings.safe_url,
        app=parts.ari_settings.app,
        config=str(parts.config_path),
        practices=sorted(holder.current.practices),
        clock=repr(parts.clock),
    )
    tasks = [
        asyncio.create_task(engine.run(), name="engine"),
        asyncio.create_task(holder.watch(), name="config-watch"),
    ]
    if tracker is not None:
        tasks.append(asyncio.create_task(tracker.run(), name="operator-presence"))
    if any(p.oncall and p.oncall.feed for p in holder.current.practices.values()):
        tasks.append(asyncio.create_task(_feeds(parts, holder), name="oncall-feeds"))
    if publisher is not None:
        tasks.append(asyncio.create_task(publisher.run(), name="safety-net"))
    for watch in liveness:
        tasks.append(asyncio.create_task(watch.run(), name="liveness"))
    if collector is not None:
        tasks.append(asyncio.create_task(collector.run(), name="safety-net-notes"))
    if parts.recorder is not None:
        location = records_location(holder.current.records, parts.config_path)
        may_act = liveness[0].may_act if liveness else (lambda: True)
        sweep = _sweep(ari, location, may_act, parts.clock)
        tasks.append(asyncio.create_task(sweep, name="sweep"))
    tasks.extend(paging.tasks())
    stopper = asyncio.create_task(stop.wait(), name="stop")
    try:
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = None if task is stopper else task.exception()
            if error is not None:
                raise error
    finally:
        in_progress = engine.calls_in_progress
        for task in [*tasks, stopper]:
            task.cancel()
        for task in [*tasks, stopper]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if ami is not None:
            await ami.close()
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        if console is not None:
            await asyncio.to_thread(console.stop)
        await paging.close()
        log.info("engine.stopped", calls_left_connected=in_progress)


async def _feeds(parts: EngineParts, holder: ConfigHolder[CoverageConfig]) -> None:
    """Fetch the on-call feeds when due; each result also feeds the metrics."""
    gauges = FeedGauges(parts.metrics.registry)
    # Real time, not the engine's (possibly started) clock: a feed's
    # freshness is about when it was really fetched.
    await run_refresher(parts.config_path, lambda: holder.current, on_result=gauges.update)


def astdb_for(ari: Ari, parts: EngineParts) -> AstDb | None:
    """This engine's one AstDB port (one mailbox: its batches must not overlap); None for a fake."""
    return AstDb(ari, owner=parts.ari_settings.app) if isinstance(ari, DialplanPort) else None


def safety_net_publisher(
    ari: Ari, astdb: AstDb | None, holder: ConfigHolder[CoverageConfig], parts: EngineParts
) -> SafetyNetPublisher | None:
    """Keeps the dialplan's safety net current in AstDB; None when `ari` cannot (a test fake)."""
    if astdb is None:
        return None
    sounds = SoundCheck(ari.sound_exists) if isinstance(ari, AriClient) else None
    return SafetyNetPublisher(
        astdb,
        lambda: holder.current,
        now=parts.clock.now,
        prompts=sounds.prompts if sounds is not None else None,
    )


#: How often, and from what age, journeys whose caller is gone are closed.
SWEEP_EVERY, SWEEP_OLDER_THAN = 15.0, timedelta(seconds=30)


async def _sweep(
    ari: Ari,
    location: RecordsLocation,
    may_act: Callable[[], bool],
    clock: Clock,
) -> None:
    """Now and then, close the journeys of callers who left while no engine followed them.

    A crashed engine's callers who ended before any engine took them over, a
    conversation an engine only watched after a take-over: their journeys
    are closed with the outcome they had reached.
    """

    def close(present: set[str]) -> list[str]:
        conn = open_connection(location)
        try:
            return RecordStore(conn).close_gone(
                present, now=clock.now(), older_than=SWEEP_OLDER_THAN
            )
        finally:
            conn.close()

    while True:
        await asyncio.sleep(SWEEP_EVERY)
        if not may_act():
            continue
        try:
            channels = await ari.list_channels()
            await asyncio.to_thread(close, {c.id for c in channels})
        except (AriError, StoreError, sqlite3.Error) as exc:
            log.warning("sweep_failed", error=str(exc))
        except Exception:
            # A bug here must not stop the engine: the sweep is housekeeping.
            log.exception("sweep_failed")


async def _start_metrics(parts: EngineParts) -> web.AppRunner | None:
    """Serve the metrics if asked; a failure is logged and never stops the calls."""
    if parts.metrics_address is None:
        return None
    host, port = parts.metrics_address
    try:
        runner = await serve_metrics(parts.metrics, host=host, port=port)
    except MetricsServerError as exc:
        log.error("metrics.unavailable", error=str(exc))
        return None
    log.info("metrics.serving", url=f"http://{host}:{port}/metrics")
    return runner


async def _start_console(
    parts: EngineParts, holder: ConfigHolder[CoverageConfig], tracker: PresenceTracker | None
) -> ConsoleThread | None:
    """Serve the operators' console if asked; a failure is logged and never stops the calls."""
    if parts.console_address is None:
        return None
    host, port = parts.console_address
    console = ConsoleThread(
        records_location(holder.current.records, parts.config_path),
        config=lambda: holder.current,
        now=parts.clock.now,
        presence=(lambda: tracker.presence) if tracker is not None else (lambda: None),
        host=host,
        port=port,
        secure_cookies=parts.console_secure_cookies,
        config_path=parts.config_path,  # overrides and swaps from the console
    )
    try:
        await asyncio.to_thread(console.start)
    except (ConsoleUnavailable, StoreError) as exc:
        log.error("console.unavailable", error=str(exc))
        return None
    log.info("console.serving", url=console.url)
    return console


async def _connect_ami(parts: EngineParts) -> Ami | None:
    """Log in to AMI for operator presence; without it the engine still carries every call."""
    if parts.ami_settings is None:
        log.info("ami.off", message="operator presence off: operators steps are never skipped")
        return None
    try:
        if parts.ami_factory is not None:
            return await parts.ami_factory(parts.ami_settings)
        return await PanoramiskAmi.connect(parts.ami_settings)
    except AmiError as exc:
        # Presence only refines routing: calls must flow even when AMI is wrong.
        log.error(
            "ami.unavailable",
            error=str(exc),
            message="running without operator presence; operators steps are never skipped",
        )
        return None
