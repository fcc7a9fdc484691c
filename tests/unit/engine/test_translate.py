"""`translate`: each ARI event, with what the engine knows, becomes what it means (pure)."""

from __future__ import annotations

import pytest

from coverage_engine.ari import (
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    ChannelStateChange,
    ChannelVarset,
    Connected,
    Dial,
    Disconnected,
    Playback,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
    StreamItem,
    UnknownEvent,
)
from coverage_engine.ari.events import MODELLED, parse_event
from coverage_engine.callflow.events import (
    CallerGone,
    DtmfReceived,
    LegEnteredApp,
    LegFailed,
    LegFailure,
    LegHangingUp,
    LegUp,
    OperatorConnected,
    PlaybackEnded,
    QueueResult,
)
from coverage_engine.engine.actions import (
    Action,
    CallMemory,
    Deliver,
    EndAdopted,
    Fallback,
    HangUpChannel,
    LinkDown,
    LinkUp,
    OperatorTook,
    ResumeCall,
    StartCall,
    WatchedGone,
)
from coverage_engine.engine.registry import Registry
from coverage_engine.engine.translate import EVENTS, translate
from tests.unit.engine.fixtures import DID, channel, registry_of, ringing_patel

CALLER = channel("c1", stasis=f"coverage-engine,inbound,{DID}")
LEG = "c1-leg2"
MEMORY = {"COVERAGE_DID": DID, "COVERAGE_PRACTICE": "maple-grove", "COVERAGE_TRIED": "a,b"}
BACK = channel("lost", stasis="coverage-engine,queue-result,TIMEOUT")
BACK_WITH_MEMORY = channel("lost", stasis="coverage-engine,queue-result,TIMEOUT", variables=MEMORY)


def known() -> Registry:
    """The engine carries call c1, ringing Dr. Patel on c1-leg2; c9-a and c9-b talk, adopted."""
    registry = registry_of(ringing_patel("c1"))
    registry.adopt("old-bridge", ("c9-a", "c9-b"))
    return registry


def start(ident: str, *args: str, state: str = "Up") -> StasisStart:
    stasis = ",".join(("coverage-engine", *args))
    return StasisStart(
        type="StasisStart", channel=channel(ident, stasis=stasis, state=state), args=args
    )


def destroyed(ident: str, cause: int = 16) -> ChannelDestroyed:
    return ChannelDestroyed(type="ChannelDestroyed", channel=channel(ident), cause=cause)


def state(ident: str, state: str) -> ChannelStateChange:
    return ChannelStateChange(type="ChannelStateChange", channel=channel(ident, state=state))


def played(ident: str, state: str = "done") -> PlaybackFinished:
    return PlaybackFinished(type="PlaybackFinished", playback=Playback(ident, state=state))


def queue_dial(caller: str, status: str, member: str) -> Dial:
    """app_queue dialing a queue member for `caller` (the member's channel is Asterisk's)."""
    return Dial(
        type="Dial",
        caller=channel(caller),
        peer=channel("1733000000.7", state="Ringing"),
        dialstatus=status,
        dialstring=member,
    )


def varset(ident: str, variable: str, value: str) -> ChannelVarset:
    return ChannelVarset(
        type="ChannelVarset", variable=variable, value=value, channel=channel(ident)
    )


# (what happened, the ARI item, what it means)
CASES: list[tuple[str, StreamItem, list[Action]]] = [
    ("the link came up", Connected(attempt=2), [LinkUp(2)]),
    ("the link went down", Disconnected(reason="closed"), [LinkDown("closed")]),
    (
        "a new caller",
        start("c2", "inbound", DID),
        [StartCall(channel("c2", stasis=f"coverage-engine,inbound,{DID}"), DID)],
    ),
    ("a caller already carried enters again", start("c1", "inbound", DID), []),
    (
        "our leg enters the application, still down",
        start(LEG, "leg", "c1", state="Down"),
        [Deliver("c1", LegEnteredApp(LEG))],
    ),
    (
        "our leg enters the application already answered",
        start(LEG, "leg", "c1"),
        [Deliver("c1", LegEnteredApp(LEG)), Deliver("c1", LegUp(LEG))],
    ),
    (
        "a leg of a call nobody carries (made before a restart)",
        start("gone-leg1", "leg", "gone"),
        [HangUpChannel("gone-leg1")],
    ),
    (
        "our caller back from the queue",
        start("c1", "queue-result", "TIMEOUT"),
        [Deliver("c1", QueueResult("TIMEOUT"))],
    ),
    (
        "a caller back from the queue with no call in memory (memory to be read)",
        start("lost", "queue-result", "TIMEOUT"),
        [ResumeCall(BACK, None, queue_status="TIMEOUT")],
    ),
    (
        "the same, its memory in the snapshot (channelvars)",
        StasisStart(type="StasisStart", channel=BACK_WITH_MEMORY, args=("queue-result", "TIMEOUT")),
        [
            ResumeCall(
                BACK_WITH_MEMORY, CallMemory(DID, "maple-grove", ("a", "b")), queue_status="TIMEOUT"
            )
        ],
    ),
    (
        "Stasis arguments we never make",
        start("odd", "transfer", "x"),
        [Fallback("odd", "unexpected Stasis arguments")],
    ),
    # An originated leg says it is answered with its StasisStart (state Up):
    # state changes are not even asked for (EVENTS).
    ("our leg answered (a state change)", state(LEG, "Up"), []),
    ("our caller answered (by us)", state("c1", "Up"), []),
    (
        "our leg is busy (DIALSTATUS)",
        Dial(type="Dial", peer=channel(LEG), dialstatus="BUSY"),
        [Deliver("c1", LegFailed(LEG, LegFailure.BUSY))],
    ),
    ("our leg rings (DIALSTATUS)", Dial(type="Dial", peer=channel(LEG), dialstatus="RINGING"), []),
    ("our caller's channel is gone", destroyed("c1"), [Deliver("c1", CallerGone())]),
    (
        "our leg is gone: busy",
        destroyed(LEG, 17),
        [Deliver("c1", LegFailed(LEG, LegFailure.BUSY))],
    ),
    (
        "our leg is gone: declined",
        destroyed(LEG, 21),
        [Deliver("c1", LegFailed(LEG, LegFailure.REJECTED))],
    ),
    (
        "our leg is gone: no answer",
        destroyed(LEG, 19),
        [Deliver("c1", LegFailed(LEG, LegFailure.NO_ANSWER))],
    ),
    (
        "our leg is gone: hung up",
        destroyed(LEG, 16),
        [Deliver("c1", LegFailed(LEG, LegFailure.GONE))],
    ),
    ("an unknown channel is gone", destroyed("other"), []),
    (
        "one side of an adopted conversation hung up",
        destroyed("c9-a"),
        [EndAdopted("old-bridge", ("c9-b",))],
    ),
    (
        "our caller asks to hang up",
        ChannelHangupRequest(type="ChannelHangupRequest", channel=channel("c1")),
        [Deliver("c1", CallerGone())],
    ),
    (
        "our leg asks to hang up (a conversation ends now; its destruction will tell why)",
        ChannelHangupRequest(type="ChannelHangupRequest", channel=channel(LEG)),
        [Deliver("c1", LegHangingUp(LEG))],
    ),
    (
        "the doctor pressed 1",
        ChannelDtmfReceived(type="ChannelDtmfReceived", channel=channel(LEG), digit="1"),
        [Deliver("c1", DtmfReceived(LEG, "1"))],
    ),
    ("our announcement ended", played("c1-pb1"), [Deliver("c1", PlaybackEnded("c1-pb1"))]),
    (
        "our prompt could not play (missing sound)",
        played("c1-pb1", "failed"),
        [Deliver("c1", PlaybackEnded("c1-pb1", failed=True))],
    ),
    ("someone else's playback ended", played("x-pb1"), []),
    (
        "app_queue connected an operator to our queued caller",
        queue_dial("c1", "ANSWER", "PJSIP/operator1"),
        [Deliver("c1", OperatorConnected("PJSIP/operator1"))],
    ),
    ("app_queue rings an operator for our caller", queue_dial("c1", "RINGING", "PJSIP/op1"), []),
    ("app_queue stops ringing the others", queue_dial("c1", "CANCEL", ""), []),
    ("an operator answered someone else's caller", queue_dial("x", "ANSWER", "PJSIP/op1"), []),
    (
        "our own leg answered (a Dial with our caller as its caller)",
        Dial(type="Dial", caller=channel("c1"), peer=channel(LEG), dialstatus="ANSWER"),
        [],
    ),
    ("a variable on our caller (the filter keeps these away)", varset("c1", "X", "1"), []),
    ("our caller left the application", StasisEnd(type="StasisEnd", channel=channel("c1")), []),
    ("an event we do not model", UnknownEvent(type="BridgeBlindTransfer"), []),
]


@pytest.mark.parametrize(("item", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_event_means_what_it_says_for_the_calls_we_carry(
    item: StreamItem, expected: list[Action]
) -> None:
    """The ARI item, read against the registry, becomes exactly these actions."""
    assert translate(known(), item) == expected


def test_translate_leaves_the_registry_as_it_was() -> None:
    """Translating is reading: whatever comes in, what the engine knows does not change."""
    registry = known()
    for _, item, _ in CASES:
        translate(registry, item)
    assert registry.call_of_channel(LEG) == "c1"
    assert registry.adopted_bridge("c9-a") == "old-bridge"
    assert len(registry) == 1


def test_every_event_type_outside_the_filter_means_nothing() -> None:
    """The engine asks Asterisk for `EVENTS` only: any other type, about any of our
    channels, playbacks or bridges, would have translated to nothing anyway."""
    subjects = ["c1", LEG, "c9-a", "other"]
    ignored = sorted(MODELLED - EVENTS)
    assert ignored, "the filter keeps nothing away"
    for kind in ignored:
        for subject in subjects:
            snapshot = {"id": subject, "state": "Up"}
            event = parse_event(
                {
                    "type": kind,
                    "channel": snapshot,
                    "peer": snapshot,
                    "caller": {"id": "c1"},
                    "playback": {"id": "c1-pb1", "state": "done"},
                    "bridge": {"id": "old-bridge", "channels": ["c9-a", "c9-b"]},
                    "variable": "MEMBERINTERFACE",
                    "value": "PJSIP/operator1",
                    "dialstatus": "ANSWER",
                    "dialstring": "PJSIP/operator1",
                    "args": ["leg", "c1"],
                    "digit": "1",
                    "cause": 17,
                }
            )
            assert type(event).__name__ == kind
            assert translate(known(), event) == [], (kind, subject)


def test_every_type_the_filter_asks_for_is_one_translate_reads() -> None:
    """No type is asked for that is not parsed into an event translate can act on."""
    assert EVENTS <= MODELLED


def test_a_followed_callers_end_names_the_operator_whose_answer_nobody_heard() -> None:
    """A queued caller followed after a take-over hangs up: if app_queue's Dial event went to
    the dead engine, the snapshot's MEMBERINTERFACE still says which operator took them; an
    operator already known is not credited twice."""
    registry = Registry()
    registry.watch("q1")
    gone = channel("q1", variables={"MEMBERINTERFACE": "PJSIP/operator3"})
    assert translate(registry, ChannelDestroyed(type="ChannelDestroyed", channel=gone)) == [
        OperatorTook("q1", "PJSIP/operator3"),
        WatchedGone("q1"),
    ]
    hangup = ChannelHangupRequest(type="ChannelHangupRequest", channel=gone)
    registry.took("q1", "PJSIP/operator3")
    assert translate(registry, hangup) == [WatchedGone("q1")]
    nobody = channel("q1")
    assert translate(Registry(), ChannelDestroyed(type="ChannelDestroyed", channel=nobody)) == []
