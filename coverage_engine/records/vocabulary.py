"""The closed vocabulary of a call's record: outcomes and event kinds.

These strings are stored in the journey database and printed by the CLI, so
they are a public format: add members, never rename or remove one (old rows
must keep their meaning). `docs/records.md` explains each of them.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """How a call ended, seen from the caller: did a person take it, and who."""

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

    @property
    def answered(self) -> bool:
        """Whether a person took the call."""
        return self in _ANSWERED

    @property
    def abandoned(self) -> bool:
        """Whether the caller gave up before a person took the call."""
        return self in _ABANDONED


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


class EventKind(StrEnum):
    """Something that happened on one call, in the order it happened."""

    RECEIVED = "received"  # the call entered the application
    DECIDED = "decided"  # the routing decision: details are the Plan's JSON
    ANNOUNCEMENT_PLAYED = "announcement_played"
    STAFF_RINGING = "staff_ringing"  # details: target, step
    QUEUE_ENTERED = "queue_entered"  # details: queue, step, max_wait
    # An operators step passed over just before the caller would have entered
    # the queue (presence changed since the decision). details: step, target, reason
    OPERATORS_SKIPPED = "operators_skipped"
    QUEUE_TIMEOUT = "queue_timeout"  # details: queue, status (Asterisk's QUEUESTATUS)
    OPERATOR_ANSWERED = "operator_answered"  # details: queue, member
    ONCALL_DIALING = "oncall_dialing"  # details: doctor, role (primary/backup), step
    ONCALL_DECLINED = "oncall_declined"
    ONCALL_NO_ANSWER = "oncall_no_answer"
    ONCALL_BUSY = "oncall_busy"
    ONCALL_NOT_CONFIRMED = "oncall_not_confirmed"  # answered but did not press 1
    ONCALL_CONFIRMED = "oncall_confirmed"
    BRIDGED = "bridged"  # details: kind (staff/operator/oncall), target
    CALLER_HUNG_UP = "caller_hung_up"
    CALLEE_HUNG_UP = "callee_hung_up"
    ENDED = "ended"  # written by `finish`: details: outcome, answered_by
    # Written by recovery on start for a journey the previous process left open.
    ENGINE_RESTARTED = "engine_restarted"
    # Written by the console, during or after the call (see `coverage_engine.message`):
    # the message an operator took (details: version, by, the message fields),
    # each correction (version, by, changes: field -> [before, after], fields),
    # what was done with the call (disposition, note, by, version), and who at
    # the practice acknowledged the message (by, via).
    MESSAGE_TAKEN = "message_taken"
    MESSAGE_CORRECTED = "message_corrected"
    DISPOSITION = "disposition"
    MESSAGE_ACKNOWLEDGED = "message_acknowledged"


#: The on-call events that mean "this doctor was not reached; escalate".
ONCALL_MISSED = frozenset(
    {
        EventKind.ONCALL_DECLINED,
        EventKind.ONCALL_NO_ANSWER,
        EventKind.ONCALL_BUSY,
        EventKind.ONCALL_NOT_CONFIRMED,
    }
)
