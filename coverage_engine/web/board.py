"""The live board as a pure fold of journey events: what each call in progress is doing now.

Nothing here reads a clock or a socket. `LiveCall.apply(event)` returns the
call after one more journey event, so the board can be rebuilt from the
record file by any process (the console of any engine sharing the store), and
tests feed it event lists. Phases are in the operators' words: "in queue",
"ringing Dr. Patel", "confirming Dr. Patel" (answered, press-1 prompt
playing), "with operator1", "with Dr. Patel".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from coverage_engine.journey import (
    AnnouncementPlayed,
    Bridged,
    CalleeHungUp,
    CallerHungUp,
    Decided,
    Ended,
    EngineRestarted,
    MessageAcknowledged,
    OncallAnswered,
    OncallConfirmed,
    OncallDialing,
    OncallMissed,
    OperatorAnswered,
    OperatorsSkipped,
    PageAcknowledged,
    PageCancelled,
    PageEscalated,
    PageRequested,
    PageSent,
    QueueEntered,
    QueueTimeout,
    StaffRinging,
    Stamped,
)
from coverage_engine.paging.policy import Channel, Target
from coverage_engine.plan import StepKind


class Directory(Protocol):
    """What the board asks the configuration: names people know, and announcements."""

    def name(self, practice: str, target: str) -> str:
        """The display name of a doctor id, endpoint or operator phone."""
        ...

    def announces(self, practice: str, status: str) -> bool:
        """Whether a call to `practice` in `status` starts with the announcement."""
        ...


def operator_phone(member: str) -> str:
    """The phone name of an app_queue member interface: PJSIP/operator1 -> operator1."""
    return member.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class LiveCall:
    """One call in progress, as far as its journey events tell."""

    call_id: str
    caller_number: str
    caller_name: str
    did: str
    started_at: datetime
    practice: str = ""
    status: str = ""  # open / closed, from the decision
    phase: str = "arriving"
    target: str = ""  # who is rung or on the line (doctor id, endpoint, operator phone)
    target_kind: str = ""  # staff / operators / oncall
    answered_at: datetime | None = None
    operator_phone: str = ""  # the operator whose phone took the call (screen pop)
    announcement: bool = False  # the opening announcement has been played
    last_event_at: datetime | None = None
    ended: bool = False

    def apply(self, stamped: Stamped) -> LiveCall:
        """The call after one more journey event (a kind this console does not know changes
        nothing: it reads as `Unrecognised`)."""
        call = replace(self, last_event_at=stamped.at)
        match stamped.event:
            case Decided(practice=practice, status=status):
                return replace(call, practice=practice, status=status, phase="starting")
            case AnnouncementPlayed():
                return replace(call, phase="starting", announcement=True)
            case StaffRinging(target=target):
                return replace(call, phase="ringing", target=target, target_kind=StepKind.STAFF)
            case QueueEntered(target=queue):
                return replace(call, phase="in queue", target=queue, target_kind=StepKind.OPERATORS)
            case QueueTimeout() | OperatorsSkipped():
                return replace(call, phase="escalating", target="", target_kind="")
            case OperatorAnswered(member=member):
                phone = operator_phone(member)
                return replace(
                    call,
                    phase="with operator",
                    target=phone,
                    target_kind=StepKind.OPERATORS,
                    operator_phone=phone,
                    answered_at=call.answered_at or stamped.at,
                )
            case OncallDialing(doctor=doctor):
                return replace(call, phase="ringing", target=doctor, target_kind=StepKind.ONCALL)
            case OncallAnswered(doctor=doctor):  # the doctor picked up; the press-1 prompt plays
                return replace(
                    call,
                    phase="confirming",
                    target=doctor or call.target,
                    target_kind=StepKind.ONCALL,
                )
            case OncallMissed():
                return replace(call, phase="escalating")
            case OncallConfirmed(doctor=doctor):
                return replace(call, phase="connecting", target=doctor or call.target)
            case Bridged(step_kind=kind, target=target):
                operators = kind is StepKind.OPERATORS
                return replace(
                    call,
                    phase="with operator" if operators else "talking",
                    target=(operator_phone(target) if operators else target) or call.target,
                    target_kind=kind,
                    answered_at=call.answered_at or stamped.at,
                )
            case CallerHungUp() | CalleeHungUp():
                return replace(call, phase="ending")
            case Ended():
                return replace(call, ended=True, phase="over")
            case EngineRestarted():
                return replace(call, phase="resuming")
        return call

    def label(self, names: Directory) -> str:
        """The phase as the board says it, with names from the configuration."""
        who = names.name(self.practice, self.target) if self.target else ""
        if self.phase == "starting":
            announcing = not self.announcement and names.announces(self.practice, self.status)
            return "announcement" if announcing else "starting"
        if self.phase == "ringing":
            return f"ringing {who}" if who else "ringing"
        if self.phase == "in queue":
            return "in queue"
        if self.phase == "confirming":
            return f"confirming {who} (press 1)"
        if self.phase == "connecting":
            return f"connecting {who}"
        if self.phase in ("with operator", "talking"):
            return f"with {who}" if who else "with a person"
        return self.phase

    def to_json(
        self, names: Directory, *, now: datetime, mask: Callable[[str], str] | None
    ) -> dict[str, Any]:
        """The board row for one viewer; `mask` hides the caller's number from those who
        need not see it (their name is then reduced to initials)."""
        waiting_until = self.answered_at or now
        return {
            "call_id": self.call_id,
            "practice": self.practice,
            "status": self.status,
            "caller": self.caller_number if mask is None else mask(self.caller_number),
            "caller_name": self.caller_name if mask is None else initials(self.caller_name),
            "phase": self.phase,
            "label": self.label(names),
            "operator_phone": self.operator_phone,
            "started_at": self.started_at.isoformat(),
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "waiting_seconds": max(0.0, (waiting_until - self.started_at).total_seconds()),
        }


def initials(name: str) -> str:
    """A caller's name reduced to initials (J. D.), for viewers who need not see it."""
    parts = [p for p in name.replace(",", " ").split() if p[:1].isalpha()]
    return " ".join(f"{p[0].upper()}." for p in parts[:3])


def start(
    call_id: str, *, caller_number: str, caller_name: str, did: str, started_at: datetime
) -> LiveCall:
    """A call that just entered the application."""
    return LiveCall(call_id, caller_number, caller_name, did, started_at)


def fold(call: LiveCall, events: Iterable[Stamped]) -> LiveCall:
    """`call` after each of `events` in order."""
    for event in events:
        call = call.apply(event)
    return call


def by_practice(calls: Mapping[str, LiveCall]) -> dict[str, list[LiveCall]]:
    """Calls grouped by practice, oldest first in each group."""
    groups: dict[str, list[LiveCall]] = {}
    for call in sorted(calls.values(), key=lambda c: c.started_at):
        groups.setdefault(call.practice, []).append(call)
    return groups


# -- paging alerts: an urgent message nobody acknowledged, handed back to the operators ---


@dataclass(frozen=True, slots=True)
class Paging:
    """Where the paging of one call's message stands, folded from its journey events."""

    call_id: str
    practice: str
    urgency: str = ""
    doctors: tuple[str, ...] = ()  # paged so far, in order, each once
    alert_since: datetime | None = None  # when the ladder reached the operators
    done: bool = False  # acknowledged or cancelled: nothing more to do

    def apply(self, stamped: Stamped) -> Paging:
        """The paging after one more event (events of other kinds change nothing)."""
        match stamped.event:
            case PageRequested(urgency=urgency):
                # Taken, or resent from the first rung: the operators are out of it again.
                return replace(self, urgency=urgency, done=False, alert_since=None)
            case PageSent(doctor=doctor) if doctor and doctor not in self.doctors:
                return replace(self, doctors=(*self.doctors, doctor))
            # The operators' rung: escalated to, or sent at once (a message whose call
            # reached no practice has no doctor to page first).
            case (
                PageEscalated(target=Target.OPERATORS) | PageSent(channel=Channel.CONSOLE)
            ) if self.alert_since is None:
                return replace(self, alert_since=stamped.at)
            case PageAcknowledged() | MessageAcknowledged() | PageCancelled():
                return replace(self, done=True, alert_since=None)
        return self

    @property
    def alerting(self) -> bool:
        """Whether the operators must act: paged, escalated to them, not acknowledged."""
        return self.alert_since is not None and not self.done

    def to_json(self, names: Directory, *, now: datetime) -> dict[str, Any]:
        since = self.alert_since or now
        return {
            "call_id": self.call_id,
            "practice": self.practice,
            "urgency": self.urgency,
            "doctors": [names.name(self.practice, d) for d in self.doctors],
            "since": since.isoformat(),
            "minutes": int(max(0.0, (now - since).total_seconds()) // 60),
        }
