"""Operator presence: who is logged in to which queue, folded from AMI events.

Pure code: no I/O, no clock reads. The AMI adapter hands in a `QueueStatus`
snapshot (the `QueueParams`/`QueueMember`/`QueueEntry` events of one response)
and then every queue event as it arrives; `apply` returns the new state.

Why a fold and not "ask Asterisk for every call": a caller must not wait while
we round-trip to AMI, and the answer "nobody is logged in" must be ready the
instant the call arrives at 4 a.m. Events are the source of truth between
snapshots; a fresh snapshot replaces everything (after a reconnect we cannot
know what we missed).

Field names follow Asterisk 12+ app_queue. The `QueueMember` event of a
`QueueStatus` response names its member with `Name`/`Location`, while the live
`QueueMember*` events say `MemberName`/`Interface`: both are accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import IntEnum

AmiEvent = Mapping[str, str]


class DeviceState(IntEnum):
    """Asterisk's numeric device state of a queue member (`Status` header)."""

    UNKNOWN = 0
    NOT_INUSE = 1
    INUSE = 2
    BUSY = 3
    INVALID = 4
    UNAVAILABLE = 5
    RINGING = 6
    RINGINUSE = 7
    ONHOLD = 8


# A member whose phone is not registered cannot answer: app_queue would ring
# nobody and the caller would sit in music on hold. Such a member is logged in
# but does not count as available.
_UNREACHABLE = frozenset({DeviceState.INVALID, DeviceState.UNAVAILABLE})


@dataclass(frozen=True, slots=True)
class Member:
    """One operator logged in to one queue (as app_queue reports it)."""

    queue: str
    interface: str  # e.g. PJSIP/operator1: the identity app_queue uses
    name: str
    membership: str  # dynamic | static | realtime
    paused: bool = False
    paused_reason: str = ""
    device: DeviceState = DeviceState.UNKNOWN
    in_call: bool = False
    calls_taken: int = 0
    last_call: datetime | None = None
    login_time: datetime | None = None

    @property
    def reachable(self) -> bool:
        return self.device not in _UNREACHABLE

    @property
    def available(self) -> bool:
        """Logged in, not paused, and with a phone that can ring."""
        return not self.paused and self.reachable

    def idle_for(self, now: datetime) -> timedelta | None:
        """Time since the last call ended (or since login when none yet)."""
        since = self.last_call or self.login_time
        if since is None:
            return None
        return max(now - since, timedelta(0))


@dataclass(frozen=True, slots=True)
class QueueAvailability:
    """The answer the router needs about one queue at one instant."""

    queue: str
    logged_in: int
    available: int  # logged in, unpaused, phone reachable
    paused: int
    waiting: int  # callers in the queue right now


@dataclass(frozen=True, slots=True)
class Presence:
    """Queue membership and waiting callers of every queue AMI told us about.

    `synced` is False until a QueueStatus snapshot arrived, and again after the
    AMI connection drops: then nothing is known, and callers of `availability`
    get None rather than a confident "zero operators".
    """

    synced: bool = False
    queues: frozenset[str] = frozenset()
    members: Mapping[tuple[str, str], Member] = field(default_factory=dict)
    waiting: Mapping[str, frozenset[str]] = field(default_factory=dict)  # queue -> uniqueids

    def availability(self, queue: str) -> QueueAvailability | None:
        """Counts for `queue`, or None when we do not know (not synced, unknown queue)."""
        if not self.synced or queue not in self.queues:
            return None
        mine = self.members_of(queue)
        return QueueAvailability(
            queue=queue,
            logged_in=len(mine),
            available=sum(1 for m in mine if m.available),
            paused=sum(1 for m in mine if m.paused),
            waiting=len(self.waiting.get(queue, frozenset())),
        )

    def members_of(self, queue: str) -> tuple[Member, ...]:
        return tuple(m for (q, _), m in sorted(self.members.items()) if q == queue)

    def all_members(self) -> tuple[Member, ...]:
        return tuple(m for _, m in sorted(self.members.items()))


# ---------------------------------------------------------------------------
# Reading AMI headers. Asterisk sends everything as text; a missing or garbled
# number must not crash the fold (one odd event would blind us to presence).


def _int(event: AmiEvent, key: str, default: int = 0) -> int:
    try:
        return int(event.get(key, default))
    except (TypeError, ValueError):
        return default


def _epoch(event: AmiEvent, key: str) -> datetime | None:
    # app_queue reports 0 for "never".
    seconds = _int(event, key)
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds > 0 else None


def _bool(event: AmiEvent, key: str) -> bool:
    return event.get(key, "").strip().lower() in {"1", "true", "yes"}


def _device(event: AmiEvent) -> DeviceState:
    try:
        return DeviceState(_int(event, "Status"))
    except ValueError:
        return DeviceState.UNKNOWN


def _interface(event: AmiEvent) -> str:
    return event.get("Interface") or event.get("Location") or ""


def member_from_event(event: AmiEvent) -> Member | None:
    """Build a `Member` from any event carrying a full member record."""
    queue, interface = event.get("Queue", ""), _interface(event)
    if not queue or not interface:
        return None
    # QueueMemberPause carries the reason in `PausedReason` (and `Reason` on
    # older releases); an unpaused member has no reason worth showing.
    paused = _bool(event, "Paused")
    reason = (event.get("PausedReason") or event.get("Reason") or "") if paused else ""
    return Member(
        queue=queue,
        interface=interface,
        name=event.get("MemberName") or event.get("Name") or interface,
        membership=event.get("Membership", ""),
        paused=paused,
        paused_reason=reason,
        device=_device(event),
        in_call=_bool(event, "InCall"),
        calls_taken=_int(event, "CallsTaken"),
        last_call=_epoch(event, "LastCall"),
        login_time=_epoch(event, "LoginTime"),
    )


# Live events that carry a member's whole record: each one replaces it.
_MEMBER_UPSERTS = frozenset(
    {
        "queuememberadded",
        "queuememberstatus",
        "queuememberpause",
        "queuememberpenalty",
        "queuememberringinuse",
    }
)
_CALLER_LEAVES = frozenset({"queuecallerleave", "queuecallerabandon"})


def snapshot(events: Iterable[AmiEvent]) -> Presence:
    """Presence from the events of one `QueueStatus` response."""
    queues: set[str] = set()
    members: dict[tuple[str, str], Member] = {}
    waiting: dict[str, set[str]] = {}
    for event in events:
        kind = event.get("Event", "").lower()
        queue = event.get("Queue", "")
        if not queue:
            continue
        if kind == "queueparams":
            queues.add(queue)
        elif kind == "queuemember":
            member = member_from_event(event)
            if member is not None:
                queues.add(queue)
                members[(queue, member.interface)] = member
        elif kind == "queueentry":
            queues.add(queue)
            waiting.setdefault(queue, set()).add(
                event.get("Uniqueid") or event.get("Channel") or event.get("Position", "")
            )
    return Presence(
        synced=True,
        queues=frozenset(queues),
        members=members,
        waiting={q: frozenset(ids) for q, ids in waiting.items()},
    )


def disconnected(presence: Presence) -> Presence:
    """What we know once the AMI connection dropped: nothing reliable."""
    return replace(presence, synced=False)


def apply(presence: Presence, event: AmiEvent) -> Presence:
    """Fold one live AMI event into `presence`. Unrelated events change nothing."""
    kind = event.get("Event", "").lower()
    queue = event.get("Queue", "")
    if not queue:
        return presence
    if kind in _MEMBER_UPSERTS:
        member = member_from_event(event)
        if member is None:
            return presence
        members = dict(presence.members)
        members[(queue, member.interface)] = member
        return replace(presence, members=members, queues=presence.queues | {queue})
    if kind == "queuememberremoved":
        key = (queue, _interface(event))
        if key not in presence.members:
            return presence
        members = dict(presence.members)
        del members[key]
        return replace(presence, members=members)
    if kind == "queuecallerjoin" or kind in _CALLER_LEAVES:
        caller = event.get("Uniqueid") or event.get("Channel", "")
        if not caller:
            return presence
        current = presence.waiting.get(queue, frozenset())
        updated = current | {caller} if kind == "queuecallerjoin" else current - {caller}
        if updated == current:
            return presence
        waiting = dict(presence.waiting)
        waiting[queue] = updated
        return replace(presence, waiting=waiting, queues=presence.queues | {queue})
    return presence
