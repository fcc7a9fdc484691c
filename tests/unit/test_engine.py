"""The engine shell against a hand-written fake of the ARI interface: no network."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from coverage_engine import wire
from coverage_engine.ari import (
    AriHttpError,
    Bridge,
    CallerId,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    Connected,
    Dial,
    DialplanLocation,
    Playback,
    PlaybackFinished,
    ResourceGone,
    StasisStart,
    StreamItem,
)
from coverage_engine.clock import FrozenClock
from coverage_engine.engine import Engine
from coverage_engine.journey import Ended, JourneyEvent, Outcome
from coverage_engine.plan import Plan, Step, StepKind

NOW = datetime(2026, 12, 25, 9, 0, tzinfo=UTC)
FRONT = Step(StepKind.STAFF, "frontdesk-maple", "PJSIP/frontdesk-maple", 20)
QUEUE = Step(StepKind.OPERATORS, "answering", "answering", 90)
PATEL = Step(StepKind.ONCALL, "patel", "PJSIP/patel", 25, True, doctor_id="patel")
OPEN = Plan("maple-grove", "Maple Grove Pediatrics", "MGP", "open", "office hours", (FRONT, QUEUE))
CLOSED = Plan(
    "maple-grove", "Maple Grove Pediatrics", "MGP", "closed", "night", (QUEUE, PATEL, QUEUE)
)


class FakeAri:
    """Records every request; `fail` makes chosen requests raise."""

    app = "coverage-engine"

    def __init__(self) -> None:
        self.requests: list[tuple[Any, ...]] = []
        self.fail: dict[tuple[str, str], Exception] = {}
        self.channels: list[Channel] = []
        self.bridges: list[Bridge] = []
        self.variables: dict[tuple[str, str], str] = {}

    def _do(self, op: str, target: str, *rest: Any) -> None:
        self.requests.append((op, target, *rest))
        error = self.fail.get((op, target))
        if error is not None:
            raise error

    def ops(self, target: str | None = None) -> list[tuple[Any, ...]]:
        return [r for r in self.requests if target is None or r[1] == target]

    async def answer(self, channel_id: str) -> None:
        self._do("answer", channel_id)

    async def ring(self, channel_id: str) -> None:
        self._do("ring", channel_id)

    async def ring_stop(self, channel_id: str) -> None:
        self._do("ring_stop", channel_id)

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        self._do("start_moh", channel_id)

    async def stop_moh(self, channel_id: str) -> None:
        self._do("stop_moh", channel_id)

    async def play(
        self,
        channel_id: str,
        media: str | Sequence[str],
        *,
        playback_id: str,
        lang: str | None = None,
    ) -> Playback:
        self._do("play", channel_id, media, playback_id)
        return Playback(playback_id)

    async def stop_playback(self, playback_id: str) -> None:
        self._do("stop_playback", playback_id)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self._do("hangup", channel_id)

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
        self._do("create_channel", channel_id, endpoint, tuple(app_args), caller_id)
        return Channel(channel_id)

    async def dial(self, channel_id: str, *, ring_seconds: int, caller: str | None = None) -> None:
        self._do("dial", channel_id, ring_seconds)

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
        self._do("originate", channel_id, endpoint, tuple(app_args), caller_id, ring_seconds)
        return Channel(channel_id)

    async def continue_in_dialplan(
        self, channel_id: str, *, context: str, extension: str, priority: int = 1
    ) -> None:
        self._do("continue", channel_id, context)

    async def subscribe_channel(self, channel_id: str) -> None:
        self._do("subscribe", channel_id)

    async def filter_events(self, allowed: Any) -> None:
        self._do("filter_events", self.app, frozenset(allowed))

    async def create_bridge(self, bridge_id: str, *, name: str = "") -> Bridge:
        self._do("create_bridge", bridge_id)
        return Bridge(bridge_id)

    async def destroy_bridge(self, bridge_id: str) -> None:
        self._do("destroy_bridge", bridge_id)

    async def add_to_bridge(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        self._do("add_to_bridge", bridge_id, tuple(channel_ids))

    async def remove_from_bridge(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        self._do("remove_from_bridge", bridge_id)

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        self._do("set_variable", channel_id, name, value)

    async def set_variables(self, channel_id: str, variables: Sequence[tuple[str, str]]) -> None:
        self._do("set_variables", channel_id, tuple(variables))

    async def get_variable(self, channel_id: str, name: str) -> str | None:
        self.requests.append(("get_variable", channel_id, name))
        return self.variables.get((channel_id, name))

    async def get_channel(self, channel_id: str) -> Channel:
        return next(c for c in self.channels if c.id == channel_id)

    async def list_channels(self) -> list[Channel]:
        return list(self.channels)

    async def list_bridges(self) -> list[Bridge]:
        return list(self.bridges)

    async def application_channel_ids(self) -> list[str]:
        return [c.id for c in self.channels]

    async def events(self) -> AsyncIterator[StreamItem]:  # pragma: no cover - not used here
        items: list[StreamItem] = []
        for item in items:
            yield item


class ManualTimers:
    """A scheduler that fires only when the test says so."""

    def __init__(self) -> None:
        self.pending: dict[int, tuple[float, Callable[[], None]]] = {}

    def call_later(self, delay: float, callback: Callable[[], None]) -> Any:
        key = len(self.pending) + 1 + max(self.pending, default=0)
        self.pending[key] = (delay, callback)
        timers = self

        class Handle:
            def cancel(self) -> None:
                timers.pending.pop(key, None)

        return Handle()

    def fire_all(self) -> None:
        for key in list(self.pending):
            _, callback = self.pending.pop(key)
            callback()


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[str, JourneyEvent]] = []

    def record(self, call_id: str, at: datetime, event: JourneyEvent) -> None:
        self.events.append((call_id, event))

    def names(self, call_id: str) -> list[str]:
        return [e.name for c, e in self.events if c == call_id]


def caller(channel_id: str, state: str = "Up", app_data: str = "") -> Channel:
    return Channel(
        channel_id,
        state=state,
        caller=CallerId("Jane Doe", "+13125559876"),
        dialplan=DialplanLocation(app_name="Stasis" if app_data else "", app_data=app_data),
    )


def inbound(channel_id: str, did: str = "+13125550100") -> StasisStart:
    return StasisStart(type="StasisStart", channel=caller(channel_id), args=("inbound", did))


def leg_up(leg: str) -> StasisStart:
    return StasisStart(type="StasisStart", channel=Channel(leg, state="Up"), args=("leg", "x"))


def destroyed(channel_id: str, cause: int = 16) -> ChannelDestroyed:
    return ChannelDestroyed(type="ChannelDestroyed", channel=Channel(channel_id), cause=cause)


async def settle() -> None:
    """Let every call task run until it waits for its next event."""
    for _ in range(50):
        await asyncio.sleep(0)


def make(plans: Mapping[str, Plan] | None = None) -> tuple[Engine, FakeAri, ManualTimers, Sink]:
    table = plans or {"+13125550100": OPEN}

    def router(at: datetime, did: str, number: str) -> Plan:
        return table[did]

    ari, timers, sink = FakeAri(), ManualTimers(), Sink()
    engine = Engine(ari, router, clock=FrozenClock(NOW), sink=sink, scheduler=timers)
    return engine, ari, timers, sink


async def test_front_desk_answers_and_caller_hangup_tears_down_leg_and_bridge() -> None:
    """A call is answered, the front desk dialed and bridged; the caller's hang-up frees it all."""
    engine, ari, _, sink = make()
    await engine.dispatch(inbound("c1"))
    await settle()
    assert ("answer", "c1") in ari.requests
    assert ("ring", "c1") in ari.requests
    # Dial first: the front desk's leg goes out before the caller is answered.
    assert ari.ops("c1-leg1")[0] == (
        "originate",
        "c1-leg1",
        "PJSIP/frontdesk-maple",
        ("leg", "c1"),
        CallerId("MGP: Jane Doe", "+13125559876"),
        25,
    )
    assert ari.requests.index(ari.ops("c1-leg1")[0]) < ari.requests.index(("answer", "c1"))
    await engine.dispatch(leg_up("c1-leg1"))
    await settle()
    assert ari.ops("c1-bridge") == [
        ("create_bridge", "c1-bridge"),
        ("add_to_bridge", "c1-bridge", ("c1", "c1-leg1")),
    ]
    await engine.dispatch(destroyed("c1"))
    await settle()
    assert ("hangup", "c1-leg1") in ari.requests
    assert ("destroy_bridge", "c1-bridge") in ari.requests
    assert sink.names("c1")[-3:] == ["bridged", "caller_hung_up", "ended"]
    assert engine.calls_in_progress == 0


async def test_an_originated_leg_is_bridged_as_it_enters_the_application_answered() -> None:
    """The leg's Dial progress bridges nothing; its StasisStart (state Up, as an originated
    channel enters the application only once answered) does."""
    engine, ari, _, _ = make()
    await engine.dispatch(inbound("c1"))
    await settle()
    for status in ("", "RINGING", "ANSWER"):
        await engine.dispatch(Dial(type="Dial", peer=Channel("c1-leg1"), dialstatus=status))
    await settle()
    assert not ari.ops("c1-bridge")
    await engine.dispatch(leg_up("c1-leg1"))
    await settle()
    assert ("create_bridge", "c1-bridge") in ari.requests


async def test_ring_timeout_hands_the_caller_to_the_queue_and_watches_them() -> None:
    """Front desk rings out: its leg is hung up, the caller is watched and sent to the queue."""
    engine, ari, timers, sink = make()
    await engine.dispatch(inbound("c1"))
    await settle()
    timers.fire_all()
    await settle()
    assert ("hangup", "c1-leg1") in ari.requests
    assert ari.ops("c1")[-2:] == [("subscribe", "c1"), ("continue", "c1", "coverage-queue")]
    answered = Dial(
        type="Dial",
        caller=caller("c1"),
        peer=Channel("1733000000.9", state="Up"),
        dialstatus="ANSWER",
        dialstring="PJSIP/operator2",
    )
    await engine.dispatch(answered)
    await settle()
    assert sink.names("c1")[-2:] == ["operator_answered", "bridged"]


async def test_doctor_busy_by_dial_status_moves_on() -> None:
    """A Dial event with BUSY for the doctor's leg is the doctor being busy."""
    engine, ari, _, sink = make({"+13125550100": CLOSED})
    await engine.dispatch(inbound("c1"))
    await settle()
    back = StasisStart(type="StasisStart", channel=caller("c1"), args=("queue-result", "TIMEOUT"))
    await engine.dispatch(back)
    await settle()
    assert (
        "originate",
        "c1-leg1",
        "PJSIP/patel",
        ("leg", "c1"),
        CallerId("MGP: Jane Doe", "+13125559876"),
        30,
    ) in ari.requests
    await engine.dispatch(Dial(type="Dial", peer=Channel("c1-leg1"), dialstatus="BUSY"))
    await settle()
    assert "oncall_busy" in sink.names("c1")
    assert ari.ops("c1")[-1] == ("continue", "c1", "coverage-queue")


async def test_press_1_over_dtmf_bridges_the_doctor() -> None:
    """The doctor's DTMF 1 on the leg bridges them to the caller."""
    engine, ari, _, _ = make({"+13125550100": CLOSED})
    await engine.dispatch(inbound("c1"))
    await settle()
    await engine.dispatch(
        StasisStart(type="StasisStart", channel=caller("c1"), args=("queue-result", "TIMEOUT"))
    )
    await settle()
    await engine.dispatch(leg_up("c1-leg1"))
    await settle()
    assert ("play", "c1-leg1", "sound:coverage/accept-maple-grove", "c1-pb2") in ari.requests
    await engine.dispatch(
        ChannelDtmfReceived(type="ChannelDtmfReceived", channel=Channel("c1-leg1"), digit="1")
    )
    await settle()
    assert ("add_to_bridge", "c1-bridge", ("c1", "c1-leg1")) in ari.requests


async def test_a_bug_in_one_call_sends_it_to_the_fallback_and_spares_the_other() -> None:
    """An exception in one call hands that caller to the dialplan; another call goes on."""
    engine, ari, _, sink = make()
    ari.fail[("originate", "bad-leg1")] = RuntimeError("boom")
    await engine.dispatch(inbound("bad"))
    await engine.dispatch(inbound("good"))
    await settle()
    assert ("continue", "bad", "coverage-fallback") in ari.requests
    assert ("hangup", "bad-leg1") in ari.requests
    assert ("bad", Ended(Outcome.ENGINE_ERROR, reason="engine error")) in sink.events
    assert engine.call("bad") is None
    await engine.dispatch(leg_up("good-leg1"))
    await settle()
    assert ("add_to_bridge", "good-bridge", ("good", "good-leg1")) in ari.requests


async def test_routing_failure_goes_to_the_dialplan_fallback() -> None:
    """If the routing core raises, the caller is not left in silence: the fallback takes them."""
    engine, ari, _, _ = make({})
    await engine.dispatch(inbound("c1", did="+19999999999"))
    await settle()
    assert ari.requests == [("continue", "c1", "coverage-fallback")]


async def test_a_gone_caller_channel_tears_the_call_down() -> None:
    """A 404 on the caller's channel is the caller hanging up: the ringing leg is hung up."""
    engine, ari, _, sink = make()
    ari.fail[("originate", "c1-leg1")] = ResourceGone(
        "POST", "/channels", 404, "Channel not found"
    )
    await engine.dispatch(inbound("c1"))
    await settle()
    assert "queue_entered" in sink.names("c1")  # the leg vanished: on to the next step


async def test_new_router_applies_to_new_calls_only() -> None:
    """A reloaded config (new router) decides the next call; a call in progress keeps its plan."""
    engine, ari, _, _ = make()
    await engine.dispatch(inbound("c1"))
    await settle()
    engine.set_router(lambda at, did, number: CLOSED)
    await engine.dispatch(inbound("c2"))
    await settle()
    assert ("continue", "c2", "coverage-queue") in ari.requests
    first = engine.call("c1")
    assert first is not None
    assert first.plan is OPEN


async def test_recovery_after_restart_resumes_hangs_up_and_adopts() -> None:
    """After a restart: a lone caller resumes, an orphan leg is hung up, a bridge is kept."""
    engine, ari, _, sink = make({"+13125550100": CLOSED})
    ari.channels = [
        caller("lone", app_data="coverage-engine,inbound,+13125550100"),
        Channel(
            "old-leg9",
            state="Ringing",
            dialplan=DialplanLocation(app_name="Stasis", app_data="coverage-engine,leg,lone"),
        ),
        caller("talk-a", app_data="coverage-engine,inbound,+13125550100"),
        Channel(
            "talk-b",
            state="Up",
            dialplan=DialplanLocation(app_name="Stasis", app_data="coverage-engine,leg,talk-a"),
        ),
        caller("queued", app_data=""),
        Channel("gone-r1a2b3c-leg2", state="Ringing"),  # still being dialed: not in Stasis
    ]
    ari.bridges = [Bridge("br", channels=("talk-a", "talk-b"))]
    ari.variables = {
        ("lone", "COVERAGE_DID"): "+13125550100",
        ("lone", "COVERAGE_TRIED"): "operators/answering,oncall/patel",
    }
    await engine.dispatch(Connected(attempt=1))
    await settle()
    assert ("hangup", "old-leg9") in ari.requests
    assert ("hangup", "gone-r1a2b3c-leg2") in ari.requests
    resumed = engine.call("lone")
    assert resumed is not None
    assert resumed.state.step == 1
    assert any(r[0] == "originate" and r[2] == "PJSIP/patel" for r in ari.requests)
    assert not ari.ops("queued")
    assert not ari.ops("talk-a")
    assert "received" not in sink.names("lone")
    await engine.dispatch(destroyed("talk-b"))
    await settle()
    assert ("hangup", "talk-a") in ari.requests
    assert ("destroy_bridge", "br") in ari.requests


async def test_a_started_engine_leaves_its_application_alone_until_its_calls_are_settled() -> None:
    """A restarted engine connects while a survivor may be taking its calls over: the connect
    takes nothing on; the liveness task takes them on once they are known to be ours."""
    settled = False
    ari, timers, sink = FakeAri(), ManualTimers(), Sink()
    engine = Engine(
        ari,
        lambda *_: CLOSED,
        clock=FrozenClock(NOW),
        sink=sink,
        scheduler=timers,
        settled=lambda: settled,
    )
    ari.channels = [caller("lone", app_data="coverage-engine,inbound,+13125550100")]
    ari.variables = {("lone", "COVERAGE_DID"): "+13125550100"}
    await engine.dispatch(Connected(attempt=1))
    await settle()
    assert engine.call("lone") is None
    assert not ari.ops("lone")
    settled = True
    await engine.reconcile_now()
    await settle()
    assert engine.call("lone") is not None
    await engine.close()


async def test_reconnect_tells_known_calls_what_vanished() -> None:
    """After a WebSocket drop, a call whose caller is no longer in Asterisk is torn down."""
    engine, ari, _, sink = make()
    await engine.dispatch(inbound("c1"))
    await settle()
    ari.channels = []
    await engine.dispatch(Connected(attempt=2))
    await settle()
    assert ("hangup", "c1-leg1") in ari.requests
    assert sink.names("c1")[-1] == "ended"


async def test_close_leaves_calls_connected() -> None:
    """Stopping the engine cancels its tasks but hangs nobody up."""
    engine, ari, _, _ = make()
    await engine.dispatch(inbound("c1"))
    await settle()
    before = list(ari.requests)
    await engine.close()
    assert ari.requests == before
    assert engine.calls_in_progress == 0


async def test_playback_finished_event_reaches_the_call() -> None:
    """The announcement's PlaybackFinished moves a closed call on to the queue."""
    plan = Plan(
        "maple-grove", "Maple Grove", "MGP", "closed", "night", (QUEUE,), announcement="x/y"
    )
    engine, ari, _, _ = make({"+13125550100": plan})
    await engine.dispatch(inbound("c1"))
    await settle()
    assert ("play", "c1", "sound:x/y", "c1-pb1") in ari.requests
    await engine.dispatch(PlaybackFinished(type="PlaybackFinished", playback=Playback("c1-pb1")))
    await settle()
    assert ("continue", "c1", "coverage-queue") in ari.requests


async def test_a_failed_subscription_still_puts_the_caller_in_the_queue() -> None:
    """Watching the queued caller is best effort: the caller reaches the queue regardless."""
    engine, ari, timers, _ = make()
    ari.fail[("subscribe", "c1")] = AriHttpError("POST", "/applications/x", 500, "boom")
    await engine.dispatch(inbound("c1"))
    await settle()
    timers.fire_all()
    await settle()
    assert ari.ops("c1")[-1] == ("continue", "c1", "coverage-queue")


async def test_resume_finds_the_step_by_the_keys_tried() -> None:
    """A caller back from the early queue after a restart goes on to the doctor after it."""
    engine, ari, _, sink = make({"+13125550100": CLOSED})
    ari.variables = {
        ("back", "COVERAGE_DID"): "+13125550100",
        ("back", "COVERAGE_TRIED"): "operators/answering",
    }
    entered = StasisStart(
        type="StasisStart", channel=caller("back"), args=("queue-result", "TIMEOUT")
    )
    await engine.dispatch(entered)
    await settle()
    resumed = engine.call("back")
    assert resumed is not None
    assert resumed.state.step == 1
    assert any(r[0] == "originate" and r[2] == "PJSIP/patel" for r in ari.requests)
    assert sink.names("back")[:3] == ["decided", "queue_timeout", "oncall_dialing"]


async def test_engine_asks_presence_again_before_an_operators_step() -> None:
    """The engine's operators check reaches each call: an emptied queue is passed over."""
    asked: list[tuple[str, str]] = []

    def nobody(practice_id: str, queue: str) -> str | None:
        asked.append((practice_id, queue))
        return f"no operator logged in to queue {queue}"

    ari, timers, sink = FakeAri(), ManualTimers(), Sink()
    engine = Engine(
        ari,
        lambda at, did, number: CLOSED,
        clock=FrozenClock(NOW),
        sink=sink,
        scheduler=timers,
        operators_check=nobody,
    )
    await engine.dispatch(inbound("c1"))
    await settle()
    assert asked == [("maple-grove", "answering")]
    assert sink.names("c1")[:3] == ["received", "decided", "operators_skipped"]
    assert any(r[0] == "originate" and r[2] == "PJSIP/patel" for r in ari.requests)


async def test_a_restart_reads_the_memory_from_the_channel_list_when_snapshots_carry_it() -> None:
    """With ari.conf's channelvars the restarted engine asks nothing per channel to resume."""
    memory = {
        "COVERAGE_DID": "+13125550100",
        "COVERAGE_PRACTICE": "maple-grove",
        "COVERAGE_TRIED": "operators/answering",
    }
    back = replace(
        caller("back", app_data="coverage-engine,queue-result,TIMEOUT"), variables=memory
    )
    with_vars, ari_with, _, _ = make({"+13125550100": CLOSED})
    ari_with.channels = [back]
    await with_vars.dispatch(Connected(attempt=1))
    await settle()
    without_vars, ari_without, _, _ = make({"+13125550100": CLOSED})
    ari_without.channels = [replace(back, variables={})]
    ari_without.variables = {("back", name): value for name, value in memory.items()}
    await without_vars.dispatch(Connected(attempt=1))
    await settle()
    for engine in (with_vars, without_vars):
        resumed = engine.call("back")
        assert resumed is not None
        assert resumed.state.step == 1  # after the queue: Dr. Patel
    assert [r for r in ari_with.requests if r[0] == "get_variable"] == []
    reads = [r for r in ari_without.requests if r[0] == "get_variable"]
    assert sorted(r[2] for r in reads) == sorted(wire.CALL_MEMORY)
