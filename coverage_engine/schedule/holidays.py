"""Which holidays fall on a given local date.

Rules are evaluated for the year before and after too, because the observed
rule moves a holiday across a year boundary: New Year's Day 2028 is a
Saturday, so it is also observed on Friday 2027-12-31.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

import holidays as holidays_lib
from dateutil.easter import easter
from dateutil.relativedelta import relativedelta, weekday

from coverage_engine.config.model import WEEKDAYS, HolidayRule, Holidays

_SATURDAY, _SUNDAY = 5, 6


@dataclass(frozen=True, slots=True)
class HolidayHit:
    """A holiday on a date: all day, or only from/until a time (minutes)."""

    name: str
    closes_at: int | None = None
    opens_at: int | None = None

    @property
    def all_day(self) -> bool:
        """True when the practice is closed the whole day."""
        return self.closes_at is None and self.opens_at is None


def rule_date(rule: HolidayRule, year: int) -> date | None:
    """The date a rule falls on in `year`, or None when it has none that year."""
    found: date | None
    if rule.fixed is not None:
        month, day = rule.fixed
        try:
            found = date(year, month, day)
        except ValueError:  # 02-29 outside a leap year
            return None
    elif rule.date is not None:
        found = rule.date if rule.date.year == year else None
    elif rule.easter is not None:
        found = easter(year) + timedelta(days=rule.easter)
    elif rule.nth is not None and rule.weekday is not None and rule.month is not None:
        wd = weekday(WEEKDAYS.index(rule.weekday))(rule.nth)
        first = date(year, rule.month, 1)
        # relativedelta: day=31 clamps to the month's last day, then the
        # weekday(-n) steps back to the nth-last such weekday.
        found = (
            first + relativedelta(weekday=wd)
            if rule.nth > 0
            else first + relativedelta(day=31, weekday=wd)
        )
        if found.month != rule.month:  # no 5th Monday this month
            return None
    else:  # the model admits no other shape
        return None
    if found is None:
        return None
    return found + timedelta(days=rule.offset_days)


def observed_date(actual: date) -> date:
    """The US rule: a Saturday holiday is observed Friday, a Sunday one Monday."""
    if actual.weekday() == _SATURDAY:
        return actual - timedelta(days=1)
    if actual.weekday() == _SUNDAY:
        return actual + timedelta(days=1)
    return actual


@cache
def _national(country: str, subdivision: str | None, year: int) -> dict[date, str]:
    # The holidays package computes locally (no network); the result is cached
    # per year because decide() may run for every call and every calendar slot.
    calendar = holidays_lib.country_holidays(country, subdiv=subdivision, years=year)
    return dict(calendar.items())


def holidays_on(config: Holidays, day: date) -> tuple[HolidayHit, ...]:
    """Every holiday that falls on `day` (local date), in file order, national last."""
    hits: list[HolidayHit] = []
    for rule in config.days:
        observe = config.observed if rule.observed is None else rule.observed
        for year in (day.year - 1, day.year, day.year + 1):
            actual = rule_date(rule, year)
            if actual is None:
                continue
            if actual == day:
                hits.append(HolidayHit(rule.name, rule.closes_at, rule.opens_at))
            elif (
                observe
                and rule.fixed is not None
                and not rule.partial
                and observed_date(actual) == day
            ):
                # Only all-day fixed-date holidays move; the actual day stays
                # closed too (a practice open on Saturdays closes on July 4).
                hits.append(HolidayHit(f"{rule.name} (observed)"))
    if config.national is not None:
        name = _national(config.national.country, config.national.subdivision, day.year).get(day)
        if name is not None:
            hits.append(HolidayHit(name))
    return tuple(hits)
