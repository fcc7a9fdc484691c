"""Fetching on-call feeds on a schedule, keeping the last good copy (I/O).

A fetch reads the feed (an http(s) URL or a file), with a time limit and a
size limit, and checks that it parses as iCalendar before it replaces the
local copy (see `config.feedcache`): a feed that is down, slow, or returns
an error page never replaces a good copy. Every attempt, good or not, is
written to the status file, which the engine's reload watches; the loader
decides from it whether the copy is fresh enough to use.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from coverage_engine.changes.files import commit, prepare
from coverage_engine.config import CoverageConfig
from coverage_engine.config.feedcache import FeedStatus, cache_paths, feeds_dir, uncovered
from coverage_engine.config.model import OnCallFeed
from coverage_engine.schedule.feed import FeedError, parse_feed, roster_of

log = structlog.get_logger("coverage_engine.feeds")

# A year of call shifts for a large group is a few hundred KB.
MAX_FEED_BYTES = 5 * 1024 * 1024
TIMEOUT_SECONDS = 10.0


class FetchError(Exception):
    """The feed could not be read; the message says why, for the status file and `check`."""


@dataclass(frozen=True, slots=True)
class Refreshed:
    """One attempt: whether the copy was replaced, how many shifts, or the error."""

    practice: str
    ok: bool
    shifts: int = 0
    problems: int = 0
    error: str | None = None
    uncovered_seconds: float = 0.0  # the next 7 days, by the shifts fetched


async def fetch(feed: OnCallFeed, config_path: Path, timeout: float = TIMEOUT_SECONDS) -> bytes:  # noqa: ASYNC109 - the limit is the caller's to set
    """The feed's bytes; raises FetchError (down, slow, too large, not found, HTTP error)."""
    if feed.path is not None:
        path = Path(feed.path)
        return await asyncio.to_thread(
            _read_file, path if path.is_absolute() else config_path.parent / path
        )
    url = str(feed.url)
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(url, allow_redirects=True, max_redirects=3) as response,
        ):
            if response.status != 200:
                raise FetchError(f"HTTP {response.status} from the feed's address")
            body = await response.content.read(MAX_FEED_BYTES + 1)
    except TimeoutError:
        raise FetchError(f"no answer within {timeout:g} s") from None
    except aiohttp.ClientError as exc:
        raise FetchError(f"cannot reach the feed ({type(exc).__name__}: {exc})"[:200]) from None
    if len(body) > MAX_FEED_BYTES:
        raise FetchError(f"the feed is larger than {MAX_FEED_BYTES // 1048576} MB")
    return body


def _read_file(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise FetchError(f"cannot read {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise FetchError(f"{path} is not a regular file")
        body = handle.read(MAX_FEED_BYTES + 1)
    if len(body) > MAX_FEED_BYTES:
        raise FetchError(f"{path} is larger than {MAX_FEED_BYTES // 1048576} MB")
    return body


async def refresh(
    config_path: Path,
    config: CoverageConfig,
    key: str,
    now: datetime,
    timeout: float = TIMEOUT_SECONDS,  # noqa: ASYNC109
) -> Refreshed:
    """Fetch one practice's feed; replace the local copy only with one that parses."""
    practice = config.practice(key)
    roster = practice.oncall if practice is not None else None
    if practice is None or roster is None or roster.feed is None:
        return Refreshed(key, ok=False, error="the practice has no on-call feed")
    ics, status_file = cache_paths(config_path, config, key)
    previous = FeedStatus.read(status_file)
    doctors = {i: (d.name, d.aliases, d.email) for i, d in roster.doctors.items()}
    try:
        body = await fetch(roster.feed, config_path, timeout)
        text = body.decode("utf-8-sig")
        parsed = parse_feed(text, roster_of(doctors), practice.zone, now)
    except (FetchError, FeedError, UnicodeDecodeError) as exc:
        error = str(exc) if not isinstance(exc, UnicodeDecodeError) else "the feed is not UTF-8"
        _write_status(config_path, status_file, previous.fetched_at, now, error)
        log.warning(
            "feed.failed",
            practice=key,
            source=roster.feed.source,
            error=error,
            kept=previous.fetched_at.isoformat() if previous.fetched_at else None,
        )
        return Refreshed(key, ok=False, error=error)
    feeds_dir(config_path, config).mkdir(mode=0o750, parents=True, exist_ok=True)
    commit(prepare(ics, text, like=config_path))
    _write_status(config_path, status_file, now, now, None)
    week = uncovered(parsed.shifts, now, now + timedelta(days=7))
    seconds = sum((b - a).total_seconds() for a, b in week)
    log.info(
        "feed.fetched",
        practice=key,
        shifts=len(parsed.shifts),
        problems=len(parsed.problems),
        uncovered_hours_next_week=round(seconds / 3600, 1),
    )
    return Refreshed(key, True, len(parsed.shifts), len(parsed.problems), None, seconds)


def _write_status(
    config_path: Path, path: Path, fetched: datetime | None, attempt: datetime, error: str | None
) -> None:
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    data = {
        "fetched_at": fetched.isoformat() if fetched else None,
        "last_attempt_at": attempt.isoformat(),
        "last_error": error,
    }
    commit(prepare(path, json.dumps(data, indent=1) + "\n", like=config_path))


def due(config: CoverageConfig, config_path: Path, now: datetime) -> list[str]:
    """The practices whose feed has not been tried for `refresh_minutes`."""
    found = []
    for key, practice in config.practices.items():
        feed = practice.oncall.feed if practice.oncall is not None else None
        if feed is None:
            continue
        last = FeedStatus.read(cache_paths(config_path, config, key)[1]).last_attempt_at
        if last is None or now - last >= timedelta(minutes=feed.refresh_minutes):
            found.append(key)
    return found


async def run_refresher(
    config_path: Path,
    current: Callable[[], CoverageConfig],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_result: Callable[[Refreshed], None] | None = None,
    poll_seconds: float = 20.0,
) -> None:
    """Refresh each practice's feed when due, until cancelled (a task of the engine)."""
    while True:
        config = current()
        for key in due(config, config_path, now()):
            try:
                result = await refresh(config_path, config, key, now())
            except OSError as exc:  # the folder is not writable: say so, keep routing
                log.error("feed.unwritable", practice=key, error=str(exc))
                result = Refreshed(key, ok=False, error=str(exc))
            if on_result is not None:
                on_result(result)
        await asyncio.sleep(poll_seconds)


class FeedGauges:
    """The feed metrics, on the engine's registry: up, fetch failures, uncovered hours ahead."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.up = Gauge(
            "coverage_oncall_feed_up",
            "1 when the last fetch of the practice's on-call feed succeeded, else 0",
            ["practice"],
            registry=registry,
        )
        self.failures = Counter(
            "coverage_oncall_feed_fetch_failures",
            "fetches of the on-call feed that failed (the last good copy is kept)",
            ["practice"],
            registry=registry,
        )
        self.uncovered = Gauge(
            "coverage_oncall_feed_uncovered_seconds",
            "seconds of the next 7 days the on-call feed names nobody (the rotation answers)",
            ["practice"],
            registry=registry,
        )
        self.fetched = Gauge(
            "coverage_oncall_feed_last_success_timestamp_seconds",
            "when the on-call feed was last fetched successfully (Unix time)",
            ["practice"],
            registry=registry,
        )

    def update(self, result: Refreshed) -> None:
        self.up.labels(result.practice).set(1 if result.ok else 0)
        if result.ok:
            self.uncovered.labels(result.practice).set(result.uncovered_seconds)
            self.fetched.labels(result.practice).set_to_current_time()
        else:
            self.failures.labels(result.practice).inc()
