"""The operators' console and its JSON API, served by the engine (or on its own).

`start_console` wires the parts (record file, live board, configuration,
clock, presence) and serves them; everything behind it is in `app`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aiohttp import web

from coverage_engine.ami.presence import Presence
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
