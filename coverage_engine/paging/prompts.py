"""What a doctor hears on the engine's calls: our prompts, Asterisk's for dates and times (pure).

Fixed sentences are our own recordings (sounds/en/*.gsm, made by
scripts/make-prompts with espeak-ng and sox; the PBX has them as
`coverage/<name>`). What changes from call to call is said with the PBX's
own recordings: digits for a callback number (`digits:`), numbers
(`number:`), and weekdays, months, ordinals, "at" and AM/PM from Asterisk's
core sounds (`digits/day-1`, `digits/mon-11`, `digits/h-14` ...), the
same files its SayUnixTime speaks dates with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from coverage_engine.config.model import Practice


def sound(name: str) -> str:
    """A prompt of ours (sounds/en/, installed under the PBX's sounds as coverage/)."""
    return f"sound:coverage/{name}"


def _ordinal(day: int) -> list[str]:
    # Asterisk has "first" .. "twentieth" and "thirtieth" (digits/h-N); the
    # twenty-somethings are "twenty" + "first" .. "ninth", as its SayUnixTime does.
    if day <= 20 or day == 30:
        return [f"sound:digits/h-{day}"]
    tens, ones = divmod(day, 10)
    return [f"sound:digits/{tens * 10}", f"sound:digits/h-{ones}"]


def spoken_instant(instant: datetime, zone: ZoneInfo) -> list[str]:
    """ "Monday, December 14th, at 8 AM" (or 8:30, 8 oh 5 PM) as media Asterisk plays."""
    local = instant.astimezone(zone)
    weekday = (local.weekday() + 1) % 7  # Asterisk counts from Sunday
    media = [f"sound:digits/day-{weekday}", f"sound:digits/mon-{local.month - 1}"]
    media += _ordinal(local.day)
    media += ["sound:digits/at", f"number:{local.hour % 12 or 12}"]
    if 0 < local.minute < 10:
        media += ["sound:digits/oh", f"number:{local.minute}"]
    elif local.minute:
        media.append(f"number:{local.minute}")
    media.append("sound:digits/a-m" if local.hour < 12 else "sound:digits/p-m")
    return media


@dataclass(frozen=True, slots=True)
class Sentence:
    """What a handoff check says: `media` (with the practice's name), `fallback` without it
    (a practice whose name was never recorded), and what a confirmation hears."""

    media: tuple[str, ...]
    fallback: tuple[str, ...]
    confirmed: tuple[str, ...] = (sound("handoff-confirmed"),)


def handoff_sentence(practice: Practice, until: datetime | None) -> Sentence:
    """'You are on call for <practice> until <when>. Press 1 to confirm.'"""
    lead = [sound("handoff-on-call")]
    tail = [sound("handoff-until"), *spoken_instant(until, practice.zone)] if until else []
    press = [sound("handoff-press-1")]
    named = [*lead, sound(f"practice-{practice.id}"), *tail, *press]
    return Sentence(tuple(named), (*lead, *tail, *press))


@dataclass(frozen=True, slots=True)
class Prompts:
    """The sounds of a voice page (sounds/en/page-*.gsm, made by scripts/make-prompts)."""

    urgent: str = sound("page-urgent")  # "You have an urgent message from the answering service"
    emergency: str = sound("page-emergency")
    press_1: str = sound("page-press-1")  # "Press 1 to accept it."
    accepted: str = sound("page-accepted")  # "Thank you. The message is acknowledged."
    callback: str = sound("page-callback")  # "The callback number is"
    no_callback: str = sound("page-no-callback")  # "No callback number can be dialed..."
    category_urgent: str = sound("page-category-urgent")  # "This message is urgent."
    category_emergency: str = sound("page-category-emergency")
    menu: str = sound("page-menu")  # "Press 2 to be connected now, 3 to hear it again..."
    connecting: str = sound("coverage-connecting")
    connect_failed: str = sound("page-connect-failed")  # "The number could not be reached."

    @staticmethod
    def practice(practice_id: str) -> str:
        return sound(f"practice-{practice_id}")  # "for Maple Grove Pediatrics"
