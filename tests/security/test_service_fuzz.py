"""Regression tests from the security review's fuzzing of the FastAGI and metrics services.

No PBX needed: the real servers run in this process (on free loopback ports)
and are fed what a scanner, a fuzzer or an attacker on the network sends. The
bar: every bad connection ends by itself, a real request is still answered,
memory stays bounded, and the log gets a few short lines, never a traceback
per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from coverage_engine.agi.route import RouteHandler
from coverage_engine.agi.server import AgiServer, Guard
from coverage_engine.clock import FrozenClock
from coverage_engine.logs import configure_logging
from coverage_engine.metrics import Metrics, serve_metrics
from tests.agi_support import HEADER, NOW, PLAN


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The application's real logging (JSON lines) into a buffer, restored afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    buffer = io.StringIO()
    configure_logging(json=True, stream=buffer)
    yield buffer
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def events(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def exchange(port: int, payload: bytes, *, read: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        if not read:
            return b""
        return await asyncio.wait_for(reader.read(), 10)
    except ConnectionError:
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


# -- FastAGI ------------------------------------------------------------------------------


@pytest.fixture
async def agi() -> AsyncIterator[tuple[AgiServer, int]]:
    server = AgiServer(
        {"route": RouteHandler(lambda _at, _did, _caller: PLAN, FrozenClock(NOW))},
        header_timeout=0.5,
        session_timeout=2,
        guard=Guard(max_connections=100),
    )
    _, port = await server.start("127.0.0.1", 0)
    yield server, port
    await server.close()


async def a_real_call_is_answered(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEADER)
    names = []
    while line := await asyncio.wait_for(reader.readline(), 5):
        names.append(line.split()[2].decode())
        writer.write(b"200 result=1\n")
    writer.close()
    assert names[-1] == "COVERAGE_STATUS"


GARBAGE = [
    pytest.param(b"", id="connect-and-close"),
    pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64), id="tls-hello"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http"),
    pytest.param(bytes(range(256)) * 16 + b"\n\n", id="binary"),
    pytest.param(b"agi_network: yes\n" + b"A" * (10 * 1024 * 1024) + b"\n", id="10MB-line"),
    pytest.param(b"agi_x: y\n" * 5000, id="endless-header"),
    pytest.param(b"agi_network_script: route\n\n", id="header-only"),
    pytest.param(HEADER + b"999 nonsense\n", id="bad-reply"),
    pytest.param(HEADER + b"HANGUP\n", id="hangup"),
]


@pytest.mark.parametrize("payload", GARBAGE)
async def test_fastagi_ends_a_garbage_connection_and_keeps_answering(
    agi: tuple[AgiServer, int], payload: bytes, log_lines: io.StringIO
) -> None:
    """Each kind of garbage ends its own connection; a real call is answered next; no traceback."""
    server, port = agi
    await exchange(port, payload)
    await a_real_call_is_answered(port)
    assert server.connections == 0
    assert "Traceback" not in log_lines.getvalue()


async def test_fastagi_survives_1100_idle_connections_in_bounded_memory(
    agi: tuple[AgiServer, int], log_lines: io.StringIO
) -> None:
    """1,100 silent peers: 100 held until their deadline, the rest closed at once; few log lines."""
    server, port = agi
    before = rss_kib()
    peers = [await asyncio.open_connection("127.0.0.1", port) for _ in range(1100)]
    await asyncio.sleep(0.1)
    assert server.connections <= 100
    for reader, writer in peers:
        with contextlib.suppress(ConnectionError):
            await asyncio.wait_for(reader.read(), 5)  # every one is closed by the server
        writer.close()
    await a_real_call_is_answered(port)
    assert rss_kib() - before < 64 * 1024
    await server.close()  # logs the count of the drops not logged one by one
    lines = [e for e in events(log_lines) if str(e["event"]).startswith("agi.connection")]
    assert len([e for e in lines if e["event"] != "agi.connections_dropped"]) == 10
    (summary,) = [e for e in lines if e["event"] == "agi.connections_dropped"]
    assert summary["count"] == 1100 - 10


async def test_fastagi_drops_a_slowloris_at_its_header_deadline(
    agi: tuple[AgiServer, int],
) -> None:
    """A peer sending its header a byte at a time is cut off after the header deadline."""
    _, port = agi
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    closed = False
    for byte in HEADER[:-2]:
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            closed = True
            break
        await asyncio.sleep(0.05)
        if reader.at_eof():
            closed = True
            break
    writer.close()
    assert closed
    await a_real_call_is_answered(port)


# -- the metrics endpoint ----------------------------------------------------------------


BAD_HTTP = [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nX: " + b"y" * 70_000 + b"\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"\x00\xff" * 100 + b"\r\n\r\n",
]


async def test_malformed_metrics_requests_are_a_few_short_log_lines(
    log_lines: io.StringIO,
) -> None:
    """Sixty malformed requests: each gets a 400 or a close; ten log lines at most, no traceback."""
    runner = await serve_metrics(Metrics(), host="127.0.0.1", port=0)
    port = runner.addresses[0][1]
    try:
        for payload in BAD_HTTP * 10:
            reply = await exchange(port, payload)
            assert reply == b"" or reply.startswith(b"HTTP/1.")
        good = await exchange(
            port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
    finally:
        await runner.cleanup()
    assert good.startswith(b"HTTP/1.1 200")
    assert b"coverage_calls_in_progress" in good
    text = log_lines.getvalue()
    assert "Traceback" not in text
    bad = [e for e in events(log_lines) if e["event"] == "http.bad_request"]
    assert 1 <= len(bad) <= 10
    assert all(isinstance(e["reason"], str) and len(e["reason"]) <= 80 * 6 for e in bad)
