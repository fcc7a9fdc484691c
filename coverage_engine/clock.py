"""The engine's clock, injected: which instant it is for routing decisions.

Routing depends on the instant (office hours, holidays, on-call rotations), so
tests and the demo must be able to place calls "at 3 a.m. on Christmas" at any
hour of the real day. That is `StartedClock`: it starts at a chosen instant
and runs at real speed from there.

A practice whose engine believed it was another day would send patients to the
wrong person, so choosing the start instant is guarded twice: the caller must
pass it explicitly (a command-line flag) AND the environment must say
`COVERAGE_ENGINE_ALLOW_CLOCK_OVERRIDE=1`. Either alone is refused with a
message, and when enabled it is logged loudly as a warning.

Pure apart from reading the system time; all instants are timezone-aware.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

log = structlog.get_logger("coverage_engine.clock")

ALLOW_OVERRIDE_ENV = "COVERAGE_ENGINE_ALLOW_CLOCK_OVERRIDE"


class Clock(Protocol):
    """Tells the current instant (timezone-aware)."""

    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class SystemClock:
    """The real time: what production uses."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class StartedClock:
    """A clock that starts at `start` and runs at real speed from there (tests and the demo)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the start instant needs a time zone")
        self._start = start
        # Monotonic, so a system clock step (NTP) cannot make it jump.
        self._t0 = time.monotonic()

    @property
    def start(self) -> datetime:
        return self._start

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._t0)

    def __repr__(self) -> str:
        return f"StartedClock(start={self._start.isoformat()})"


class FrozenClock:
    """A clock that stands still until told to move (unit tests)."""

    def __init__(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("the instant needs a time zone")
        self._now = instant

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("the instant needs a time zone")
        self._now = instant


class ClockOverrideRefused(Exception):
    """Starting the clock at another instant was asked for without both safeguards."""


def parse_instant(text: str) -> datetime:
    """Parse `2026-12-25T03:00-06:00` or `2026-12-25T03:00 America/Chicago` (zone required)."""
    stamp, _, zone = text.strip().partition(" ")
    try:
        instant = datetime.fromisoformat(stamp)
    except ValueError as exc:
        raise ValueError(
            f"not a date and time: {text!r} (use e.g. 2026-12-25T03:00-06:00)"
        ) from exc
    if zone:
        if instant.tzinfo is not None:
            raise ValueError(f"give a UTC offset or a time zone name, not both: {text!r}")
        try:
            return instant.replace(tzinfo=ZoneInfo(zone.strip()))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {zone.strip()!r} in {text!r}") from exc
    if instant.tzinfo is None:
        raise ValueError(
            f"{text!r} has no time zone: add an offset (2026-12-25T03:00-06:00) "
            "or a zone name (2026-12-25T03:00 America/Chicago)"
        )
    return instant


def clock_from_options(start: str | datetime | None, environ: Mapping[str, str]) -> Clock:
    """The system clock, or a clock started at `start` when both safeguards allow it.

    `start` comes from an explicit option (e.g. `--clock-start`); `environ`
    is passed in (normally `os.environ`) so tests cannot leak it by accident.
    """
    if start is None:
        return SystemClock()
    if environ.get(ALLOW_OVERRIDE_ENV) != "1":
        raise ClockOverrideRefused(
            "refusing to start the clock at another instant: this is for tests and the demo "
            f"only. If that is what you want, also set {ALLOW_OVERRIDE_ENV}=1 in the "
            "environment; in production remove the clock option."
        )
    instant = start if isinstance(start, datetime) else parse_instant(start)
    if instant.tzinfo is None:
        raise ValueError("the start instant needs a time zone")
    clock = StartedClock(instant)
    log.warning(
        "clock.override",
        message=(
            "!!! CLOCK OVERRIDDEN: routing uses a clock started at "
            f"{instant.isoformat()}, not the real time. Never do this in production. !!!"
        ),
        start=instant.isoformat(),
        real_now=datetime.now(UTC).isoformat(),
    )
    return clock
