"""Which steps of a plan operator presence may pass over, asked as each is about to start."""

from __future__ import annotations

from coverage_engine.plan import Plan, Step, StepKind
from coverage_engine.presence import reason_to_skip

Q = "answering"
QUEUE = Step(StepKind.OPERATORS, Q, Q, 90)
PATEL = Step(StepKind.ONCALL, "patel", "PJSIP/patel", 25, confirm=True)
FRONT = Step(StepKind.STAFF, "frontdesk-maple", "PJSIP/frontdesk-maple", 20)
NIGHT = Plan("maple-grove", "Maple Grove", "MGP", "closed", "night", (QUEUE, PATEL, QUEUE))
OPEN = Plan("maple-grove", "Maple Grove", "MGP", "open", "office hours", (FRONT, QUEUE))


class Nobody:
    """A presence check that finds nobody anywhere, recording what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def __call__(self, practice_id: str, queue: str) -> str | None:
        self.asked.append((practice_id, queue))
        return f"no operator logged in to queue {queue}"


def test_an_early_operators_step_is_passed_over_with_the_reason_given() -> None:
    """With nobody there, the first queue of the night chain is passed over, and says why."""
    nobody = Nobody()
    assert reason_to_skip(NIGHT, 0, nobody) == "no operator logged in to queue answering"
    assert nobody.asked == [("maple-grove", Q)]


def test_the_last_step_is_never_passed_over_nor_even_asked() -> None:
    """The final operators are the safety net: tried whatever presence says."""
    nobody = Nobody()
    assert reason_to_skip(NIGHT, 2, nobody) is None
    assert reason_to_skip(OPEN, 1, nobody) is None
    assert nobody.asked == []


def test_people_who_are_not_operators_are_never_passed_over() -> None:
    """Doctors and the front desk are rung whatever the queue's presence."""
    nobody = Nobody()
    assert reason_to_skip(NIGHT, 1, nobody) is None
    assert reason_to_skip(OPEN, 0, nobody) is None
    assert nobody.asked == []


def test_unknown_presence_passes_nothing_over() -> None:
    """Without a presence check (no AMI), every step is tried as planned."""
    assert reason_to_skip(NIGHT, 0, None) is None
