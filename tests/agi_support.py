"""Playing Asterisk against the FastAGI service in tests: one request, its answer.

Shared by the unit tests of the service's guard and answer and by the
security suite's fuzzing.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from coverage_engine.plan import Plan, Step, StepKind

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
#: A decision with one step, the operators: what the answer carries does not matter here.
PLAN = Plan(
    practice_id="maple-grove",
    practice_name="Maple Grove Pediatrics",
    short_name="MGP",
    status="closed",
    reason="closed",
    steps=(Step(StepKind.OPERATORS, "answering", "answering", 90),),
)


def header(**env: str) -> bytes:
    """The AGI environment Asterisk sends for a call (`env` replaces or adds `agi_*` lines)."""
    lines = {
        "agi_network": "yes",
        "agi_network_script": "route",
        "agi_channel": "PJSIP/carrier-in-1",
        "agi_uniqueid": "1764212400.7",
        "agi_callerid": "+15550100123",
        "agi_calleridname": "Pat Ient",
        "agi_extension": "+13125550100",
        **env,
    }
    return "".join(f"{k}: {v}\n" for k, v in lines.items()).encode() + b"\n"


HEADER = header()


async def play_asterisk(
    port: int, request: bytes = HEADER, *, secret: str | None = None
) -> dict[str, str] | None:
    """Send `request`, answer GET VARIABLE with `secret`, collect the SET VARIABLEs.

    Returns the variables, or None if the service hung up before setting any.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    variables: dict[str, str] = {}
    try:
        while line := await read_line(reader):
            command = line.decode().rstrip("\n")
            if command.startswith("GET VARIABLE "):
                reply = f"200 result=1 ({secret})" if secret is not None else "200 result=0"
                writer.write(reply.encode() + b"\n")
                continue
            name, _, value = command.removeprefix("SET VARIABLE ").partition(" ")
            variables[name] = value.strip('"')
            writer.write(b"200 result=1\n")
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return variables or None


async def read_line(reader: asyncio.StreamReader) -> bytes:
    """One line; b"" when the service closed (or reset: it hung up before reading us)."""
    try:
        return await reader.readline()
    except ConnectionResetError:
        return b""
