"""Replay: what would a proposed configuration have done to the calls that really came in?

Pure. Each recorded call (its dialed number, caller and instant) is decided
again by the routing core under the proposed configuration, and compared
with a baseline: the decision recorded with the call, or the same call
decided under another configuration (the one running now). A call changes
when its practice, its status (open/closed) or its first person differs:
what the caller would have met first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coverage_engine.config import CoverageConfig
from coverage_engine.plan import Plan
from coverage_engine.routing import decide


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """What replay needs of a call record: who called what, when, and what was decided."""

    call_id: str
    did: str
    caller: str
    at: datetime
    decision: Mapping[str, Any] | None  # the recorded plan (None: none was recorded)


@dataclass(frozen=True, slots=True)
class Answer:
    """What a caller meets first: the practice, open or closed, and the first person."""

    practice: str
    status: str
    reason: str
    first: str  # "staff frontdesk-maple", "operators answering", "oncall nguyen"

    @classmethod
    def of_plan(cls, plan: Plan) -> Answer:
        first = f"{plan.steps[0].kind.value} {plan.steps[0].target}" if plan.steps else "nobody"
        practice = plan.practice_id if plan.known_did else ""
        return cls(practice, plan.status, plan.reason, first)

    @classmethod
    def of_record(cls, decision: Mapping[str, Any]) -> Answer:
        """From the recorded decision (the `Decided` event: the plan's JSON)."""
        steps = decision.get("steps") or []
        first = "nobody"
        if steps and isinstance(steps[0], Mapping):
            first = f"{steps[0].get('kind')} {steps[0].get('target')}"
        practice = str(decision.get("practice") or "") if decision.get("known_did", True) else ""
        return cls(
            practice, str(decision.get("status", "")), str(decision.get("reason", "")), first
        )

    def same_as(self, other: Answer) -> bool:
        """The caller would meet the same thing (the reason's wording may differ)."""
        return (self.practice, self.status, self.first) == (
            other.practice,
            other.status,
            other.first,
        )

    def to_json(self) -> dict[str, str]:
        return {
            "practice": self.practice,
            "status": self.status,
            "reason": self.reason,
            "first": self.first,
        }


@dataclass(frozen=True, slots=True)
class Change:
    """A call the proposed configuration would have answered differently."""

    call: RecordedCall
    was: Answer
    now: Answer

    def to_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call.call_id,
            "at": self.call.at.isoformat(),
            "did": self.call.did,
            "was": self.was.to_json(),
            "now": self.now.to_json(),
        }


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """Every call replayed: those that change, how many did not, how many could not be."""

    calls: int
    changes: tuple[Change, ...]
    unchanged: int
    not_comparable: tuple[str, ...]  # call ids with no recorded decision to compare with


def replay(
    calls: Iterable[RecordedCall],
    proposed: CoverageConfig,
    baseline: CoverageConfig | None = None,
) -> ReplayReport:
    """Decide each call again under `proposed` and compare with the baseline.

    The baseline is `baseline` deciding the same call when given; else the
    decision recorded with the call.
    """
    changes: list[Change] = []
    unchanged = 0
    skipped: list[str] = []
    total = 0
    for call in calls:
        total += 1
        now = Answer.of_plan(decide(proposed, call.at, call.did, call.caller))
        if baseline is not None:
            was = Answer.of_plan(decide(baseline, call.at, call.did, call.caller))
        elif call.decision is not None:
            was = Answer.of_record(call.decision)
        else:
            skipped.append(call.call_id)
            continue
        if now.same_as(was):
            unchanged += 1
        else:
            changes.append(Change(call, was, now))
    return ReplayReport(total, tuple(changes), unchanged, tuple(skipped))
