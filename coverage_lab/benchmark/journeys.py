"""Call journeys for the benchmarks, and a fake ARI that counts what each call costs.

A journey is one kind of call the engine carries, driven from the Asterisk
side of the fake ARI server: the caller arrives (StasisStart), the fake
answers every REST request at once and emits the events Asterisk would, the
phone or the operator answers, and the caller hangs up. The two journeys are
the ones a practice sees most:

* `open-frontdesk`: office hours, the front desk's phone answers at once and is
  bridged to the caller.
* `closed-queue`: after hours, the emergency announcement plays, the caller is
  handed to app_queue in the dialplan, and an operator answers (what app_queue
  then says about the caller, whom the engine watches: `FakeAri.queue_answer`).

`CountingFakeAri` attributes every event it sends (past the application's
event filter) and every REST request it receives to the call it is about
(ids the engine derives from the caller's channel id: `<call>-leg1`,
`<call>-bridge`, `<call>-pb1`), which is what the event-diet regression test
and the throughput benchmark report. `drive` times what the engine does for
each call: how soon its first request for the caller comes (the leg that
rings the phone, or the announcement), and how soon it reacts to the phone
answering (the bridge) or to the announcement's end (the queue).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from coverage_engine import wire
from coverage_lab.fake_ari import FakeAri

# Monday 2026-11-30 19:30 in Chicago: Maple Grove (Chicago) closed at 17:30,
# Lakeside (Los Angeles, 17:30 there) is open until 19:00. One instant, so one
# frozen clock, gives both journeys with the shipped config/coverage.yaml.
INSTANT = datetime(2026, 11, 30, 19, 30, tzinfo=ZoneInfo("America/Chicago"))
CALLER_NUMBER = "+13125559876"
OPERATOR = "PJSIP/operator-1"
# Rung with the operator who answers (ringall), as in the sandbox's queue.
OTHER_OPERATORS = ("PJSIP/operator-2", "PJSIP/operator-3")


@dataclass(frozen=True, slots=True)
class Journey:
    """One kind of call: the number dialed, and whether an operator (app_queue) takes it."""

    name: str
    did: str
    via_queue: bool
    phone: str | None = None  # the endpoint that answers a dialed leg


JOURNEYS: dict[str, Journey] = {
    j.name: j
    for j in (
        Journey(
            "open-frontdesk", "+16085550142", via_queue=False, phone="PJSIP/frontdesk-lakeside"
        ),
        Journey("closed-queue", "+13125550100", via_queue=True),
    )
}


def _event_subject(fields: dict[str, Any]) -> str | None:
    for key in ("channel", "peer"):
        value = fields.get(key)
        if isinstance(value, dict) and isinstance(ident := value.get("id"), str):
            return ident
    playback = fields.get("playback")
    if isinstance(playback, dict):
        target = str(playback.get("target_uri", ""))
        return target.removeprefix("channel:") if target.startswith("channel:") else None
    bridge = fields.get("bridge")
    if isinstance(bridge, dict) and isinstance(ident := bridge.get("id"), str):
        return ident
    return None


def _request_subject(path: str, query: dict[str, str]) -> str | None:
    parts = path.strip("/").split("/")
    if parts == ["channels"] or parts[:2] == ["channels", "create"]:
        return query.get("channelId")  # originate, create
    if parts[0] in ("channels", "bridges") and len(parts) > 1:
        return parts[1]
    if parts[0] == "applications" and "eventSource" in query:
        return query["eventSource"].partition(":")[2]
    return None


@dataclass(frozen=True, slots=True)
class Drive:
    """What one driven call measured, in seconds."""

    setup: float  # arrival to bridged with the phone, or handed to app_queue
    first_request: float  # arrival to the leg's originate, or to the announcement's play
    reaction: float  # the phone's answer to the bridge, the announcement's end to the queue


# What `drive` waits for, per call (`_observe`, and the requests in `_auth_and_record`).
_MILESTONES = ("dialed", "played", "ringing", "answered", "joined", "announced", "queued", "gone")


@dataclass(slots=True)
class CallCost:
    """What one call cost on the ARI link."""

    events: Counter[str]
    requests: Counter[str]  # "METHOD /channels/{id}/answer" with ids replaced by {id}


def _shape(method: str, path: str) -> str:
    parts = path.strip("/").split("/")
    shaped = [
        "{id}" if i == 1 and p not in ("create",) and parts[0] in ("channels", "bridges") else p
        for i, p in enumerate(parts)
    ]
    if len(shaped) > 3 and shaped[2] == "play":
        shaped[3] = "{playback}"
    if shaped[0] == "applications" and len(shaped) > 1:
        shaped[1] = "{app}"
    return f"{method} /{'/'.join(shaped)}"


class CountingFakeAri(FakeAri):
    """The fake ARI server, counting events and requests per call, and telling when calls settle.

    `settled(call_id, what)` waits for a milestone the driver needs: the leg
    dialed, ringing, answered and bridged to the caller; the announcement
    played and ended, the caller handed to the queue; "gone" (the engine has
    torn down what it created).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.costs: dict[str, CallCost] = {}
        self.ws_queries: list[dict[str, str]] = []
        self._milestones: dict[tuple[str, str], asyncio.Future[float]] = {}
        self.keep_requests = True  # the throughput run turns the full request log off

    def cost(self, call_id: str) -> CallCost:
        found = self.costs.get(call_id)
        if found is None:
            found = self.costs[call_id] = CallCost(Counter(), Counter())
        return found

    def _milestone(self, call_id: str, what: str) -> asyncio.Future[float]:
        key = (call_id, what)
        future = self._milestones.get(key)
        if future is None:
            future = self._milestones[key] = asyncio.get_running_loop().create_future()
        return future

    def _reach(self, call_id: str, what: str) -> None:
        future = self._milestone(call_id, what)
        if not future.done():
            future.set_result(time.perf_counter())

    async def settled(self, call_id: str, what: str, timeout: float = 10.0) -> float:  # noqa: ASYNC109
        """Wait until the call reaches `what` (one of `_MILESTONES`); the perf_counter instant."""
        future = self._milestone(call_id, what)
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(future)
        finally:
            if future.done():
                self._milestones.pop((call_id, what), None)

    async def push(self, event_type: str, **fields: Any) -> None:
        subject = _event_subject(fields)
        if event_type == "Dial" and isinstance(caller := fields.get("caller"), dict):
            subject = str(caller.get("id", subject))  # app_queue's dial, about the queued caller
        if subject is not None:
            call_id = wire.call_of(subject)
            if self.passes_filter(event_type):
                self.cost(call_id).events[event_type] += 1
            self._observe(event_type, subject, call_id, fields)
        await super().push(event_type, **fields)

    def _observe(self, event_type: str, subject: str, call_id: str, fields: dict[str, Any]) -> None:
        if event_type == "ChannelEnteredBridge" and subject != call_id:
            self._reach(call_id, "joined")  # the phone's leg joined the caller's bridge
        elif event_type == "StasisEnd" and subject == call_id:
            dialplan = fields["channel"].get("dialplan", {})
            if dialplan.get("context") == wire.QUEUE_CONTEXT:
                self._reach(call_id, "queued")  # handed to app_queue
        elif event_type == "Dial" and subject != call_id:
            status = fields.get("dialstatus")
            if status in ("RINGING", "ANSWER"):
                self._reach(call_id, "ringing" if status == "RINGING" else "answered")
        elif event_type == "PlaybackFinished":
            self._reach(call_id, "announced")
        elif event_type == "BridgeDestroyed":
            self._reach(call_id, "gone")

    @web.middleware
    async def _auth_and_record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path != "/ari/events":
            path = request.path.removeprefix("/ari")
            subject = _request_subject(path, dict(request.query))
            if subject is not None:
                shape = _shape(request.method, path)
                self.cost(wire.call_of(subject)).requests[shape] += 1
                if shape == "POST /channels":
                    self._reach(wire.call_of(subject), "dialed")
                elif shape == "POST /channels/{id}/play/{playback}":
                    self._reach(wire.call_of(subject), "played")
        response = await super()._auth_and_record(request, handler)
        if not self.keep_requests and len(self.requests) > 64:
            # Kept short, not emptied: the fake reads the last request's body.
            del self.requests[:-8]
        return response

    async def _events(self, request: web.Request) -> web.StreamResponse:
        self.ws_queries.append(dict(request.query))
        return await super()._events(request)

    async def wait_reconciled(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until the engine connected and reconciled (its GET /bridges after GET /channels).

        A call arriving before that would be taken on by the reconciliation
        instead of its StasisStart, which costs one extra request.
        """
        await self.wait_for_websockets(timeout=timeout)
        async with asyncio.timeout(timeout):
            while not self.requests_to("GET", "/bridges"):  # noqa: ASYNC110 - polling our own state
                await asyncio.sleep(0.01)

    async def drive(
        self,
        journey: Journey,
        call_id: str,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        answer_after: float = 0.0,
        hold: float = 0.0,
    ) -> Drive:
        """Carry one call of `journey` from arrival to hang-up and time the engine's part.

        The phone (or the operator, once the caller is in the queue) answers
        `answer_after` seconds after it starts ringing; the conversation lasts
        `hold` seconds; then the caller hangs up. A call that does not get
        where its journey goes within `timeout` of each step raises TimeoutError.
        """
        if journey.phone is not None:
            self.dial_outcomes[journey.phone] = "ring" if answer_after else "answer"
        started = time.perf_counter()
        await self.start_call(journey.did, CALLER_NUMBER, channel_id=call_id)
        try:
            if journey.via_queue:
                played = await self.settled(call_id, "played", timeout)
                announced = await self.settled(call_id, "announced", timeout)
                done = await self.settled(call_id, "queued", timeout)
                first, stimulus = played, announced
                await asyncio.sleep(answer_after)
                await self.queue_answer(call_id, OPERATOR, also_rang=OTHER_OPERATORS)
            else:
                first = await self.settled(call_id, "dialed", timeout)
                if answer_after:
                    await self.settled(call_id, "ringing", timeout)
                    await asyncio.sleep(answer_after)
                    await self.answer(f"{call_id}-leg1")
                stimulus = await self.settled(call_id, "answered", timeout)
                done = await self.settled(call_id, "joined", timeout)
            await asyncio.sleep(hold)
            await self.remote_hangup(call_id)
            if not journey.via_queue:
                await self.settled(call_id, "gone", timeout)
        finally:
            for what in _MILESTONES:
                self._milestones.pop((call_id, what), None)
        return Drive(done - started, first - started, done - stimulus)
