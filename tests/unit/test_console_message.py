"""Message fields from the form: what is accepted, and what is refused with which words."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from coverage_engine.config import load_config
from coverage_engine.message import Disposition, MessageInvalid, Urgency, parse_fields
from coverage_engine.web.practices import practice_now
from tests.unit.console_support import MESSAGE, ROOT

TODAY = date(2026, 12, 1)


def test_a_complete_form_becomes_message_fields() -> None:
    """Every field is read, trimmed, and the choices become their enums."""
    fields = parse_fields({**MESSAGE, "caller_name": "  Mary Jones "}, today=TODAY)
    assert fields.caller_name == "Mary Jones"
    assert fields.urgency is Urgency.URGENT
    assert fields.disposition is Disposition.MESSAGE_FOR_OFFICE
    assert fields.reason == "Fever of 104 since the evening.\nNo rash."


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"callback": "", "urgency": "routine"}, "callback", "is required"),
        ({"reason": ""}, "reason", "is required"),
        ({"reason": "a\x00b"}, "reason", "control"),
        ({"caller_name": "x" * 101}, "caller_name", "too long (101 characters; at most 100)"),
        ({"caller_name": "line\nbreak"}, "caller_name", "line break"),
        ({"patient_dob": "2019-13-01"}, "patient_dob", "is not a date"),
        ({"patient_dob": "02/30/2019"}, "patient_dob", "is not a date"),
        ({"disposition": "other", "disposition_note": ""}, "disposition_note", "is required"),
        ({"urgency": ""}, "urgency", "is required"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(
    changes: dict[str, str], field: str, words: str
) -> None:
    """The operator learns which field to fix and how."""
    with pytest.raises(MessageInvalid) as caught:
        parse_fields({**MESSAGE, **changes}, today=TODAY)
    assert words in caught.value.problems[field]


def test_a_us_date_of_birth_is_stored_as_iso() -> None:
    """Operators type 05/04/2018; the record keeps 2018-05-04."""
    assert (
        parse_fields({**MESSAGE, "patient_dob": "5/4/2018"}, today=TODAY).patient_dob
        == "2018-05-04"
    )


@pytest.mark.parametrize("urgency", [Urgency.EMERGENCY, Urgency.URGENT])
def test_an_urgent_message_without_a_callback_number_is_accepted(urgency: Urgency) -> None:
    """The caller's line dropped before giving a number: the urgent message is still saved
    (and paged: the doctor hears there is no number); a routine one would be refused."""
    fields = parse_fields({**MESSAGE, "callback": "", "urgency": urgency.value}, today=TODAY)
    assert (fields.callback, fields.urgency) == ("", urgency)


def test_a_wrong_number_needs_no_callback_or_reason() -> None:
    """A wrong number is recorded as such without inventing a callback."""
    fields = parse_fields(
        {**MESSAGE, "callback": "", "reason": "", "disposition": "wrong_number"}, today=TODAY
    )
    assert fields.disposition is Disposition.WRONG_NUMBER


def test_corrections_list_only_what_changed() -> None:
    """A correction records field -> [before, after] for the changed fields only."""
    before = parse_fields(dict(MESSAGE), today=TODAY)
    after = parse_fields({**MESSAGE, "urgency": "emergency"}, today=TODAY)
    assert after.changes_from(before) == {"urgency": ["urgent", "emergency"]}


def test_the_practice_panel_names_status_on_call_and_what_changes_next() -> None:
    """Maple Grove, Tuesday 03:00: closed, Nguyen on call (Okafor backup); opens 08:00;
    the next handoff is Monday 08:00 to Okafor."""
    config = load_config(ROOT / "config" / "coverage.yaml")
    chicago = ZoneInfo("America/Chicago")
    now = practice_now(config.practices["maple-grove"], datetime(2026, 12, 1, 3, 0, tzinfo=chicago))
    assert now.status == "closed"
    assert now.primary is not None
    assert now.primary.name == "Dr. Minh Nguyen"
    assert now.backup is not None
    assert now.backup.contact == "pager 4417"
    assert now.next_status is not None
    assert now.next_status.at == datetime(2026, 12, 1, 8, 0, tzinfo=chicago)
    assert now.next_status.description.startswith("open")
    assert now.next_handoff is not None
    assert now.next_handoff.at == datetime(2026, 12, 7, 8, 0, tzinfo=chicago)
    assert now.next_handoff.description == "Dr. Adaeze Okafor takes over"
    assert now.next_handoff.at - now.next_status.at > timedelta(days=5)
