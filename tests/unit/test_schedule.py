"""Hours, holidays, overrides and rotation handoffs at exact minute boundaries, DST included."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from coverage_engine.config import CoverageConfig, load_text
from coverage_engine.config.model import HolidayRule
from coverage_engine.plan import Plan
from coverage_engine.routing import decide
from coverage_engine.schedule.holidays import rule_date
from tests.unit.reference import LAKESIDE_DID, MAPLE_DID, REFERENCE_CONFIG, answer, reference_config

CHICAGO = ZoneInfo("America/Chicago")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def at(text: str, zone: ZoneInfo = CHICAGO) -> datetime:
    """A local wall-clock time in `zone` ("2026-11-30 08:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def utc(text: str) -> datetime:
    """An instant written in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def maple(instant: datetime) -> Plan:
    """Maple Grove's plan at `instant`."""
    return decide(reference_config(), instant, MAPLE_DID)


def lakeside(instant: datetime) -> Plan:
    """Lakeside's plan at `instant`."""
    return decide(reference_config(), instant, LAKESIDE_DID)


@pytest.mark.parametrize(
    ("local", "status", "reason"),
    [
        ("2026-11-30 07:59:59", "closed", "outside hours"),
        ("2026-11-30 08:00", "open", "office hours"),
        ("2026-11-30 11:59:59", "open", "office hours"),
        ("2026-11-30 12:00", "closed", "lunch"),
        ("2026-11-30 12:59", "closed", "lunch"),
        ("2026-11-30 13:00", "open", "office hours"),
        ("2026-11-30 17:29:59", "open", "office hours"),
        ("2026-11-30 17:30", "closed", "outside hours"),
        ("2026-12-04 15:59", "open", "office hours"),  # Friday closes at 16:00
        ("2026-12-04 16:00", "closed", "outside hours"),
        ("2026-12-05 08:59", "closed", "outside hours"),  # Saturday 09:00-12:00
        ("2026-12-05 09:00", "open", "office hours"),
        ("2026-12-05 12:00", "closed", "outside hours"),
        ("2026-12-06 10:00", "closed", "outside hours"),  # Sunday
    ],
)
def test_maple_grove_weekly_hours_at_minute_boundaries(
    local: str, status: str, reason: str
) -> None:
    """Ranges are [start, end): open at the first minute, closed at the end minute."""
    plan = maple(at(local))
    assert (plan.status, plan.reason) == (status, reason)


@pytest.mark.parametrize(
    ("local", "reason"),
    [
        ("2026-01-01 10:00", "holiday: New Year's Day"),
        ("2026-04-03 10:00", "holiday: Good Friday"),  # Easter 2026-04-05
        ("2027-03-26 10:00", "holiday: Good Friday"),  # Easter 2027-03-28
        ("2028-04-14 10:00", "holiday: Good Friday"),  # Easter 2028-04-16
        ("2026-05-25 10:00", "holiday: Memorial Day"),  # last Monday of May
        ("2027-05-31 10:00", "holiday: Memorial Day"),
        ("2026-07-03 10:00", "holiday: Independence Day (observed)"),  # July 4 is a Saturday
        ("2026-07-04 10:00", "holiday: Independence Day"),  # the Saturday itself stays closed
        ("2027-07-05 10:00", "holiday: Independence Day (observed)"),  # a Sunday -> Monday
        ("2026-09-07 10:00", "holiday: Labor Day"),  # 1st Monday of September
        ("2027-11-25 10:00", "holiday: Thanksgiving"),  # 4th Thursday of November
        ("2027-11-26 10:00", "holiday: Day after Thanksgiving"),
        ("2027-12-24 10:00", "holiday: Christmas Day (observed)"),  # beats the half day
        ("2027-12-31 10:00", "holiday: New Year's Day (observed)"),  # 2028-01-01 is Saturday
        ("2026-12-24 12:00", "holiday: Christmas Eve (closed from 12:00)"),
        ("2026-12-24 13:30", "holiday: Christmas Eve (closed from 12:00)"),
    ],
)
def test_maple_grove_holidays(local: str, reason: str) -> None:
    """Each rule kind closes the right day; fixed dates follow the observed rule."""
    plan = maple(at(local))
    assert (plan.status, plan.reason) == ("closed", reason)


@pytest.mark.parametrize(
    ("instant", "reason"),
    [
        (at("2026-11-25 23:59:59"), "outside hours"),
        (at("2026-11-26 00:00"), "holiday: Thanksgiving"),
        (at("2026-11-27 23:59:59"), "holiday: Day after Thanksgiving"),
        (at("2026-11-28 00:00"), "outside hours"),
        (at("2026-11-28 09:00"), "office hours"),
        # Holidays follow the practice's midnight, not UTC's: 05:59 UTC is
        # still Wednesday evening in Chicago.
        (utc("2026-11-26 05:59"), "outside hours"),
        (utc("2026-11-26 06:00"), "holiday: Thanksgiving"),
    ],
)
def test_holidays_start_and_end_at_local_midnight(instant: datetime, reason: str) -> None:
    """A holiday covers exactly its local calendar day."""
    assert maple(instant).reason == reason


@pytest.mark.parametrize(
    "local",
    ["2026-07-02 10:00", "2027-07-06 10:00", "2026-11-25 10:00", "2027-12-23 10:00"],
)
def test_days_next_to_holidays_are_ordinary(local: str) -> None:
    """The observed rule moves a holiday one day, not more."""
    assert maple(at(local)).status == "open"


def test_christmas_eve_morning_is_open_with_a_note() -> None:
    """Before the partial-day closing time the practice is open and says it closes early."""
    plan = maple(at("2026-12-24 11:59"))
    assert plan.status == "open"
    assert plan.reason == "office hours (Christmas Eve, closes at 12:00)"


@pytest.mark.parametrize(
    ("rule", "year", "expected"),
    [
        ({"name": "x", "nth": 4, "weekday": "thursday", "month": 11}, 2026, date(2026, 11, 26)),
        ({"name": "x", "nth": -1, "weekday": "monday", "month": 5}, 2028, date(2028, 5, 29)),
        ({"name": "x", "nth": 5, "weekday": "monday", "month": 2}, 2026, None),
        ({"name": "x", "nth": 1, "weekday": "monday", "month": 9, "offset_days": 1}, 2026,
         date(2026, 9, 8)),
        ({"name": "x", "easter": 1}, 2026, date(2026, 4, 6)),
        ({"name": "x", "fixed": "02-29"}, 2027, None),
        ({"name": "x", "fixed": "02-29"}, 2028, date(2028, 2, 29)),
        ({"name": "x", "date": "2027-10-08"}, 2027, date(2027, 10, 8)),
        ({"name": "x", "date": "2027-10-08"}, 2026, None),
    ],
)  # fmt: skip
def test_rule_dates(rule: dict[str, object], year: int, expected: date | None) -> None:
    """nth weekday (incl. last and a missing 5th), Easter offsets, leap days, one-offs."""
    assert rule_date(HolidayRule.model_validate(rule), year) == expected


def test_lakeside_follows_the_us_federal_calendar() -> None:
    """Lakeside closes on federal holidays only: MLK Day yes, Good Friday no."""
    assert lakeside(at("2027-01-18 10:00", LOS_ANGELES)).reason == (
        "holiday: Martin Luther King Jr. Day"
    )
    assert lakeside(at("2026-04-03 10:00", LOS_ANGELES)).status == "open"


# --- overrides ------------------------------------------------------------------


def override_config() -> CoverageConfig:
    """The reference file with a closed and an open override for Maple Grove."""
    text = REFERENCE_CONFIG.read_text(encoding="utf-8").replace(
        "    overrides: []\n",
        "    overrides:\n"
        "      - {from: 2026-12-01 10:00, until: 2026-12-01 14:30, reason: snow day}\n"
        "      - {from: 2026-12-06 09:00, until: 2026-12-06 12:00, status: open,"
        " reason: flu shot clinic}\n"
        "      - {from: 2026-12-07T15:00:00Z, until: 2026-12-07T16:00:00Z,"
        " reason: staff meeting}\n",
    )
    return load_text(text, "coverage.yaml")


@pytest.mark.parametrize(
    ("instant", "status", "reason"),
    [
        (at("2026-12-01 09:59"), "open", "office hours"),
        (at("2026-12-01 10:00"), "closed", "override: snow day"),
        (at("2026-12-01 12:30"), "closed", "override: snow day"),  # beats lunch too
        (at("2026-12-01 14:29"), "closed", "override: snow day"),
        (at("2026-12-01 14:30"), "open", "office hours"),  # expired by itself
        (at("2026-12-06 08:59"), "closed", "outside hours"),
        (at("2026-12-06 09:00"), "open", "override: flu shot clinic"),  # a Sunday
        (at("2026-12-06 12:00"), "closed", "outside hours"),
        (utc("2026-12-07 14:59"), "open", "office hours"),
        (utc("2026-12-07 15:00"), "closed", "override: staff meeting"),  # offset given: UTC
        (utc("2026-12-07 16:00"), "open", "office hours"),
    ],
)
def test_overrides_win_and_expire(instant: datetime, status: str, reason: str) -> None:
    """Overrides beat hours and lunch, open a closed day, and end at `until` exactly."""
    config = override_config()
    plan = decide(config, instant, MAPLE_DID)
    assert (plan.status, plan.reason) == (status, reason)
    if status == "open":
        assert plan.steps[0].target == "frontdesk-maple"


# --- rotation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "primary", "backup"),
    [
        (at("2026-11-02 07:59"), "okafor", "patel"),  # the week before the anchor
        (at("2026-11-02 08:00"), "patel", "nguyen"),  # the anchor handoff
        (at("2026-11-09 07:59:59"), "patel", "nguyen"),
        (at("2026-11-09 08:00"), "nguyen", "okafor"),
        (at("2026-11-16 08:00"), "okafor", "patel"),  # after okafor comes patel
        (at("2026-11-23 08:00"), "patel", "nguyen"),
        (at("2026-12-24 11:59"), "nguyen", "okafor"),
        (at("2026-12-24 12:00"), "okafor", "patel"),  # the swap starts
        (at("2026-12-26 07:59"), "okafor", "patel"),
        (at("2026-12-26 08:00"), "nguyen", "okafor"),  # the swap ends
        (at("2026-12-28 08:00"), "okafor", "patel"),
    ],
)
def test_rotation_handoff_and_swap(instant: datetime, primary: str, backup: str) -> None:
    """The rotation hands off Monday 08:00 local; the swap beats it for its period."""
    oncall = maple(instant).oncall
    assert oncall is not None
    assert (oncall.primary, oncall.backup) == (primary, backup)


# --- daylight saving time ------------------------------------------------------------
# 2026: clocks spring forward Sunday March 8 at 02:00 and fall back Sunday
# November 1 at 02:00, in both Chicago and Los Angeles.


@pytest.mark.parametrize(
    ("before", "after", "old", "new"),
    [
        # Monday after spring forward: 08:00 CDT is 13:00 UTC (it was 14:00 a week before).
        (utc("2026-03-09 12:59"), utc("2026-03-09 13:00"), "nguyen", "okafor"),
        # Monday after fall back: 08:00 CST is 14:00 UTC.
        (utc("2026-11-02 13:59"), utc("2026-11-02 14:00"), "okafor", "patel"),
    ],
)
def test_chicago_opening_and_handoff_stay_at_8_local_across_dst(
    before: datetime, after: datetime, old: str, new: str
) -> None:
    """Opening and the Monday handoff happen at 08:00 local, whatever the UTC offset."""
    plan_before, plan_after = maple(before), maple(after)
    assert plan_before.status == "closed"
    assert plan_after.status == "open"
    assert plan_before.oncall is not None
    assert plan_after.oncall is not None
    assert (plan_before.oncall.primary, plan_after.oncall.primary) == (old, new)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (utc("2026-03-09 13:59"), utc("2026-03-09 14:00")),  # 07:00 PDT
        (utc("2026-11-02 14:59"), utc("2026-11-02 15:00")),  # 07:00 PST
    ],
)
def test_lakeside_opens_at_7_local_across_dst(before: datetime, after: datetime) -> None:
    """Lakeside opens at 07:00 local the Monday after each DST change."""
    assert lakeside(before).status == "closed"
    assert lakeside(after).status == "open"


@pytest.mark.parametrize(
    ("zone", "last_before_utc", "did"),
    [
        (CHICAGO, utc("2026-03-08 07:59"), MAPLE_DID),  # 01:59 CST, then 03:00 CDT
        (LOS_ANGELES, utc("2026-03-08 09:59"), LAKESIDE_DID),  # 01:59 PST, then 03:00 PDT
    ],
)
def test_missing_hour_is_skipped_with_a_continuous_plan(
    zone: ZoneInfo, last_before_utc: datetime, did: str
) -> None:
    """Across the spring-forward gap the local clock jumps 01:59 -> 03:00; the plan holds."""
    before = decide(reference_config(), last_before_utc, did)
    after = decide(reference_config(), last_before_utc + timedelta(minutes=1), did)
    assert before.at is not None
    assert after.at is not None
    assert (before.at.hour, after.at.hour) == (1, 3)
    assert answer(before) == answer(after)
    assert after.steps[-1].kind.value == "operators"
    assert before.at.tzinfo == zone


@pytest.mark.parametrize(
    ("first", "second", "did"),
    [
        (utc("2026-11-01 06:30"), utc("2026-11-01 07:30"), MAPLE_DID),  # 01:30 CDT, 01:30 CST
        (utc("2026-11-01 08:30"), utc("2026-11-01 09:30"), LAKESIDE_DID),  # 01:30 PDT, PST
    ],
)
def test_repeated_hour_gets_the_same_answer_both_times(
    first: datetime, second: datetime, did: str
) -> None:
    """01:30 happens twice on fall-back night; both get the same plan."""
    one = decide(reference_config(), first, did)
    two = decide(reference_config(), second, did)
    assert one.at is not None
    assert two.at is not None
    assert (one.at.hour, one.at.minute) == (two.at.hour, two.at.minute) == (1, 30)
    assert one.at.utcoffset() != two.at.utcoffset()
    assert answer(one) == answer(two)


def test_naive_instant_is_refused() -> None:
    """The routing core never guesses a zone for a naive datetime."""
    with pytest.raises(ValueError, match="no time zone"):
        decide(reference_config(), datetime(2026, 11, 30, 10, 0), MAPLE_DID)  # noqa: DTZ001
