"""A fake ARI server for the unit tests and the benchmarks.

`FakeAri` is a real aiohttp server (HTTP + WebSocket on 127.0.0.1, a random
port) that speaks enough ARI for the engine: it keeps channels, bridges,
variables and playbacks, records every REST request, answers like Asterisk 22
(same status codes and error messages), and emits the events Asterisk would
emit for what it was asked to do, Asterisk's own chatter included (the
`ChannelVarset`s of every variable set, of bridging, of leaving Stasis and of
RTP statistics at hang-up; app_queue's `Dial` events and variables), so that
what an event filter (`PUT /applications/{app}/eventFilter`, applied here as
Asterisk applies it) saves is measured against what a real PBX sends. Tests
drive the other side of the call with
helpers: a caller arrives (`start_call`), a phone answers or is busy
(`answer`, `dial_outcomes`), app_queue connects an operator (`queue_answer`),
someone hangs up (`remote_hangup`), the link dies (`drop_websockets`,
`freeze_websockets`).

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

from coverage_engine import wire
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


# What chan_pjsip sets on a channel with media as it hangs up (and, with the
# suffix BRIDGED, on the channel it was bridged with): one ChannelVarset each.
_RTP_STATS = (
    "RTPAUDIOQOS",
    "RTPAUDIOQOSJITTER",
    "RTPAUDIOQOSLOSS",
    "RTPAUDIOQOSRTT",
    "RTPAUDIOQOSMES",
)
# What Queue() sets on the caller as it starts (cleared), and as an operator is connected.
_QUEUE_ENTRY_VARS = (
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "QUEUEWAIT",
    "QUEUEWAIT_MS",
)
_QUEUE_MEMBER_VARS = (
    "MEMBERINTERFACE", "MEMBERNAME", "MEMBERCALLS", "MEMBERLASTCALL", "MEMBERPENALTY",
    "MEMBERDYNAMIC", "MEMBERREALTIME", "QUEUEPOSITION", "QUEUEWAIT", "QUEUEWAIT_MS",
)  # fmt: skip


def separate_args(text: str) -> list[str]:
    """Asterisk's argument splitting (`AST_STANDARD_APP_ARGS`): commas, except inside
    parentheses, brackets or double quotes; quotes are removed and a backslash makes the
    next character literal."""
    args: list[str] = []
    current: list[str] = []
    paren = bracket = 0
    quote = False
    chars = iter(text)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
            continue
        if char == '"':
            quote = not quote
            continue
        if char == "(":
            paren += 1
        elif char == ")":
            paren = max(0, paren - 1)
        elif char == "[":
            bracket += 1
        elif char == "]":
            bracket = max(0, bracket - 1)
        elif char == "," and not (paren or bracket or quote):
            args.append("".join(current))
            current = []
            continue
        current.append(char)
    args.append("".join(current))
    return args


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
    # Originated (`POST /channels`): enters the application only once answered.
    originated: bool = False
    # The operator app_queue connected this (queued) caller to.
    operator: str | None = None

    @property
    def hears_us(self) -> bool:
        """Whether the application receives this channel's events."""
        return self.in_stasis or self.subscribed


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
        # The application's event filter (`PUT /applications/{app}/eventFilter`):
        # event type names; empty allowed means every type not disallowed.
        self.events_allowed: list[str] = []
        self.events_disallowed: list[str] = []
        self.queue_context = wire.QUEUE_CONTEXT
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

    def passes_filter(self, event_type: str) -> bool:
        """Whether the application's event filter lets an event of this type through."""
        if self.events_allowed and event_type not in self.events_allowed:
            return False
        return event_type not in self.events_disallowed

    async def push(self, event_type: str, **fields: Any) -> None:
        """Send one event to every connected WebSocket, as Asterisk would (filter applied)."""
        if not self.passes_filter(event_type):
            return
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
            app_args=(wire.Entry.INBOUND.value, did),
        )
        # What dialplan/coverage-engine.conf does before Stasis.
        self.channels[ident].variables[wire.DID] = did
        args = [wire.Entry.INBOUND.value, did]
        await self.push("StasisStart", args=args, channel=self.channels[ident].data)
        return ident

    async def reenter(self, channel_id: str, *args: str) -> None:
        """A channel comes back into the app from the dialplan (e.g. `queue-result,TIMEOUT`)."""
        channel = self.channels[channel_id]
        channel.in_stasis = True
        channel.app_args = args
        channel.data["dialplan"].update(app_name="Stasis", app_data=",".join((self.app, *args)))
        await self.push("StasisStart", args=list(args), channel=channel.data)

    async def answer(self, channel_id: str) -> None:
        """The dialed phone behind a created channel answers (Asterisk 22's event order).

        An originated channel enters the application now, answered.
        """
        channel = self.channels[channel_id]
        if channel.dial_task is not None and channel.dial_task is not asyncio.current_task():
            channel.dial_task.cancel()
        channel.dial_task = None
        channel.data["state"] = "Up"
        await self._maybe_push("ChannelStateChange", channel=channel.data)
        await self._maybe_push(
            "Dial", dialstatus="ANSWER", peer=channel.data, **self._dialed(channel)
        )
        if channel.originated and not channel.in_stasis:
            await self._enter_stasis(channel)

    async def queue_answer(
        self, channel_id: str, member: str, *, also_rang: tuple[str, ...] = ()
    ) -> None:
        """app_queue rings the operators `member` and `also_rang`; `member` answers.

        What a (subscribed) queued caller's events say, in Asterisk 22's order:
        a `Dial` per operator rung (caller: the queued caller, dialstring: the
        member interface), ANSWER for the one who took it and CANCEL for the
        others, the caller's connected line, then app_queue's variables
        (`MEMBERINTERFACE`, ... with `setinterfacevar = yes`) and the bridge's.
        """
        channel = self.channels[channel_id]
        rung = {
            interface: self.add_channel(
                name=f"{interface}-{next(self._ids):08x}", state="Down", in_stasis=False
            )
            for interface in (*also_rang, member)
        }
        for status in ("", "RINGING"):
            for interface, peer in rung.items():
                await self._queue_dial(channel, peer, interface, status)
        await self._queue_dial(channel, rung[member], member, "ANSWER")
        for interface, peer in rung.items():
            if interface != member:
                await self._queue_dial(channel, peer, "", "CANCEL")
                self.channels.pop(peer, None)
        await self._channel_event(channel, "ChannelConnectedLine")
        channel.operator = rung[member]
        values = {"MEMBERINTERFACE": member, "MEMBERNAME": member.rpartition("/")[2]}
        for name in _QUEUE_MEMBER_VARS:
            await self._varset(channel, name, values.get(name, "0"))
        operator = self.channels[rung[member]]
        await self._varset(channel, "BRIDGEPEER", operator.data["name"])
        await self._varset(channel, "BRIDGEPVTCALLID", operator.data["protocol_id"])

    async def _queue_dial(
        self, caller: _FakeChannel, peer_id: str, interface: str, status: str
    ) -> None:
        if caller.hears_us:
            peer = self.channels[peer_id].data
            await self.push(
                "Dial", dialstatus=status, dialstring=interface, caller=caller.data, peer=peer
            )

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
            if not self._sockets:
                # Asterisk destroys an application whose last WebSocket closed,
                # and its event filter with it: a reconnecting client sets it again.
                self.events_allowed, self.events_disallowed = [], []
        return ws

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        ch = "/ari/channels/{id}"
        br = "/ari/bridges/{id}"
        routes: list[tuple[str, str, Any]] = [
            ("GET", "/ari/channels", self._list_channels),
            ("POST", "/ari/channels", self._originate),
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
            ("PUT", "/ari/applications/{app}/eventFilter", self._event_filter),
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
        channel = self._new_leg(ident, endpoint, query.get("appArgs", ""), variables)
        # Asterisk 22 puts a created channel into the application right after
        # answering the request, before it is dialed: StasisStart with the
        # appArgs, state Down. Until then a dial is refused with 409.
        self._spawn(self._enter_stasis(channel))
        return web.json_response(channel.data)

    def _new_leg(
        self, ident: str, endpoint: str, app_args: str, variables: dict[str, str]
    ) -> _FakeChannel:
        self.add_channel(
            channel_id=ident,
            name=f"{endpoint}-{next(self._ids):08x}",
            caller_number=variables.get("CALLERID(num)", ""),
            caller_name=variables.get("CALLERID(name)", ""),
            state="Down",
            app_args=tuple(a for a in app_args.split(",") if a),
            in_stasis=False,
        )
        channel = self.channels[ident]
        channel.subscribed = True
        channel.variables.update(variables)
        connected = channel.data["connected"]
        connected["name"] = variables.get("CONNECTEDLINE(name)", "")
        connected["number"] = variables.get("CONNECTEDLINE(num)", "")
        channel.data["dialplan"]["exten"] = endpoint  # kept so dial() can match outcomes
        return channel

    async def _enter_stasis(self, channel: _FakeChannel) -> None:
        if self.stasis_entry_delay and not channel.originated:
            await asyncio.sleep(self.stasis_entry_delay)
        channel.in_stasis = True
        channel.data["dialplan"].update(
            app_name="Stasis", app_data=",".join((self.app, *channel.app_args))
        )
        await self._varset(channel, "STASISSTATUS", "")
        await self._maybe_push("StasisStart", args=list(channel.app_args), channel=channel.data)

    async def _originate(self, request: web.Request) -> web.Response:
        """`POST /channels`: create the channel and dial it at once (Asterisk 22).

        With `app`, the application is subscribed to the new channel from the
        start (its Dial and state events arrive) and the channel enters the
        application only when answered: StasisStart comes with state Up.
        """
        query = request.query
        endpoint = query.get("endpoint", "")
        if not endpoint or not query.get("app"):
            # A channel that would run the dialplan: this fake has none.
            return _error(400, "Endpoint and app are required")
        if query["app"] != self.app:
            return _error(400, "Application not found")
        ident = query.get("channelId") or f"fake-{next(self._ids)}.1"
        if ident in self.channels:
            return _error(409, "Channel with given unique ID already exists")
        if self._outcome_for(endpoint) == "missing":
            return _error(400, "Unable to create channel")
        try:
            timeout = int(query.get("timeout", "30"))
        except ValueError:
            return _error(400, "Invalid timeout")
        body = self.requests[-1].body if self.requests else None
        variables = dict(body.get("variables", {})) if isinstance(body, Mapping) else {}
        channel = self._new_leg(ident, endpoint, query.get("appArgs", ""), variables)
        channel.originated = True
        channel.dial_task = asyncio.create_task(
            self._run_dial(channel, self._outcome_for(endpoint), timeout)
        )
        return web.json_response(channel.data)

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
        dialed = self._dialed(channel)
        await self._maybe_push("Dial", dialstatus="", peer=channel.data, **dialed)
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
        await self._maybe_push("Dial", dialstatus="RINGING", peer=channel.data, **dialed)
        if outcome == "answer":
            await self.answer(ident)
            return
        if ring_seconds > 0:
            await asyncio.sleep(ring_seconds)
            channel.dial_task = None
            await self._destroy_channel(ident, 19)

    @staticmethod
    def _dialed(channel: _FakeChannel) -> dict[str, str]:
        """The `dialstring` of a leg's Dial events: the endpoint without its technology."""
        return {"dialstring": str(channel.data["dialplan"]["exten"]).partition("/")[2]}

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
        self._spawn(self._continued(channel))
        return web.Response(status=204)

    async def _continued(self, channel: _FakeChannel) -> None:
        """What a channel leaving the application for the dialplan says (if we still listen)."""
        await self.push("StasisEnd", channel=channel.data)
        await self._varset(channel, "STASISSTATUS", "SUCCESS")
        for _ in range(3):  # the dialplan's location moves as it runs
            await self._channel_event(channel, "ChannelDialplan")
        if channel.data["dialplan"]["context"] == self.queue_context:
            for name in _QUEUE_ENTRY_VARS:
                await self._varset(channel, name, "")

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
        value = request.query.get("value", "")
        if name.startswith("ARRAY(") and name.endswith(")"):
            # func_strings' ARRAY(): several variables in one write.
            names = separate_args(name[len("ARRAY(") : -1])
            values = separate_args(value)
            pairs = [(n, values[i] if i < len(values) else "") for i, n in enumerate(names)]
        else:
            pairs = [(name, value)]
        for one, text in pairs:
            channel.variables[one] = text
            self._spawn(self._assigned(channel, one, text))
        return web.Response(status=204)

    async def _assigned(self, channel: _FakeChannel, name: str, value: str) -> None:
        """The event of one assignment: a function's own, or a ChannelVarset."""
        if name in ("CALLERID(name)", "CALLERID(num)"):
            channel.data["caller"][name[len("CALLERID(") : -1].replace("num", "number")] = value
            await self._channel_event(channel, "ChannelCallerId")
        elif name.startswith("CONNECTEDLINE("):
            await self._channel_event(channel, "ChannelConnectedLine")
        elif not name.endswith(")"):
            await self._varset(channel, name, value)

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
        if len(bridge["channels"]) == 2:
            self._spawn(self._bridged(*bridge["channels"]))
        return web.Response(status=204)

    async def _bridged(self, first: str, second: str) -> None:
        """Two channels talk: each learns its peer (variables), the callee its connected line."""
        pairs = [(first, second), (second, first)]
        for me, peer in pairs:
            if me in self.channels and peer in self.channels:
                other = self.channels[peer].data
                await self._varset(self.channels[me], "BRIDGEPEER", other["name"])
                await self._varset(self.channels[me], "BRIDGEPVTCALLID", other["protocol_id"])
        if second in self.channels:
            await self._channel_event(self.channels[second], "ChannelConnectedLine")

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
                "events_allowed": [{"type": t} for t in self.events_allowed],
                "events_disallowed": [{"type": t} for t in self.events_disallowed],
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
    async def _event_filter(self, request: web.Request) -> web.Response:
        if request.match_info["app"] != self.app:
            return _error(404, "Application not found")
        body = self.requests[-1].body if self.requests else None
        if not isinstance(body, Mapping):
            return _error(400, "Invalid event filter")
        lists: dict[str, list[str]] = {}
        for key in ("allowed", "disallowed"):
            entries = body.get(key, [])
            if not isinstance(entries, list) or not all(
                isinstance(e, Mapping) and isinstance(e.get("type"), str) for e in entries
            ):
                return _error(400, f"Invalid format definition for {key} events")
            lists[key] = [str(e["type"]) for e in entries]
        self.events_allowed, self.events_disallowed = lists["allowed"], lists["disallowed"]
        return await self._application(request)

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
            self._spawn(self._left(channel, dict(bridge)))

    async def _left(self, channel: _FakeChannel, bridge: dict[str, Any]) -> None:
        for name in ("BRIDGEPEER", "BRIDGEPVTCALLID"):
            await self._varset(channel, name, "")
        await self.push("ChannelLeftBridge", bridge=bridge, channel=channel.data)

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
        peer = self._bridge_peer(channel)
        self._leave_bridge(channel_id)
        del self.channels[channel_id]
        if channel.data["state"] == "Up":
            # chan_pjsip's RTP statistics, on this channel and on the one it talked to.
            for name in _RTP_STATS:
                await self._varset(channel, name, "ssrc=0;themssrc=0;lp=0;rxjitter=0.000000")
            talked_to = self.channels.get(peer) if peer else None
            if talked_to is not None:
                for name in _RTP_STATS:
                    await self._varset(talked_to, f"{name}BRIDGED", "ssrc=0;themssrc=0")
        if channel.operator is not None:
            # app_queue's bookkeeping as the conversation with the operator ends.
            self.channels.pop(channel.operator, None)
            for name in ("BRIDGEPEER", "BRIDGEPVTCALLID", *_QUEUE_ENTRY_VARS[:4]):
                await self._varset(channel, name, "")
        if channel.in_stasis or channel.subscribed:
            fields: dict[str, Any] = {"channel": channel.data}
            if request_cause is not None:
                fields["cause"] = cause if request_cause == -1 else request_cause
            await self._maybe_push("ChannelHangupRequest", **fields)
        if channel.in_stasis:
            await self._maybe_push("StasisEnd", channel=channel.data)
            if channel.subscribed:
                await self._varset(channel, "STASISSTATUS", "SUCCESS")
        if channel.subscribed:
            await self._maybe_push(
                "ChannelDestroyed", cause=cause, cause_txt=_cause_text(cause), channel=channel.data
            )

    def _bridge_peer(self, channel: _FakeChannel) -> str | None:
        bridge = self.bridges.get(channel.bridge_id or "")
        if bridge is None:
            return None
        return next((c for c in bridge["channels"] if c != channel.data["id"]), None)

    async def _varset(self, channel: _FakeChannel, name: str, value: str) -> None:
        """A ChannelVarset, if the application hears about this channel."""
        await self._channel_event(channel, "ChannelVarset", variable=name, value=value)

    async def _channel_event(self, channel: _FakeChannel, event_type: str, **fields: Any) -> None:
        if channel.hears_us and self.auto_events:
            await self.push(event_type, **fields, channel=channel.data)

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
