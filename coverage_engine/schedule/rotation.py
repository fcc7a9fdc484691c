"""Who is on call at an instant: swaps first, then the rotation (or fixed primary).

The rotation hands off at a local wall-clock time (Monday 08:00). Turns are
counted in calendar days between handoff dates, never in elapsed hours, so a
week that contains a DST change is still one turn and the handoff stays at
08:00 local rather than drifting to 07:00 or 09:00. A handoff scheduled in
the missing or repeated hour happens at the first instant the clock reads
that time or later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from coverage_engine.config.model import (
    WEEKDAYS,
    OnCallRoster,
    Rotation,
    Swap,
    localize,
)
from coverage_engine.schedule.feed import state_of
from coverage_engine.schedule.status import require_aware
from coverage_engine.wallclock import wall_time_instant


@dataclass(frozen=True, slots=True)
class OnCallAssignment:
    """The doctors on call and where that comes from ("rotation", "swap: ...").

    `backup_is_primary` says the backup rule named the primary doctor
    themself (a fixed backup who is on call this week, say): that backup is
    dropped rather than ringing the same phone twice.
    """

    primary: str
    backup: str | None
    source: str
    backup_is_primary: bool = False
    # With an on-call feed: why it does not say who is on call now (stale,
    # never fetched, or no shift then), so the rotation answered. None: it
    # does, or a swap does, or the practice has no feed.
    feed_gap: str | None = None


def turn_start_day(rotation: Rotation, instant: datetime, zone: ZoneInfo) -> date:
    """The local date of the handoff that began the turn containing `instant`.

    The handoff is compared as an instant (see `wall_time_instant`), not by
    wall clock: in the repeated hour a wall-clock comparison would hand the
    turn back to the previous doctor for an hour.
    """
    local = instant.astimezone(zone)
    weekday = WEEKDAYS.index(rotation.handoff.weekday)
    day = local.date() - timedelta(days=(local.weekday() - weekday) % 7)
    if instant < wall_time_instant(day, rotation.handoff.time, zone):
        day -= timedelta(days=7)  # the handoff weekday, before the handoff: last turn
    return day


def rotation_index(rotation: Rotation, instant: datetime, zone: ZoneInfo) -> int:
    """Position in `rotation.doctors` of the doctor whose turn contains `instant`."""
    weeks = (turn_start_day(rotation, instant, zone) - rotation.anchor).days // 7
    return (weeks // rotation.period_weeks) % len(rotation.doctors)


def active_swap(roster: OnCallRoster, zone: ZoneInfo, instant: datetime) -> Swap | None:
    """The first swap (in file order) covering the instant."""
    for swap in roster.swaps:
        if localize(swap.start, zone) <= instant < localize(swap.until, zone):
            return swap
    return None


def _next_in_rotation(rotation: Rotation, primary: str, scheduled_index: int) -> str | None:
    order = rotation.doctors
    index = order.index(primary) if primary in order else scheduled_index
    for step in range(1, len(order) + 1):
        candidate = order[(index + step) % len(order)]
        if candidate != primary:
            return candidate
    return None  # a rotation of one doctor has no backup


def oncall_at(roster: OnCallRoster, zone: ZoneInfo, instant: datetime) -> OnCallAssignment:
    """Primary and backup on call at `instant` for a practice in `zone`."""
    instant = require_aware(instant)
    scheduled_index = 0
    if roster.rotation is not None:
        scheduled_index = rotation_index(roster.rotation, instant, zone)
        primary = roster.rotation.doctors[scheduled_index]
        source = "rotation"
    else:
        primary = roster.primary or next(iter(roster.doctors))  # the model requires primary
        source = "fixed"
    swap = active_swap(roster, zone, instant)
    feed_gap: str | None = None
    if swap is not None:
        primary = swap.doctor
        source = f"swap: {swap.reason}" if swap.reason else "swap"
        if swap.backup is not None:
            return OnCallAssignment(primary, swap.backup, source)
    elif roster.feed is not None:
        state = state_of(roster)
        shift = state.shift_at(instant) if state is not None else None
        if shift is not None:
            primary, source = shift.doctor, f"feed: {shift.summary}"
        elif state is None or not state.usable:
            feed_gap = state.why_not if state is not None else "the on-call feed was never read"
        else:
            feed_gap = "the on-call feed names nobody then"
    rule = roster.backup_rule
    backup: str | None
    if rule == "none":
        backup = None
    elif rule == "next_in_rotation":
        backup = (
            _next_in_rotation(roster.rotation, primary, scheduled_index)
            if roster.rotation is not None
            else None
        )
    else:
        if rule == primary:
            return OnCallAssignment(
                primary, None, source, backup_is_primary=True, feed_gap=feed_gap
            )
        backup = rule
    return OnCallAssignment(primary, backup, source, feed_gap=feed_gap)


@dataclass(frozen=True, slots=True)
class OnCallSpan:
    """Who is on call from `start` until `until` (an unchanged assignment)."""

    start: datetime
    until: datetime
    assignment: OnCallAssignment


def oncall_spans(
    roster: OnCallRoster, zone: ZoneInfo, start: datetime, until: datetime
) -> list[OnCallSpan]:
    """The on-call assignments from `start` until `until`, one span per change.

    Changes happen only at rotation handoffs and at the edges of swaps, so
    those instants are the candidates; consecutive candidates with the same
    primary and backup merge into one span. Used to hand the PBX the on-call
    table for the days ahead, so its safety net is right even after a
    handoff no engine was running for.
    """
    start, until = require_aware(start), require_aware(until)
    if until <= start:
        raise ValueError("a span of on-call time needs until after start")
    candidates: set[datetime] = set()
    if roster.rotation is not None:
        handoff = roster.rotation.handoff
        weekday = WEEKDAYS.index(handoff.weekday)
        day = start.astimezone(zone).date() - timedelta(days=7)
        last = until.astimezone(zone).date() + timedelta(days=7)
        while day <= last:
            if day.weekday() == weekday:
                candidates.add(wall_time_instant(day, handoff.time, zone))
            day += timedelta(days=1)
    for swap in roster.swaps:
        candidates.add(localize(swap.start, zone))
        candidates.add(localize(swap.until, zone))
    state = state_of(roster) if roster.feed is not None else None
    if state is not None:  # the feed's shifts begin and end where the answer changes
        candidates.update(state.boundaries(start, until))
    edges = sorted(c for c in candidates if start < c < until)
    spans: list[OnCallSpan] = []
    for begin, end in zip([start, *edges], [*edges, until], strict=True):
        assignment = oncall_at(roster, zone, begin)
        if spans and _same_people(spans[-1].assignment, assignment):
            spans[-1] = OnCallSpan(spans[-1].start, end, spans[-1].assignment)
        else:
            spans.append(OnCallSpan(begin, end, assignment))
    return spans


def _same_people(a: OnCallAssignment, b: OnCallAssignment) -> bool:
    return (a.primary, a.backup) == (b.primary, b.backup)
