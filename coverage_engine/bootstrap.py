"""The one composition root: builds the running engine from its parts.

Production wiring is the default (the aiohttp ARI client, the real config
loader and routing core, the system clock, a logging journey sink); tests and
the demo pass their own parts here instead of patching anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import structlog

from coverage_engine.ari import Ari, AriSettings
from coverage_engine.callflow import CallSettings
from coverage_engine.clock import Clock, SystemClock
from coverage_engine.config import CoverageConfig, load_config
from coverage_engine.engine import Engine, JourneySink, Router
from coverage_engine.plan import Plan
from coverage_engine.reload import ConfigHolder
from coverage_engine.routing import decide

log = structlog.get_logger("coverage_engine.bootstrap")


def router_for(holder: ConfigHolder[CoverageConfig]) -> Router:
    """The routing core, always deciding with the holder's current configuration.

    A reload swaps `holder.current`; the next call is decided with it, while
    calls in progress keep the plan they were given.
    """

    def route(instant: datetime, did: str, caller: str) -> Plan:
        return decide(holder.current, instant, did, caller)

    return route


@dataclass
class EngineParts:
    """What `run_engine` needs; every part has a production default."""

    config_path: Path
    ari_settings: AriSettings
    clock: Clock = field(default_factory=SystemClock)
    sink: JourneySink | None = None
    call_settings: CallSettings = field(default_factory=CallSettings)
    # Builds the ARI client; tests may hand in a fake. The default is the aiohttp client.
    ari_factory: Callable[[AriSettings], Ari] | None = None
    reload_poll_seconds: float = 2.0


def load_holder(parts: EngineParts) -> ConfigHolder[CoverageConfig]:
    """The configuration holder, with the file loaded once (raises if it is invalid)."""
    holder: ConfigHolder[CoverageConfig] = ConfigHolder(
        parts.config_path, load_config, poll_interval=parts.reload_poll_seconds
    )
    holder.load_initial()
    return holder


def build_engine(ari: Ari, holder: ConfigHolder[CoverageConfig], parts: EngineParts) -> Engine:
    """The engine wired to ARI and to the (reloadable) current config."""
    return Engine(
        ari,
        router_for(holder),
        clock=parts.clock.now,
        sink=parts.sink,
        settings=parts.call_settings,
    )


async def run_engine(
    parts: EngineParts, holder: ConfigHolder[CoverageConfig], stop: asyncio.Event
) -> None:
    """Connect to ARI, carry calls, reload the config, until `stop` is set."""
    if parts.ari_factory is not None:
        ari = parts.ari_factory(parts.ari_settings)
        await _serve(ari, holder, parts, stop)
        return
    from coverage_engine.ari.client import AriClient

    async with AriClient(parts.ari_settings) as client:
        await _serve(client, holder, parts, stop)


async def _serve(
    ari: Ari, holder: ConfigHolder[CoverageConfig], parts: EngineParts, stop: asyncio.Event
) -> None:
    engine = build_engine(ari, holder, parts)
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
        log.info("engine.stopped", calls_left_connected=in_progress)
