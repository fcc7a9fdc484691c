"""A message an operator takes on a call: its fields, and the checks on them.

Pure: no I/O, no clock reads. The console's form, the records store and
paging all speak this one shape. A message belongs to one call (its journey);
what happens to it is written as journey events (`message_taken`,
`message_corrected`, `disposition`, `message_acknowledged`), and the store
keeps an inbox projection next to them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

#: How long after taking a message its operator may still correct it.
CORRECTION_WINDOW = timedelta(minutes=15)


class Urgency(StrEnum):
    """How soon someone must act; paging takes emergency and urgent messages."""

    EMERGENCY = "emergency"
    URGENT = "urgent"
    ROUTINE = "routine"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Disposition(StrEnum):
    """What the operator did with the call."""

    PATCHED_TO_ONCALL = "patched_to_oncall"
    MESSAGE_FOR_OFFICE = "message_for_office"
    ADVISED_911 = "advised_911"
    WRONG_NUMBER = "wrong_number"
    OTHER = "other"

    @property
    def label(self) -> str:
        return _DISPOSITION_LABELS[self]


_DISPOSITION_LABELS = {
    Disposition.PATCHED_TO_ONCALL: "Patched to the doctor on call",
    Disposition.MESSAGE_FOR_OFFICE: "Message for the office",
    Disposition.ADVISED_911: "Advised to call 911",
    Disposition.WRONG_NUMBER: "Wrong number",
    Disposition.OTHER: "Other",
}


@dataclass(frozen=True, slots=True)
class MessageFields:
    """What the operator typed (validated: see `parse_fields`)."""

    caller_name: str
    callback: str
    patient_name: str
    patient_dob: str  # YYYY-MM-DD (typed as MM/DD/YYYY or ISO) or empty
    reason: str
    urgency: Urgency
    disposition: Disposition
    disposition_note: str = ""

    def to_json(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MessageFields:
        """The fields as stored in an event or the inbox (already validated when written)."""
        return cls(
            caller_name=str(data.get("caller_name", "")),
            callback=str(data.get("callback", "")),
            patient_name=str(data.get("patient_name", "")),
            patient_dob=str(data.get("patient_dob", "")),
            reason=str(data.get("reason", "")),
            urgency=Urgency(str(data.get("urgency", Urgency.ROUTINE))),
            disposition=Disposition(str(data.get("disposition", Disposition.OTHER))),
            disposition_note=str(data.get("disposition_note", "")),
        )

    def changes_from(self, before: MessageFields) -> dict[str, list[str]]:
        """field -> [before, after] for every field that differs."""
        now, then = self.to_json(), before.to_json()
        return {k: [then[k], now[k]] for k in now if now[k] != then[k]}


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(MessageFields))

# Longest accepted value per field, in characters.
MAX_LENGTH: Mapping[str, int] = {
    "caller_name": 100,
    "callback": 32,
    "patient_name": 100,
    "patient_dob": 10,
    "reason": 2000,
    "urgency": 20,
    "disposition": 40,
    "disposition_note": 500,
}

# Characters that rewrite how text displays (bidi overrides and isolates): a
# reason could otherwise render reversed in the practice's inbox.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
_CALLBACK = re.compile(r"\+?[0-9 ().\-]{3,31}(?:\s*(?:x|ext\.?)\s*[0-9]{1,6})?")


class MessageInvalid(ValueError):
    """The form has fields to fix: field name -> what is wrong, in the operator's words."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.problems.items()))


def _bad_character(text: str, *, multiline: bool) -> str | None:
    for ch in text:
        if multiline and ch in "\n\t":
            continue
        if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            return f"U+{ord(ch):04X}"
    return None


def _text(
    name: str, raw: str, problems: dict[str, str], *, multiline: bool = False, required: bool
) -> str:
    text = raw.replace("\r\n", "\n").replace("\r", "\n") if multiline else raw
    text = text.strip()
    if len(text) > MAX_LENGTH[name]:
        problems[name] = f"is too long ({len(text)} characters; at most {MAX_LENGTH[name]})"
        return ""
    bad = _bad_character(text, multiline=multiline)
    if bad is not None:
        kind = "a control or formatting character" if bad != "U+000A" else "a line break"
        problems[name] = f"contains {kind} ({bad}); type plain text"
        return ""
    if required and not text:
        problems[name] = "is required"
    return text


_E = TypeVar("_E", bound=StrEnum)


def _choice(enum: type[_E], name: str, raw: str, problems: dict[str, str]) -> _E | None:
    try:
        return enum(raw.strip())
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        problems[name] = f"choose one of: {allowed}" if raw.strip() else "is required"
        return None


_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def _birth_date(text: str) -> date | None:
    """A date as operators type it in the US (MM/DD/YYYY), or ISO (YYYY-MM-DD)."""
    try:
        us = _US_DATE.fullmatch(text)
        if us:
            return date(int(us[3]), int(us[1]), int(us[2]))
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def _may_lack_callback(urgency: Urgency | None, disposition: Disposition | None) -> bool:
    """Whether a message may be saved without a callback number.

    A routine message is for the office to call back: without a number it is
    useless, so the operator is asked for one. An emergency or urgent message
    is saved (and paged) without one when the caller gave none (the line
    dropped, the number withheld): refusing it would keep it from the doctor,
    who hears that there is no number and reads the message in the console.
    A wrong number needs none.
    """
    return disposition is Disposition.WRONG_NUMBER or urgency in (
        Urgency.EMERGENCY,
        Urgency.URGENT,
    )


def parse_fields(form: Mapping[str, str], *, today: date) -> MessageFields:
    """The message fields from a submitted form, or `MessageInvalid` with every problem.

    Refused rather than cleaned: an over-long value, a control or bidi
    character, an unknown choice, a callback that is not a phone number, a
    date of birth that is not a date in the past. The operator sees what to
    fix next to the field, with what they typed kept.
    """
    problems: dict[str, str] = {}
    for name in form:
        if name in MAX_LENGTH and len(form[name]) > 4 * MAX_LENGTH[name] + 100:
            problems[name] = f"is too long (at most {MAX_LENGTH[name]} characters)"
    urgency = _choice(Urgency, "urgency", form.get("urgency", ""), problems)
    disposition = _choice(Disposition, "disposition", form.get("disposition", ""), problems)
    wrong_number = disposition is Disposition.WRONG_NUMBER
    values = {
        "caller_name": _text("caller_name", form.get("caller_name", ""), problems, required=False),
        "callback": _text("callback", form.get("callback", ""), problems, required=False),
        "patient_name": _text(
            "patient_name", form.get("patient_name", ""), problems, required=False
        ),
        "patient_dob": _text("patient_dob", form.get("patient_dob", ""), problems, required=False),
        "reason": _text(
            "reason", form.get("reason", ""), problems, multiline=True, required=not wrong_number
        ),
        "disposition_note": _text(
            "disposition_note",
            form.get("disposition_note", ""),
            problems,
            required=disposition is Disposition.OTHER,
        ),
    }
    callback = values["callback"]
    if not callback and "callback" not in problems and not _may_lack_callback(urgency, disposition):
        problems["callback"] = (
            "is required (only an emergency or urgent message, or a wrong number, may go "
            "without one)"
        )
    if callback and "callback" not in problems and not _CALLBACK.fullmatch(callback):
        problems["callback"] = "is not a phone number (digits, +, spaces, -, ( ) and an ext.)"
    dob = values["patient_dob"]
    if dob and "patient_dob" not in problems:
        born = _birth_date(dob)
        if born is None:
            problems["patient_dob"] = "is not a date (MM/DD/YYYY or YYYY-MM-DD)"
        elif born > today or born.year < 1900:
            problems["patient_dob"] = "must be a date in the past (MM/DD/YYYY)"
        else:
            values["patient_dob"] = born.isoformat()
    if problems or urgency is None or disposition is None:
        raise MessageInvalid(problems)
    return MessageFields(urgency=urgency, disposition=disposition, **values)


@dataclass(frozen=True, slots=True)
class Message:
    """A message as the inbox shows it: the latest fields and where it stands."""

    call_id: str
    practice: str
    version: int
    taken_at: datetime
    taken_by: str
    updated_at: datetime
    updated_by: str
    fields: MessageFields
    read_at: datetime | None = None
    read_by: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None

    @property
    def state(self) -> str:
        """unread, read or acknowledged (by someone at the practice)."""
        if self.acknowledged_at is not None:
            return "acknowledged"
        return "read" if self.read_at is not None else "unread"

    def correctable_until(self) -> datetime:
        return self.taken_at + CORRECTION_WINDOW

    def correctable(self, at: datetime) -> bool:
        """Whether its operator may still correct it at `at`."""
        return at <= self.correctable_until()
