"""Presence asked as each operators step starts, and restarts that find their step."""

from __future__ import annotations

from typing import Any

from coverage_engine.callflow import Call, Phase
from coverage_engine.callflow.commands import (
    Command,
    ContinueInDialplan,
    CreateLeg,
    Record,
    SetVariables,
)
from coverage_engine.callflow.events import CallerEntered, LegFailed, LegFailure, QueueResult
from coverage_engine.journey import JourneyEvent, OperatorsSkipped
from coverage_engine.plan import Plan, Step, StepKind

C = "caller1"
QUEUE = Step(StepKind.OPERATORS, "answering", "answering", 90)
PATEL = Step(StepKind.ONCALL, "patel", "PJSIP/patel", 25, doctor_id="patel")
NGUYEN = Step(StepKind.ONCALL, "nguyen", "PJSIP/nguyen", 25, doctor_id="nguyen")
NIGHT = Plan(
    "maple-grove", "Maple Grove Pediatrics", "MGP", "closed", "night", (PATEL, QUEUE, NGUYEN, QUEUE)
)
TO_QUEUE = ContinueInDialplan(C, "coverage-queue", watch=True)


class Presence:
    """A hand-written operators check: a reason while `empty`, recording what it was asked."""

    def __init__(self) -> None:
        self.empty = False
        self.asked: list[tuple[str, str]] = []

    def __call__(self, practice_id: str, queue: str) -> str | None:
        self.asked.append((practice_id, queue))
        return f"no operator logged in to queue {queue}" if self.empty else None


def entered(plan: Plan, **kw: Any) -> CallerEntered:
    return CallerEntered(plan, "+13125559876", "Jane Doe", "+13125550100", **kw)


def resume(
    plan: Plan, tried_before: tuple[str, ...], queue_status: str | None = None
) -> tuple[Call, list[Command]]:
    """A call picked up by a restarted engine that finds `tried_before` on the channel."""
    call = Call(C, id_prefix="caller1-r1")
    event = entered(plan, resumed=True, queue_status=queue_status, tried=tried_before)
    return call, call.handle(event)


def records(commands: list[Command]) -> list[JourneyEvent]:
    return [c.event for c in commands if isinstance(c, Record)]


def dialed(commands: list[Command]) -> list[str]:
    return [c.dial for c in commands if isinstance(c, CreateLeg)]


def tried(commands: list[Command]) -> str | None:
    """The last COVERAGE_TRIED the commands write."""
    values = [v for c in commands if isinstance(c, SetVariables) for n, v in c.variables]
    names = [n for c in commands if isinstance(c, SetVariables) for n, _ in c.variables]
    found = [v for n, v in zip(names, values, strict=True) if n == "COVERAGE_TRIED"]
    return found[-1] if found else None


def test_queue_that_emptied_while_the_doctor_rang_is_skipped_with_its_reason() -> None:
    """Operators logged out while the primary rang: the caller goes on to the backup doctor."""
    presence = Presence()
    call = Call(C, operators_check=presence)
    call.handle(entered(NIGHT))
    presence.empty = True
    got = call.handle(LegFailed("caller1-leg1", LegFailure.NO_ANSWER))
    assert TO_QUEUE not in got
    assert dialed(got) == ["PJSIP/nguyen"]
    skipped = OperatorsSkipped(1, "answering", "no operator logged in to queue answering")
    assert skipped in records(got)
    assert call.state.phase is Phase.RINGING
    assert call.state.step == 2
    assert presence.asked == [("maple-grove", "answering")]
    # Passed over counts as tried: a restart must not go back to it.
    assert tried(got) == "oncall/patel,operators/answering,oncall/nguyen"


def test_queue_still_staffed_is_entered_as_planned() -> None:
    """Operators still there when the doctor did not answer: the caller enters the queue."""
    presence = Presence()
    call = Call(C, operators_check=presence)
    call.handle(entered(NIGHT))
    got = call.handle(LegFailed("caller1-leg1", LegFailure.NO_ANSWER))
    assert TO_QUEUE in got
    assert not [r for r in records(got) if isinstance(r, OperatorsSkipped)]
    assert call.state.phase is Phase.QUEUED


def test_the_final_queue_is_never_skipped_even_when_empty() -> None:
    """The last step, the operators as the safety net, is entered whatever presence says."""
    presence = Presence()
    presence.empty = True
    call = Call(C, operators_check=presence)
    call.handle(entered(NIGHT))
    call.handle(LegFailed("caller1-leg1", LegFailure.NO_ANSWER))  # queue skipped: Dr. Nguyen
    got = call.handle(LegFailed("caller1-leg2", LegFailure.BUSY))
    assert TO_QUEUE in got
    assert call.state.step == 3
    assert presence.asked == [("maple-grove", "answering")]  # the final step is not even asked


def test_without_presence_no_step_is_skipped() -> None:
    """No operators check (AMI off): the plan is followed exactly as decided."""
    call = Call(C)
    call.handle(entered(NIGHT))
    got = call.handle(LegFailed("caller1-leg1", LegFailure.NO_ANSWER))
    assert TO_QUEUE in got
    assert call.state.step == 1


def test_resumed_from_the_early_queue_rings_the_next_doctor() -> None:
    """Back from the early queue after a restart: the doctor after it, not the queue again."""
    call, got = resume(NIGHT, ("oncall/patel", "operators/answering"), "TIMEOUT")
    assert dialed(got) == ["PJSIP/nguyen"]
    assert TO_QUEUE not in got
    assert call.state.step == 2
    assert tried(got) == "oncall/patel,operators/answering,oncall/nguyen"


def test_a_resumed_call_asks_presence_like_any_other() -> None:
    """Taken on after a restart with nobody logged in: the early queue is passed over."""
    presence = Presence()
    presence.empty = True
    call = Call(C, id_prefix="caller1-r1", operators_check=presence)
    got = call.handle(entered(NIGHT, resumed=True, tried=("oncall/patel",), queue_status=None))
    assert dialed(got) == ["PJSIP/patel"]  # the interrupted step is tried again
    got = call.handle(LegFailed("caller1-r1-leg1", LegFailure.NO_ANSWER))
    assert dialed(got) == ["PJSIP/nguyen"]
    assert OperatorsSkipped(1, "answering", "no operator logged in to queue answering") in records(
        got
    )


def test_resumed_mid_step_in_a_plan_that_gained_a_step_rings_the_same_doctor() -> None:
    """Interrupted while Dr. Nguyen rang; the new plan has a queue before him again."""
    # By the old index (1) the caller would be sent to the early queue instead.
    call, got = resume(NIGHT, ("oncall/patel", "oncall/nguyen"))
    assert dialed(got) == ["PJSIP/nguyen"]
    assert call.state.step == 2
    assert tried(got) == "oncall/patel,oncall/nguyen"  # the resumed step is not listed twice
    queue = call.handle(LegFailed("caller1-r1-leg1", LegFailure.NO_ANSWER))
    assert TO_QUEUE in queue
    assert call.state.step == 3


def test_resumed_call_back_from_the_final_queue_goes_to_the_dialplan_safety_net() -> None:
    """Every person was tried before the restart: the dialplan fallback takes over, as before."""
    before = ("oncall/patel", "operators/answering", "oncall/nguyen", "operators/answering#2")
    call, got = resume(NIGHT, before, "TIMEOUT")
    assert ContinueInDialplan(C, "coverage-fallback") in got
    assert call.finished
    assert call.handle(QueueResult("TIMEOUT")) == []
