"""The service report: per practice and period, what happened to the calls (pure).

Definitions (also in docs/records.md, since contracts are judged by them):

* calls: journeys that *started* in the period (a call over midnight counts once).
* after hours: the routing decision found the practice closed.
* abandonment rate: calls whose caller hung up before reaching a person
  (`abandoned_*` outcomes), over all calls.
* time to a person: from the call entering the engine to the first bridge with
  a person (or an operator taking it). Median and 90th percentile use the
  nearest-rank method: "half / nine in ten of the answered callers reached a
  person within this time". Unanswered calls have no time to a person.
* service level: calls answered by a person within the threshold (30 s by
  default), over *all* calls: an abandoned call counts against it.
* unknown numbers: calls to a number no practice claims (grouped under the
  practice "(unknown)"), whatever their outcome.
* escalations: calls where the primary on-call doctor was dialed and missed
  (declined, busy, no answer, did not press 1) and the backup was then dialed.
* messages: calls on which an operator took a message; urgent ones are those
  whose latest version says emergency or urgent; acknowledged ones were
  acknowledged by the practice.
* pages: messages paged to the doctor on call (a `page_requested`). Time to
  acknowledgement: from the first page request to the acknowledgement
  (nearest-rank median and 90th percentile of the acknowledged pages).
  Reached the backup / the operators: a page went out to that rung of the
  escalation ladder (the doctor on call did not acknowledge in time).
* handoff checks: the engine's calls to doctors coming on call (journeys of
  their own, never counted as calls): confirmed by pressing 1, or not
  confirmed (the operators and the practice were alerted).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from coverage_engine.journey import (
    Journey,
    JourneyKind,
    MessageAcknowledged,
    MessageCorrected,
    MessageTaken,
    OncallDialing,
    OncallMissed,
    Outcome,
    PageRequested,
    PageSent,
)
from coverage_engine.paging.policy import Target

SERVICE_LEVEL_THRESHOLD = timedelta(seconds=30)


class Period(StrEnum):
    """How the report groups calls in time, in the practice's local calendar."""

    DAY = "day"
    WEEK = "week"  # ISO weeks, Monday first
    MONTH = "month"
    ALL = "all"


def period_label(instant: datetime, period: Period, tz: tzinfo) -> str:
    """The name of the period containing `instant` in time zone `tz` (2026-03, 2026-W09)."""
    local = instant.astimezone(tz)
    if period is Period.DAY:
        return local.date().isoformat()
    if period is Period.WEEK:
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if period is Period.MONTH:
        return f"{local.year}-{local.month:02d}"
    return "all"


def percentile(values: Sequence[timedelta], pct: float) -> timedelta | None:
    """Nearest-rank percentile: the smallest value with at least pct% of values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def escalated(journey: Journey) -> bool:
    """Whether the primary on-call doctor was missed and the backup then dialed."""
    primary_missed = False
    dialing: str | None = None
    for stamped in journey.events:
        match stamped.event:
            case OncallDialing(role=role):
                if role == "backup" and primary_missed:
                    return True
                dialing = role
            case OncallMissed() if dialing == "primary":
                primary_missed = True
    return False


@dataclass(frozen=True, slots=True)
class PracticeReport:
    """The figures for one practice over one period."""

    practice: str
    period: str
    calls: int
    after_hours: int
    answered_by_staff: int
    answered_by_operator: int
    answered_by_oncall: int
    abandoned: int
    failed_over: int  # handed to the dialplan fallback: answered there or not, we cannot say
    # Dialed a number no practice claims (sent to the default route), whoever answered.
    unknown_did: int
    errors: int
    in_progress: int
    median_time_to_person: timedelta | None
    p90_time_to_person: timedelta | None
    within_threshold: int
    escalations: int
    messages: int = 0
    urgent_messages: int = 0  # emergency or urgent, as last corrected
    acknowledged_messages: int = 0
    pages: int = 0  # messages paged to the doctor on call
    pages_acknowledged: int = 0
    median_time_to_ack: timedelta | None = None
    p90_time_to_ack: timedelta | None = None
    pages_to_backup: int = 0  # a page went out to the backup doctor
    pages_to_operators: int = 0  # the operators were alerted
    handoff_checks: int = 0
    handoffs_confirmed: int = 0
    handoffs_not_confirmed: int = 0

    @property
    def answered(self) -> int:
        """Calls a person took."""
        return self.answered_by_staff + self.answered_by_operator + self.answered_by_oncall

    @property
    def after_hours_share(self) -> float:
        """Share of calls that came while the practice was closed."""
        return _share(self.after_hours, self.calls)

    @property
    def abandonment_rate(self) -> float:
        """Share of calls whose caller hung up before reaching a person."""
        return _share(self.abandoned, self.calls)

    @property
    def service_level(self) -> float:
        """Share of calls answered by a person within the threshold."""
        return _share(self.within_threshold, self.calls)

    def to_json(self) -> dict[str, Any]:
        """The figures as plain JSON (seconds for durations, fractions for shares)."""
        return {
            "practice": self.practice,
            "period": self.period,
            "calls": self.calls,
            "after_hours": self.after_hours,
            "after_hours_share": self.after_hours_share,
            # Counts by outcome carry the outcome's own name.
            Outcome.ANSWERED_BY_STAFF.value: self.answered_by_staff,
            Outcome.ANSWERED_BY_OPERATOR.value: self.answered_by_operator,
            Outcome.ANSWERED_BY_ONCALL.value: self.answered_by_oncall,
            "abandoned": self.abandoned,
            "abandonment_rate": self.abandonment_rate,
            Outcome.FAILED_OVER_TO_DIALPLAN.value: self.failed_over,
            Outcome.UNKNOWN_DID_ROUTED.value: self.unknown_did,
            "errors": self.errors,
            "in_progress": self.in_progress,
            "median_time_to_person_s": _seconds(self.median_time_to_person),
            "p90_time_to_person_s": _seconds(self.p90_time_to_person),
            "service_level": self.service_level,
            "escalations_primary_to_backup": self.escalations,
            "messages": self.messages,
            "urgent_messages": self.urgent_messages,
            "acknowledged_messages": self.acknowledged_messages,
            "pages": self.pages,
            "pages_acknowledged": self.pages_acknowledged,
            "median_time_to_ack_s": _seconds(self.median_time_to_ack),
            "p90_time_to_ack_s": _seconds(self.p90_time_to_ack),
            "pages_to_backup": self.pages_to_backup,
            "pages_to_operators": self.pages_to_operators,
            "handoff_checks": self.handoff_checks,
            Outcome.HANDOFF_CONFIRMED.value: self.handoffs_confirmed,
            Outcome.HANDOFF_NOT_CONFIRMED.value: self.handoffs_not_confirmed,
        }


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else delta.total_seconds()


def build_report(
    journeys: Iterable[Journey],
    *,
    period: Period,
    tz: tzinfo,
    threshold: timedelta = SERVICE_LEVEL_THRESHOLD,
) -> list[PracticeReport]:
    """One report row per practice and period, sorted by practice then period.

    `journeys` must carry their events (escalations are read from them).
    """
    groups: dict[tuple[str, str], list[Journey]] = defaultdict(list)
    for journey in journeys:
        key = (journey.practice or "(unknown)", period_label(journey.started_at, period, tz))
        groups[key].append(journey)
    return [_row(p, label, groups[(p, label)], threshold) for p, label in sorted(groups)]


def message_urgency(journey: Journey) -> str | None:
    """The urgency of the call's message as last saved, or None when no message was taken."""
    urgency: str | None = None
    for stamped in journey.events:
        match stamped.event:
            case MessageTaken(fields=fields):
                urgency = str(fields.get("urgency", ""))
            case MessageCorrected(fields=fields):
                urgency = str(fields.get("urgency", urgency))
    return urgency


@dataclass(frozen=True, slots=True)
class PageFigures:
    """What happened to one call's page: when it was asked for, acknowledged, how far it went."""

    requested_at: datetime
    acknowledged_at: datetime | None
    targets: frozenset[str]  # the rungs a page went out to: primary, backup, operators

    @property
    def time_to_ack(self) -> timedelta | None:
        if self.acknowledged_at is None:
            return None
        return self.acknowledged_at - self.requested_at


def page_figures(journey: Journey) -> PageFigures | None:
    """The call's page, or None when its message was never paged."""
    requested: datetime | None = None
    acknowledged: datetime | None = None
    targets: set[str] = set()
    for stamped in journey.events:
        match stamped.event:
            case PageRequested() if requested is None:
                requested = stamped.at
            case PageSent(target=target):
                targets.add(target)
            case MessageAcknowledged() if requested is not None and acknowledged is None:
                acknowledged = stamped.at
    if requested is None:
        return None
    return PageFigures(requested, acknowledged, frozenset(targets))


def _acknowledged(journey: Journey) -> bool:
    return any(isinstance(e.event, MessageAcknowledged) for e in journey.events)


def _unknown_did(journey: Journey) -> bool:
    # The decision says so (`known_did: false`); the outcome may name who answered.
    plan = journey.plan or {}
    return journey.outcome is Outcome.UNKNOWN_DID_ROUTED or plan.get("known_did") is False


def _row(
    practice: str, label: str, journeys: list[Journey], threshold: timedelta
) -> PracticeReport:
    calls = [j for j in journeys if j.kind is JourneyKind.CALL]
    checks = [j for j in journeys if j.kind is JourneyKind.HANDOFF_CHECK]

    def count(*outcomes: Outcome) -> int:
        return sum(1 for j in calls if j.outcome in outcomes)

    urgencies = [message_urgency(j) for j in calls]
    paged = [f for f in (page_figures(j) for j in calls) if f is not None]
    acks = [t for t in (f.time_to_ack for f in paged) if t is not None]
    times = [
        j.time_to_person
        for j in calls
        if j.outcome is not None and j.outcome.answered and j.time_to_person is not None
    ]
    return PracticeReport(
        practice=practice,
        period=label,
        calls=len(calls),
        after_hours=sum(1 for j in calls if j.status == "closed"),
        answered_by_staff=count(Outcome.ANSWERED_BY_STAFF),
        answered_by_operator=count(Outcome.ANSWERED_BY_OPERATOR),
        answered_by_oncall=count(Outcome.ANSWERED_BY_ONCALL),
        abandoned=sum(1 for j in calls if j.outcome is not None and j.outcome.abandoned),
        failed_over=count(Outcome.FAILED_OVER_TO_DIALPLAN),
        unknown_did=sum(1 for j in calls if _unknown_did(j)),
        errors=count(Outcome.ENGINE_ERROR),
        in_progress=sum(1 for j in calls if j.outcome is None),
        median_time_to_person=percentile(times, 50),
        p90_time_to_person=percentile(times, 90),
        within_threshold=sum(1 for t in times if t <= threshold),
        escalations=sum(1 for j in calls if escalated(j)),
        messages=sum(1 for u in urgencies if u is not None),
        urgent_messages=sum(1 for u in urgencies if u in ("emergency", "urgent")),
        acknowledged_messages=sum(1 for j in calls if _acknowledged(j)),
        pages=len(paged),
        pages_acknowledged=len(acks),
        median_time_to_ack=percentile(acks, 50),
        p90_time_to_ack=percentile(acks, 90),
        pages_to_backup=sum(1 for f in paged if Target.BACKUP in f.targets),
        pages_to_operators=sum(1 for f in paged if Target.OPERATORS in f.targets),
        handoff_checks=len(checks),
        handoffs_confirmed=sum(1 for j in checks if j.outcome is Outcome.HANDOFF_CONFIRMED),
        handoffs_not_confirmed=sum(
            1 for j in checks if j.outcome is Outcome.HANDOFF_NOT_CONFIRMED
        ),
    )
