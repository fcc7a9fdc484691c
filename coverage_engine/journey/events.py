"""Journey events: what happened on one call, as types. The only home of their names.

The call flow emits these (`callflow.commands.Record`), the FastAGI route
emits `Received` and `Decided`, the engine stamps them with its clock, and
the journey fold (`journey.fold`), the record stores, the metrics and the
logs all read them. A misspelt event or field is a type error where it is
written, not a failed write later.

The names (`EventKind`) and outcomes (`Outcome`) are stored in the journey
database and printed by the CLI, so they are a public format: add members,
never rename or remove one. `details()` is what a store keeps of an event;
`parse_event` reads stored (name, details) rows back, tolerantly: a row
written by an older version (a field missing, a field renamed) still reads,
and a name this version does not know becomes `Unrecognised` instead of an
error. `docs/records.md` explains each event and outcome.

A new kind of event: add its name to `EventKind` and a frozen dataclass
decorated with `@event` below (its `details()` and parsing come for free
from its fields); the fold ignores it until told otherwise.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any, ClassVar, Self, TypeVar

from coverage_engine.caller_text import caller_digits
from coverage_engine.plan import Plan, StepKind


class JourneyKind(StrEnum):
    """What a journey is the record of (stored with it)."""

    CALL = "call"  # a caller's call, opened by `Received`
    # The engine calling the doctor coming on call, opened by `HandoffCheckStarted`.
    HANDOFF_CHECK = "handoff_check"


class Outcome(StrEnum):
    """How a journey ended. For a call, seen from the caller: did a person take it, and who.
    For a handoff check: did the doctor coming on call confirm."""

    ANSWERED_BY_STAFF = "answered_by_staff"  # the practice's front desk
    ANSWERED_BY_OPERATOR = "answered_by_operator"  # the answering-service queue
    ANSWERED_BY_ONCALL = "answered_by_oncall"  # the doctor on call (confirmed if required)
    ABANDONED_IN_QUEUE = "abandoned_in_queue"  # caller hung up while waiting for an operator
    ABANDONED_WHILE_RINGING = "abandoned_while_ringing"  # ... while staff/on-call was ringing
    ABANDONED_DURING_ANNOUNCEMENT = "abandoned_during_announcement"
    # The engine handed the call back to the Asterisk dialplan's fallback (operator
    # queue, then a fixed on-call number) and lost sight of it from there.
    FAILED_OVER_TO_DIALPLAN = "failed_over_to_dialplan"
    # The dialed number belongs to no practice; the call went to the default route.
    UNKNOWN_DID_ROUTED = "unknown_did_routed"
    ENGINE_ERROR = "engine_error"  # a bug or an Asterisk failure the engine could not route around
    # Handoff checks: the incoming doctor pressed 1; did not after every attempt (the
    # operators and the practice were alerted); or the check was no longer needed.
    HANDOFF_CONFIRMED = "handoff_confirmed"
    HANDOFF_NOT_CONFIRMED = "handoff_not_confirmed"
    HANDOFF_CANCELLED = "handoff_cancelled"

    @property
    def answered(self) -> bool:
        """Whether a person took the call."""
        return self in _ANSWERED

    @property
    def abandoned(self) -> bool:
        """Whether the caller gave up before a person took the call."""
        return self in _ABANDONED

    @classmethod
    def answered_by_kind(cls, kind: StepKind) -> Outcome:
        """The outcome of a call bridged to a person of this kind of step."""
        return _ANSWERED_BY[kind]


_ANSWERED = frozenset(
    {Outcome.ANSWERED_BY_STAFF, Outcome.ANSWERED_BY_OPERATOR, Outcome.ANSWERED_BY_ONCALL}
)
_ABANDONED = frozenset(
    {
        Outcome.ABANDONED_IN_QUEUE,
        Outcome.ABANDONED_WHILE_RINGING,
        Outcome.ABANDONED_DURING_ANNOUNCEMENT,
    }
)
_ANSWERED_BY: Mapping[StepKind, Outcome] = {
    StepKind.STAFF: Outcome.ANSWERED_BY_STAFF,
    StepKind.OPERATORS: Outcome.ANSWERED_BY_OPERATOR,
    StepKind.ONCALL: Outcome.ANSWERED_BY_ONCALL,
    # The practice's final fallback is another answering service: its operators.
    StepKind.FALLBACK: Outcome.ANSWERED_BY_OPERATOR,
}


class EventKind(StrEnum):
    """The name of each kind of journey event, as stored."""

    RECEIVED = "received"
    DECIDED = "decided"
    ANNOUNCEMENT_PLAYED = "announcement_played"
    STAFF_RINGING = "staff_ringing"
    QUEUE_ENTERED = "queue_entered"
    OPERATORS_SKIPPED = "operators_skipped"
    QUEUE_TIMEOUT = "queue_timeout"
    OPERATOR_ANSWERED = "operator_answered"
    ONCALL_DIALING = "oncall_dialing"
    ONCALL_ANSWERED = "oncall_answered"
    ONCALL_DECLINED = "oncall_declined"
    ONCALL_NO_ANSWER = "oncall_no_answer"
    ONCALL_BUSY = "oncall_busy"
    ONCALL_NOT_CONFIRMED = "oncall_not_confirmed"
    ONCALL_CONFIRMED = "oncall_confirmed"
    BRIDGED = "bridged"
    CALLER_HUNG_UP = "caller_hung_up"
    CALLEE_HUNG_UP = "callee_hung_up"
    ENDED = "ended"
    ENGINE_RESTARTED = "engine_restarted"
    MESSAGE_TAKEN = "message_taken"
    MESSAGE_CORRECTED = "message_corrected"
    DISPOSITION = "disposition"
    MESSAGE_ACKNOWLEDGED = "message_acknowledged"
    PAGE_REQUESTED = "page_requested"
    PAGE_ESCALATED = "page_escalated"
    PAGE_SENT = "page_sent"
    PAGE_ANSWERED = "page_answered"
    PAGE_ACKNOWLEDGED = "page_acknowledged"
    PAGE_FAILED = "page_failed"
    PAGE_CONNECTED = "page_connected"
    PAGE_CANCELLED = "page_cancelled"
    HANDOFF_CHECK_STARTED = "handoff_check_started"
    HANDOFF_DIALING = "handoff_dialing"
    HANDOFF_ANSWERED = "handoff_answered"
    HANDOFF_DOCTOR_CONFIRMED = "handoff_doctor_confirmed"
    HANDOFF_ATTEMPT_FAILED = "handoff_attempt_failed"
    HANDOFF_ALERT_RAISED = "handoff_alert_raised"
    HANDOFF_ALERT_SENT = "handoff_alert_sent"
    HANDOFF_ALERT_FAILED = "handoff_alert_failed"
    HANDOFF_ALERT_RESOLVED = "handoff_alert_resolved"
    HANDOFF_CHECK_CANCELLED = "handoff_check_cancelled"
    SAFETY_NET = "safety_net"


class Via(StrEnum):
    """Which path made the routing decision."""

    ARI = "ari"  # the engine, carrying the call itself
    FASTAGI = "fastagi"  # the FastAGI service; the PBX's own dialplan carries the call


# -- the base and the registry ---------------------------------------------------------------


class JourneyEvent:
    """Something that happened on one call. Subclasses are frozen dataclasses made with `@event`.

    `details()` is what a store keeps besides the name and the time: by
    default every field, enums by their value. `from_details` reads a stored
    row back, filling a missing or unreadable field with its default (or the
    empty value of its type), so a row from another version still reads.
    """

    __slots__ = ()
    kind: ClassVar[EventKind]

    @property
    def name(self) -> str:
        """The stored name of this event."""
        return self.kind.value

    def details(self) -> dict[str, Any]:
        """What a store keeps of this event (JSON-ready)."""
        return {f.name: _plain(getattr(self, f.name)) for f in _fields(self)}

    @classmethod
    def from_details(cls, details: Mapping[str, Any]) -> Self:
        """This event from its stored details, tolerating missing and odd values."""
        hints = _hints(cls)
        values = {f.name: _read(hints[f.name], f, details.get(f.name)) for f in _fields(cls)}
        return cls(**values)


E = TypeVar("E", bound=type[JourneyEvent])
_BY_KIND: dict[EventKind, type[JourneyEvent]] = {}


def event(cls: E) -> E:
    """Register a journey event class under its kind (one class per kind)."""
    if cls.kind in _BY_KIND:  # pragma: no cover - a programming error caught at import
        raise TypeError(f"two journey event classes for {cls.kind}")
    _BY_KIND[cls.kind] = cls
    return cls


def event_class(kind: EventKind) -> type[JourneyEvent]:
    """The class of journey events of `kind`."""
    return _BY_KIND[kind]


@dataclasses.dataclass(frozen=True, slots=True)
class Unrecognised(JourneyEvent):
    """A stored event whose name this version does not know (written by a newer one).

    Kept as it was stored, so reading and showing a record never fails; the
    fold passes over it.
    """

    stored_name: str
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.stored_name

    def details(self) -> dict[str, Any]:
        return dict(self.raw)


def parse_event(name: str, details: Mapping[str, Any]) -> JourneyEvent:
    """A stored (name, details) row as its event; never raises."""
    try:
        kind = EventKind(name)
    except ValueError:
        return Unrecognised(name, dict(details))
    return _BY_KIND[kind].from_details(details)


# -- the events, in the order a call meets them ----------------------------------------------


@event
@dataclasses.dataclass(frozen=True, slots=True)
class Received(JourneyEvent):
    """The call entered the engine (or the FastAGI service asked about it).

    `caller_number` is what can be dialed back: `+`, digits, `*`, `#` only.
    The carrier's text, when it held anything else (`anonymous`, `(312)
    555-0100`, an injection attempt), is kept as received in `raw_number`,
    for the record; build it with `Received.of`. The name is kept as received:
    it is made harmless where it leaves (`caller_text`).
    """

    kind = EventKind.RECEIVED
    did: str
    caller_number: str
    caller_name: str = ""
    raw_number: str = ""

    @classmethod
    def of(cls, did: str, number: str, name: str) -> Received:
        """The arrival of a caller whose number the carrier sent as `number`."""
        digits = caller_digits(number)
        return cls(did, digits, name, "" if digits == number else number)

    def details(self) -> dict[str, Any]:
        # The caller's number is kept on the journey itself, once.
        details = {"did": self.did, "caller_name": self.caller_name}
        return details | ({"raw_number": self.raw_number} if self.raw_number else {})


@event
@dataclasses.dataclass(frozen=True, slots=True)
class Decided(JourneyEvent):
    """The routing decision: the plan as `explain --json` prints it, and which path made it.

    Build it with `Decided.of(plan, via=...)`: one shape whichever path
    decided. `resumed` marks a call an engine took on again without memory
    of it (after a restart): the decision was made afresh for the same call.
    """

    kind = EventKind.DECIDED
    practice: str  # the practice id; empty for a number no practice claims
    status: str  # "open" / "closed" at the instant of the decision
    reason: str
    plan: Mapping[str, Any]  # `Plan.to_json()`
    known_did: bool = True
    via: Via = Via.ARI
    resumed: bool = False

    @classmethod
    def of(cls, plan: Plan, *, via: Via, resumed: bool = False) -> Decided:
        """The decision event for `plan`."""
        return cls(
            practice=plan.practice_id,
            status=plan.status,
            reason=plan.reason,
            plan=plan.to_json(),
            known_did=plan.known_did,
            via=via,
            resumed=resumed,
        )

    def details(self) -> dict[str, Any]:
        details = {**self.plan, "via": self.via.value}
        if self.resumed:
            details["resumed"] = True
        return details

    @classmethod
    def from_details(cls, details: Mapping[str, Any]) -> Decided:
        plan = {k: v for k, v in details.items() if k not in ("via", "resumed")}
        return cls(
            practice=str(details.get("practice") or ""),
            status=str(details.get("status") or ""),
            reason=str(details.get("reason") or ""),
            plan=plan,
            known_did=details.get("known_did") is not False,
            via=_enum(Via, details.get("via"), Via.ARI),
            resumed=bool(details.get("resumed")),
        )


@event
@dataclasses.dataclass(frozen=True, slots=True)
class AnnouncementPlayed(JourneyEvent):
    """The emergency announcement played to its end."""

    kind = EventKind.ANNOUNCEMENT_PLAYED


@event
@dataclasses.dataclass(frozen=True, slots=True)
class StaffRinging(JourneyEvent):
    """The front desk is being rung (`after`: why the previous step ended, if any)."""

    kind = EventKind.STAFF_RINGING
    step: int
    target: str
    label: str = ""
    after: str | None = None


@event
@dataclasses.dataclass(frozen=True, slots=True)
class QueueEntered(JourneyEvent):
    """The caller was handed to the operator queue `target` for at most `max_wait` seconds."""

    kind = EventKind.QUEUE_ENTERED
    step: int
    target: str
    max_wait: int
    label: str = ""
    after: str | None = None


@event
@dataclasses.dataclass(frozen=True, slots=True)
class OperatorsSkipped(JourneyEvent):
    """An operators step was passed over as it was about to start: nobody could answer there."""

    kind = EventKind.OPERATORS_SKIPPED
    step: int
    target: str
    reason: str


@event
@dataclasses.dataclass(frozen=True, slots=True)
class QueueTimeout(JourneyEvent):
    """The caller came back from the queue unanswered (`status`: Asterisk's QUEUESTATUS)."""

    kind = EventKind.QUEUE_TIMEOUT
    status: str


@event
@dataclasses.dataclass(frozen=True, slots=True)
class OperatorAnswered(JourneyEvent):
    """An operator took the call from the queue (`member`: app_queue's interface)."""

    kind = EventKind.OPERATOR_ANSWERED
    member: str


@event
@dataclasses.dataclass(frozen=True, slots=True)
class OncallDialing(JourneyEvent):
    """A doctor is being rung (`role` primary/backup; `confirm`: they must press 1)."""

    kind = EventKind.ONCALL_DIALING
    step: int
    target: str
    doctor: str
    label: str = ""
    role: str | None = None
    confirm: bool = False
    after: str | None = None


@event
@dataclasses.dataclass(frozen=True, slots=True)
class OncallAnswered(JourneyEvent):
    """The doctor's phone answered and the press-1 prompt started: the caller is not through yet."""

    kind = EventKind.ONCALL_ANSWERED
    doctor: str


@dataclasses.dataclass(frozen=True, slots=True)
class OncallMissed(JourneyEvent):
    """The doctor being rung was not reached; the chain escalates. `cause` says how."""

    doctor: str
    cause: str = ""


@event
@dataclasses.dataclass(frozen=True, slots=True)
class OncallDeclined(OncallMissed):
    """The doctor rejected the call, or hung up on the press-1 prompt."""

    kind = EventKind.ONCALL_DECLINED


@event
@dataclasses.dataclass(frozen=True, slots=True)
class OncallNoAnswer(OncallMissed):
    """The doctor's phone rang out (or could not be reached)."""

    kind = EventKind.ONCALL_NO_ANSWER


@event
@dataclasses.dataclass(frozen=True, slots=True)
class OncallBusy(OncallMissed):
    """The doctor's line was busy."""

    kind = EventKind.ONCALL_BUSY


@event
@dataclasses.dataclass(frozen=True, slots=True)
class OncallNotConfirmed(OncallMissed):
    """Answered, but nobody pressed 1 in time (a voicemail, most often): hung up on."""

    kind = EventKind.ONCALL_NOT_CONFIRMED


@event
@dataclasses.dataclass(frozen=True, slots=True)
class OncallConfirmed(JourneyEvent):
    """The doctor pressed 1 to take the call."""

    kind = EventKind.ONCALL_CONFIRMED
    doctor: str


@event
@dataclasses.dataclass(frozen=True, slots=True)
class Bridged(JourneyEvent):
    """The caller was connected to a person: `kind` of step, who (`target`)."""

    kind = EventKind.BRIDGED
    step_kind: StepKind
    target: str
    label: str = ""

    def details(self) -> dict[str, Any]:
        return {"kind": self.step_kind.value, "target": self.target, "label": self.label}

    @classmethod
    def from_details(cls, details: Mapping[str, Any]) -> Bridged:
        # Early rows said "operator" for the queue's kind.
        stored = details.get("kind")
        step_kind = StepKind.OPERATORS if stored == "operator" else stored
        return cls(
            step_kind=_enum(StepKind, step_kind, StepKind.OPERATORS),
            target=str(details.get("target") or ""),
            label=str(details.get("label") or ""),
        )


@event
@dataclasses.dataclass(frozen=True, slots=True)
class CallerHungUp(JourneyEvent):
    """The caller's line ended."""

    kind = EventKind.CALLER_HUNG_UP


@event
@dataclasses.dataclass(frozen=True, slots=True)
class CalleeHungUp(JourneyEvent):
    """The person the caller talked to hung up."""

    kind = EventKind.CALLEE_HUNG_UP


@event
@dataclasses.dataclass(frozen=True, slots=True)
class Ended(JourneyEvent):
    """The journey's end: its outcome, who answered, and why when handed to the dialplan."""

    kind = EventKind.ENDED
    outcome: Outcome
    answered_by: str | None = None
    reason: str | None = None

    @classmethod
    def from_details(cls, details: Mapping[str, Any]) -> Ended:
        answered_by = details.get("answered_by")
        reason = details.get("reason")
        return cls(
            outcome=_enum(Outcome, details.get("outcome"), Outcome.ENGINE_ERROR),
            answered_by=None if answered_by is None else str(answered_by),
            reason=None if reason is None else str(reason),
        )


@event
@dataclasses.dataclass(frozen=True, slots=True)
class EngineRestarted(JourneyEvent):
    """Written on start for a journey the previous run left open, before closing it."""

    kind = EventKind.ENGINE_RESTARTED
    outcome_reached: Outcome
    last_event: str | None = None
    last_event_at: datetime | None = None


@event
@dataclasses.dataclass(frozen=True, slots=True)
class SafetyNetTook(JourneyEvent):
    """The dialplan's safety net carried the call (no engine claimed it, or one handed it back).

    `reason`: why, in Asterisk's words (STASISSTATUS: TIMEOUT, nobody claimed
    it; SUCCESS, an engine handed it back). The events after it are the
    safety net's own notes (`safetynet/notes.py`), collected by an engine.
    """

    kind = EventKind.SAFETY_NET
    reason: str = ""


# -- written by the console, during or after the call (`coverage_engine.message`) ------------


@dataclasses.dataclass(frozen=True, slots=True)
class MessageEvent(JourneyEvent):
    """An event of the call's message: who (`by`) and which `version` of it."""


@event
@dataclasses.dataclass(frozen=True, slots=True)
class MessageTaken(MessageEvent):
    """An operator took the message (`fields`: the message's fields as saved)."""

    kind = EventKind.MESSAGE_TAKEN
    by: str
    fields: Mapping[str, Any]
    version: int = 1

    def details(self) -> dict[str, Any]:
        return {"version": self.version, "by": self.by, **self.fields}

    @classmethod
    def from_details(cls, details: Mapping[str, Any]) -> MessageTaken:
        fields = {k: v for k, v in details.items() if k not in ("version", "by")}
        return cls(str(details.get("by") or ""), fields, _int(details.get("version"), 1))


@event
@dataclasses.dataclass(frozen=True, slots=True)
class MessageCorrected(MessageEvent):
    """A correction: `changes` is field -> [before, after]; `fields` the message as now saved."""

    kind = EventKind.MESSAGE_CORRECTED
    by: str
    version: int
    changes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@event
@dataclasses.dataclass(frozen=True, slots=True)
class Disposition(MessageEvent):
    """What was done with the call (patched to on-call, message for the office...)."""

    kind = EventKind.DISPOSITION
    disposition: str
    by: str
    version: int
    note: str = ""


@event
@dataclasses.dataclass(frozen=True, slots=True)
class MessageAcknowledged(MessageEvent):
    """Someone at the practice acknowledged the message (`via`: where)."""

    kind = EventKind.MESSAGE_ACKNOWLEDGED
    by: str
    via: str = "console"


# -- written by paging, after the message (`coverage_engine.paging`) --------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class PageEvent(JourneyEvent):
    """An event of paging the call's message to the doctor on call (`attempt` counts from 1)."""


@event
@dataclasses.dataclass(frozen=True, slots=True)
class PageRequested(PageEvent):
    """The message is to be paged (taken urgent, raised to urgent, or resent by someone)."""

    kind = EventKind.PAGE_REQUESTED
    urgency: str
    by: str
    why: str


@event
@dataclasses.dataclass(frozen=True, slots=True)
class PageEscalated(PageEvent):
    """Nobody acknowledged in time (or nobody fills a rung): the next rung, `target`."""

    kind = EventKind.PAGE_ESCALATED
    attempt: int
    target: str  # primary / backup / operators
    reason: str


@event
@dataclasses.dataclass(frozen=True, slots=True)
class PageSent(PageEvent):
    """One channel of one attempt went out (a voice call dialed, a webhook taken...)."""

    kind = EventKind.PAGE_SENT
    attempt: int
    channel: str
    target: str
    doctor: str | None = None


@event
@dataclasses.dataclass(frozen=True, slots=True)
class PageAnswered(PageEvent):
    """A voice page was answered: a person, or a voicemail, until they press 1."""

    kind = EventKind.PAGE_ANSWERED
    attempt: int
    doctor: str


@event
@dataclasses.dataclass(frozen=True, slots=True)
class PageAcknowledged(PageEvent):
    """The paged doctor pressed 1: the message is acknowledged."""

    kind = EventKind.PAGE_ACKNOWLEDGED
    attempt: int
    doctor: str
    channel: str


@event
@dataclasses.dataclass(frozen=True, slots=True)
class PageFailed(PageEvent):
    """One channel of one attempt reached nobody (`reason` in an admin's words)."""

    kind = EventKind.PAGE_FAILED
    attempt: int
    channel: str
    reason: str
    doctor: str | None = None


@event
@dataclasses.dataclass(frozen=True, slots=True)
class PageConnected(PageEvent):
    """The doctor pressed 2: connected to the callback number (`result` connected), or why not."""

    kind = EventKind.PAGE_CONNECTED
    attempt: int
    doctor: str
    result: str


@event
@dataclasses.dataclass(frozen=True, slots=True)
class PageCancelled(PageEvent):
    """The message stopped needing a page (corrected to routine)."""

    kind = EventKind.PAGE_CANCELLED
    by: str
    reason: str


# -- a handoff check: the engine calls the doctor coming on call (`coverage_engine.paging`) -----


@dataclasses.dataclass(frozen=True, slots=True)
class HandoffEvent(JourneyEvent):
    """An event of a handoff check's journey (`attempt` counts from 1)."""


@event
@dataclasses.dataclass(frozen=True, slots=True)
class HandoffCheckStarted(HandoffEvent):
    """Opens a handoff check's journey: `doctor` is on call for `practice` from `starts_at`
    until `until` (None: no end within the week ahead), taking over from `previous`."""

    kind = EventKind.HANDOFF_CHECK_STARTED
    practice: str
    doctor: str
    starts_at: datetime
    until: datetime | None = None
    previous: str | None = None
    source: str = ""  # rotation / swap: <reason> / fixed
    attempts: int = 1  # how many calls the check may make


@event
@dataclasses.dataclass(frozen=True, slots=True)
class HandoffDialing(HandoffEvent):
    """The doctor's phone is being called (their dial string from the configuration)."""

    kind = EventKind.HANDOFF_DIALING
    attempt: int
    doctor: str


@event
@dataclasses.dataclass(frozen=True, slots=True)
class HandoffAnswered(HandoffEvent):
    """The call was answered (a person or a voicemail: only a press of 1 confirms)."""

    kind = EventKind.HANDOFF_ANSWERED
    attempt: int
    doctor: str


@event
@dataclasses.dataclass(frozen=True, slots=True)
class HandoffDoctorConfirmed(HandoffEvent):
    """The doctor pressed 1: they know they are on call, and their phone works."""

    kind = EventKind.HANDOFF_DOCTOR_CONFIRMED
    attempt: int
    doctor: str


@event
@dataclasses.dataclass(frozen=True, slots=True)
class HandoffAttemptFailed(HandoffEvent):
    """One call reached nobody who pressed 1 (`reason` in an admin's words)."""

    kind = EventKind.HANDOFF_ATTEMPT_FAILED
    attempt: int
    doctor: str
    reason: str


@event
@dataclasses.dataclass(frozen=True, slots=True)
class HandoffAlertRaised(HandoffEvent):
    """No confirmation after every attempt: the operators (console banner, metric) and the
    practice (notifications) are alerted."""

    kind = EventKind.HANDOFF_ALERT_RAISED
    doctor: str
    attempts: int


@event
@dataclasses.dataclass(frozen=True, slots=True)
class HandoffAlertSent(HandoffEvent):
    """One channel of the alert went out (console, webhook, email; `to` for e-mail)."""

    kind = EventKind.HANDOFF_ALERT_SENT
    channel: str
    to: str = ""


@event
@dataclasses.dataclass(frozen=True, slots=True)
class HandoffAlertFailed(HandoffEvent):
    """One channel of the alert could not go out, and why."""

    kind = EventKind.HANDOFF_ALERT_FAILED
    channel: str
    reason: str


@event
@dataclasses.dataclass(frozen=True, slots=True)
class HandoffAlertResolved(HandoffEvent):
    """Someone marked the alert dealt with (the doctor reached another way), in the console."""

    kind = EventKind.HANDOFF_ALERT_RESOLVED
    by: str
    note: str = ""


@event
@dataclasses.dataclass(frozen=True, slots=True)
class HandoffCheckCancelled(HandoffEvent):
    """The check was no longer needed before it was done (the configuration changed)."""

    kind = EventKind.HANDOFF_CHECK_CANCELLED
    reason: str


#: The events that mean "this doctor was not reached; escalate".
ONCALL_MISSED = frozenset(k for k, c in _BY_KIND.items() if issubclass(c, OncallMissed))


# -- reading and writing field values ---------------------------------------------------------

_T = TypeVar("_T", bound=Enum)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _fields(obj: object) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(obj)  # type: ignore[arg-type]


def _int(value: object, default: int) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default


def _plain(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    return value


def _enum(enum: type[_T], value: object, default: _T) -> _T:
    try:
        return enum(value)
    except ValueError:
        return default


def _read(hint: Any, field: dataclasses.Field[Any], value: object) -> object:
    """`value` as a field of type `hint`; its default (or the type's empty value) if unusable."""
    optional = False
    if isinstance(hint, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = len(args) < len(typing.get_args(hint)), args[0]
    default = _default(field, hint, optional)
    if value is None:
        return default
    convert = _CONVERTERS.get(hint)
    if convert is None and isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError:
            return default
    if convert is None:
        return value
    try:
        return convert(value)
    except (TypeError, ValueError):
        return default


def _default(field: dataclasses.Field[Any], hint: Any, optional: bool) -> object:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    if optional:
        return None
    if isinstance(hint, type) and issubclass(hint, Enum):
        return next(iter(hint))
    return _EMPTY.get(hint)


_CONVERTERS: Mapping[Any, Callable[[Any], object]] = {
    str: str,
    int: int,
    bool: bool,
    float: float,
    datetime: lambda v: v if isinstance(v, datetime) else datetime.fromisoformat(str(v)),
}
_EMPTY: Mapping[Any, object] = {str: "", int: 0, bool: False, float: 0.0}
