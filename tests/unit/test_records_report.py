"""The service report, computed from generated journeys whose answers are known."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from coverage_engine.journey import EventKind, Journey, JourneyKind, Outcome, Stamped, parse_event
from coverage_engine.records.report import Period, build_report, percentile

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # a Monday
NY = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class Spec:
    """One generated call: what matters to the report, nothing else."""

    outcome: Outcome | None
    ttp_s: float | None = None
    closed: bool = False
    practice: str = "maple"
    at: datetime = T0
    escalation: str = ""  # "" none; "backup": primary missed then backup dialed; "primary-only"
    known_did: bool = True


def journey(n: int, spec: Spec) -> Journey:
    events = [Stamped(spec.at, parse_event(EventKind.RECEIVED, {}))]
    if spec.escalation:
        events += [
            Stamped(
                spec.at, parse_event(EventKind.ONCALL_DIALING, {"doctor": "a", "role": "primary"})
            ),
            Stamped(spec.at, parse_event(EventKind.ONCALL_NO_ANSWER, {"doctor": "a"})),
        ]
        if spec.escalation == "backup":
            events.append(
                Stamped(
                    spec.at,
                    parse_event(EventKind.ONCALL_DIALING, {"doctor": "b", "role": "backup"}),
                )
            )
    return Journey(
        call_id=f"c{n}",
        did="+15550100",
        caller_number="+15557654321",
        caller_name="",
        started_at=spec.at,
        practice=spec.practice,
        status="closed" if spec.closed else "open",
        plan={"known_did": spec.known_did},
        outcome=spec.outcome,
        time_to_person=None if spec.ttp_s is None else timedelta(seconds=spec.ttp_s),
        events=tuple(events),
    )


S, OP, C = Outcome.ANSWERED_BY_STAFF, Outcome.ANSWERED_BY_OPERATOR, Outcome.ANSWERED_BY_ONCALL
AQ, AR = Outcome.ABANDONED_IN_QUEUE, Outcome.ABANDONED_WHILE_RINGING

# (case, generated calls, expected figures of the single row)
CASES: list[tuple[str, list[Spec], dict[str, object]]] = [
    (
        "ten calls, one abandoned: 10 % abandonment, median and p90 by nearest rank",
        [Spec(S, t) for t in (2, 4, 6, 8, 10, 12, 14, 16, 40)] + [Spec(AQ)],
        {
            "calls": 10,
            "answered_by_staff": 9,
            "abandoned": 1,
            "abandonment_rate": 0.1,
            "median_time_to_person_s": 10.0,  # 5th of 9
            "p90_time_to_person_s": 40.0,  # 9th of 9 (ceil 8.1)
            "service_level": 0.8,  # 8 within 30 s, over all 10 calls
        },
    ),
    (
        "after hours share and who answered",
        [
            Spec(S, 5),
            Spec(OP, 20, closed=True),
            Spec(OP, 31, closed=True),
            Spec(C, 45, closed=True),
        ],
        {
            "calls": 4,
            "after_hours": 3,
            "after_hours_share": 0.75,
            "answered_by_staff": 1,
            "answered_by_operator": 2,
            "answered_by_oncall": 1,
            "service_level": 0.5,  # 5 s and 20 s; exactly 30 s would count, 31 s does not
        },
    ),
    (
        "the 30 s threshold is inclusive",
        [Spec(OP, 30.0), Spec(OP, 30.001)],
        {"service_level": 0.5, "median_time_to_person_s": 30.0},
    ),
    (
        "escalations count only primary missed then backup dialed",
        [
            Spec(C, 50, closed=True, escalation="backup"),
            Spec(AR, closed=True, escalation="backup"),
            Spec(OP, 90, closed=True, escalation="primary-only"),
            Spec(C, 10, closed=True),
        ],
        {"escalations_primary_to_backup": 2, "abandoned": 1, "answered_by_oncall": 2},
    ),
    (
        "no one answered: no times, zero service level, other outcomes counted apart",
        [
            Spec(AR),
            Spec(Outcome.FAILED_OVER_TO_DIALPLAN),
            Spec(Outcome.ENGINE_ERROR),
            Spec(Outcome.UNKNOWN_DID_ROUTED),
            Spec(None),
            Spec(AR, known_did=False),
        ],
        {
            "calls": 6,
            "abandoned": 2,
            "failed_over_to_dialplan": 1,
            "errors": 1,
            "unknown_did_routed": 2,  # one by outcome, one by the decision
            "in_progress": 1,
            "median_time_to_person_s": None,
            "p90_time_to_person_s": None,
            "service_level": 0.0,
        },
    ),
]


@pytest.mark.parametrize(("specs", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_report_figures(specs: list[Spec], expected: dict[str, object]) -> None:
    """Each generated set of calls yields the figures worked out by hand."""
    (row,) = build_report([journey(n, s) for n, s in enumerate(specs)], period=Period.ALL, tz=UTC)
    figures = row.to_json()
    assert {k: figures[k] for k in expected} == pytest.approx(expected)


def test_rows_are_per_practice_and_local_month() -> None:
    """Calls group by practice and by month in the practice's time zone, not UTC's."""
    specs = [
        # 2026-04-01 02:00 UTC is still March 31 in New York.
        Spec(S, 5, practice="maple", at=datetime(2026, 4, 1, 2, 0, tzinfo=UTC)),
        Spec(S, 5, practice="maple", at=datetime(2026, 4, 1, 12, 0, tzinfo=UTC)),
        Spec(S, 5, practice="oak", at=datetime(2026, 3, 15, 12, 0, tzinfo=UTC)),
    ]
    rows = build_report([journey(n, s) for n, s in enumerate(specs)], period=Period.MONTH, tz=NY)
    assert [(r.practice, r.period, r.calls) for r in rows] == [
        ("maple", "2026-03", 1),
        ("maple", "2026-04", 1),
        ("oak", "2026-03", 1),
    ]


@pytest.mark.parametrize(
    ("values", "pct", "expected"),
    [
        ([], 50, None),
        ([7], 90, 7),
        ([1, 2], 50, 1),
        ([4, 1, 3, 2], 50, 2),
        ([*range(1, 11)], 90, 9),
    ],
)
def test_percentile_is_nearest_rank(values: list[int], pct: float, expected: int | None) -> None:
    """The percentile is an observed value: the smallest with pct% of values at or below it."""
    result = percentile([timedelta(seconds=v) for v in values], pct)
    assert result == (None if expected is None else timedelta(seconds=expected))


def test_the_report_counts_messages_urgent_ones_by_their_last_version_and_acknowledgements() -> (
    None
):
    """Two messages: one routine corrected to urgent and acknowledged, one routine left alone."""
    at = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)

    def call(call_id: str, *events: tuple[EventKind, dict[str, object]]) -> Journey:
        return Journey(call_id, at, "+1", "+15550000000", "", practice="maple",
                       events=tuple(Stamped(at, parse_event(k, d)) for k, d in events))  # fmt: skip

    corrected = call(
        "a",
        (EventKind.MESSAGE_TAKEN, {"urgency": "routine"}),
        (EventKind.MESSAGE_CORRECTED, {"fields": {"urgency": "urgent"}}),
        (EventKind.MESSAGE_ACKNOWLEDGED, {"by": "sam"}),
    )
    routine = call("b", (EventKind.MESSAGE_TAKEN, {"urgency": "routine"}))
    (row,) = build_report([corrected, routine, call("c")], period=Period.ALL, tz=UTC)
    assert (row.messages, row.urgent_messages, row.acknowledged_messages) == (2, 1, 1)


def test_the_report_says_how_fast_pages_were_acknowledged_and_how_far_they_climbed() -> None:
    """Three paged messages: acknowledged after 4 and after 25 minutes (the second once the
    backup was paged), the third never (the operators were alerted); one routine message."""
    at = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)

    def call(call_id: str, *events: tuple[float, EventKind, dict[str, object]]) -> Journey:
        stamped = tuple(Stamped(at + timedelta(minutes=m), parse_event(k, d))
                        for m, k, d in events)  # fmt: skip
        return Journey(call_id, at, "+1", "+15550000000", "", practice="maple", events=stamped)

    def requested(minute: float) -> tuple[float, EventKind, dict[str, object]]:
        return (minute, EventKind.PAGE_REQUESTED, {"urgency": "urgent"})

    def sent(minute: float, target: str) -> tuple[float, EventKind, dict[str, object]]:
        return (minute, EventKind.PAGE_SENT, {"attempt": 1, "channel": "voice", "target": target})

    def acked(minute: float) -> tuple[float, EventKind, dict[str, object]]:
        return (minute, EventKind.MESSAGE_ACKNOWLEDGED, {"by": "nguyen"})

    quick = call("a", requested(0), sent(0, "primary"), acked(4))
    slow = call("b", requested(0), sent(0, "primary"), sent(10, "primary"), sent(20, "backup"),
                acked(25))  # fmt: skip
    never = call("c", requested(0), sent(0, "primary"), sent(10, "backup"), sent(20, "operators"))
    routine = call("d", (0, EventKind.MESSAGE_TAKEN, {"urgency": "routine"}))
    (row,) = build_report([quick, slow, never, routine], period=Period.ALL, tz=UTC)
    assert (row.pages, row.pages_acknowledged) == (3, 2)
    assert row.median_time_to_ack == timedelta(minutes=4)
    assert row.p90_time_to_ack == timedelta(minutes=25)
    assert (row.pages_to_backup, row.pages_to_operators) == (2, 1)
    assert row.to_json()["median_time_to_ack_s"] == 240.0


def test_handoff_checks_are_counted_apart_and_never_as_calls() -> None:
    """One call and two handoff checks (one confirmed, one not): one call in the figures."""
    at = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    call = Journey(
        "c1", at, "+1", "+15550000000", "", practice="maple", outcome=Outcome.ANSWERED_BY_OPERATOR
    )

    def check(check_id: str, outcome: Outcome) -> Journey:
        return Journey(
            check_id, at, practice="maple", outcome=outcome, kind=JourneyKind.HANDOFF_CHECK
        )

    checks = [check("h1", Outcome.HANDOFF_CONFIRMED), check("h2", Outcome.HANDOFF_NOT_CONFIRMED)]
    (row,) = build_report([call, *checks], period=Period.ALL, tz=UTC)
    assert (row.calls, row.answered_by_operator, row.abandoned) == (1, 1, 0)
    assert (row.handoff_checks, row.handoffs_confirmed, row.handoffs_not_confirmed) == (2, 1, 1)
