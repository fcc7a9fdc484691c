"""The FastAGI service: line protocol, guarded server, and the /route answer (no PBX)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import structlog

from coverage_engine.agi.protocol import (
    AgiHangup,
    AgiProtocolError,
    AgiRequest,
    parse_reply,
    quote,
    set_variable_command,
)
from coverage_engine.agi.route import RouteHandler, caller_of, did_of, plan_variables
from coverage_engine.agi.server import AgiServer
from coverage_engine.clock import FrozenClock
from coverage_engine.journey import Decided, EventKind, OperatorsSkipped, Via
from coverage_engine.plan import Plan, Step, StepKind
from coverage_engine.records import MemoryRecorder

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)

CLOSED = Plan(
    practice_id="maple-grove",
    practice_name="Maple Grove Pediatrics",
    short_name="MGP",
    status="closed",
    reason="closed: outside office hours",
    announcement="coverage/coverage-emergency",
    steps=(
        Step(StepKind.OPERATORS, "answering", "answering", 90, label="operators"),
        Step(StepKind.ONCALL, "patel", "PJSIP/patel", 25, confirm=True, label='Dr. "Priya" Patel'),
        Step(StepKind.OPERATORS, "answering", "answering", 90),
    ),
    whisper="coverage/whisper-mgp",
)


def env(script: str = "route", **extra: str) -> bytes:
    headers = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_request": f"agi://127.0.0.1:4573/{script}",
        "agi_channel": "PJSIP/carrier-in-00000001",
        "agi_uniqueid": "1764212400.1",
        "agi_callerid": "+15550100123",
        "agi_calleridname": "Pat Ient",
        "agi_context": "from-trunk",
        "agi_extension": "+13125550100",
        **extra,
    }
    return "".join(f"{k}: {v}\n" for k, v in headers.items()).encode() + b"\n"


async def play_asterisk(port: int, header: bytes) -> dict[str, str]:
    """Act as Asterisk: send the header, answer every command `200 result=1`, collect variables."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(header)
    variables: dict[str, str] = {}
    try:
        while line := await reader.readline():
            command = line.decode().rstrip("\n")
            assert command.startswith("SET VARIABLE ")
            name, _, value = command[len("SET VARIABLE ") :].partition(" ")
            variables[name] = value.strip('"')
            writer.write(b"200 result=1\n")
    finally:
        writer.close()
    return variables


@pytest.fixture
async def served() -> AsyncIterator[tuple[int, MemoryRecorder, list[tuple[str, str]]]]:
    """An AGI server on a free port whose routing answers CLOSED and notes (did, caller)."""
    asked: list[tuple[str, str]] = []

    def decide(_at: datetime, did: str, caller: str) -> Plan:
        asked.append((did, caller))
        return CLOSED

    recorder = MemoryRecorder()
    server = AgiServer(
        {"route": RouteHandler(decide, FrozenClock(NOW), recorder)},
        header_timeout=0.5,
        session_timeout=2,
    )
    _, port = await server.start("127.0.0.1", 0)
    yield port, recorder, asked
    await server.close()


async def test_route_sets_every_step_and_status_last(
    served: tuple[int, MemoryRecorder, list[tuple[str, str]]],
) -> None:
    """A request gets the plan as variables, COVERAGE_STATUS after all the steps."""
    port, _, asked = served
    variables = await play_asterisk(port, env())
    assert asked == [("+13125550100", "+15550100123")]
    assert list(variables)[-1] == "COVERAGE_STATUS"
    assert variables["COVERAGE_STATUS"] == "closed"
    assert variables["COVERAGE_STEPS"] == "3"
    assert [variables[f"COVERAGE_STEP_{n}_KIND"] for n in (1, 2, 3)] == [
        "operators",
        "oncall",
        "operators",
    ]
    assert (
        variables["COVERAGE_STEP_2_DIAL"],
        variables["COVERAGE_STEP_2_RING"],
        variables["COVERAGE_STEP_2_CONFIRM"],
    ) == ("PJSIP/patel", "25", "1")
    assert variables["COVERAGE_SHORT_NAME"] == "MGP"
    assert variables["COVERAGE_WHISPER"] == "coverage/whisper-mgp"


async def test_route_records_the_journey_start_and_decision(
    served: tuple[int, MemoryRecorder, list[tuple[str, str]]],
) -> None:
    """The journey opens under the channel's uniqueid with a `decided` event holding the plan."""
    port, recorder, _ = served
    await play_asterisk(port, env())
    journey = recorder.get("1764212400.1")
    assert journey is not None
    assert (journey.did, journey.status, journey.practice) == (
        "+13125550100",
        "closed",
        "maple-grove",
    )
    assert [e.name for e in journey.events] == [EventKind.RECEIVED, EventKind.DECIDED]
    decided = journey.events[1].event
    assert isinstance(decided, Decided)
    assert decided.via is Via.FASTAGI


async def test_did_argument_wins_over_extension_and_is_filtered(
    served: tuple[int, MemoryRecorder, list[tuple[str, str]]],
) -> None:
    """`AGI(agi://.../route,${FROM_DID})` uses the argument, reduced to + and digits."""
    port, _, asked = served
    await play_asterisk(port, env(agi_arg_1="+1 (312) 555-0100,evil", agi_extension="s"))
    assert asked == [("+13125550100", "+15550100123")]


async def session_time(port: int) -> float:
    start = time.monotonic()
    variables = await play_asterisk(port, env())
    assert variables["COVERAGE_STATUS"] == "closed"
    return time.monotonic() - start


@pytest.mark.parametrize(
    "misbehave",
    [
        pytest.param(b"", id="connect-and-close"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http-garbage"),
        pytest.param(b"\xff\xfe\x00garbage\n\n", id="binary-garbage"),
        pytest.param(b"agi_network: yes\n" + b"x" * 10000, id="endless-line"),
        pytest.param(b"agi_network: yes\n", id="header-never-ends"),
        pytest.param(env(script="nope"), id="unknown-route"),
    ],
)
async def test_a_misbehaving_client_does_not_delay_a_real_call(
    served: tuple[int, MemoryRecorder, list[tuple[str, str]]], misbehave: bytes
) -> None:
    """While a scanner or broken client is connected, a real call's decision still comes at once."""
    port, _, _ = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(misbehave)
    if not misbehave:
        writer.close()
    elapsed = await session_time(port)
    assert elapsed < 0.3  # the bad peer's 0.5 s header deadline has not even run out
    # The bad connection is closed by the server (at the latest at its deadline).
    async with asyncio.timeout(2):
        while await reader.read(1024):
            pass
    writer.close()
    assert await session_time(port) < 0.3  # and the server is still fine afterwards


async def test_a_hangup_mid_session_ends_only_that_session(
    served: tuple[int, MemoryRecorder, list[tuple[str, str]]],
) -> None:
    """Asterisk's HANGUP in place of a reply ends the session; the next call is served."""
    port, _, _ = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(env())
    await reader.readline()
    writer.write(b"HANGUP\n")
    async with asyncio.timeout(2):
        assert await reader.read() == b""  # server closed it
    writer.close()
    assert await session_time(port) < 0.3


async def test_a_routing_failure_answers_error_so_the_dialplan_takes_its_safety_net() -> None:
    """If the routing core raises, the channel still gets COVERAGE_STATUS=error."""

    def broken(_at: datetime, _did: str, _caller: str) -> Plan:
        raise RuntimeError("bug")

    server = AgiServer({"route": RouteHandler(broken, FrozenClock(NOW))})
    _, port = await server.start("127.0.0.1", 0)
    try:
        assert await play_asterisk(port, env()) == {"COVERAGE_STATUS": "error"}
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("closed: lunch", '"closed: lunch"'),
        ('Dr. "P" Patel', "\"Dr. 'P' Patel\""),
        ("a\nSET VARIABLE X 1", '"aSET VARIABLE X 1"'),
        ("back\\slash", '"back/slash"'),
    ],
)
def test_values_cannot_break_out_of_their_quotes(value: str, quoted: str) -> None:
    """Newlines, quotes and backslashes never end a command or an argument early."""
    assert quote(value) == quoted


def test_only_our_variable_names_are_set() -> None:
    """A variable name outside COVERAGE_-style upper case is a bug, refused before sending."""
    assert set_variable_command("COVERAGE_STATUS", "open") == 'SET VARIABLE COVERAGE_STATUS "open"'
    with pytest.raises(ValueError, match="variable name"):
        set_variable_command("x y", "1")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("200 result=1", (200, "result=1")),
        ("510 Invalid or unknown command", (510, "Invalid or unknown command")),
        ("520-Invalid command syntax.", (520, "Invalid command syntax.")),
    ],
)
def test_replies_parse_to_code_and_text(line: str, expected: tuple[int, str]) -> None:
    """AGI replies are a three-digit code and text."""
    assert parse_reply(line) == expected


def test_hangup_and_nonsense_replies_raise() -> None:
    """HANGUP means the channel is gone; anything else unexpected is a protocol error."""
    with pytest.raises(AgiHangup):
        parse_reply("HANGUP")
    with pytest.raises(AgiProtocolError):
        parse_reply("hello")


def test_plan_variables_of_an_unknown_caller() -> None:
    """`unknown` caller ID from Asterisk reads as no caller; no DID falls back to the extension."""
    request = AgiRequest(
        {"agi_callerid": "unknown", "agi_calleridname": "unknown", "agi_extension": "+16085550142"}
    )
    assert caller_of(request) == ("", "")
    assert did_of(request) == "+16085550142"
    assert plan_variables(CLOSED)[-1] == ("COVERAGE_STATUS", "closed")


async def test_an_operators_step_nobody_can_answer_is_left_out_and_says_why() -> None:
    """With nobody logged in, the early queue is not offered; the final one always is."""
    recorder = MemoryRecorder()
    handler = RouteHandler(
        lambda _at, _did, _caller: CLOSED,
        FrozenClock(NOW),
        recorder,
        operators_check=lambda _practice, queue: f"no operator logged in to queue {queue}",
    )
    server = AgiServer({"route": handler}, header_timeout=0.5, session_timeout=2)
    _, port = await server.start("127.0.0.1", 0)
    try:
        variables = await play_asterisk(port, env())
    finally:
        await server.close()
    assert variables["COVERAGE_STEPS"] == "2"
    assert [variables[f"COVERAGE_STEP_{n}_KIND"] for n in (1, 2)] == ["oncall", "operators"]
    assert variables["COVERAGE_REASON"] == "closed: outside office hours"
    journey = recorder.get("1764212400.1")
    assert journey is not None
    assert journey.events[-1].event == OperatorsSkipped(
        0, "answering", "no operator logged in to queue answering"
    )


async def test_the_callers_number_is_masked_in_the_service_log_however_it_is_written(
    served: tuple[int, MemoryRecorder, list[tuple[str, str]]],
) -> None:
    """A caller id the carrier wrote with words and dashes still shows only its last digits."""
    port, _, _ = served
    with structlog.testing.capture_logs() as logs:
        await play_asterisk(port, env(agi_callerid="caller-555-123-4567"))
    (decided,) = [e for e in logs if e["event"] == "agi.decided"]
    # The service reads the number as digits (caller_text.caller_digits) first.
    assert decided["caller"] == "******4567"
    assert "555-123" not in repr(logs)
    assert "5551234" not in repr(logs)
