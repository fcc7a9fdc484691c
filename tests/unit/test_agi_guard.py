"""The FastAGI guard: who may connect, the shared secret, the connection cap, quiet logs."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from coverage_engine.agi.route import RouteHandler
from coverage_engine.agi.server import LOOPBACK, AgiServer, Guard
from coverage_engine.cli.agi_cmd import guard_from_options
from coverage_engine.clock import FrozenClock
from coverage_engine.droplog import DropLog
from coverage_engine.plan import Plan
from coverage_engine.records import MemoryRecorder
from tests.agi_support import NOW, PLAN, play_asterisk, read_line

SECRET = "0123456789abcdef-shared"


Served = tuple[int, list[str], MemoryRecorder]
Serve = Callable[[Guard], Awaitable[Served]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """`await serve(guard)` -> (port, dids asked, recorder) of a server with that guard."""
    servers: list[AgiServer] = []

    async def start(guard: Guard) -> Served:
        asked: list[str] = []
        recorder = MemoryRecorder()

        def decide(_at: datetime, did: str, _caller: str) -> Plan:
            asked.append(did)
            return PLAN

        server = AgiServer(
            {"route": RouteHandler(decide, FrozenClock(NOW), recorder)},
            header_timeout=0.3,
            session_timeout=2,
            guard=guard,
        )
        servers.append(server)
        _, port = await server.start("127.0.0.1", 0)
        return port, asked, recorder

    yield start
    for server in servers:
        await server.close()


async def test_a_peer_outside_the_allowlist_is_disconnected_unanswered(serve: Serve) -> None:
    """Only 10.0.0.5 may ask: a loopback peer gets nothing decided, nothing recorded."""
    port, asked, recorder = await serve(Guard(allow=(ipaddress.ip_network("10.0.0.5/32"),)))
    with capture_logs() as logs:
        assert await play_asterisk(port) is None
    assert asked == []
    assert recorder.get("1764212400.7") is None
    assert logs[0]["event"] == "agi.connection_refused"
    assert logs[0]["reason"] == "address not allowed"


async def test_the_loopback_is_allowed_by_default(serve: Serve) -> None:
    """Without --allow, Asterisk on the same machine is answered."""
    port, asked, _ = await serve(Guard())
    variables = await play_asterisk(port)
    assert variables is not None
    assert variables["COVERAGE_STATUS"] == "closed"
    assert asked == ["+13125550100"]


@pytest.mark.parametrize("given", [None, "wrong-secret-0000000", SECRET + "x", ""])
async def test_without_the_shared_secret_nothing_is_decided_or_recorded(
    serve: Serve, given: str | None
) -> None:
    """A peer that does not hold COVERAGE_AGI_SECRET learns nothing and writes no record."""
    port, asked, recorder = await serve(Guard(secret=SECRET))
    with capture_logs() as logs:
        assert await play_asterisk(port, secret=given) is None
    assert asked == []
    assert recorder.get("1764212400.7") is None
    assert logs[0]["reason"] == "wrong or missing COVERAGE_AGI_SECRET"


async def test_with_the_shared_secret_the_call_is_decided(serve: Serve) -> None:
    """The dialplan's COVERAGE_AGI_SECRET matches: the answer comes as usual."""
    port, asked, recorder = await serve(Guard(secret=SECRET))
    variables = await play_asterisk(port, secret=SECRET)
    assert variables is not None
    assert variables["COVERAGE_STEP_1_DIAL"] == "answering"
    assert asked == ["+13125550100"]
    assert recorder.get("1764212400.7") is not None


async def test_past_the_connection_cap_a_connection_is_closed_at_once(serve: Serve) -> None:
    """Two idle peers fill a cap of two; a third is closed at once; then calls flow again."""
    port, _, _ = await serve(Guard(max_connections=2))
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
    for _, writer in idle:
        writer.write(b"agi_network: yes\n")  # a header that never ends
    await asyncio.sleep(0.05)

    with capture_logs() as logs:
        assert await play_asterisk(port) is None
    assert [e["reason"] for e in logs] == ["over 2 connections at once"]

    for reader, writer in idle:
        assert await asyncio.wait_for(read_line(reader), 2) == b""  # their header deadline
        writer.close()
        await writer.wait_closed()
    variables = await play_asterisk(port)
    assert variables is not None


def test_drops_are_logged_a_few_at_a_time_then_counted() -> None:
    """Ten drops in a minute with a burst of three: three lines, then one line counting seven."""
    now = [0.0]
    drops = DropLog(
        structlog.get_logger("t"), summary="agi.connections_dropped", burst=3, window=60,
        clock=lambda: now[0],
    )
    with capture_logs() as logs:
        for n in range(10):
            now[0] = n
            drops.drop("agi.connection_dropped", ("127.0.0.1", 5000 + n), "empty AGI header")
        assert len(logs) == 3
        now[0] = 61
        drops.drop("agi.connection_dropped", ("127.0.0.1", 6000), "timed out")
    assert [e["event"] for e in logs] == [
        *["agi.connection_dropped"] * 3,
        "agi.connections_dropped",
        "agi.connection_dropped",
    ]
    assert logs[3]["count"] == 7
    assert logs[3]["reasons"] == {"empty AGI header": 7}


def options(**given: object) -> argparse.Namespace:
    return argparse.Namespace(
        **{"allow": None, "secret_file": None, "max_connections": 100, **given}
    )


def test_the_guard_options_default_to_the_loopback_without_a_secret() -> None:
    """No options: loopback peers, no secret, a hundred connections."""
    guard = guard_from_options(options(), {})
    assert (guard.allow, guard.secret, guard.max_connections) == (LOOPBACK, None, 100)


def test_the_secret_comes_from_a_file_never_from_argv(tmp_path: Path) -> None:
    """--secret-file or $COVERAGE_AGI_SECRET_FILE; the secret stays out of the guard's repr."""
    secret_file = tmp_path / "agi-secret"
    secret_file.write_text(SECRET + "\n")
    guard = guard_from_options(options(), {"COVERAGE_AGI_SECRET_FILE": str(secret_file)})
    assert guard.secret == SECRET
    assert SECRET not in repr(guard)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"allow": ["10.0.0.300"]}, "--allow"),
        ({"max_connections": 0}, "--max-connections"),
        ({"secret_file": Path("/nonexistent/secret")}, "cannot read the secret file"),
    ],
)
def test_unusable_guard_options_are_one_clear_message(
    given: dict[str, object], message: str
) -> None:
    """A typo in an option is a message naming it, never a traceback."""
    with pytest.raises(ValueError, match=message):
        guard_from_options(options(**given), {})


def test_a_short_secret_is_refused(tmp_path: Path) -> None:
    """A guessable secret is worse than none: it looks like protection."""
    secret_file = tmp_path / "agi-secret"
    secret_file.write_text("1234\n")
    with pytest.raises(ValueError, match="at least 16"):
        guard_from_options(options(secret_file=secret_file), {})
