"""The operators' console and its JSON API, served by the engine (or on its own).

`start_console` wires the parts (record file, live board, configuration,
clock, presence) and serves them; everything behind it is in `app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from coverage_engine.ami.presence import Presence
from coverage_engine.changes import ChangeService
from coverage_engine.config.model import CoverageConfig
from coverage_engine.records.location import RecordsLocation
from coverage_engine.web.app import Console, ConsoleUnavailable, build_app, serve_console
from coverage_engine.web.db import ConsoleDb
from coverage_engine.web.live import LiveSource

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ConsoleThread",
    "ConsoleUnavailable",
    "RunningConsole",
    "start_console",
]


@dataclass
class RunningConsole:
    """A console being served; `close()` stops it."""

    runner: web.AppRunner
    live_task: asyncio.Task[None]
    db: ConsoleDb
    url: str

    async def close(self) -> None:
        self.live_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.live_task
        await self.runner.cleanup()
        await asyncio.to_thread(self.db.close)


async def start_console(
    records: RecordsLocation | Path,
    *,
    config: Callable[[], CoverageConfig],
    now: Callable[[], datetime],
    presence: Callable[[], Presence | None] = lambda: None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    secure_cookies: bool = False,
    config_path: Path | None = None,
) -> RunningConsole:
    """Serve the console for the records (a SQLite file or PostgreSQL) on host:port."""
    db = await asyncio.to_thread(ConsoleDb.open, records)
    live = LiveSource(records, now)
    console = Console(
        db=db,
        live=live,
        config=config,
        now=now,
        presence=presence,
        secure_cookies=secure_cookies,
        # Overrides and swaps on the console: the CLI's change service.
        changes=ChangeService(config_path) if config_path is not None else None,
    )
    task = asyncio.create_task(live.run(), name="console-live-board")
    try:
        runner = await serve_console(build_app(console), host, port)
    except BaseException:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.to_thread(db.close)
        raise
    shown = f"[{host}]" if ":" in host else host
    return RunningConsole(runner, task, db, f"http://{shown}:{port}/")


class ConsoleThread:
    """The console on its own event loop in a thread of the engine's process.

    Why: rendering boards for twenty browsers is real work; on the engine's
    event loop it queued behind (and ahead of) callers' events and lengthened
    the slowest times to ring (p99 40 ms -> 150-320 ms at 10 calls/s in the
    SIPp benchmark, docs/console.md). On its own loop it only shares the
    interpreter. What it reads from the engine is immutable and replaced
    whole (the configuration, the presence snapshot), so no lock is needed.
    """

    def __init__(self, records: RecordsLocation | Path, **options: Any) -> None:
        self._records = records
        self._options = options
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.url = ""
        self._thread = threading.Thread(target=self._run, name="console", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        """Start serving; raises what `start_console` raised (e.g. the port is taken)."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise ConsoleUnavailable("the console did not start in time")
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            console = await start_console(self._records, **self._options)
        except BaseException as exc:  # handed to the starting thread
            self._error = exc
            self._ready.set()
            return
        self.url = console.url
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await console.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the thread (blocking)."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
