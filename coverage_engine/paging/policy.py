"""Who is paged next for an unacknowledged message, and when (pure).

A page climbs the practice's escalation ladder (`paging.escalation`, by
default primary, primary, backup, operators), one rung per acknowledgement
window (`paging.ack_seconds`: 10 minutes for urgent, 5 for emergency), and
starts the ladder again after its last rung, until someone acknowledges. Each
rung is resolved at the instant it is climbed, with the routing core, so a
page that outlives an on-call handoff reaches the doctor on call *then*.

A rung nobody fills right now (no backup this week, no roster, an unknown
practice) is passed over at once, with the reason, to the next rung; the
ladder always holds `operators`, so every page ends with people who can act.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from coverage_engine.config.model import DEFAULT_PAGE_LADDER, Practice, PracticePaging
from coverage_engine.message import Urgency
from coverage_engine.routing import decide_for_practice

#: No page is sent twice within this time, whatever happens (restarts, two engines).
MIN_RESEND = timedelta(minutes=1)


class Target(StrEnum):
    """Who a rung of the ladder pages."""

    PRIMARY = "primary"
    BACKUP = "backup"
    OPERATORS = "operators"


class Channel(StrEnum):
    """How a page reaches its target."""

    VOICE = "voice"  # a phone call over ARI: press 1 to accept
    WEBHOOK = "webhook"  # HTTP POST, signed, no patient data
    EMAIL = "email"  # SMTP to a pager or SMS gateway, no patient data
    CONSOLE = "console"  # the operators' board banner and the alert metric


def pages(urgency: Urgency) -> bool:
    """Whether a message of this urgency is paged (emergency and urgent ones are)."""
    return urgency in (Urgency.EMERGENCY, Urgency.URGENT)


def ack_window(paging: PracticePaging, urgency: Urgency) -> timedelta:
    """How long the paged person has to acknowledge before the next rung."""
    emergency = urgency is Urgency.EMERGENCY
    seconds = paging.ack_seconds.emergency if emergency else paging.ack_seconds.urgent
    return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Skip:
    """A rung passed over, and why (written on the record as the page escalates)."""

    target: Target
    reason: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """One rung climbed: who is paged, by which channels, and what was passed over to get here.

    `rung` is the position in the endless ladder (0, 1, 2, ...); the next
    attempt starts from `next_rung`. `doctor` is set for the primary and
    backup rungs; the operators' rung pages no doctor.
    """

    rung: int
    target: Target
    doctor: str | None
    doctor_name: str
    channels: tuple[Channel, ...]
    skipped: tuple[Skip, ...]
    next_rung: int


def _ladder(practice: Practice | None) -> tuple[str, ...]:
    return practice.paging.escalation if practice is not None else DEFAULT_PAGE_LADDER


def target_at(practice: Practice | None, rung: int) -> Target:
    """The target of a rung of the endless ladder."""
    ladder = _ladder(practice)
    return Target(ladder[rung % len(ladder)])


def _doctor_for(practice: Practice, target: Target, instant: datetime) -> tuple[str | None, str]:
    """(doctor id, '') for a rung at `instant`, or (None, why nobody)."""
    if practice.oncall is None:
        return None, "the practice has no doctors on call (no oncall: in the configuration)"
    oncall = decide_for_practice(practice, instant).oncall
    if oncall is None:
        return None, "nobody is on call now"
    doctor = oncall.primary if target is Target.PRIMARY else oncall.backup
    if doctor is None:
        return None, f"nobody is on call as {target.value} now"
    if target is Target.BACKUP and doctor == oncall.primary:
        return None, f"the backup, {doctor}, is the primary now"
    if doctor not in practice.oncall.doctors:
        return None, f'the doctor on call, "{doctor}", is not defined under oncall.doctors'
    return doctor, ""


def plan_attempt(
    practice: Practice | None, rung: int, instant: datetime, *, practice_id: str = ""
) -> Attempt:
    """The attempt that climbs `rung` at `instant` (passing over rungs nobody fills).

    `practice` None (the message's practice is not in the configuration any
    more) goes straight to the operators, saying so.
    """
    if practice is None:
        # No doctors to page: the operators at once, with the reason once.
        channels = _operator_channels(None)
        skip = Skip(target_at(None, rung), no_practice(practice_id))
        return Attempt(rung, Target.OPERATORS, None, "the operators", channels, (skip,), rung + 1)
    skipped: list[Skip] = []
    ladder_length = len(_ladder(practice))
    for offset in range(ladder_length + 1):
        at = rung + offset
        target = target_at(practice, at)
        if target is Target.OPERATORS:
            channels = _operator_channels(practice)
            return Attempt(at, target, None, "the operators", channels, tuple(skipped), at + 1)
        doctor, why = _doctor_for(practice, target, instant)
        if doctor is None:
            skipped.append(Skip(target, why))
            continue
        assert practice.oncall is not None  # _doctor_for found a doctor in it
        name = practice.oncall.doctors[doctor].name
        channels = tuple(Channel(c) for c in practice.paging.channels)
        return Attempt(at, target, doctor, name, channels, tuple(skipped), at + 1)
    # Unreachable: the model requires `operators` in every ladder.
    raise AssertionError("escalation ladder without operators")  # pragma: no cover


def no_practice(practice_id: str) -> str:
    """Why a message's page reaches no doctor: its call belongs to no configured practice."""
    if not practice_id:
        return "the call reached no practice (a number no practice claims): no doctor to page"
    return (
        f'practice "{practice_id}" is not in the configuration (removed or renamed?): '
        "no doctor to page"
    )


def _operator_channels(practice: Practice | None) -> tuple[Channel, ...]:
    """The operators' board; the practice's alert addresses and its webhook, if it has them."""
    channels = [Channel.CONSOLE]
    if practice is not None:
        if "webhook" in practice.paging.channels:
            channels.append(Channel.WEBHOOK)
        if practice.paging.alert_email:
            channels.append(Channel.EMAIL)
    return tuple(channels)


def next_due(sent_at: datetime, practice: Practice | None, urgency: Urgency) -> datetime:
    """When the next rung is climbed if nobody acknowledges: one window after this one."""
    paging = practice.paging if practice is not None else PracticePaging()
    return sent_at + max(ack_window(paging, urgency), MIN_RESEND)


def soon_after_nothing_went_out(sent_at: datetime) -> datetime:
    """When the next rung is climbed after an attempt that reached nobody at all.

    No channel delivered anything (the doctor's phone could not be dialed,
    no pager address, every notification refused): nobody has anything to
    acknowledge, so waiting out the window would only lose time. The next
    rung goes a minute later, the least time between two pages.
    """
    return sent_at + MIN_RESEND


def escalation_reason(last_attempt_reached_anyone: bool) -> str:
    """Why a page climbs to its next rung, in words for the record."""
    if last_attempt_reached_anyone:
        return "not acknowledged in time"
    return "the last attempt reached nobody"
