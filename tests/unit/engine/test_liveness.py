"""Engines watching each other: leases, dead peers, and taking a dead engine's calls over."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from coverage_engine import wire
from coverage_engine.ari import (
    AriTimeout,
    AriUnavailable,
    Channel,
    ChannelHangupRequest,
    Dial,
    DialplanLocation,
    ResourceConflict,
)
from coverage_engine.engine import Engine
from coverage_engine.engine.liveness import (
    TAKEN_OVER_WAIT,
    Liveness,
    beat_variable,
    claim_over,
    takeover_variable,
)
from coverage_engine.engine.peers import DEAD_AFTER, FENCE_AFTER, Lease, PeerTracker
from coverage_engine.testing import FrozenClock, MemoryAri
from tests.unit.engine.fixtures import NIGHT

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_a_lease_holds_for_a_while_after_each_beat_then_lapses() -> None:
    """Acting is allowed for FENCE_AFTER seconds after the last beat that got through."""
    lease = Lease()
    assert not lease.valid(0.0)
    assert not lease.lapsed(0.0)  # never held: nothing to let go of
    lease.renew(10.0)
    assert lease.valid(10.0 + FENCE_AFTER - 0.01)
    assert not lease.valid(10.0 + FENCE_AFTER + 0.01)
    assert lease.lapsed(10.0 + FENCE_AFTER + 0.01)


def test_the_lease_lapses_before_anyone_may_call_the_engine_dead() -> None:
    """A frozen engine stops acting before a survivor may take its calls: no two engines act."""
    assert FENCE_AFTER < DEAD_AFTER


def test_a_peer_whose_beat_stops_moving_is_dead_once_and_alive_again_when_it_beats() -> None:
    """Dead after DEAD_AFTER seconds of the same beat (the reader's clock), reported once."""
    peers = PeerTracker("coverage-engine")
    peers.observe("coverage-engine-b", "7", 0.0)
    peers.observe("coverage-engine-b", "8", 1.0)
    peers.observe("coverage-engine", "1", 1.0)  # ourselves: never tracked
    assert peers.newly_dead(1.0 + DEAD_AFTER - 0.1) == []
    assert peers.alive(2.0) == ["coverage-engine-b"]
    assert peers.newly_dead(1.0 + DEAD_AFTER) == ["coverage-engine-b"]
    assert peers.newly_dead(10.0) == []  # reported once
    peers.observe("coverage-engine-b", "1", 11.0)  # restarted: its counter starts again
    assert peers.alive(11.5) == ["coverage-engine-b"]
    assert peers.newly_dead(11.0 + DEAD_AFTER) == ["coverage-engine-b"]


class LiveAri(MemoryAri):
    """MemoryAri with dialplan globals and an event link that can be up or down."""

    def __init__(self, app: str) -> None:
        super().__init__(app)
        self.globals: dict[str, str] = {}
        self.is_connected = True
        self.apps: list[str] = [app]

    async def get_global(self, name: str) -> str:
        return self.globals.get(name, "")

    async def set_global(self, name: str, value: str) -> None:
        if not self.is_connected:
            raise AriUnavailable("POST /asterisk/variable: connection refused")
        self.globals[name] = value

    async def application_names(self) -> list[str]:
        return list(self.apps)


class Carrier:
    """Records what the liveness task asked of the engine."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def let_go(self) -> None:
        self.asked.append("let_go")

    async def reconcile_now(self) -> None:
        self.asked.append("reconcile")

    async def take_over(self, dead: str) -> int:
        self.asked.append(f"take_over {dead}")
        return 1


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def ticks(liveness: Liveness, clock: Clock, seconds: float) -> None:
    """Let `seconds` pass, one beat round at a time."""
    end = clock.now + seconds
    while clock.now < end:
        clock.now += 0.4
        await liveness.tick()


async def silent_b_found_dead(
    ari: LiveAri,
    carrier: Carrier,
    clock: Clock,
    meanwhile: Callable[[float], Awaitable[None]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Engine A watches B stay silent for DEAD_AFTER s; `meanwhile` happens during A's
    arbitration (in place of its pause); A's take-over work is then waited for."""
    monkeypatch.setattr("coverage_engine.engine.liveness.asyncio.sleep", meanwhile)
    liveness = Liveness(ari, carrier, clock=clock)
    await liveness.tick()
    clock.now += DEAD_AFTER
    await liveness.tick()
    await liveness.settle_work()


async def test_an_engine_that_cannot_beat_lets_go_then_takes_its_calls_on_once_it_beats() -> None:
    """A stalled link: the lease lapses and the calls are let go before the next beat; once
    it beats again and no survivor has claimed its calls, it takes them on at once."""
    ari, carrier, clock = LiveAri("coverage-engine"), Carrier(), Clock()
    liveness = Liveness(ari, carrier, clock=clock)
    await liveness.tick()
    await liveness.settle_work()
    assert carrier.asked == ["reconcile"]  # a start: nobody had claimed anything
    assert ari.globals[beat_variable("coverage-engine")].endswith(".1")
    ari.is_connected = False
    clock.now += FENCE_AFTER + 0.1
    assert not liveness.may_act()
    await liveness.tick()
    assert carrier.asked == ["reconcile", "let_go"]
    assert not liveness.settled()
    ari.is_connected = True
    await liveness.tick()
    await liveness.settle_work()
    assert liveness.settled()
    assert carrier.asked == ["reconcile", "let_go", "reconcile"]


async def test_an_engine_whose_calls_a_survivor_claimed_waits_until_the_take_over_is_done() -> None:
    """Back after a lapse, it finds a claim naming the beat it was judged dead by: the calls
    are the survivor's until the claim says done; only then does it look at its application."""
    ari, carrier, clock = LiveAri("coverage-engine"), Carrier(), Clock()
    liveness = Liveness(ari, carrier, clock=clock)
    await liveness.tick()
    await liveness.settle_work()
    last = ari.globals[beat_variable("coverage-engine")]
    ari.is_connected = False
    clock.now += DEAD_AFTER + 0.5
    await liveness.tick()  # lapsed: let go
    claim = f"coverage-engine-b:x.7|{last}"
    ari.globals[takeover_variable("coverage-engine")] = claim
    ari.is_connected = True
    await ticks(liveness, clock, 2.0)
    await liveness.settle_work()
    assert carrier.asked == ["reconcile", "let_go"]
    assert not liveness.settled()
    ari.globals[takeover_variable("coverage-engine")] = f"{claim}|done"
    await ticks(liveness, clock, 0.4)
    await liveness.settle_work()
    assert carrier.asked == ["reconcile", "let_go", "reconcile"]


async def test_a_restarted_engine_ignores_a_claim_on_an_older_beat_and_waits_on_a_current_one() -> (
    None
):
    """A new process reads the beat its predecessor left: a claim naming an older beat (a
    take-over long done) does not hold it back; one naming that very beat does."""
    for claimed, waits in (("x.3", False), ("x.9", True)):
        ari, carrier, clock = LiveAri("coverage-engine"), Carrier(), Clock()
        ari.globals[beat_variable("coverage-engine")] = "x.9"  # the killed process's last beat
        ari.globals[takeover_variable("coverage-engine")] = f"coverage-engine-b:y.2|{claimed}"
        liveness = Liveness(ari, carrier, clock=clock)
        await liveness.tick()
        await liveness.settle_work()
        assert liveness.settled() is not waits
        assert carrier.asked == ([] if waits else ["reconcile"])
        if waits:  # a survivor that died during its take-over is waited out, not forever
            await ticks(liveness, clock, TAKEN_OVER_WAIT + 0.4)
            await liveness.settle_work()
            assert carrier.asked == ["reconcile"]


async def test_a_claim_whose_survivor_stopped_beating_is_not_waited_for() -> None:
    """Back after a lapse, A finds B's claim on its old beat, not done; B then goes silent
    (it died during its take-over): A does not wait the full TAKEN_OVER_WAIT for it."""
    ari, carrier, clock = LiveAri("coverage-engine"), Carrier(), Clock()
    ari.apps.append("coverage-engine-b")
    ari.globals[beat_variable("coverage-engine-b")] = "b.1"
    liveness = Liveness(ari, carrier, clock=clock)
    await liveness.tick()
    await liveness.settle_work()
    last = ari.globals[beat_variable("coverage-engine")]
    ari.is_connected = False
    clock.now += FENCE_AFTER + 0.1
    await liveness.tick()  # lapsed: let go
    ari.globals[takeover_variable("coverage-engine")] = f"coverage-engine-b:b.1|{last}"
    ari.is_connected = True
    for n in range(2, 6):  # B beats on: its take-over is under way
        ari.globals[beat_variable("coverage-engine-b")] = f"b.{n}"
        await ticks(liveness, clock, 0.4)
    assert not liveness.settled()
    await ticks(liveness, clock, DEAD_AFTER + 0.8)
    await liveness.settle_work()
    assert liveness.settled()
    assert carrier.asked.count("reconcile") == 2


async def test_a_peer_that_stops_beating_has_its_calls_taken_over_by_one_survivor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Engine B goes silent: after DEAD_AFTER s engine A wins the arbitration and takes over,
    naming the beat it judged dead, and says when it is done."""
    monkeypatch.setattr("coverage_engine.engine.liveness.ARBITRATION", 0.0)
    ari, carrier, clock = LiveAri("coverage-engine"), Carrier(), Clock()
    ari.apps.append("coverage-engine-b")
    ari.apps.append("someone-else")  # not an engine: never watched
    ari.globals[beat_variable("coverage-engine-b")] = "41"
    taken: list[tuple[str, int]] = []
    liveness = Liveness(ari, carrier, clock=clock, on_takeover=lambda d, n: taken.append((d, n)))
    await liveness.tick()
    clock.now += DEAD_AFTER
    await liveness.tick()
    await liveness.settle_work()
    assert "take_over coverage-engine-b" in carrier.asked
    claim = ari.globals[takeover_variable("coverage-engine-b")]
    assert claim.startswith("coverage-engine:")
    assert claim.endswith("|41|done")
    assert taken == [("coverage-engine-b", 1)]


async def test_the_survivor_gives_up_when_the_silent_engine_beats_again_during_arbitration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """B comes back (restarted) while A arbitrates: A takes nothing and says so in the claim,
    so B need not wait for a take-over that will never happen."""
    ari, carrier, clock = LiveAri("coverage-engine"), Carrier(), Clock()
    ari.apps.append("coverage-engine-b")
    ari.globals[beat_variable("coverage-engine-b")] = "41"

    async def b_beats_meanwhile(seconds: float) -> None:
        ari.globals[beat_variable("coverage-engine-b")] = "z.1"

    await silent_b_found_dead(ari, carrier, clock, b_beats_meanwhile, monkeypatch)
    assert not any(a.startswith("take_over") for a in carrier.asked)
    assert claim_over(ari.globals[takeover_variable("coverage-engine-b")])


async def test_a_slow_take_over_does_not_stop_the_survivor_beating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The take-over runs beside the beats: however long its requests take, the survivor
    keeps its lease (and the calls it already carries)."""
    monkeypatch.setattr("coverage_engine.engine.liveness.ARBITRATION", 0.0)
    ari, clock = LiveAri("coverage-engine"), Clock()
    ari.apps.append("coverage-engine-b")
    ari.globals[beat_variable("coverage-engine-b")] = "41"
    release = asyncio.Event()

    class SlowCarrier(Carrier):
        async def take_over(self, dead: str) -> int:
            await release.wait()
            return await super().take_over(dead)

    carrier = SlowCarrier()
    liveness = Liveness(ari, carrier, clock=clock)
    await ticks(liveness, clock, DEAD_AFTER + 0.4)  # B found dead; the take-over hangs
    await ticks(liveness, clock, FENCE_AFTER * 3)
    assert liveness.may_act()
    assert "let_go" not in carrier.asked
    release.set()
    await liveness.settle_work()
    assert "take_over coverage-engine-b" in carrier.asked


async def test_the_survivor_backs_off_when_another_survivor_won_the_arbitration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two survivors write their claim; the one whose claim was overwritten leaves the calls."""
    ari, carrier, clock = LiveAri("coverage-engine"), Carrier(), Clock()
    ari.apps.append("coverage-engine-b")
    ari.globals[beat_variable("coverage-engine-b")] = "41"

    async def the_other_survivor_writes_last(seconds: float) -> None:
        ari.globals[takeover_variable("coverage-engine-b")] = "coverage-engine-c:9|41"

    await silent_b_found_dead(ari, carrier, clock, the_other_survivor_writes_last, monkeypatch)
    assert not any(a.startswith("take_over") for a in carrier.asked)


def caller_of(app_data: str, ident: str, variables: dict[str, str] | None = None) -> Channel:
    return Channel(
        ident,
        state="Up",
        dialplan=DialplanLocation(app_name="StasisBroadcast", app_data=app_data),
        variables=variables or {},
    )


async def test_taking_over_stops_the_dead_engines_ring_then_resumes_its_callers() -> None:
    """The dead engine's leg (Dr. Patel ringing) is hung up first; its caller is subscribed to,
    marked as ours and resumed; a call another survivor already marked is left alone."""
    ari = MemoryAri("coverage-engine")
    memory = {wire.DID: "+13125550100", wire.PRACTICE: "maple-grove", wire.TRIED: "oncall/patel"}
    ari.add_channel(caller_of("500,^coverage-engine,inbound:+13125550100", "c1", memory))
    ari.add_channel(Channel("c1-leg2", state="Ringing"))
    ari.add_channel(
        caller_of(
            "500,^coverage-engine,inbound:+13125550100",
            "c2",
            {**memory, wire.ENGINE: "coverage-engine-c"},
        )
    )
    ari.other_apps["coverage-engine-b"] = ["c1", "c1-leg2", "c2"]
    engine = Engine(ari, lambda *_: NIGHT, clock=FrozenClock(NOW))

    taken = await engine.take_over("coverage-engine-b")

    assert taken == 1
    for _ in range(5):
        await asyncio.sleep(0)  # the resumed call's first commands
    ops = [(r.op, r.target) for r in ari.requests]
    # Followed first, its ring stopped, then the call carried on with a new leg; marked
    # ours (a returning dead engine leaves it alone) by the time the take-over is over.
    assert ops.index(("subscribe_channel", "c1")) < ops.index(("hangup", "c1-leg2"))
    new_legs = [i for i, (op, target) in enumerate(ops) if target.startswith("c1-r")]
    assert new_legs
    assert min(new_legs) > ops.index(("hangup", "c1-leg2"))
    assert ari.variables["c1"][wire.ENGINE] == "coverage-engine"
    assert ("subscribe_channel", "c2") not in ops
    assert engine.call("c1") is not None
    await engine.close()


async def test_a_take_over_carries_the_call_on_while_its_mark_waits_behind_an_announcement() -> (
    None
):
    """Setting COVERAGE_ENGINE waits in Asterisk until the dead engine's announcement ends:
    the caller is carried on meanwhile, and the take-over is over once the mark is set."""
    release = asyncio.Event()

    class PlayingAri(MemoryAri):
        async def set_variable(self, channel_id: str, name: str, value: str) -> None:
            if name == wire.ENGINE:
                await release.wait()
            await super().set_variable(channel_id, name, value)

    ari = PlayingAri("coverage-engine")
    memory = {wire.DID: "+13125550100", wire.PRACTICE: "maple-grove", wire.TRIED: "oncall/patel"}
    ari.add_channel(caller_of("500,^coverage-engine,inbound:+13125550100", "c1", memory))
    ari.other_apps["coverage-engine-b"] = ["c1"]
    engine = Engine(ari, lambda *_: NIGHT, clock=FrozenClock(NOW))

    taking = asyncio.create_task(engine.take_over("coverage-engine-b"))
    for _ in range(10):
        await asyncio.sleep(0)
    assert engine.call("c1") is not None
    assert not taking.done()
    release.set()
    assert await taking == 1
    assert ari.variables["c1"][wire.ENGINE] == "coverage-engine"
    await engine.close()


async def test_a_caller_still_waiting_for_a_claim_is_left_to_the_broadcast() -> None:
    """Back from the queue after its engine died, the caller waits in StasisBroadcast for a
    claim; the dead engine's application still lists it (it followed it into the queue). The
    survivor does not carry a caller in no application (Asterisk refuses it a variable: 409):
    whoever claims it does. One the dead engine had claimed already is taken over."""

    class BroadcastAri(MemoryAri):
        async def set_variable(self, channel_id: str, name: str, value: str) -> None:
            if channel_id == "waiting":
                raise ResourceConflict(
                    "POST", f"/channels/{channel_id}/variable", 409, "Channel not in Stasis"
                )
            await super().set_variable(channel_id, name, value)

    ari = BroadcastAri("coverage-engine")
    memory = {wire.DID: "+13125550100", wire.PRACTICE: "maple-grove", wire.TRIED: "operators/x"}
    back = "500,^coverage-engine,queue-result:TIMEOUT"
    ari.add_channel(caller_of(back, "waiting", memory))
    ari.add_channel(caller_of(back, "claimed", memory))
    ari.other_apps["coverage-engine-b"] = ["waiting", "claimed"]
    engine = Engine(ari, lambda *_: NIGHT, clock=FrozenClock(NOW))

    assert await engine.take_over("coverage-engine-b") == 1
    assert engine.call("waiting") is None
    assert engine.call("claimed") is not None
    await engine.close()


@pytest.mark.parametrize("claimed_by", ["coverage-engine-b", None])
async def test_a_restarted_engine_leaves_a_queue_return_another_engine_just_claimed(
    claimed_by: str | None,
) -> None:
    """Back from the queue, the caller is claimed by a survivor as this engine restarts: the
    restarted engine's application still lists it (Asterisk keeps its old subscriptions) and
    the snapshot still names it in COVERAGE_ENGINE, the survivor's mark not yet through. It
    looks again a moment later and leaves the caller to the survivor (two doctors rung
    otherwise); a caller nobody else named is its own, as before."""
    ari = MemoryAri("coverage-engine")
    memory = {
        wire.DID: "+13125550100",
        wire.PRACTICE: "maple-grove",
        wire.TRIED: "operators/x",
        wire.ENGINE: "coverage-engine",
    }
    ari.add_channel(caller_of("500,^coverage-engine,queue-result:TIMEOUT", "back", memory))
    ari.variables["back"] = dict(memory)
    engine = Engine(ari, lambda *_: NIGHT, clock=FrozenClock(NOW), queue_return_settle=0.05)

    async def survivor_marks_it() -> None:
        await asyncio.sleep(0.01)
        if claimed_by is not None:
            ari.variables["back"][wire.ENGINE] = claimed_by

    marking = asyncio.create_task(survivor_marks_it())
    await engine.reconcile_now()
    await marking
    if claimed_by is None:
        assert engine.call("back") is not None
        assert ari.variables["back"][wire.ENGINE] == "coverage-engine"
    else:
        assert engine.call("back") is None
        assert ari.variables["back"][wire.ENGINE] == claimed_by
    await engine.close()


async def test_a_restarted_engine_carries_its_other_callers_while_a_queue_return_is_watched() -> (
    None
):
    """The moment a caller back from the queue is watched for delays that caller only: the
    restarted engine's other callers (here one waiting for a doctor) are carried on at once."""
    ari = MemoryAri("coverage-engine")
    mine = {wire.DID: "+13125550100", wire.PRACTICE: "maple-grove", wire.ENGINE: "coverage-engine"}
    back = {**mine, wire.TRIED: "operators/x"}
    ringing = {**mine, wire.TRIED: "operators/x,oncall/nguyen"}
    ari.add_channel(caller_of("500,^coverage-engine,queue-result:TIMEOUT", "back", back))
    ari.add_channel(caller_of("500,^coverage-engine,inbound:+13125550100", "ringing", ringing))
    ari.variables["back"] = dict(back)
    engine = Engine(ari, lambda *_: NIGHT, clock=FrozenClock(NOW), queue_return_settle=30.0)
    reconciling = asyncio.create_task(engine.reconcile_now())
    for _ in range(20):
        await asyncio.sleep(0)
    assert engine.call("ringing") is not None
    assert engine.call("back") is None
    assert not reconciling.done()
    reconciling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reconciling
    await engine.close()


async def test_a_take_over_asks_again_to_mark_a_caller_until_asterisk_takes_it() -> None:
    """The mark waits in Asterisk behind the dead engine's announcement longer than a request
    may: the survivor asks again, and declares the take-over done only once it is set."""
    tries: list[str] = []

    class SlowAri(MemoryAri):
        async def set_variable(self, channel_id: str, name: str, value: str) -> None:
            if name == wire.ENGINE and len(tries) < 2:
                tries.append(channel_id)
                raise AriTimeout(f"POST /channels/{channel_id}/variable: no answer within 5 s")
            await super().set_variable(channel_id, name, value)

    ari = SlowAri("coverage-engine")
    memory = {wire.DID: "+13125550100", wire.PRACTICE: "maple-grove", wire.TRIED: "oncall/patel"}
    ari.add_channel(caller_of("500,^coverage-engine,inbound:+13125550100", "c1", memory))
    ari.other_apps["coverage-engine-b"] = ["c1"]
    engine = Engine(ari, lambda *_: NIGHT, clock=FrozenClock(NOW))
    assert await engine.take_over("coverage-engine-b") == 1
    assert tries == ["c1", "c1"]
    assert ari.variables["c1"][wire.ENGINE] == "coverage-engine"
    await engine.close()


class Journal:
    """A journey sink that keeps what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def record(self, call_id: str, at: datetime, event: object) -> None:
        self.events.append((call_id, getattr(event, "name", "")))


async def test_a_queued_caller_the_dead_engine_left_is_followed_to_the_operator() -> None:
    """Taken over while waiting in the queue: when app_queue dials the operator who takes the
    caller, the journey says so, and when the line ends it ends answered by that operator."""
    ari = MemoryAri("coverage-engine")
    queued = Channel(
        "q1",
        state="Up",
        dialplan=DialplanLocation(app_name="Queue", app_data="answering,,,,90"),
        variables={
            wire.DID: "+19995550123",
            wire.PRACTICE: "",
            wire.TRIED: "operators/answering",
            wire.ENGINE: "coverage-engine-b",
        },
    )
    ari.add_channel(queued)
    ari.other_apps["coverage-engine-b"] = ["q1"]
    journal = Journal()
    engine = Engine(ari, lambda *_: NIGHT, clock=FrozenClock(NOW), sink=journal)

    await engine.take_over("coverage-engine-b")
    assert ("subscribe_channel", "q1") in [(r.op, r.target) for r in ari.requests]
    operator = Channel("op2", state="Up")
    await engine.dispatch(
        Dial(
            type="Dial",
            peer=operator,
            caller=queued,
            dialstatus="ANSWER",
            dialstring="PJSIP/operator2",
        )
    )
    await engine.dispatch(ChannelHangupRequest(type="ChannelHangupRequest", channel=queued))

    assert journal.events == [
        ("q1", "operator_answered"),
        ("q1", "bridged"),
        ("q1", "caller_hung_up"),
        ("q1", "ended"),
    ]
    await engine.close()
