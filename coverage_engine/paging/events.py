"""The journey events of paging a message, as types (written on the message's call).

Every attempt and its result is an event on the original call's journey,
after the message events: `calls show` tells the whole night, the report
counts escalations and the time to acknowledgement. None of them carries
patient data beyond what the journey already holds.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from coverage_engine.records.vocabulary import EventKind


@dataclasses.dataclass(frozen=True, slots=True)
class PageEvent:
    """Base of the paging events: `details()` is every field."""

    kind: ClassVar[EventKind]

    def details(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class PageRequested(PageEvent):
    """The message is to be paged (taken urgent, raised to urgent, or resent by someone)."""

    kind = EventKind.PAGE_REQUESTED
    urgency: str
    by: str
    why: str


@dataclasses.dataclass(frozen=True, slots=True)
class PageEscalated(PageEvent):
    """Nobody acknowledged within the window (or nobody fills a rung): the next rung."""

    kind = EventKind.PAGE_ESCALATED
    attempt: int
    target: str  # primary / backup / operators
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class PageSent(PageEvent):
    """One channel of one attempt went out (a voice call dialed, a webhook posted...)."""

    kind = EventKind.PAGE_SENT
    attempt: int
    channel: str
    target: str
    doctor: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PageAnswered(PageEvent):
    """A voice page was answered: a person, or a voicemail, until they press 1."""

    kind = EventKind.PAGE_ANSWERED
    attempt: int
    doctor: str


@dataclasses.dataclass(frozen=True, slots=True)
class PageAcknowledged(PageEvent):
    """The paged doctor pressed 1: the message is acknowledged."""

    kind = EventKind.PAGE_ACKNOWLEDGED
    attempt: int
    doctor: str
    channel: str


@dataclasses.dataclass(frozen=True, slots=True)
class PageFailed(PageEvent):
    """One channel of one attempt did not reach anyone (`reason` in an admin's words)."""

    kind = EventKind.PAGE_FAILED
    attempt: int
    channel: str
    reason: str
    doctor: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PageConnected(PageEvent):
    """The doctor pressed 2 and was connected to the callback number (or why not)."""

    kind = EventKind.PAGE_CONNECTED
    attempt: int
    doctor: str
    result: str  # bridged / no_answer / busy / refused ...


@dataclasses.dataclass(frozen=True, slots=True)
class PageCancelled(PageEvent):
    """The message stopped needing a page (corrected to routine)."""

    kind = EventKind.PAGE_CANCELLED
    by: str
    reason: str
