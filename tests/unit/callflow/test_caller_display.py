"""What operators' and doctors' phones show of a hostile caller, and what the record keeps.

The carrier chooses the caller's name and number. Callees see "MGP: " and a
name that is printable, on one line, 40 characters at most, and a number
that can be dialed back; the journey keeps the number as digits and the
carrier's own text beside it.
"""

from __future__ import annotations

import pytest

from coverage_engine.caller_text import DISPLAY_NAME_MAX
from coverage_engine.callflow import Call
from coverage_engine.callflow.commands import CreateLeg, Record, SetVariables
from coverage_engine.callflow.events import CallerEntered
from coverage_engine.journey import Received
from coverage_engine.plan import Plan, Step, StepKind

C = "caller1"
FRONT = Step(StepKind.STAFF, "frontdesk-maple", "PJSIP/frontdesk-maple", 20, label="Front desk")
QUEUE = Step(StepKind.OPERATORS, "answering", "answering", 90, label="Operators")
RING_FIRST = Plan("maple-grove", "Maple Grove", "MGP", "open", "office hours", (FRONT, QUEUE))
QUEUE_FIRST = Plan("maple-grove", "Maple Grove", "MGP", "closed", "night", (QUEUE, FRONT))

HOSTILE = [
    # (number as sent, name as sent, the name shown after "MGP: ", the number shown)
    ("+15551230000", "Jane\x1b]0;pwned\x07 Doe", "Jane]0;pwned Doe", "+15551230000"),
    ("+15551230000", "Bob \u202egnp.exe", "Bob gnp.exe", "+15551230000"),
    ("+1555\r\nAlert-Info: <x>;info=alert-autoanswer", "", "+1555", "+1555"),
    ("+1 (312) 555-0100", "A" * 500, "A" * DISPLAY_NAME_MAX, "+13125550100"),
    ("5551234,1,U(evil)", "Jane,1,U(evil)", "Jane,1,U(evil)", "55512341"),
    ("anonymous", "", "", ""),
]


def first_commands(plan: Plan, number: str, name: str) -> list[object]:
    call = Call(C)
    return list(call.handle(CallerEntered(plan, number, name, "+13125550100")))


@pytest.mark.parametrize(("number", "name", "shown", "dialable"), HOSTILE)
def test_a_ringing_phone_shows_a_printable_short_name_and_a_dialable_number(
    number: str, name: str, shown: str, dialable: str
) -> None:
    """The leg to the front desk carries "MGP: <name made harmless>" and digits only."""
    (leg,) = [c for c in first_commands(RING_FIRST, number, name) if isinstance(c, CreateLeg)]
    assert leg.caller_name == f"MGP: {shown}"
    assert leg.caller_number == dialable
    assert leg.caller_name.isprintable()


@pytest.mark.parametrize(("number", "name", "shown", "dialable"), HOSTILE)
def test_an_operator_sees_the_same_in_the_queue(
    number: str, name: str, shown: str, dialable: str
) -> None:
    """CALLERID(name) set for the queue is the same harmless text as for a ringing phone."""
    settings = [c for c in first_commands(QUEUE_FIRST, number, name) if isinstance(c, SetVariables)]
    names = [v for s in settings for k, v in s.variables if k == "CALLERID(name)"]
    assert names == [f"MGP: {shown}"]
    del dialable


@pytest.mark.parametrize(("number", "name", "shown", "dialable"), HOSTILE)
def test_the_record_keeps_digits_and_the_carriers_text_beside_them(
    number: str, name: str, shown: str, dialable: str
) -> None:
    """The journey keeps the number that can be dialed back, and what the carrier sent."""
    (received,) = [
        c.event
        for c in first_commands(RING_FIRST, number, name)
        if isinstance(c, Record) and isinstance(c.event, Received)
    ]
    assert received.caller_number == dialable
    assert received.caller_name == name
    assert received.raw_number == ("" if dialable == number else number)
    assert received.details().get("raw_number", "") == received.raw_number
    del shown
