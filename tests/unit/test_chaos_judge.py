"""How the chaos suite judges a call from outside (pure parts of coverage_lab.chaos)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from coverage_engine.journey import Bridged, Ended, Journey, OncallConfirmed, Outcome, Received
from coverage_engine.plan import StepKind
from coverage_lab.chaos import _cut, _matches
from coverage_lab.phones import PhoneCall

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def journey(*events: object) -> Journey:
    """A journey received at T0, then `events` a second apart."""
    j = Journey.begin("c1", T0, Received("+13125550100", "+15550100051"))
    for n, event in enumerate(events, start=1):
        j = j.apply(T0 + timedelta(seconds=n), event)  # type: ignore[arg-type]
    return j


def call(phone: str, ended_by: str | None, digits: str = "1") -> PhoneCall:
    """A call `phone` answered (and pressed `digits` on), ended by `ended_by`."""
    return PhoneCall(
        phone,
        f"{phone}-x",
        "+15550100051",
        1.0,
        2.0,
        9.0,
        "answered",
        ended_by,
        digits,  # type: ignore[arg-type]
    )


def test_a_doctor_whose_conversation_asterisk_ended_was_cut_off() -> None:
    """Dr. Chen was bridged with the caller and her line was ended by the PBX (a take-over
    that hung up her leg): a conversation cut, whatever happened to the caller next."""
    talked = journey(OncallConfirmed("chen"), Bridged(StepKind.ONCALL, "chen"))
    assert _cut(talked, [call("chen", "remote")])
    assert not _cut(talked, [call("chen", "phone")])


def test_a_doctor_hung_up_before_being_put_through_then_rung_again_was_not_cut() -> None:
    """Dr. Nguyen pressed 1 on a dead engine's leg, which the survivor hung up; rung again she
    talked and hung up herself: one bridge, one conversation she ended."""
    talked = journey(Bridged(StepKind.ONCALL, "nguyen"))
    assert not _cut(talked, [call("nguyen", "remote"), call("nguyen", "phone")])


def test_an_operator_is_matched_by_endpoint_and_a_journey_must_name_who_answered() -> None:
    """The record names PJSIP/operator2; the phone operator2 answered: a match. A record that
    says abandoned while the caller's side saw an answer is a wrong journey."""
    answered = journey(
        Bridged(StepKind.OPERATORS, "PJSIP/operator2"),
        Ended(Outcome.ANSWERED_BY_OPERATOR, "PJSIP/operator2"),
    )
    assert _matches(answered, "operator2") == (True, "")
    assert not _cut(answered, [call("operator2", "phone", digits="")])
    abandoned = journey(Ended(Outcome.ABANDONED_IN_QUEUE))
    ok, problem = _matches(abandoned, "operator2")
    assert not ok
    assert "abandoned_in_queue" in problem
