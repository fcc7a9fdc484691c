"""A fake ARI server for the unit tests and the benchmarks.

`FakeAri` is a real aiohttp server (HTTP + WebSocket on 127.0.0.1, a random
port) that speaks enough ARI for the engine: it keeps channels, bridges,
variables and playbacks, records every REST request, answers like Asterisk 22
(same status codes and error messages), and emits the events Asterisk would
emit for what it was asked to do. Tests drive the other side of the call with
helpers: a caller arrives (`start_call`), a phone answers or is busy
(`answer`, `dial_outcomes`), someone hangs up (`remote_hangup`), the link dies
(`drop_websockets`, `freeze_websockets`).

Faking at the boundary instead of monkeypatching means the production
`AriClient` runs unchanged in tests: its deadlines, its error mapping and its
reconnect logic are exercised for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import WSMsgType, web

from coverage_engine.ari.settings import AriSettings

DialOutcome = Literal["answer", "busy", "noanswer", "unavailable", "missing", "ring"]
"""What a dialed phone does: answer at once, be busy, ring out (no answer), be unreachable,
not exist at all (`/channels/create` fails), or ring until a test calls `answer()`."""

_HANGUP_CAUSES = {
    "normal": 16,
    "busy": 17,
    "no_answer": 19,
    "rejected": 21,
    "congestion": 34,
    "unallocated": 1,
    "timeout": 19,
    "normal_unspecified": 31,
    "failure": 38,
    "answered_elsewhere": 26,
}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One REST request the fake received: path relative to `/ari`, query, JSON body."""

    method: str
    path: str
    query: Mapping[str, str]
    body: Any = None


@dataclass(slots=True)
class _Failure:
    method: str
    pattern: str
    status: int
    message: str
    delay: float
    times: int


@dataclass(slots=True)
class _FakeChannel:
    data: dict[str, Any]
    in_stasis: bool = False
    # Subscribed beyond Stasis (legs we created, or POST .../subscription):
    # only then does Asterisk send events such as ChannelDestroyed after StasisEnd.
    subscribed: bool = False
    app_args: tuple[str, ...] = ()
    variables: dict[str, str] = field(default_factory=dict)
    bridge_id: str | None = None
    moh: bool = False
    ringing: bool = False
    dial_task: asyncio.Task[None] | None = None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


class FakeAri:
    """A fake Asterisk ARI on 127.0.0.1 (use `async with FakeAri() as fake:`).

    `dial_outcomes` maps an endpoint glob (`PJSIP/dr-*`) to what that phone
    does when dialed; the default is "ring" (rings until the dial timeout,
    or until a test calls `answer(channel_id)`).
    """

    def __init__(
        self,
        *,
        app: str = "coverage-engine",
        username: str = "fake-ari",
        password: str = "fake-ari-password",  # noqa: S107 - a fake server's fake password
        auto_events: bool = True,
        playback_seconds: float = 0.05,
    ) -> None:
        self.app = app
        self.username = username
        self._password = password
        self.auto_events = auto_events
        self.playback_seconds = playback_seconds
        # How long a created channel takes to enter the application (the gap
        # in which Asterisk refuses a dial with 409).
        self.stasis_entry_delay = 0.0
        self.requests: list[RecordedRequest] = []
        self.channels: dict[str, _FakeChannel] = {}
        self.bridges: dict[str, dict[str, Any]] = {}
        self.playbacks: dict[str, dict[str, Any]] = {}
        self.dial_outcomes: dict[str, DialOutcome] = {}
        self.ws_connections_total = 0
        # Channels another application claimed before us (POST /events/claim answers 409).
        self.claimed_by_others: set[str] = set()
        # Dialplan globals (GET/POST /asterisk/variable): the engines' heartbeats.
        self.globals: dict[str, str] = {}
        self._failures: list[_Failure] = []
        self._sockets: list[tuple[web.Request, web.WebSocketResponse]] = []
        self._ws_changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._auth_and_record])
        app.router.add_get("/ari/events", self._events)
        self._add_routes(app.router)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for channel in self.channels.values():
            if channel.dial_task is not None:
                channel.dial_task.cancel()
        self.thaw_websockets()
        for _, ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeAri:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """The ARI base URL, as the client wants it."""
        return f"http://127.0.0.1:{self.port}/ari"

    def settings(self, **overrides: Any) -> AriSettings:
        """Client settings pointing at this fake (timings overridable, short by default)."""
        values: dict[str, Any] = {
            "url": self.url,
            "username": self.username,
            "password": self._password,
            "app": self.app,
            "request_timeout": 2.0,
            "heartbeat": 1.0,
            "backoff_initial": 0.05,
            "backoff_max": 0.5,
        }
        values.update(overrides)
        return AriSettings(**values)

    # -- test controls ---------------------------------------------------------------

    def fail(
        self,
        method: str,
        path_glob: str,
        *,
        status: int = 500,
        message: str = "Internal Server Error",
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Make the next `times` matching requests wait `delay` s, then fail with `status`.

        `status=0` only delays, then answers normally (for deadline tests).
        """
        self._failures.append(_Failure(method.upper(), path_glob, status, message, delay, times))

    def requests_to(self, method: str, path_glob: str = "*") -> list[RecordedRequest]:
        """The recorded requests matching a method and a path glob (`/channels/*/answer`)."""
        return [
            r
            for r in self.requests
            if r.method == method.upper() and fnmatch.fnmatchcase(r.path, path_glob)
        ]

    @property
    def connected_websockets(self) -> int:
        return sum(1 for _, ws in self._sockets if not ws.closed)

    async def wait_for_websockets(self, count: int = 1, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until `count` WebSocket connections have been made in total."""
        async with asyncio.timeout(timeout), self._ws_changed:
            await self._ws_changed.wait_for(lambda: self.ws_connections_total >= count)

    async def drop_websockets(self) -> None:
        """Cut every event WebSocket abruptly (no close frame), like a crash or a reset."""
        for request, _ in list(self._sockets):
            if request.transport is not None:
                request.transport.abort()
        self._sockets.clear()

    def freeze_websockets(self) -> None:
        """Keep connections open but stop reading them: pings go unanswered (a hung Asterisk)."""
        for request, _ in self._sockets:
            if request.transport is not None:
                request.transport.pause_reading()

    def thaw_websockets(self) -> None:
        """Read (and answer pings on) the open connections again."""
        for request, _ in self._sockets:
            if request.transport is not None:
                request.transport.resume_reading()

    async def push(self, event_type: str, **fields: Any) -> None:
        """Send one event to every connected WebSocket, as Asterisk would."""
        event = {
            "type": event_type,
            "timestamp": _now(),
            "application": self.app,
            "asterisk_id": "fa:ke:00:00:00:01",
            **fields,
        }
        text = json.dumps(event)
        for _, ws in list(self._sockets):
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await ws.send_str(text)

    async def push_raw(self, text: str) -> None:
        """Send a raw text frame (for malformed-frame tests)."""
        for _, ws in list(self._sockets):
            if not ws.closed:
                await ws.send_str(text)

    def add_channel(
        self,
        *,
        channel_id: str | None = None,
        name: str | None = None,
        caller_number: str = "",
        caller_name: str = "",
        state: str = "Ring",
        context: str = "coverage-inbound",
        exten: str = "s",
        app_args: tuple[str, ...] = (),
        in_stasis: bool = True,
    ) -> str:
        """Create a channel in the fake's state (no event); return its id."""
        ident = channel_id or f"fake-{next(self._ids)}.0"
        self.channels[ident] = _FakeChannel(
            data={
                "id": ident,
                "name": name or f"PJSIP/fake-{ident}",
                "state": state,
                "protocol_id": "",
                "caller": {"name": caller_name, "number": caller_number},
                "connected": {"name": "", "number": ""},
                "accountcode": "",
                "dialplan": {
                    "context": context,
                    "exten": exten,
                    "priority": 2,
                    "app_name": "Stasis" if in_stasis else "",
                    "app_data": ",".join((self.app, *app_args)) if in_stasis else "",
                },
                "creationtime": _now(),
                "language": "en",
            },
            in_stasis=in_stasis,
            app_args=app_args,
        )
        return ident

    async def start_call(
        self, did: str, caller_number: str = "+15550000000", *, channel_id: str | None = None
    ) -> str:
        """A caller dials `did`: the channel enters the app with `inbound,<did>`; return its id."""
        ident = self.add_channel(
            channel_id=channel_id,
            caller_number=caller_number,
            exten=did,
            app_args=("inbound", did),
        )
        await self.push("StasisStart", args=["inbound", did], channel=self.channels[ident].data)
        return ident

    async def reenter(self, channel_id: str, *args: str) -> None:
        """A channel comes back into the app from the dialplan (e.g. `queue-result,TIMEOUT`)."""
        channel = self.channels[channel_id]
        channel.in_stasis = True
        channel.app_args = args
        channel.data["dialplan"].update(app_name="Stasis", app_data=",".join((self.app, *args)))
        await self.push("StasisStart", args=list(args), channel=channel.data)

    async def answer(self, channel_id: str) -> None:
        """The dialed phone behind a created channel answers (Asterisk 22's event order)."""
        channel = self.channels[channel_id]
        if channel.dial_task is not None and channel.dial_task is not asyncio.current_task():
            channel.dial_task.cancel()
        channel.dial_task = None
        channel.data["state"] = "Up"
        await self._maybe_push("ChannelStateChange", channel=channel.data)
        await self._maybe_push("Dial", dialstatus="ANSWER", peer=channel.data)

    async def press(self, channel_id: str, digit: str) -> None:
        """The person on the channel presses a key."""
        await self.push(
            "ChannelDtmfReceived",
            digit=digit,
            duration_ms=100,
            channel=self.channels[channel_id].data,
        )

    async def remote_hangup(self, channel_id: str, cause: int = 16) -> None:
        """The person on the channel hangs up (the events Asterisk sends, in its order)."""
        # A BYE from the phone gives a ChannelHangupRequest without a cause.
        await self._destroy_channel(channel_id, cause, request_cause=None)

    # -- HTTP plumbing ---------------------------------------------------------------

    @web.middleware
    async def _auth_and_record(
        self,
        request: web.Request,
        handler: Any,
    ) -> web.StreamResponse:
        if request.headers.get("Authorization") != self.settings().authorization_header():
            return _error(401, "Authentication required")
        if request.path == "/ari/events":
            response: web.StreamResponse = await handler(request)
            return response
        body: Any = None
        if request.can_read_body:
            with contextlib.suppress(ValueError):
                body = await request.json()
        path = request.path.removeprefix("/ari")
        self.requests.append(RecordedRequest(request.method, path, dict(request.query), body))
        for failure in self._failures:
            if failure.method == request.method and fnmatch.fnmatchcase(path, failure.pattern):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                if failure.delay:
                    await asyncio.sleep(failure.delay)
                if failure.status:
                    return _error(failure.status, failure.message)
                break
        try:
            response = await handler(request)
        except _Reply as reply:
            return _error(reply.status, reply.message)
        return response

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("app") != self.app:
            return _error(400, "Invalid application provided in param [app].")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append((request, ws))
        async with self._ws_changed:
            self.ws_connections_total += 1
            self._ws_changed.notify_all()
        try:
            while not ws.closed:
                message = await ws.receive()
                if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
        finally:
            with contextlib.suppress(ValueError):
                self._sockets.remove((request, ws))
        return ws

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        ch = "/ari/channels/{id}"
        br = "/ari/bridges/{id}"
        routes: list[tuple[str, str, Any]] = [
            ("GET", "/ari/channels", self._list_channels),
            ("POST", "/ari/channels/create", self._create_channel),
            ("GET", ch, self._get_channel),
            ("DELETE", ch, self._hangup),
            ("POST", ch + "/answer", self._answer),
            ("POST", ch + "/ring", self._ring),
            ("DELETE", ch + "/ring", self._ring_stop),
            ("POST", ch + "/moh", self._moh_start),
            ("DELETE", ch + "/moh", self._moh_stop),
            ("POST", ch + "/play/{pb}", self._play),
            ("POST", ch + "/dial", self._dial),
            ("POST", ch + "/continue", self._continue),
            ("GET", ch + "/variable", self._get_var),
            ("POST", ch + "/variable", self._set_var),
            ("DELETE", "/ari/playbacks/{pb}", self._stop_playback),
            ("GET", "/ari/bridges", self._list_bridges),
            ("POST", br, self._create_bridge),
            ("DELETE", br, self._destroy_bridge),
            ("POST", br + "/addChannel", self._add_to_bridge),
            ("POST", br + "/removeChannel", self._remove_from_bridge),
            ("GET", "/ari/applications/{app}", self._application),
            ("POST", "/ari/applications/{app}/subscription", self._subscribe),
            ("POST", "/ari/events/claim", self._claim),
            ("GET", "/ari/applications", self._applications),
            ("GET", "/ari/asterisk/variable", self._get_global),
            ("POST", "/ari/asterisk/variable", self._set_global),
        ]
        for method, path, handler in routes:
            router.add_route(method, path, handler)

    # -- channel handlers --------------------------------------------------------------

    def _channel(self, request: web.Request, *, stasis: bool = True) -> _FakeChannel:
        channel = self.channels.get(request.match_info["id"])
        if channel is None:
            raise _http_error(404, "Channel not found")
        if stasis and not channel.in_stasis:
            raise _http_error(409, "Channel not in Stasis application")
        return channel

    async def _list_channels(self, request: web.Request) -> web.Response:
        return web.json_response([c.data for c in self.channels.values()])

    async def _get_channel(self, request: web.Request) -> web.Response:
        return web.json_response(self._channel(request, stasis=False).data)

    async def _create_channel(self, request: web.Request) -> web.Response:
        query = request.query
        endpoint = query.get("endpoint", "")
        if not endpoint or query.get("app") != self.app:
            return _error(400, "Endpoint and app are required")
        ident = query.get("channelId") or f"fake-{next(self._ids)}.1"
        if self._outcome_for(endpoint) == "missing":
            # Asterisk's answer for an endpoint it cannot allocate, key "error" and all.
            return web.json_response({"error": "Allocation failed"}, status=500)
        if ident in self.channels:
            return _error(409, "Channel with given unique ID already exists")
        body = self.requests[-1].body if self.requests else None
        variables = dict(body.get("variables", {})) if isinstance(body, Mapping) else {}
        app_args = tuple(a for a in query.get("appArgs", "").split(",") if a)
        self.add_channel(
            channel_id=ident,
            name=f"{endpoint}-{next(self._ids):08x}",
            caller_number=variables.get("CALLERID(num)", ""),
            caller_name=variables.get("CALLERID(name)", ""),
            state="Down",
            app_args=app_args,
            in_stasis=False,
        )
        channel = self.channels[ident]
        channel.subscribed = True
        channel.variables.update(variables)
        connected = channel.data["connected"]
        connected["name"] = variables.get("CONNECTEDLINE(name)", "")
        connected["number"] = variables.get("CONNECTEDLINE(num)", "")
        channel.data["dialplan"]["exten"] = endpoint  # kept so dial() can match outcomes
        # Asterisk 22 puts a created channel into the application right after
        # answering the request, before it is dialed: StasisStart with the
        # appArgs, state Down. Until then a dial is refused with 409.
        self._spawn(self._enter_stasis(channel))
        return web.json_response(channel.data)

    async def _enter_stasis(self, channel: _FakeChannel) -> None:
        if self.stasis_entry_delay:
            await asyncio.sleep(self.stasis_entry_delay)
        channel.in_stasis = True
        channel.data["dialplan"].update(
            app_name="Stasis", app_data=",".join((self.app, *channel.app_args))
        )
        await self._maybe_push("StasisStart", args=list(channel.app_args), channel=channel.data)

    async def _hangup(self, request: web.Request) -> web.Response:
        channel = self._channel(request, stasis=False)
        reason = request.query.get("reason", "normal")
        if reason not in _HANGUP_CAUSES:
            return _error(400, "Invalid reason for hangup provided")
        self._spawn(self._destroy_channel(channel.data["id"], _HANGUP_CAUSES[reason]))
        return web.Response(status=204)

    async def _answer(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel.data["state"] != "Up":
            channel.data["state"] = "Up"
            self._emit("ChannelStateChange", channel=channel.data)
        return web.Response(status=204)

    async def _ring(self, request: web.Request) -> web.Response:
        self._channel(request).ringing = True
        return web.Response(status=204)

    async def _ring_stop(self, request: web.Request) -> web.Response:
        self._channel(request).ringing = False
        return web.Response(status=204)

    async def _moh_start(self, request: web.Request) -> web.Response:
        self._channel(request).moh = True
        return web.Response(status=204)

    async def _moh_stop(self, request: web.Request) -> web.Response:
        self._channel(request).moh = False
        return web.Response(status=204)

    async def _play(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        playback_id = request.match_info["pb"]
        playback = {
            "id": playback_id,
            "media_uri": request.query.get("media", ""),
            "target_uri": f"channel:{channel.data['id']}",
            "language": request.query.get("lang", "en"),
            "state": "queued",
        }
        self.playbacks[playback_id] = playback
        self._spawn(self._run_playback(playback_id))
        return web.json_response(playback, status=201)

    async def _run_playback(self, playback_id: str) -> None:
        playback = self.playbacks[playback_id]
        playback["state"] = "playing"
        await self._maybe_push("PlaybackStarted", playback=dict(playback))
        await asyncio.sleep(self.playback_seconds)
        if self.playbacks.pop(playback_id, None) is not None:
            playback["state"] = "done"
            await self._maybe_push("PlaybackFinished", playback=dict(playback))

    async def _stop_playback(self, request: web.Request) -> web.Response:
        playback = self.playbacks.pop(request.match_info["pb"], None)
        if playback is None:
            return _error(404, "Playback not found")
        playback["state"] = "cancelled"
        self._emit("PlaybackFinished", playback=dict(playback))
        return web.Response(status=204)

    async def _dial(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel.dial_task is not None or channel.data["state"] != "Down":
            return _error(409, "Channel is already being dialed")
        try:
            timeout = int(request.query.get("timeout", "0"))
        except ValueError:
            return _error(400, "Invalid timeout")
        outcome = self._outcome_for(channel.data["dialplan"]["exten"])
        channel.dial_task = asyncio.create_task(self._run_dial(channel, outcome, timeout))
        return web.Response(status=204)

    def _outcome_for(self, endpoint: str) -> DialOutcome:
        for pattern, wanted in self.dial_outcomes.items():
            if fnmatch.fnmatchcase(endpoint, pattern):
                return wanted
        return "ring"

    async def _run_dial(
        self, channel: _FakeChannel, outcome: DialOutcome, ring_seconds: int
    ) -> None:
        # Event order as Asterisk 22 sends it. Failures are not Dial events
        # there: busy, no answer and unreachable show only as the leg's
        # hangup (HangupRequest, StasisEnd, ChannelDestroyed with the cause).
        ident = channel.data["id"]
        await self._maybe_push("Dial", dialstatus="", peer=channel.data)
        if outcome in ("unavailable", "missing"):
            channel.dial_task = None
            await self._destroy_channel(ident, 20)
            return
        if outcome == "busy":
            channel.dial_task = None
            await self._destroy_channel(ident, 17)
            return
        channel.data["state"] = "Ringing"
        await self._maybe_push("ChannelStateChange", channel=channel.data)
        await self._maybe_push("Dial", dialstatus="RINGING", peer=channel.data)
        if outcome == "answer":
            await self.answer(ident)
            return
        if ring_seconds > 0:
            await asyncio.sleep(ring_seconds)
            channel.dial_task = None
            await self._destroy_channel(ident, 19)

    async def _continue(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        query = request.query
        channel.in_stasis = False
        channel.data["dialplan"].update(
            context=query.get("context", channel.data["dialplan"]["context"]),
            exten=query.get("extension", channel.data["dialplan"]["exten"]),
            priority=int(query.get("priority", "1")),
            app_name="",
            app_data="",
        )
        self._emit("StasisEnd", channel=channel.data)
        return web.Response(status=204)

    async def _get_var(self, request: web.Request) -> web.Response:
        channel = self._channel(request, stasis=False)
        name = request.query.get("variable", "")
        if not name:
            return _error(400, "Variable name is required")
        if name not in channel.variables:
            return _error(404, "Provided variable was not found")
        return web.json_response({"value": channel.variables[name]})

    async def _set_var(self, request: web.Request) -> web.Response:
        channel = self._channel(request, stasis=False)
        name = request.query.get("variable", "")
        if not name:
            return _error(400, "Variable name is required")
        channel.variables[name] = request.query.get("value", "")
        return web.Response(status=204)

    # -- bridge handlers ---------------------------------------------------------------

    def _bridge(self, request: web.Request) -> dict[str, Any]:
        bridge = self.bridges.get(request.match_info["id"])
        if bridge is None:
            raise _http_error(404, "Bridge not found")
        return bridge

    async def _list_bridges(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.bridges.values()))

    async def _create_bridge(self, request: web.Request) -> web.Response:
        ident = request.match_info["id"]
        if ident not in self.bridges:
            self.bridges[ident] = {
                "id": ident,
                "technology": "simple_bridge",
                "bridge_type": request.query.get("type", "mixing"),
                "bridge_class": "stasis",
                "creator": "Stasis",
                "name": request.query.get("name", ""),
                "channels": [],
                "creationtime": _now(),
                "video_mode": "none",
            }
        return web.json_response(self.bridges[ident])

    async def _destroy_bridge(self, request: web.Request) -> web.Response:
        bridge = self._bridge(request)
        for channel_id in list(bridge["channels"]):
            self._leave_bridge(channel_id)
        del self.bridges[bridge["id"]]
        self._emit("BridgeDestroyed", bridge=bridge)
        return web.Response(status=204)

    async def _add_to_bridge(self, request: web.Request) -> web.Response:
        bridge = self._bridge(request)
        ids = [i for i in request.query.get("channel", "").split(",") if i]
        for channel_id in ids:
            if channel_id not in self.channels:
                # Asterisk's own quirk, kept on purpose: 400 (not 404) for a gone channel.
                return _error(400, "Channel not found")
            if not self.channels[channel_id].in_stasis:
                return _error(422, "Channel not in Stasis application")
        for channel_id in ids:
            channel = self.channels[channel_id]
            if channel.bridge_id == bridge["id"]:
                continue
            if channel.bridge_id is not None:
                self._leave_bridge(channel_id)
            channel.bridge_id = bridge["id"]
            bridge["channels"].append(channel_id)
            self._emit("ChannelEnteredBridge", bridge=dict(bridge), channel=channel.data)
        return web.Response(status=204)

    async def _remove_from_bridge(self, request: web.Request) -> web.Response:
        bridge = self._bridge(request)
        for channel_id in [i for i in request.query.get("channel", "").split(",") if i]:
            if channel_id not in bridge["channels"]:
                return _error(422, "Channel not in this bridge")
            self._leave_bridge(channel_id)
        return web.Response(status=204)

    async def _application(self, request: web.Request) -> web.Response:
        if request.match_info["app"] != self.app:
            return _error(404, "Application not found")
        return web.json_response(
            {
                "name": self.app,
                "channel_ids": [i for i, c in self.channels.items() if c.in_stasis or c.subscribed],
                "bridge_ids": list(self.bridges),
                "endpoint_ids": [],
                "device_names": [],
                "events_allowed": [],
                "events_disallowed": [],
            }
        )

    async def _applications(self, request: web.Request) -> web.Response:
        return web.json_response([{"name": self.app, "channel_ids": list(self.channels)}])

    async def _get_global(self, request: web.Request) -> web.Response:
        return web.json_response({"value": self.globals.get(request.query.get("variable", ""), "")})

    async def _set_global(self, request: web.Request) -> web.Response:
        self.globals[request.query.get("variable", "")] = request.query.get("value", "")
        return web.Response(status=204)

    async def _claim(self, request: web.Request) -> web.Response:
        """A claim: this fake broadcasts nothing; `claimed_by_others` answers 409."""
        ident = request.query.get("channelId", "")
        if request.query.get("application") != self.app or ident not in self.channels:
            return _error(404, "Channel not found")
        if ident in self.claimed_by_others:
            return _error(409, "Channel has already been claimed by another application")
        return web.Response(status=204)

    async def _subscribe(self, request: web.Request) -> web.Response:
        kind, _, ident = request.query.get("eventSource", "").partition(":")
        if request.match_info["app"] != self.app or kind != "channel":
            return _error(400, "Invalid event source")
        if ident not in self.channels:
            return _error(422, "Event source does not exist")
        self.channels[ident].subscribed = True
        return await self._application(request)

    # -- state changes with their events -------------------------------------------------

    def _leave_bridge(self, channel_id: str) -> None:
        channel = self.channels.get(channel_id)
        if channel is None or channel.bridge_id is None:
            return
        bridge = self.bridges.get(channel.bridge_id)
        channel.bridge_id = None
        if bridge is not None:
            with contextlib.suppress(ValueError):
                bridge["channels"].remove(channel_id)
            self._emit("ChannelLeftBridge", bridge=dict(bridge), channel=channel.data)

    async def _destroy_channel(
        self, channel_id: str, cause: int, *, request_cause: int | None = -1
    ) -> None:
        """The channel hangs up: the events Asterisk 22 sends, to whom it sends them.

        In Stasis: ChannelHangupRequest, StasisEnd. ChannelDestroyed follows
        only for a channel the application is subscribed to beyond Stasis
        (legs it created, explicit subscriptions): an inbound caller's
        implicit subscription ends with StasisEnd.
        """
        channel = self.channels.get(channel_id)
        if channel is None:
            return
        if channel.dial_task is not None and channel.dial_task is not asyncio.current_task():
            channel.dial_task.cancel()
        # Leave the bridge and vanish before the first await, so a second
        # hangup racing this one finds nothing to do.
        self._leave_bridge(channel_id)
        del self.channels[channel_id]
        if channel.in_stasis or channel.subscribed:
            fields: dict[str, Any] = {"channel": channel.data}
            if request_cause is not None:
                fields["cause"] = cause if request_cause == -1 else request_cause
            await self._maybe_push("ChannelHangupRequest", **fields)
        if channel.in_stasis:
            await self._maybe_push("StasisEnd", channel=channel.data)
        if channel.subscribed:
            await self._maybe_push(
                "ChannelDestroyed", cause=cause, cause_txt=_cause_text(cause), channel=channel.data
            )

    def _emit(self, event_type: str, **fields: Any) -> None:
        """Send an event after the current response (Asterisk answers REST, then emits)."""
        self._spawn(self._maybe_push(event_type, **fields))

    async def _maybe_push(self, event_type: str, **fields: Any) -> None:
        if self.auto_events:
            await self.push(event_type, **fields)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _cause_text(cause: int) -> str:
    return {
        16: "Normal Clearing",
        17: "User busy",
        19: "No user responding",
        20: "Subscriber absent",
        21: "Call Rejected",
    }.get(cause, "Unknown")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


class _Reply(Exception):
    """Raised by handler helpers to answer with an ARI error at once."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _http_error(status: int, message: str) -> _Reply:
    return _Reply(status, message)
