"""The injectable clock and the two safeguards around starting it at another instant."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from coverage_engine.clock import (
    ALLOW_OVERRIDE_ENV,
    ClockOverrideRefused,
    FrozenClock,
    StartedClock,
    SystemClock,
    clock_from_options,
    parse_instant,
)

CHRISTMAS_3AM = datetime(2026, 12, 25, 3, 0, tzinfo=ZoneInfo("America/Chicago"))


def test_without_a_start_option_the_system_clock_is_used() -> None:
    """No option means real time, whatever the environment says."""
    clock = clock_from_options(None, {ALLOW_OVERRIDE_ENV: "1"})
    assert isinstance(clock, SystemClock)
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=1)
    assert clock.now().tzinfo is not None


@pytest.mark.parametrize("env", [{}, {ALLOW_OVERRIDE_ENV: "0"}, {ALLOW_OVERRIDE_ENV: "yes"}])
def test_a_start_option_without_the_environment_variable_is_refused(env: dict[str, str]) -> None:
    """The flag alone cannot move production's clock: the environment must also say =1."""
    with pytest.raises(ClockOverrideRefused, match=ALLOW_OVERRIDE_ENV):
        clock_from_options("2026-12-25T03:00 America/Chicago", env)


def test_both_safeguards_start_the_clock_there_and_log_loudly() -> None:
    """Flag + environment give a clock at that instant, with a warning saying so."""
    with capture_logs() as logs:
        clock = clock_from_options("2026-12-25T03:00 America/Chicago", {ALLOW_OVERRIDE_ENV: "1"})
    assert isinstance(clock, StartedClock)
    assert timedelta(0) <= clock.now() - CHRISTMAS_3AM < timedelta(seconds=1)
    (entry,) = [e for e in logs if e["event"] == "clock.override"]
    assert entry["log_level"] == "warning"
    assert "CLOCK OVERRIDDEN" in entry["message"]


def test_a_started_clock_runs_at_real_speed() -> None:
    """Time passes on a started clock as it does on the wall."""
    clock = StartedClock(CHRISTMAS_3AM)
    first = clock.now()
    time.sleep(0.05)
    elapsed = clock.now() - first
    assert timedelta(seconds=0.04) <= elapsed < timedelta(seconds=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-25T03:00 America/Chicago", CHRISTMAS_3AM),
        ("2026-12-25T03:00-06:00", CHRISTMAS_3AM),
        ("2026-12-25T09:00+00:00", CHRISTMAS_3AM),
    ],
)
def test_instants_parse_with_an_offset_or_a_zone_name(text: str, expected: datetime) -> None:
    """Both spellings of a zoned instant name the same moment."""
    assert parse_instant(text) == expected


@pytest.mark.parametrize(
    "text",
    ["2026-12-25T03:00", "Christmas", "2026-12-25T03:00 Mars/Olympus", "2026-12-25T03:00Z UTC"],
)
def test_naive_or_garbled_instants_are_rejected_with_a_message(text: str) -> None:
    """A start instant without a zone (or nonsense) is an error, never a guess."""
    with pytest.raises(ValueError, match=r"\S"):
        parse_instant(text)


def test_a_frozen_clock_moves_only_when_told() -> None:
    """FrozenClock stands still until advanced or set."""
    clock = FrozenClock(CHRISTMAS_3AM)
    assert clock.now() == CHRISTMAS_3AM
    clock.advance(90)
    assert clock.now() == CHRISTMAS_3AM + timedelta(seconds=90)
    with pytest.raises(ValueError, match="time zone"):
        clock.set(datetime(2026, 1, 1))  # noqa: DTZ001 - the naive instant is the point
