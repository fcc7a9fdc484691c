"""A guarded FastAGI server on asyncio streams.

Each connection is its own task with two deadlines: the header must arrive
within `header_timeout`, the whole conversation must end within
`session_timeout`. Whatever a peer does (connect and close, send garbage,
stall, hang up mid-command) ends that connection only; no other call waits
on it. Sessions are tracked so `close()` ends them instead of leaking tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping

import structlog

from coverage_engine.agi.protocol import (
    MAX_LINE_BYTES,
    AgiHangup,
    AgiProtocolError,
    AgiRequest,
    parse_reply,
    read_request,
    set_variable_command,
)

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


Handler = Callable[[AgiRequest, AgiSession], Awaitable[None]]


class AgiServer:
    """Routes `agi://host:port/<script>` requests to handlers."""

    def __init__(
        self,
        routes: Mapping[str, Handler],
        *,
        header_timeout: float = 5.0,
        session_timeout: float = 20.0,
    ) -> None:
        self._routes = dict(routes)
        self._header_timeout = header_timeout
        self._session_timeout = session_timeout
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

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        peer = writer.get_extra_info("peername")
        try:
            await self._serve(reader, writer)
        except (AgiProtocolError, TimeoutError) as exc:
            # A scanner, a health check, garbage or a stalled peer: not an error of ours.
            log.info("agi.connection_dropped", peer=str(peer), reason=str(exc) or "timed out")
        except (AgiHangup, ConnectionError):
            log.info("agi.channel_hung_up", peer=str(peer))
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
            await handler(request, AgiSession(reader, writer))
