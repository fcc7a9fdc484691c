"""`reconcile`: after a (re)connect or a restart, what Asterisk has becomes what to do (pure).

These are the restart cases the integration tests play with a real engine
killed mid-call; here each is one table row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import pytest

from coverage_engine import wire
from coverage_engine.ari import Bridge, Channel, DialplanLocation
from coverage_engine.callflow.events import CallerGone, LegFailed, LegFailure
from coverage_engine.engine.actions import (
    Action,
    Adopt,
    CallMemory,
    Deliver,
    EndAdopted,
    Fallback,
    HangUpChannel,
    OperatorTook,
    ResumeCall,
    StartCall,
    WatchQueued,
)
from coverage_engine.engine.reconcile import needs_memory, reconcile, resume_or_start
from coverage_engine.engine.registry import Registry
from tests.unit.engine.fixtures import APP, DID, bridge, channel, registry_of, ringing_patel

IN_QUEUE = {"COVERAGE_DID": DID, "COVERAGE_PRACTICE": "maple-grove"}
TRIED_QUEUE = {**IN_QUEUE, "COVERAGE_TRIED": "operators/answering"}
TRIED_PATEL = {**IN_QUEUE, "COVERAGE_TRIED": "operators/answering,oncall/patel"}
DECIDED_ONLY = {"COVERAGE_DID": DID, "COVERAGE_PRACTICE": "maple-grove"}
ARRIVED_ONLY = {"COVERAGE_DID": DID}  # set by the dialplan before Stasis: not an engine's mark

BACK = channel("back", stasis="coverage-engine,queue-result,TIMEOUT", variables=TRIED_QUEUE)
MID_STEP = channel("ringing", stasis=f"coverage-engine,inbound,{DID}", variables=TRIED_PATEL)
DECIDED = channel("decided", stasis=f"coverage-engine,inbound,{DID}", variables=DECIDED_ONLY)
NEW = channel("new", stasis=f"coverage-engine,inbound,{DID}", variables=ARRIVED_ONLY)
TALK_A = channel("talk-a", stasis=f"coverage-engine,inbound,{DID}", variables=TRIED_PATEL)
TALK_B = channel("talk-a-leg2", stasis="coverage-engine,leg,talk-a")
LEFTOVER = channel("old-leg3", stasis="coverage-engine,leg,old")
DIALING = channel("gone-r0a1b2c-leg2", state="Ringing")
QUEUED = channel("queued")  # waiting in app_queue, outside any application
ELSEWHERE = channel("theirs", stasis=f"engine-b,inbound,{DID}")
ELSEWHERE_LEG = channel("theirs-leg1", state="Ringing")
ODD = channel("odd", stasis="coverage-engine,transfer,x")

# (what the restarted engine finds, channels, bridges, what it does)
RESTART: list[tuple[str, list[Channel], list[Bridge], list[Action]]] = [
    (
        "a caller back from the queue with no call in memory: resumed after that step",
        [BACK],
        [],
        [ResumeCall(BACK, CallMemory(DID, "maple-grove", ("operators/answering",)), "TIMEOUT")],
    ),
    (
        "a caller mid-step (the doctor was ringing): resumed, that step tried again",
        [MID_STEP],
        [],
        [
            ResumeCall(
                MID_STEP, CallMemory(DID, "maple-grove", ("operators/answering", "oncall/patel"))
            )
        ],
    ),
    (
        "a caller decided but no step started yet: resumed, not a second journey",
        [DECIDED],
        [],
        [ResumeCall(DECIDED, CallMemory(DID, "maple-grove"))],
    ),
    (
        "a caller who arrived while nobody listened: a new call",
        [NEW],
        [],
        [StartCall(NEW, DID)],
    ),
    (
        "a bridged pair: left talking, adopted once",
        [TALK_A, TALK_B],
        [bridge("b1", "talk-a", "talk-a-leg2")],
        [Adopt("b1", ("talk-a", "talk-a-leg2"))],
    ),
    (
        "a leftover leg in the application, talking to nobody: hung up",
        [LEFTOVER],
        [],
        [HangUpChannel("old-leg3")],
    ),
    (
        "a leftover leg alone in a bridge: hung up",
        [LEFTOVER],
        [bridge("b2", "old-leg3")],
        [HangUpChannel("old-leg3")],
    ),
    (
        "a leg a previous engine was still dialing (outside the application): hung up",
        [DIALING],
        [],
        [HangUpChannel("gone-r0a1b2c-leg2")],
    ),
    (
        "a leg still dialing for a caller of another engine: not ours",
        [ELSEWHERE, ELSEWHERE_LEG],
        [],
        [],
    ),
    ("a caller waiting in the queue: app_queue has them", [QUEUED], [], []),
    ("a caller in another engine's application: not ours", [ELSEWHERE], [], []),
    (
        "a channel with Stasis arguments we never make: the safety net",
        [ODD],
        [],
        [Fallback("odd", "unknown channel in the application")],
    ),
]


@pytest.mark.parametrize(
    ("channels", "bridges", "expected"), [r[1:] for r in RESTART], ids=[r[0] for r in RESTART]
)
def test_a_restarted_engine_takes_on_what_it_finds(
    channels: list[Channel], bridges: list[Bridge], expected: list[Action]
) -> None:
    """With nothing in memory, every channel found gets its one action."""
    assert reconcile(APP, channels, bridges, Registry()) == expected


def caller_of(ident: str = "c1") -> Channel:
    return channel(ident, stasis=f"coverage-engine,inbound,{DID}", variables=TRIED_PATEL)


# (what a reconnecting engine finds for its call c1, ringing Dr. Patel on c1-leg2)
RECONNECT: list[tuple[str, Sequence[str], list[Action]]] = [
    ("everything still there: nothing to do", ("c1", "c1-leg2"), []),
    ("the caller hung up while we were away", ("c1-leg2",), [Deliver("c1", CallerGone())]),
    (
        "the doctor's leg ended while we were away",
        ("c1",),
        [Deliver("c1", LegFailed("c1-leg2", LegFailure.GONE))],
    ),
    ("both gone", (), [Deliver("c1", CallerGone())]),
]


@pytest.mark.parametrize(
    ("present", "expected"), [r[1:] for r in RECONNECT], ids=[r[0] for r in RECONNECT]
)
def test_a_reconnecting_engine_tells_its_calls_what_vanished(
    present: Sequence[str], expected: list[Action]
) -> None:
    """Events lost while the link was down are made up for by what is no longer there."""
    registry = registry_of(ringing_patel("c1"))
    snapshots = {
        "c1": caller_of(),
        "c1-leg2": channel("c1-leg2", stasis="coverage-engine,leg,c1", state="Ringing"),
    }
    assert reconcile(APP, [snapshots[c] for c in present], [], registry) == expected


def test_channels_we_carry_are_not_taken_on_twice() -> None:
    """A caller and leg the engine already carries are never started or hung up again."""
    registry = registry_of(ringing_patel("c1"))
    found = [caller_of(), channel("c1-leg2", stasis="coverage-engine,leg,c1")]
    assert reconcile(APP, found, [], registry) == []


def test_the_application_name_decides_what_is_ours() -> None:
    """A second engine (its own application) sees the first one's callers as not its own."""
    assert reconcile("engine-b", [MID_STEP, NEW], [], Registry()) == []
    assert reconcile("engine-b", [ELSEWHERE], [], Registry()) == [StartCall(ELSEWHERE, DID)]


def test_without_channelvars_the_memory_is_read_first_and_then_used() -> None:
    """Snapshots without variables: reconcile names the callers to read, then uses what was read."""
    bare_back = channel("back", stasis="coverage-engine,queue-result,TIMEOUT")
    bare_new = channel("new", stasis=f"coverage-engine,inbound,{DID}")
    leg = channel("old-leg1", stasis="coverage-engine,leg,old")
    bare_talking = channel("talk", stasis=f"coverage-engine,inbound,{DID}")
    talking_leg = channel("talk-leg1", stasis="coverage-engine,leg,talk")
    talk = bridge("b1", "talk", "talk-leg1")
    found = [bare_back, bare_new, leg, QUEUED, MID_STEP, bare_talking, talking_leg]
    registry = Registry()
    assert needs_memory(APP, found, [talk], registry) == ["back", "new"]
    read: Mapping[str, CallMemory] = {
        "back": CallMemory(DID, "maple-grove", ("operators/answering",)),
        "new": CallMemory(DID),
    }
    assert reconcile(APP, found, [talk], registry, read) == [
        ResumeCall(bare_back, read["back"], "TIMEOUT"),
        StartCall(bare_new, DID),
        HangUpChannel("old-leg1"),
        ResumeCall(
            MID_STEP, CallMemory(DID, "maple-grove", ("operators/answering", "oncall/patel"))
        ),
        Adopt("b1", ("talk", "talk-leg1")),
    ]


@pytest.mark.parametrize(
    ("memory", "resumed"),
    [
        (CallMemory(), False),
        (CallMemory(did=DID), False),
        (CallMemory(DID, "maple-grove"), True),
        (CallMemory(DID, "", ("oncall/patel",)), True),
    ],
    ids=["nothing", "only the dialed number (the dialplan's)", "decided", "a step tried"],
)
def test_resume_or_start_follows_whether_an_engine_had_taken_the_call(
    memory: CallMemory, resumed: bool
) -> None:
    """A caller continues its journey exactly when an engine had decided it."""
    action = resume_or_start(NEW, wire.Inbound(DID), memory)
    assert isinstance(action, ResumeCall if resumed else StartCall)


# (a reconcile while calls go on: c1 was ringing Dr. Patel on c1-leg2 when the snapshot was asked)
DURING: list[tuple[str, dict[str, str | None], Sequence[str], list[Action]]] = [
    (
        "c1 arrived after the snapshot: not gone",
        {},
        (),
        [],
    ),
    (
        "c1 moved to a new leg after the snapshot: its new leg is not gone",
        {"c1": "c1-leg1"},
        ("c1",),
        [],
    ),
    (
        "c1 was there before the snapshot and is missing from it: gone",
        {"c1": "c1-leg2"},
        ("c1-leg2",),
        [Deliver("c1", CallerGone())],
    ),
    (
        "its leg was there before and is missing: the leg is gone",
        {"c1": "c1-leg2"},
        ("c1",),
        [Deliver("c1", LegFailed("c1-leg2", LegFailure.GONE))],
    ),
]


@pytest.mark.parametrize(
    ("before", "present", "expected"), [r[1:] for r in DURING], ids=[r[0] for r in DURING]
)
def test_a_reconcile_in_a_running_engine_leaves_what_began_after_its_snapshot(
    before: dict[str, str | None], present: Sequence[str], expected: list[Action]
) -> None:
    """Measured: 3 s after start an engine reconciles; calls that arrived while it read the
    channel list were told their caller was gone (0.3% of the benchmark's calls failed)."""
    registry = registry_of(ringing_patel("c1"))
    snapshots = {
        "c1": caller_of(),
        "c1-leg2": channel("c1-leg2", stasis="coverage-engine,leg,c1", state="Ringing"),
    }
    found = [snapshots[c] for c in present]
    assert reconcile(APP, found, [], registry, known_before=before) == expected


def in_queue(ident: str, **variables: str) -> Channel:
    """A caller waiting in (or talking through) app_queue's Queue(), outside any application."""
    return replace(
        channel(ident, variables={**TRIED_QUEUE, **variables}),
        dialplan=DialplanLocation(app_name="Queue", app_data="answering,,,,90"),
    )


def test_a_queued_caller_of_ours_is_followed_and_one_already_put_through_is_credited() -> None:
    """A caller this engine (or the dead engine it takes over) sent to the queue is followed
    to learn who takes them; one an operator took while nobody followed (app_queue's Dial
    event went to a dead engine) is credited to that operator from MEMBERINTERFACE."""
    waiting = in_queue("q1", COVERAGE_ENGINE="coverage-engine-b")
    taken = in_queue("q2", COVERAGE_ENGINE="coverage-engine-b", MEMBERINTERFACE="PJSIP/operator3")
    someone_elses = in_queue("q3", COVERAGE_ENGINE="coverage-engine-c")
    actions = reconcile(
        APP, [waiting, taken, someone_elses], [], Registry(), owners={"coverage-engine-b"}
    )
    assert actions == [
        WatchQueued("q1"),
        WatchQueued("q2"),
        OperatorTook("q2", "PJSIP/operator3"),
    ]


def test_a_dead_engines_doctor_talking_to_its_caller_is_adopted_never_hung_up() -> None:
    """Taking over: the dead engine's leg to Dr. Chen is in its own application (Stasis,
    not ours) and bridged with the caller; the pair is adopted and left talking, while a
    leg of it still ringing on its own is stopped."""
    dead = "coverage-engine-b"
    entered = DialplanLocation(
        app_name="StasisBroadcast", app_data=f"500,^coverage-engine,inbound:{DID}"
    )
    caller = replace(channel("c9", variables=TRIED_PATEL), dialplan=entered)
    talking = channel("c9-leg2", stasis=f"{dead},leg,c9")
    ringing = channel("c8-leg1", state="Ringing")
    other = replace(channel("c8", variables=TRIED_PATEL), dialplan=entered)
    actions = reconcile(
        APP,
        [caller, talking, other, ringing],
        [bridge("c9-bridge", "c9", "c9-leg2")],
        Registry(),
        claimed={"c9", "c9-leg2", "c8"},
        owners={dead},
    )
    assert HangUpChannel("c9-leg2") not in actions
    assert Adopt("c9-bridge", ("c9", "c9-leg2")) in actions
    assert HangUpChannel("c8-leg1") in actions


def test_a_caller_left_alone_in_its_bridge_after_the_doctor_hung_up_is_released() -> None:
    """The doctor hung up while no engine listened (between a kill and the take-over): the
    caller sits alone in the bridge made for that conversation. It is over: the caller is
    released, never taken through the steps again (which would ring the doctor back)."""
    caller = channel("c7", stasis=f"coverage-engine,inbound,{DID}", variables=TRIED_PATEL)
    actions = reconcile(APP, [caller], [bridge("c7-bridge", "c7")], Registry())
    assert actions == [EndAdopted("c7-bridge", ("c7",))]


def test_a_survivors_new_leg_is_not_hung_up_by_the_engine_that_had_the_call() -> None:
    """Engine B took A's caller over and rings Dr. Chen on its own new leg; A, restarted,
    still lists the caller among its channels, but the caller's memory names B: the leg
    is B's and keeps ringing."""
    entered = DialplanLocation(
        app_name="StasisBroadcast", app_data=f"500,^coverage-engine,inbound:{DID}"
    )
    taken = {**TRIED_PATEL, wire.ENGINE: "coverage-engine-b"}
    caller = replace(channel("c6", variables=taken), dialplan=entered)
    leg = channel("c6-r0a1b2c-leg1", stasis="coverage-engine-b,leg,c6", state="Ringing")
    actions = reconcile(APP, [caller, leg], [], Registry(), claimed={"c6"})
    assert actions == []
