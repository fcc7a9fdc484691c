"""The routing decision as data: what the routing core hands to the call flow.

This module is the contract between `routing` (which decides) and `callflow`
(which carries a decision out on a live call), and what `explain --json`
prints. It holds no policy and does no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

Status = Literal["open", "closed"]


class StepKind(StrEnum):
    """Who a step reaches. Every kind is a person; there is no voicemail kind."""

    STAFF = "staff"  # the practice's own front desk while open
    OPERATORS = "operators"  # the answering-service queue (Asterisk app_queue)
    ONCALL = "oncall"  # the doctor on call, on an endpoint or through a trunk
    FALLBACK = "fallback"  # the practice's final fallback: another answering service


@dataclass(frozen=True, slots=True)
class Step:
    """One attempt to reach a person.

    `target` names who is reached in the admin's own words (an endpoint id, a
    queue name, a doctor id). `dial` is the exact Asterisk dial string built
    from validated config only (`PJSIP/frontdesk-maple`,
    `PJSIP/+15551234567@carrier-out`); for `operators` it is the queue name.
    Nothing the caller sends ever ends up in `dial`.
    """

    kind: StepKind
    target: str
    dial: str
    ring_seconds: int
    confirm: bool = False
    label: str = ""  # for people: "Dr. Priya Patel (on call, primary)"
    doctor_id: str | None = None
    role: Literal["primary", "backup"] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "target": self.target,
            "dial": self.dial,
            "ring_seconds": self.ring_seconds,
            "confirm": self.confirm,
            "label": self.label,
            "doctor": self.doctor_id,
            "role": self.role,
        }


@dataclass(frozen=True, slots=True)
class OnCall:
    """The doctors on call at an instant (whether the practice is open or not)."""

    primary: str
    backup: str | None

    def to_json(self) -> dict[str, Any]:
        return {"primary": self.primary, "backup": self.backup}


@dataclass(frozen=True, slots=True)
class Plan:
    """The ordered list of people to try for one call, and why.

    Invariant (enforced by config validation, checked by property tests): the
    chain ends with the operator queue, a person who cannot be a machine,
    followed only by the practice's final fallback when it names one.
    """

    practice_id: str
    practice_name: str
    short_name: str  # shown to operators as a caller-name prefix, e.g. "MGP"
    status: Status
    reason: str
    steps: tuple[Step, ...]
    announcement: str | None = None  # Asterisk sound name played to the caller first
    oncall: OnCall | None = None
    known_did: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)
    whisper: str | None = None  # Asterisk sound name played to the operator before bridging
    at: datetime | None = None  # the instant decided for, in the practice's time zone
    did: str = ""  # the dialed number the plan answers
    # Whether the answering service staffs the operator queue at `at`, by the
    # practice's operators.staffed hours (live presence decides each call).
    operators_staffed: bool = True
    # The practice's caller rule that matched the caller (callers[].name), if any.
    caller_rule: str | None = None
    # For a practice with an on-call feed: why the feed does not say who is on
    # call at `at` (the YAML rotation answered instead); None when it does.
    feed_gap: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            # null for a number no practice claims (the default route)
            "practice": self.practice_id if self.known_did else None,
            "practice_name": self.practice_name,
            "status": self.status,
            "reason": self.reason,
            "announcement": self.announcement,
            "steps": [s.to_json() for s in self.steps],
            "oncall": self.oncall.to_json() if self.oncall else None,
            "known_did": self.known_did,
            "did": self.did,
            "at": self.at.isoformat() if self.at is not None else None,
            "whisper": self.whisper,
            "notes": list(self.notes),
            "operators_staffed": self.operators_staffed,
            "caller_rule": self.caller_rule,
            "feed_gap": self.feed_gap,
        }


Router = Callable[[datetime, str, str], Plan]
"""(instant, dialed number, caller number) -> the plan: the routing core bound to a config.

What the engine and the FastAGI service call for each new caller
(`routing.decide` with the current configuration).
"""
