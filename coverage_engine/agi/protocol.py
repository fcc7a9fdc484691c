"""The FastAGI line protocol, small enough to own instead of borrowing.

Asterisk's `AGI(agi://host:port/path,arg1,...)` opens a TCP connection and
sends its environment as `agi_name: value` lines ended by an empty line. The
server then sends one command per line (`SET VARIABLE NAME "value"`) and reads
one reply per command (`200 result=1`); closing the connection hands the
channel back to the dialplan.

Why not panoramisk's FastAGI server: it loops on `reader.read()` until it sees
a blank line, so a client that connects and closes at once (a port scan, a
health check) spins the whole event loop forever, freezing every call. Here a
closed connection, an oversized or undecodable header, or a silent client is
one short-lived failure of that connection only.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass

MAX_HEADER_LINES = 128  # Asterisk sends about 25, plus one per argument
MAX_LINE_BYTES = 4096  # enforced by the StreamReader limit the server sets


class AgiProtocolError(Exception):
    """The peer did not speak AGI (garbage, truncated, oversized)."""


class AgiHangup(Exception):
    """The channel hung up (Asterisk sent HANGUP or answered 511)."""


@dataclass(frozen=True, slots=True)
class AgiRequest:
    """What Asterisk told us about the channel when it connected."""

    env: Mapping[str, str]

    @property
    def script(self) -> str:
        """The path of `agi://host:port/<script>` (without a query string)."""
        return self.env.get("agi_network_script", "").split("?", 1)[0].strip("/")

    @property
    def args(self) -> tuple[str, ...]:
        out: list[str] = []
        while (value := self.env.get(f"agi_arg_{len(out) + 1}")) is not None:
            out.append(value)
        return tuple(out)

    @property
    def channel(self) -> str:
        return self.env.get("agi_channel", "")

    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid", "")


def parse_env_line(raw: bytes) -> tuple[str, str] | None:
    """One header line -> (key, value); None for the blank line that ends the header."""
    try:
        line = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise AgiProtocolError("header is not UTF-8") from exc
    if not line:
        return None
    key, sep, value = line.partition(": ")
    if not sep or not key.startswith("agi_"):
        raise AgiProtocolError(f"not an AGI header line: {line[:40]!r}")
    return key, value


async def read_request(reader: asyncio.StreamReader) -> AgiRequest:
    """Read the environment block; raise AgiProtocolError on anything else."""
    env: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        try:
            raw = await reader.readline()
        except (asyncio.LimitOverrunError, ValueError) as exc:  # a line over the limit
            raise AgiProtocolError("header line too long") from exc
        if not raw:
            raise AgiProtocolError("connection closed before the AGI header ended")
        if not raw.endswith(b"\n"):
            raise AgiProtocolError("connection closed mid-line")
        item = parse_env_line(raw)
        if item is None:
            if not env:
                raise AgiProtocolError("empty AGI header")
            return AgiRequest(env)
        env[item[0]] = item[1]
    raise AgiProtocolError("AGI header has too many lines")


_REPLY = re.compile(r"^(\d{3})[ -](.*)$")


def parse_reply(line: str) -> tuple[int, str]:
    """`200 result=1` -> (200, 'result=1'). `HANGUP` raises AgiHangup."""
    if line.strip() == "HANGUP":
        raise AgiHangup
    match = _REPLY.match(line.strip())
    if match is None:
        raise AgiProtocolError(f"unexpected AGI reply {line[:40]!r}")
    return int(match.group(1)), match.group(2)


def quote(value: str) -> str:
    """A value as one double-quoted AGI argument that cannot end the command.

    Asterisk splits AGI arguments on blanks outside double quotes and honours
    backslash escapes; a newline would end the command and start another. So
    control characters are dropped and the two characters with a meaning inside
    quotes are replaced rather than escaped (nothing we send needs them).
    """
    clean = "".join(ch for ch in value if ch.isprintable())
    return '"' + clean.replace("\\", "/").replace('"', "'") + '"'


_VAR_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


def set_variable_command(name: str, value: str) -> str:
    if not _VAR_NAME.fullmatch(name):
        raise ValueError(f"not a channel variable name we set: {name!r}")
    return f"SET VARIABLE {name} {quote(value)}"
