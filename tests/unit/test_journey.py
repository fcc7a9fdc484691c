"""Journey events as types, their stored form, and the one fold into a journey."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from coverage_engine.journey import (
    ONCALL_MISSED,
    AnnouncementPlayed,
    Bridged,
    CalleeHungUp,
    CallerHungUp,
    Decided,
    Disposition,
    Ended,
    EngineRestarted,
    EventKind,
    HandoffAlertFailed,
    HandoffAlertRaised,
    HandoffAlertResolved,
    HandoffAlertSent,
    HandoffAnswered,
    HandoffAttemptFailed,
    HandoffCheckCancelled,
    HandoffCheckStarted,
    HandoffDialing,
    HandoffDoctorConfirmed,
    Journey,
    JourneyEvent,
    JourneyKind,
    MessageAcknowledged,
    MessageCorrected,
    MessageTaken,
    OncallAnswered,
    OncallBusy,
    OncallConfirmed,
    OncallDeclined,
    OncallDialing,
    OncallNoAnswer,
    OncallNotConfirmed,
    OperatorAnswered,
    OperatorsSkipped,
    Outcome,
    PageAcknowledged,
    PageAnswered,
    PageCancelled,
    PageConnected,
    PageEscalated,
    PageFailed,
    PageRequested,
    PageSent,
    QueueEntered,
    QueueTimeout,
    Received,
    SafetyNetTook,
    StaffRinging,
    Unrecognised,
    Via,
    event_class,
    parse_event,
)
from coverage_engine.journey.live import LiveJourneys, from_arrival
from coverage_engine.plan import Plan, Step, StepKind

T0 = datetime(2026, 3, 1, 2, 14, tzinfo=UTC)
QUEUE = Step(StepKind.OPERATORS, "answering", "answering", 90, label="Operators")
PLAN = Plan("maple-grove", "Maple Grove", "MGP", "closed", "night", (QUEUE,), did="+13125550100")

ONE_OF_EACH: list[JourneyEvent] = [
    Received("+13125550100", "", "Jane Doe"),
    Decided.of(PLAN, via=Via.ARI),
    AnnouncementPlayed(),
    StaffRinging(0, "frontdesk-maple", "Front desk"),
    QueueEntered(1, "answering", 90, "Operators", after="no_answer"),
    OperatorsSkipped(1, "answering", "no operator logged in to queue answering"),
    QueueTimeout("TIMEOUT"),
    OperatorAnswered("PJSIP/operator1"),
    OncallDialing(2, "patel", "patel", "Dr. Patel", "primary", confirm=True, after="queue"),
    OncallAnswered("patel"),
    OncallDeclined("patel", "hangup"),
    OncallNoAnswer("patel", "no_answer"),
    OncallBusy("patel", "busy"),
    OncallNotConfirmed("patel", "not_confirmed"),
    OncallConfirmed("patel"),
    Bridged(StepKind.ONCALL, "patel", "Dr. Patel"),
    CallerHungUp(),
    CalleeHungUp(),
    Ended(Outcome.ANSWERED_BY_ONCALL, "patel"),
    EngineRestarted(Outcome.ENGINE_ERROR, "decided", T0),
    SafetyNetTook("TIMEOUT"),
    MessageTaken("olivia", {"reason": "fever", "urgency": "urgent"}),
    MessageCorrected("olivia", 2, {"urgency": ["urgent", "emergency"]}, {"urgency": "emergency"}),
    Disposition("patched_to_oncall", "olivia", 2, "Dr. Patel called back"),
    MessageAcknowledged("sam"),
    PageRequested("urgent", "olivia", "taken"),
    PageEscalated(2, "backup", "not acknowledged in time"),
    PageSent(1, "voice", "primary", "nguyen"),
    PageAnswered(1, "nguyen"),
    PageAcknowledged(1, "nguyen", "voice"),
    PageFailed(1, "email", "no pagers: address for nguyen", "nguyen"),
    PageConnected(1, "nguyen", "connected"),
    PageCancelled("olivia", "urgency is now routine"),
    HandoffCheckStarted("maple-grove", "okafor", T0, T0 + timedelta(days=7), "nguyen", "rotation"),
    HandoffDialing(1, "okafor"),
    HandoffAnswered(1, "okafor"),
    HandoffDoctorConfirmed(1, "okafor"),
    HandoffAttemptFailed(1, "okafor", "answered, but nobody pressed 1"),
    HandoffAlertRaised("okafor", 3),
    HandoffAlertSent("email", "manager@maplegrove.example"),
    HandoffAlertFailed("webhook", "HTTP 500 after 4 tries"),
    HandoffAlertResolved("olivia", "reached on her cell"),
    HandoffCheckCancelled("the swap was removed from the configuration"),
]


def test_every_kind_has_one_event_class_and_the_examples_cover_them() -> None:
    """Each stored name maps to exactly one type, and the round-trip below meets every type."""
    assert {event_class(kind).kind for kind in EventKind} == set(EventKind)
    assert {e.kind for e in ONE_OF_EACH} == set(EventKind)


@pytest.mark.parametrize("event", ONE_OF_EACH, ids=lambda e: e.name)
def test_an_event_reads_back_from_what_a_store_keeps(event: JourneyEvent) -> None:
    """details() is JSON, and parsing the stored row gives the same event back."""
    stored = json.loads(json.dumps(event.details()))
    assert parse_event(event.name, stored) == event


def test_the_callers_number_is_kept_on_the_journey_not_in_the_event() -> None:
    """`received` stores the dialed number and the caller's name; the number lives once."""
    assert Received("+13125550100", "+13125559876", "Jane").details() == {
        "did": "+13125550100",
        "caller_name": "Jane",
    }


def test_one_shape_of_decided_whichever_path_decided() -> None:
    """The engine and the FastAGI service store the same plan JSON, marked with the path."""
    ari = Decided.of(PLAN, via=Via.ARI).details()
    agi = Decided.of(PLAN, via=Via.FASTAGI).details()
    assert {k: v for k, v in ari.items() if k != "via"} == PLAN.to_json()
    assert ari.keys() == agi.keys()
    assert (ari["via"], agi["via"]) == ("ari", "fastagi")
    assert Decided.of(PLAN, via=Via.ARI, resumed=True).details()["resumed"] is True


# Rows as earlier versions wrote them: each must still read.
OLD_ROWS: list[tuple[str, str, dict[str, Any], JourneyEvent]] = [
    (
        "the engine's decision before the plan JSON was shared",
        "decided",
        {"practice": "maple", "status": "open", "reason": "hours", "known_did": True, "steps": []},
        Decided(
            "maple",
            "open",
            "hours",
            {
                "practice": "maple",
                "status": "open",
                "reason": "hours",
                "known_did": True,
                "steps": [],
            },
        ),
    ),
    (
        "a FastAGI decision for a number no practice claims",
        "decided",
        {"practice": None, "status": "closed", "reason": "unknown", "known_did": False},
        Decided(
            "",
            "closed",
            "unknown",
            {"practice": None, "status": "closed", "reason": "unknown", "known_did": False},
            known_did=False,
        ),
    ),
    (
        "a queue bridge written with the old kind name",
        "bridged",
        {"kind": "operator", "target": "PJSIP/op1"},
        Bridged(StepKind.OPERATORS, "PJSIP/op1"),
    ),
    (
        "a doctor's dial without role or confirm",
        "oncall_dialing",
        {"step": 1, "target": "patel", "doctor": "patel"},
        OncallDialing(1, "patel", "patel"),
    ),
    ("a busy doctor with no cause", "oncall_busy", {"doctor": "patel"}, OncallBusy("patel")),
    ("an ended row without an outcome", "ended", {}, Ended(Outcome.ENGINE_ERROR)),
    ("a step number written as text", "staff_ringing", {"step": "x"}, StaffRinging(0, "")),
    (
        "a name from a newer version",
        "shift_swapped",
        {"to": "patel"},
        Unrecognised("shift_swapped", {"to": "patel"}),
    ),
]


@pytest.mark.parametrize(
    ("name", "details", "expected"), [r[1:] for r in OLD_ROWS], ids=[r[0] for r in OLD_ROWS]
)
def test_old_and_odd_rows_still_read(
    name: str, details: dict[str, Any], expected: JourneyEvent
) -> None:
    """The parser fills what is missing and never raises: a record always reads."""
    assert parse_event(name, details) == expected


def test_the_missed_doctor_events_are_the_escalation_kinds() -> None:
    """Declined, no answer, busy and not confirmed are what "the doctor was missed" means."""
    assert {
        EventKind.ONCALL_DECLINED,
        EventKind.ONCALL_NO_ANSWER,
        EventKind.ONCALL_BUSY,
        EventKind.ONCALL_NOT_CONFIRMED,
    } == ONCALL_MISSED


def fold(*timed: tuple[float, JourneyEvent]) -> Journey:
    """The journey of a call whose first event is `received` at T0."""
    (first_s, first), *rest = timed
    assert isinstance(first, Received)
    journey = Journey.begin("c1", T0 + timedelta(seconds=first_s), first)
    for seconds, event in rest:
        journey = journey.apply(T0 + timedelta(seconds=seconds), event)
    return journey


RECEIVED = Received("+13125550100", "+13125559876", "Jane Doe")
DECIDED = Decided.of(PLAN, via=Via.ARI)


def test_the_fold_reads_the_decision_and_times_the_person() -> None:
    """Practice and reason from `decided`; time to a person and talk time from the events."""
    journey = fold(
        (0, RECEIVED),
        (0, DECIDED),
        (2, QueueEntered(0, "answering", 90)),
        (20, OperatorAnswered("PJSIP/op1")),
        (21, Bridged(StepKind.OPERATORS, "PJSIP/op1")),
        (80, CallerHungUp()),
        (80, Ended(Outcome.ANSWERED_BY_OPERATOR, "PJSIP/op1")),
    )
    assert (journey.did, journey.caller_number, journey.caller_name) == (
        "+13125550100",
        "+13125559876",
        "Jane Doe",
    )
    assert (journey.practice, journey.status, journey.reason) == ("maple-grove", "closed", "night")
    assert journey.plan == DECIDED.details()
    assert (journey.outcome, journey.answered_by) == (Outcome.ANSWERED_BY_OPERATOR, "PJSIP/op1")
    assert journey.time_to_person == timedelta(seconds=20)
    assert journey.talk_time == timedelta(seconds=60)
    assert journey.ended_at == T0 + timedelta(seconds=80)
    assert len(journey.events) == 7
    assert not journey.in_progress


def test_a_person_reached_then_lost_is_no_time_to_person() -> None:
    """A bridge that failed, then the caller hung up: unanswered, so no time to a person."""
    journey = fold(
        (0, RECEIVED),
        (5, Bridged(StepKind.STAFF, "frontdesk")),
        (9, CallerHungUp()),
        (9, Ended(Outcome.ABANDONED_WHILE_RINGING)),
    )
    assert (journey.time_to_person, journey.talk_time) == (None, None)


def test_a_resumed_decision_reopens_the_journey_and_times_from_arrival() -> None:
    """Taken on after a restart: in progress again, and the person counts from the arrival."""
    journey = fold(
        (0, RECEIVED),
        (0, DECIDED),
        (30, EngineRestarted(Outcome.FAILED_OVER_TO_DIALPLAN, "queue_entered", T0)),
        (30, Ended(Outcome.FAILED_OVER_TO_DIALPLAN)),
        (31, Decided.of(PLAN, via=Via.ARI, resumed=True)),
    )
    assert (journey.outcome, journey.ended_at) == (None, None)
    journey = journey.apply(T0 + timedelta(seconds=42), Bridged(StepKind.ONCALL, "patel"))
    journey = journey.apply(T0 + timedelta(seconds=60), Ended(Outcome.ANSWERED_BY_ONCALL, "patel"))
    assert journey.time_to_person == timedelta(seconds=42)
    assert journey.talk_time == timedelta(seconds=18)


def test_a_journey_stored_without_its_time_to_person_gets_it_at_the_end() -> None:
    """A row from before times were kept as they happened still ends with its times."""
    journey = fold((0, RECEIVED), (12, Bridged(StepKind.STAFF, "frontdesk")))
    legacy = Journey(
        "c1", T0, events=journey.events, practice="maple-grove", caller_number="+13125559876"
    )
    ended = legacy.apply(T0 + timedelta(seconds=40), Ended(Outcome.ANSWERED_BY_STAFF, "frontdesk"))
    assert (ended.time_to_person, ended.talk_time) == (timedelta(seconds=12), timedelta(seconds=28))


def test_live_journeys_follow_calls_in_progress_and_tell_subscribers() -> None:
    """The live view holds the calls in progress; subscribers see every event with its journey."""
    live = LiveJourneys()
    seen: list[tuple[str, str]] = []
    stop = live.subscribe(lambda journey, stamped: seen.append((journey.call_id, stamped.name)))
    live.record("c1", T0, RECEIVED)
    live.record("c1", T0, DECIDED)
    live.record("c2", T0, Decided.of(PLAN, via=Via.ARI, resumed=True))
    c1, c2 = live.calls()
    assert (c1.practice, from_arrival(c1), from_arrival(c2)) == ("maple-grove", True, False)
    live.record("c1", T0 + timedelta(seconds=3), Ended(Outcome.ABANDONED_IN_QUEUE))
    assert [j.call_id for j in live.calls()] == ["c2"]
    assert live.get("c1") is None
    stop()
    live.record("c2", T0, Ended(Outcome.ENGINE_ERROR))
    assert seen == [("c1", "received"), ("c1", "decided"), ("c2", "decided"), ("c1", "ended")]


def test_a_failing_subscriber_does_not_stop_the_others() -> None:
    """One listener raising is logged; the next still hears the event."""
    live = LiveJourneys()
    heard: list[str] = []

    def broken(journey: Journey, stamped: object) -> None:
        raise RuntimeError("boom")

    live.subscribe(broken)
    live.subscribe(lambda journey, stamped: heard.append(journey.call_id))
    live.record("c1", T0, RECEIVED)
    assert heard == ["c1"]


def test_a_handoff_check_opens_a_journey_of_its_own_kind_and_ends_with_its_outcome() -> None:
    """Started, dialed, confirmed, ended: a journey of kind handoff_check for the practice,
    confirmed by the doctor, and never counted as answered by a person for a caller."""
    started = HandoffCheckStarted("maple-grove", "okafor", T0, None, "nguyen", "rotation", 3)
    journey = Journey.begin("handoff-maple-grove-2026-12-07T1400Z", T0, started)
    for event in (HandoffDialing(1, "okafor"), HandoffDoctorConfirmed(1, "okafor"),
                  Ended(Outcome.HANDOFF_CONFIRMED, "okafor")):  # fmt: skip
        journey = journey.apply(T0 + timedelta(seconds=20), event)
    assert journey.kind is JourneyKind.HANDOFF_CHECK
    assert (journey.practice, journey.reason) == ("maple-grove", "okafor comes on call (rotation)")
    assert (journey.outcome, journey.answered_by) == (Outcome.HANDOFF_CONFIRMED, "okafor")
    assert journey.time_to_person is None
    assert not journey.in_progress
