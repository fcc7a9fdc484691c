"""The ARI client on aiohttp: REST requests with deadlines, and the event WebSocket.

Why our own: the ARI libraries on PyPI either do not import on Python 3,
busy-loop when the WebSocket drops, tear down on one handler exception, or
lose Asterisk's error messages (issue 4 records the comparison). This one is
small and does three things carefully:

* every REST request has a deadline (`AriTimeout`), Asterisk's error message
  is kept, and a gone channel/bridge is `ResourceGone` (see `errors.py`);
* the event WebSocket (`/ari/events?app=...`, no `subscribeAll`, no
  `channelvars`) reconnects with exponential backoff and jitter forever, and a
  ping/pong heartbeat notices a silently dead link (Asterisk frozen, cable
  pulled, NAT state lost) within `1.5 x heartbeat` seconds;
* events are read by a dedicated task into a queue, so a busy consumer never
  delays the pongs that keep the link alive, and `Connected`/`Disconnected`
  items tell the engine when to run recovery.

Credentials travel in the Authorization header (HTTP Basic), never in a URL:
URLs end up in logs and exception messages. (We build the header ourselves:
aiohttp 3.14 deprecates `aiohttp.BasicAuth`, and its replacement is 3.14-only.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Any, Final, cast
from urllib.parse import quote

import aiohttp
import structlog

from coverage_engine.ari.errors import (
    AriTimeout,
    AriUnavailable,
    ResourceConflict,
    ResourceGone,
    error_for_status,
)
from coverage_engine.ari.events import (
    Connected,
    Disconnected,
    StreamItem,
    UnknownEvent,
    parse_event,
)
from coverage_engine.ari.interface import HangupReason
from coverage_engine.ari.models import Bridge, CallerId, Channel, Playback
from coverage_engine.ari.settings import AriSettings
from coverage_engine.logs import mask_number

log = structlog.get_logger("coverage_engine.ari")

_STOP: Final = object()  # queue sentinel: the client was closed, the event iterator ends
_STASIS_ENTRY_FIRST_PAUSE = 0.005  # then doubling, within AriSettings.stasis_entry_wait


def tls_context(settings: AriSettings) -> ssl.SSLContext | bool:
    """What aiohttp verifies TLS with: our CA file's context, else its own defaults.

    Either way certificates and host names are checked; `False` (aiohttp's
    "do not verify") is never returned.
    """
    if settings.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot use the ARI CA file {settings.ca_file}: {exc}") from exc


# A variable (COVERAGE_TRIED) or a function with a simple argument (CALLERID(name)).
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\([A-Za-z0-9_-]+\))?")
# Characters of a value that Asterisk's argument parser never treats specially.
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 +-_.:/@")


def _array_value(value: str) -> str:
    """One value of an ARRAY() write, escaped: a backslash makes the next character literal.

    ARRAY() splits its value as dialplan arguments are split (commas outside
    quotes, parentheses and brackets; quotes removed). Escaping every
    character but the plain ones makes the split, and the value, exact,
    whatever caller text it holds (checked against Asterisk 22 in
    tests/integration/test_ari_live.py).
    """
    return "".join(c if c in _PLAIN else "\\" + c for c in value)


def _segment(value: str) -> str:
    # Ids come from Asterisk or from us, but quoting keeps a stray "/" or "?"
    # from ever turning into another resource.
    return quote(value, safe="")


class AriClient:
    """One ARI application's REST client and event stream (implements `interface.Ari`).

    Use as `async with AriClient(settings) as ari:`; entering opens the HTTP
    session and starts the event WebSocket task (Asterisk's `Stasis()` fails
    a call while no WebSocket is connected, so we connect at once), leaving
    closes both cleanly.
    """

    def __init__(self, settings: AriSettings, *, rng: random.Random | None = None) -> None:
        self._settings = settings
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._session: aiohttp.ClientSession | None = None
        self._queue: asyncio.Queue[StreamItem | object] = asyncio.Queue()
        self._ws_task: asyncio.Task[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._closing = False
        self._connected = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------

    @property
    def app(self) -> str:
        return self._settings.app

    @property
    def settings(self) -> AriSettings:
        return self._settings

    @property
    def is_connected(self) -> bool:
        """True while the event WebSocket is up."""
        return self._connected.is_set()

    async def start(self, *, events: bool = True) -> None:
        """Open the HTTP session and (unless `events=False`) start the event WebSocket task."""
        if self._session is not None:
            return
        self._session = aiohttp.ClientSession(
            headers={"Authorization": self._settings.authorization_header()},
            # https and wss: verified against the configured CAs, never skipped.
            connector=aiohttp.TCPConnector(ssl=tls_context(self._settings)),
            # The per-request deadline is enforced with asyncio.timeout below;
            # this only keeps aiohttp's own 5-minute default out of the way.
            timeout=aiohttp.ClientTimeout(total=None),
        )
        if events:
            self._ws_task = asyncio.create_task(self._run_events(), name="ari-events")

    async def wait_connected(self, timeout: float) -> bool:  # noqa: ASYNC109 - returns a bool
        """Wait until the event WebSocket is up; False if it is not within `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    def drop_websocket(self) -> bool:
        """Cut the event WebSocket's TCP connection abruptly; the client then reconnects.

        Exactly what a network failure looks like (no close frame), so tests
        and operators can exercise recovery on demand. False when not connected.
        """
        ws = self._ws
        sock = ws.get_extra_info("socket") if ws is not None else None
        if sock is None:
            return False
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        return True

    async def close(self) -> None:
        """Stop reconnecting, close the WebSocket with a normal close frame, end `events()`."""
        self._closing = True
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._ws.close()
        if self._ws_task is not None:
            self._ws_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ws_task
            self._ws_task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._connected.clear()
        self._queue.put_nowait(_STOP)

    async def __aenter__(self) -> AriClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- events ------------------------------------------------------------------

    def events(self) -> AsyncIterator[StreamItem]:
        """Yield events and connection changes until the client is closed.

        A plain iterator object, not an async generator: cancelling a wait on
        it (a timeout around `anext()`) leaves it usable, where a generator
        would be closed for good by the CancelledError thrown into it.
        """
        return _EventIterator(self._queue)

    def _events_url(self) -> str:
        base = self._settings.base_url
        if base.startswith("https://"):
            return "wss://" + base.removeprefix("https://") + "/events"
        return "ws://" + base.removeprefix("http://") + "/events"

    async def _run_events(self) -> None:
        """Connect, read, reconnect with backoff + jitter, forever until `close()`."""
        attempt = 0
        delay = self._settings.backoff_initial
        while not self._closing:
            try:
                ws = await self._connect_ws()
            except Exception as exc:  # whatever stopped this attempt, the answer is: retry later
                wait = self._jittered(delay)
                log.warning(
                    "ari.connect_failed",
                    url=self._settings.safe_url,
                    reason=_describe(exc),
                    retry_in_s=round(wait, 2),
                )
                await asyncio.sleep(wait)
                delay = min(delay * 2, self._settings.backoff_max)
                continue
            attempt += 1
            self._ws = ws
            self._connected.set()
            log.info("ari.connected", url=self._settings.safe_url, app=self.app, attempt=attempt)
            self._queue.put_nowait(Connected(attempt=attempt))
            started = time.monotonic()
            try:
                reason = await self._read(ws)
            except Exception as exc:  # a bug here must not end the event stream for good
                log.exception("ari.reader_failed")
                reason = f"reader failed: {_describe(exc)}"
            finally:
                self._connected.clear()
                self._ws = None
                if not ws.closed:
                    with contextlib.suppress(Exception):
                        await ws.close()
            if self._closing:
                break
            # A link that stayed up a while earns a fresh, short backoff; one that
            # drops at once (e.g. Asterisk half-started) keeps backing off.
            if time.monotonic() - started >= self._settings.backoff_max:
                delay = self._settings.backoff_initial
            wait = self._jittered(delay)
            log.warning("ari.disconnected", reason=reason, retry_in_s=round(wait, 2))
            self._queue.put_nowait(Disconnected(reason=reason))
            await asyncio.sleep(wait)
            delay = min(delay * 2, self._settings.backoff_max)

    async def _connect_ws(self) -> aiohttp.ClientWebSocketResponse:
        session = self._require_session()
        async with asyncio.timeout(self._settings.request_timeout):
            return await session.ws_connect(
                self._events_url(),
                params={"app": self.app},
                heartbeat=self._settings.heartbeat,
                autoping=True,
            )

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """Read frames into the queue until the link ends; return why it ended."""
        try:
            async for message in ws:
                if message.type is aiohttp.WSMsgType.TEXT:
                    self._queue.put_nowait(_decode(message.data))
                elif message.type is aiohttp.WSMsgType.ERROR:
                    return f"error: {_describe(ws.exception() or message.data)}"
        except (aiohttp.ClientError, OSError) as exc:
            return f"error: {_describe(exc)}"
        exception = ws.exception()
        if exception is not None:  # e.g. heartbeat: no PONG in time
            return f"error: {_describe(exception)}"
        return f"closed by Asterisk (code {ws.close_code})"

    def _jittered(self, delay: float) -> float:
        jitter = self._settings.backoff_jitter
        return max(0.0, delay * (1 + self._rng.uniform(-jitter, jitter)))

    # -- REST core ---------------------------------------------------------------

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise AriUnavailable("the ARI client is not started (use `async with AriClient(...)`)")
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one REST request within the deadline; return decoded JSON (None when empty)."""
        session = self._require_session()
        started = time.monotonic()
        try:
            async with (
                asyncio.timeout(self._settings.request_timeout),
                session.request(
                    method, self._settings.base_url + path, params=params, json=body
                ) as response,
            ):
                status = response.status
                payload = await response.read()
        except TimeoutError as exc:
            log.warning("ari.request_timeout", method=method, path=path)
            raise AriTimeout(
                f"{method} {path}: no answer from Asterisk within "
                f"{self._settings.request_timeout:g} s"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise AriUnavailable(f"{method} {path}: {_describe(exc)}") from exc
        elapsed_ms = round((time.monotonic() - started) * 1000, 1)
        log.debug("ari.request", method=method, path=path, status=status, ms=elapsed_ms)
        if status >= 400:
            raise error_for_status(method, path, status, _error_message(payload, status))
        if not payload:
            return None
        try:
            return json.loads(payload)
        except ValueError:
            return None

    # -- the caller's experience -------------------------------------------------

    async def answer(self, channel_id: str) -> None:
        await self._request("POST", f"/channels/{_segment(channel_id)}/answer")

    async def ring(self, channel_id: str) -> None:
        await self._request("POST", f"/channels/{_segment(channel_id)}/ring")

    async def ring_stop(self, channel_id: str) -> None:
        await self._request("DELETE", f"/channels/{_segment(channel_id)}/ring")

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        params = {"mohClass": moh_class} if moh_class else None
        await self._request("POST", f"/channels/{_segment(channel_id)}/moh", params=params)

    async def stop_moh(self, channel_id: str) -> None:
        await self._request("DELETE", f"/channels/{_segment(channel_id)}/moh")

    async def play(
        self,
        channel_id: str,
        media: str | Sequence[str],
        *,
        playback_id: str,
        lang: str | None = None,
    ) -> Playback:
        # ARI takes several media as one comma-separated parameter and plays them in order.
        media_list = media if isinstance(media, str) else ",".join(media)
        params: dict[str, str | int] = {"media": media_list}
        if lang:
            params["lang"] = lang
        data = await self._request(
            "POST",
            f"/channels/{_segment(channel_id)}/play/{_segment(playback_id)}",
            params=params,
        )
        return Playback.from_json(data) if isinstance(data, Mapping) else Playback(id=playback_id)

    async def stop_playback(self, playback_id: str) -> None:
        await self._request("DELETE", f"/playbacks/{_segment(playback_id)}")

    async def hangup(self, channel_id: str, reason: HangupReason = "normal") -> None:
        await self._request(
            "DELETE", f"/channels/{_segment(channel_id)}", params={"reason": reason}
        )

    # -- reaching people -----------------------------------------------------------

    async def create_channel(
        self,
        endpoint: str,
        *,
        channel_id: str,
        app_args: Sequence[str] = (),
        originator: str | None = None,
        caller_id: CallerId | None = None,
        formats: Sequence[str] = (),
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        params: dict[str, str | int] = {
            "endpoint": endpoint,
            "app": self.app,
            "channelId": channel_id,
        }
        if app_args:
            params["appArgs"] = ",".join(app_args)
        if originator:
            params["originator"] = originator
        if formats:
            params["formats"] = ",".join(formats)
        # /channels/create has no callerId parameter (originate has). What the
        # callee's phone shows is the new channel's *connected line* (chan_pjsip
        # builds the outbound From from it; Dial() copies the caller's id there).
        # Setting CALLERID() instead leaves the phone showing "anonymous":
        # checked against Asterisk 22 in tests/integration/test_ari_live.py.
        all_vars: dict[str, str] = dict(variables or {})
        if caller_id is not None:
            all_vars["CONNECTEDLINE(name)"] = caller_id.name
            all_vars["CONNECTEDLINE(num)"] = caller_id.number
        body = {"variables": all_vars} if all_vars else None
        log.debug("ari.create_channel", endpoint=mask_number(endpoint), channel_id=channel_id)
        data = await self._request("POST", "/channels/create", params=params, body=body)
        return Channel.from_json(data) if isinstance(data, Mapping) else Channel(id=channel_id)

    async def originate(
        self,
        endpoint: str,
        *,
        channel_id: str,
        ring_seconds: int,
        app_args: Sequence[str] = (),
        originator: str | None = None,
        caller_id: CallerId | None = None,
    ) -> Channel:
        params: dict[str, str | int] = {
            "endpoint": endpoint,
            "app": self.app,
            "channelId": channel_id,
            "timeout": ring_seconds,
        }
        if app_args:
            params["appArgs"] = ",".join(app_args)
        if originator:
            params["originator"] = originator
        # As for create_channel: the callee's display is the connected line.
        variables = (
            {"CONNECTEDLINE(name)": caller_id.name, "CONNECTEDLINE(num)": caller_id.number}
            if caller_id is not None
            else {}
        )
        body = {"variables": variables} if variables else None
        data = await self._request("POST", "/channels", params=params, body=body)
        return Channel.from_json(data) if isinstance(data, Mapping) else Channel(id=channel_id)

    async def dial(self, channel_id: str, *, ring_seconds: int, caller: str | None = None) -> None:
        params: dict[str, str | int] = {"timeout": ring_seconds}
        if caller:
            params["caller"] = caller
        path = f"/channels/{_segment(channel_id)}/dial"
        # Asterisk 22 answers `/channels/create` before the new channel has
        # entered the application, and a dial in that gap is refused with 409
        # "Channel not in Stasis application" (seen in the sandbox, for a few
        # ms). Retried here, the one place that knows, with a growing pause
        # and a bound: a channel that never enters is then the caller's
        # failure to handle (the call moves on to its next step).
        deadline = time.monotonic() + self._settings.stasis_entry_wait
        pause = _STASIS_ENTRY_FIRST_PAUSE
        while True:
            try:
                await self._request("POST", path, params=params)
                return
            except ResourceConflict as exc:
                if "stasis" not in exc.message.lower() or time.monotonic() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            pause *= 2

    async def continue_in_dialplan(
        self, channel_id: str, *, context: str, extension: str, priority: int = 1
    ) -> None:
        await self._request(
            "POST",
            f"/channels/{_segment(channel_id)}/continue",
            params={"context": context, "extension": extension, "priority": priority},
        )

    async def claim(self, channel_id: str) -> bool:
        try:
            await self._request(
                "POST",
                "/events/claim",
                params={"channelId": channel_id, "application": self.app},
            )
        except (ResourceConflict, ResourceGone):
            # 409: another application claimed it first; 404: the offer ended
            # (timed out, or the caller hung up). Either way: not ours.
            return False
        return True

    async def subscribe_channel(self, channel_id: str) -> None:
        await self._request(
            "POST",
            f"/applications/{_segment(self.app)}/subscription",
            params={"eventSource": f"channel:{channel_id}"},
        )

    # -- bridges ---------------------------------------------------------------------

    async def create_bridge(self, bridge_id: str, *, name: str = "") -> Bridge:
        params: dict[str, str | int] = {"type": "mixing"}
        if name:
            params["name"] = name
        data = await self._request("POST", f"/bridges/{_segment(bridge_id)}", params=params)
        return Bridge.from_json(data) if isinstance(data, Mapping) else Bridge(id=bridge_id)

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self._request("DELETE", f"/bridges/{_segment(bridge_id)}")

    async def add_to_bridge(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        await self._request(
            "POST",
            f"/bridges/{_segment(bridge_id)}/addChannel",
            params={"channel": ",".join(channel_ids)},
        )

    async def remove_from_bridge(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        await self._request(
            "POST",
            f"/bridges/{_segment(bridge_id)}/removeChannel",
            params={"channel": ",".join(channel_ids)},
        )

    # -- state on channels -----------------------------------------------------------

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self._request(
            "POST",
            f"/channels/{_segment(channel_id)}/variable",
            params={"variable": name, "value": value},
        )

    async def set_variables(self, channel_id: str, variables: Sequence[tuple[str, str]]) -> None:
        if len(variables) == 1:
            [(name, value)] = variables
            await self.set_variable(channel_id, name, value)
            return
        if not variables:
            return
        names = [name for name, _ in variables]
        for name in names:
            if not _VARIABLE_NAME.fullmatch(name):
                raise ValueError(f"not a variable or function name ARRAY() can take: {name!r}")
        await self.set_variable(
            channel_id,
            f"ARRAY({','.join(names)})",
            ",".join(_array_value(value) for _, value in variables),
        )

    async def get_variable(self, channel_id: str, name: str) -> str | None:
        try:
            data = await self._request(
                "GET", f"/channels/{_segment(channel_id)}/variable", params={"variable": name}
            )
        except ResourceGone as exc:
            # Asterisk answers 404 both for a missing channel and for an unset
            # variable ("Provided variable was not found"); only the first is "gone".
            if "variable" in exc.message.lower():
                return None
            raise
        if isinstance(data, Mapping) and data.get("value") is not None:
            return str(data["value"])
        return None

    # -- looking around ----------------------------------------------------------------

    async def get_channel(self, channel_id: str) -> Channel:
        data = await self._request("GET", f"/channels/{_segment(channel_id)}")
        return Channel.from_json(data if isinstance(data, Mapping) else {"id": channel_id})

    async def list_channels(self) -> list[Channel]:
        data = await self._request("GET", "/channels")
        return [Channel.from_json(c) for c in data or [] if isinstance(c, Mapping)]

    async def list_bridges(self) -> list[Bridge]:
        data = await self._request("GET", "/bridges")
        return [Bridge.from_json(b) for b in data or [] if isinstance(b, Mapping)]

    async def application_channel_ids(self, app: str | None = None) -> list[str]:
        data = await self._request("GET", f"/applications/{_segment(app or self.app)}")
        ids = data.get("channel_ids") if isinstance(data, Mapping) else None
        return [str(i) for i in ids] if isinstance(ids, list) else []

    async def filter_events(self, allowed: Collection[str]) -> None:
        # The body is the filter itself: {"allowed": [{"type": ...}, ...]}
        # (checked against Asterisk 22 in tests/integration/test_ari_live.py).
        await self._request(
            "PUT",
            f"/applications/{_segment(self.app)}/eventFilter",
            body={"allowed": [{"type": name} for name in sorted(allowed)], "disallowed": []},
        )


    # -- the PBX's own state (dialplan globals, dialplan work on a Local channel) -------

    async def get_global(self, name: str) -> str:
        """A dialplan global variable ("" when unset)."""
        data = await self._request("GET", "/asterisk/variable", params={"variable": name})
        value = data.get("value") if isinstance(data, Mapping) else None
        return "" if value is None else str(value)

    async def set_global(self, name: str, value: str) -> None:
        """Set a dialplan global variable."""
        await self._request(
            "POST", "/asterisk/variable", params={"variable": name, "value": value}
        )

    async def run_dialplan(
        self, endpoint: str, *, context: str, extension: str, variables: Mapping[str, str]
    ) -> None:
        """Originate `endpoint` (a Local channel) with `variables`; it runs the dialplan itself.

        The channel is not put into the application: what it does is the
        dialplan's business (`extension` of `context` is where its other half
        goes if it is ever answered). Asterisk answers at once; the work
        happens on the new channel's own thread.
        """
        await self._request(
            "POST",
            "/channels",
            params={"endpoint": endpoint, "context": context, "extension": extension},
            body={"variables": dict(variables)},
        )

    async def application_names(self) -> list[str]:
        """Every ARI application the PBX knows (connected, or gone but still holding channels)."""
        data = await self._request("GET", "/applications")
        return [str(a["name"]) for a in data or [] if isinstance(a, Mapping) and "name" in a]

    async def sound_exists(self, sound: str) -> bool:
        """Whether the PBX has the sound `sound` (e.g. coverage/accept-maple-grove)."""
        try:
            await self._request("GET", f"/sounds/{_segment(sound)}")
        except ResourceGone:
            return False
        return True


class _EventIterator:
    """Reads the client's event queue; ends when the client is closed."""

    def __init__(self, queue: asyncio.Queue[StreamItem | object]) -> None:
        self._queue = queue

    def __aiter__(self) -> _EventIterator:
        return self

    async def __anext__(self) -> StreamItem:
        item = await self._queue.get()
        if item is _STOP:
            self._queue.put_nowait(_STOP)  # let any other iterator end too
            raise StopAsyncIteration
        return cast(StreamItem, item)


def _decode(text: str) -> StreamItem:
    try:
        data = json.loads(text)
    except ValueError:
        return UnknownEvent(type="", problem="frame is not JSON", raw={"text": text[:200]})
    return parse_event(data)


def _error_message(payload: bytes, status: int) -> str:
    """Asterisk's error text: `message`/`error` of its JSON body, else the body, else the status."""
    try:
        data = json.loads(payload)
    except ValueError:
        data = None
    # Most ARI errors say {"message": ...}; some (POST /channels/create with an
    # endpoint that cannot be allocated) say {"error": "Allocation failed"}.
    if isinstance(data, Mapping):
        for key in ("message", "error"):
            if data.get(key):
                return str(data[key])
    text = payload.decode("utf-8", "replace").strip()
    return text[:200] if text else f"HTTP {status}"


def _describe(exc: object) -> str:
    if isinstance(exc, aiohttp.WSServerHandshakeError) and exc.status in (401, 403):
        return "Asterisk refused the ARI user or password (check ari.conf and the password file)"
    if isinstance(exc, TimeoutError):  # aiohttp's heartbeat failure is one too
        return f"timed out: {exc}" if str(exc) else "timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
