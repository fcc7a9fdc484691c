"""A guarded FastAGI server on asyncio streams.

Each connection is its own task with two deadlines: the header must arrive
within `header_timeout`, the whole conversation must end within
`session_timeout`. Whatever a peer does (connect and close, send garbage,
stall, hang up mid-command) ends that connection only; no other call waits
on it. Sessions are tracked so `close()` ends them instead of leaking tasks.

FastAGI itself has no authentication, so the server adds what it can:

* an address allowlist (`Guard.allow`, loopback by default): anyone else is
  disconnected before a byte is read;
* an optional shared secret: before answering, the server asks the channel
  for `COVERAGE_AGI_SECRET` (a dialplan global, so it appears in no AGI()
  argument and no log line) and hangs up on a wrong one. A stranger who
  reaches the port can then neither learn the on-call rota nor write call
  records;
* a cap on simultaneous connections (`Guard.max_connections`): past it, a
  connection is closed at once and Asterisk takes its safety net;
* drop logs that cannot flood: the first few per minute individually, the
  rest as one count (`coverage_engine.droplog`).

Who *answers* on the port cannot be checked from here: the example dialplan
checks every value it receives instead (dialplan/freepbx-example.conf).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from coverage_engine import wire
from coverage_engine.agi.protocol import (
    MAX_LINE_BYTES,
    AgiHangup,
    AgiProtocolError,
    AgiRequest,
    parse_reply,
    read_request,
    set_variable_command,
)
from coverage_engine.droplog import DropLog

log = structlog.get_logger("coverage_engine.agi")


class AgiSession:
    """The command side of one FastAGI connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def command(self, line: str) -> tuple[int, str]:
        """Send one AGI command and return its final (code, text) reply."""
        self._writer.write(line.encode("utf-8") + b"\n")
        await self._writer.drain()
        while True:
            raw = await self._reader.readline()
            if not raw:
                raise AgiHangup
            code, text = parse_reply(raw.decode("utf-8", "replace"))
            if code == 100:  # "Trying...": the real answer follows
                continue
            if code == 520 and not text.startswith("End"):
                # Usage error: a multi-line explanation ending "520 End of proper usage."
                continue
            if code == 511:  # command not permitted on a dead channel
                raise AgiHangup
            return code, text

    async def set_variable(self, name: str, value: str) -> None:
        code, text = await self.command(set_variable_command(name, value))
        if code != 200:
            raise AgiProtocolError(f"SET VARIABLE {name} refused: {code} {text}")


    async def get_variable(self, name: str) -> str | None:
        """A channel variable's value (None when it is not set)."""
        code, text = await self.command(f"GET VARIABLE {name}")
        # "200 result=1 (value)"; "200 result=0" when the variable is not set.
        if code != 200 or not text.startswith("result=1"):
            return None
        start, end = text.find("("), text.rfind(")")
        return text[start + 1 : end] if 0 <= start < end else ""


Handler = Callable[[AgiRequest, AgiSession], Awaitable[None]]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
#: The dialplan global the shared secret is read from (docs/freepbx.md).
SECRET_VARIABLE = wire.AGI_SECRET


@dataclass(frozen=True, slots=True)
class Guard:
    """Who may talk to the server, and how many at once."""

    allow: Sequence[Network] = LOOPBACK
    secret: str | None = field(default=None, repr=False)
    max_connections: int = 100

    def allows(self, peer: object) -> bool:
        """Whether a peer address (as asyncio reports it) is in the allowlist."""
        host = peer[0] if isinstance(peer, tuple) and peer else None
        try:
            address = ipaddress.ip_address(str(host).split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.allow)


class AgiServer:
    """Routes `agi://host:port/<script>` requests to handlers."""

    def __init__(
        self,
        routes: Mapping[str, Handler],
        *,
        header_timeout: float = 5.0,
        session_timeout: float = 20.0,
        guard: Guard | None = None,
        drops: DropLog | None = None,
    ) -> None:
        self._routes = dict(routes)
        self._header_timeout = header_timeout
        self._session_timeout = session_timeout
        self._guard = guard or Guard()
        self._drops = drops or DropLog(log, summary="agi.connections_dropped")
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 4573) -> tuple[str, int]:
        """Listen; returns the bound address (port 0 picks a free one)."""
        self._server = await asyncio.start_server(self._client, host, port, limit=MAX_LINE_BYTES)
        bound: tuple[str, int] = self._server.sockets[0].getsockname()[:2]
        log.info("agi.listening", host=bound[0], port=bound[1])
        return bound

    async def serve_forever(self) -> None:
        if self._server is None:
            raise RuntimeError("start() first")
        await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._sessions):
            task.cancel()
        for task in list(self._sessions):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()
        self._drops.flush()

    @property
    def connections(self) -> int:
        """Connections being served right now."""
        return len(self._sessions)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        refused = None
        if not self._guard.allows(peer):
            refused = "address not allowed"
        elif len(self._sessions) >= self._guard.max_connections:
            refused = f"over {self._guard.max_connections} connections at once"
        if refused is not None:
            self._drops.drop("agi.connection_refused", peer, refused)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
            return
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        try:
            await self._serve(reader, writer)
        except (AgiProtocolError, TimeoutError) as exc:
            # A scanner, a health check, garbage or a stalled peer: not an error of ours.
            self._drops.drop("agi.connection_dropped", peer, str(exc) or "timed out")
        except (AgiHangup, ConnectionError):
            self._drops.drop("agi.channel_hung_up", peer, "hung up")
        except Exception:
            # A bug in a handler must cost one call its AGI answer (the dialplan
            # then takes its safety net), never the server.
            log.exception("agi.handler_failed", peer=str(peer))
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
            if task is not None:
                self._sessions.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(self._header_timeout):
            request = await read_request(reader)
        handler = self._routes.get(request.script)
        if handler is None:
            raise AgiProtocolError(f"no route for {request.script!r}")
        async with asyncio.timeout(self._session_timeout):
            session = AgiSession(reader, writer)
            if self._guard.secret is not None:
                given = await session.get_variable(SECRET_VARIABLE)
                if given is None or not hmac.compare_digest(
                    given.encode(), self._guard.secret.encode()
                ):
                    raise AgiProtocolError(f"wrong or missing {SECRET_VARIABLE}")
            await handler(request, session)
