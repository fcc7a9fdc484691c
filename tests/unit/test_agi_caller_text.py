"""The FastAGI answer carries the caller's name as a phone may show it; the record keeps digits."""

from __future__ import annotations

from datetime import datetime

import pytest

from coverage_engine.agi.route import RouteHandler
from coverage_engine.agi.server import AgiServer
from coverage_engine.clock import FrozenClock
from coverage_engine.journey import Received
from coverage_engine.plan import Plan
from coverage_engine.records import MemoryRecorder
from tests.agi_support import NOW, PLAN, header, play_asterisk


async def ask(number: str, name: str) -> tuple[dict[str, str], MemoryRecorder, list[str]]:
    """One AGI request from a caller `number`/`name`: the variables set, the record, who routed."""
    asked: list[str] = []
    recorder = MemoryRecorder()

    def decide(_at: datetime, _did: str, caller: str) -> Plan:
        asked.append(caller)
        return PLAN

    server = AgiServer({"route": RouteHandler(decide, FrozenClock(NOW), recorder)})
    _, port = await server.start("127.0.0.1", 0)
    request = header(agi_uniqueid="9.1", agi_callerid=number, agi_calleridname=name)
    variables = await play_asterisk(port, request)
    await server.close()
    assert variables is not None
    return variables, recorder, asked


@pytest.mark.parametrize(
    ("number", "name", "shown"),
    [
        ("+15551230000", "Jane\x1b]0;x Doe", "Jane]0;x Doe"),
        ("+15551230000", "Bob \u202egnp.exe", "Bob gnp.exe"),
        ("+15551230000", "A" * 300, "A" * 40),
        ("caller-555-123-4567", "unknown", "5551234567"),
    ],
)
async def test_the_answer_shows_the_callers_name_made_harmless(
    number: str, name: str, shown: str
) -> None:
    """COVERAGE_CALLER_NAME is printable and short; the dialplan puts it after the practice tag."""
    variables, _, _ = await ask(number, name)
    assert variables["COVERAGE_CALLER_NAME"] == shown
    assert list(variables)[-1] == "COVERAGE_STATUS"


async def test_routing_and_the_record_use_the_number_as_digits() -> None:
    """"(312) 555-0100" is routed and recorded as 3125550100; the carrier's text is kept too."""
    _, recorder, asked = await ask("(312) 555-0100", "Jane")
    assert asked == ["3125550100"]
    journey = recorder.get("9.1")
    assert journey is not None
    assert journey.caller_number == "3125550100"
    received = journey.events[0].event
    assert isinstance(received, Received)
    assert received.raw_number == "(312) 555-0100"
