"""Entering through StasisBroadcast: every engine is offered each caller, the first claim wins."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from coverage_engine import wire
from coverage_engine.ari import AriSettings, CallBroadcast, Channel, DialplanLocation, parse_event
from coverage_engine.ari.client import AriClient
from coverage_engine.engine import Engine
from coverage_engine.engine.actions import CallMemory, Claim, ResumeCall, StartCall
from coverage_engine.engine.reconcile import reconcile
from coverage_engine.engine.registry import Registry
from coverage_engine.engine.translate import translate
from coverage_engine.testing import FrozenClock, MemoryAri
from coverage_lab.fake_ari import FakeAri
from tests.unit.engine.fixtures import APP, NIGHT, ringing_patel

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
BROADCAST_JSON: dict[str, Any] = {
    "type": "CallBroadcast",
    "timestamp": "2026-12-01T14:43:42.198+0000",
    "application": APP,
    "channel": {
        "id": "1796136222.0",
        "name": "PJSIP/carrier-in-00000000",
        "state": "Ring",
        "caller": {"name": "Jane Doe", "number": "+15550100001"},
        "dialplan": {
            "context": "coverage-entry",
            "exten": "s",
            "priority": 2,
            "app_name": "StasisBroadcast",
            "app_data": "500,^coverage-engine,inbound:+13125550100",
        },
    },
    "caller": "+15550100001",
    "called": "s",
    "variables": {"COVERAGE_DID": "+13125550100"},
}


def broadcast_channel(ident: str, args: str = "inbound:+13125550100") -> Channel:
    """A caller in an application it entered through StasisBroadcast."""
    return Channel(
        ident,
        state="Up",
        dialplan=DialplanLocation(
            app_name="StasisBroadcast", app_data=f"500,^coverage-engine,{args}"
        ),
    )


def test_a_call_broadcast_parses_with_its_channel_and_variables() -> None:
    """Asterisk 22.10's CallBroadcast (as seen in the sandbox) becomes a typed event."""
    event = parse_event(BROADCAST_JSON)
    assert isinstance(event, CallBroadcast)
    assert event.channel.id == "1796136222.0"
    assert event.caller == "+15550100001"
    assert event.variables == {"COVERAGE_DID": "+13125550100"}


def test_an_offered_caller_is_claimed_new_or_back_from_our_queue() -> None:
    """A broadcast means: ask for the caller. A queued call of ours coming back is claimed too:
    the StasisStart that follows delivers its queue result."""
    event = parse_event(BROADCAST_JSON)
    assert isinstance(event, CallBroadcast)
    assert translate(Registry(), event) == [Claim("1796136222.0")]
    registry = Registry()
    registry.add_call(ringing_patel("1796136222.0"))
    assert translate(registry, event) == [Claim("1796136222.0")]


@pytest.mark.parametrize(
    ("app_data", "args"),
    [
        ("500,^coverage-engine,inbound:+13125550100", ("inbound", "+13125550100")),
        ("500,^coverage-engine$,queue-result:TIMEOUT", ("queue-result", "TIMEOUT")),
        ("500,^coverage-engine,queue-result:", ("queue-result", "")),
        ("500,^coverage-engine", ()),
        ("", ()),
    ],
)
def test_the_winner_gets_the_broadcast_arguments_split_at_colons(
    app_data: str, args: tuple[str, ...]
) -> None:
    """StasisBroadcast's third argument, colon-separated, is what StasisStart carries."""
    assert wire.broadcast_args(app_data) == args


def test_a_broadcast_channel_is_ours_only_if_our_application_won_it() -> None:
    """The snapshot does not name the winner: the application's channel list does."""
    data = "500,^coverage-engine,inbound:+13125550100"
    assert wire.snapshot_entry(APP, "StasisBroadcast", data, claimed=True) == wire.Inbound(
        "+13125550100"
    )
    assert wire.snapshot_entry(APP, "StasisBroadcast", data, claimed=False) is None
    assert wire.snapshot_entry(APP, "Queue", "answering", claimed=True) is None


def test_after_a_restart_our_broadcast_callers_are_taken_on_and_others_left_alone() -> None:
    """Reconcile starts or resumes the callers our application won, never another engine's."""
    ours_new = broadcast_channel("c1")
    ours_taken = Channel(
        "c2",
        state="Up",
        dialplan=ours_new.dialplan,
        variables={wire.DID: "+13125550100", wire.PRACTICE: "maple-grove"},
    )
    theirs = broadcast_channel("c3")
    back_from_queue = broadcast_channel("c4", "queue-result:TIMEOUT")

    actions = reconcile(
        APP,
        [ours_new, ours_taken, theirs, back_from_queue],
        [],
        Registry(),
        claimed={"c1", "c2", "c4"},
    )

    kinds = {type(a).__name__: a for a in actions}
    assert [type(a) for a in actions] == [StartCall, ResumeCall, ResumeCall]
    assert isinstance(kinds["StartCall"], StartCall)
    assert kinds["StartCall"].channel.id == "c1"
    assert {a.channel.id for a in actions if isinstance(a, ResumeCall)} == {"c2", "c4"}


async def test_the_engine_claims_what_it_is_offered_and_counts_wins_and_losses() -> None:
    """A won claim is followed by the StasisStart; one another engine won is quiet."""
    ari = MemoryAri(APP)
    results: list[bool] = []
    engine = Engine(ari, lambda *_: NIGHT, clock=FrozenClock(NOW), on_claim=results.append)
    ari.claimed_by_others.add("c2")

    for ident in ("c1", "c2"):
        offered = {**BROADCAST_JSON["channel"], "id": ident}
        offer = parse_event({**BROADCAST_JSON, "channel": offered})
        await engine.dispatch(offer)
    # Claims go out beside the event loop (never behind a slow event): let them.
    for _ in range(5):
        await asyncio.sleep(0)

    assert [r.op for r in ari.requests if r.op == "claim"] == ["claim", "claim"]
    assert results == [True, False]
    assert engine.calls_in_progress == 0  # nothing starts before the StasisStart


async def test_the_client_claims_for_its_own_application_and_a_refusal_is_false() -> None:
    """POST /events/claim?channelId=..&application=<app>: 204 is True, 409 or 404 False."""
    async with FakeAri() as fake, AriClient(fake.settings()) as client:
        won = fake.add_channel(channel_id="won")
        lost = fake.add_channel(channel_id="lost")
        fake.claimed_by_others.add(lost)
        assert await client.claim(won)
        assert not await client.claim(lost)
        assert not await client.claim("gone")
        await asyncio.sleep(0)


@pytest.mark.parametrize("app", ["coverage-engine", "coverage-engine-b", "coverage-engine.2"])
def test_engines_are_named_so_the_broadcast_reaches_them(app: str) -> None:
    """Names start with coverage-engine: the dialplan offers calls to ^coverage-engine."""
    settings = AriSettings(url="http://127.0.0.1:8088/ari", username="u", password="p", app=app)
    assert settings.check_engine_app() is settings


@pytest.mark.parametrize("app", ["engine-b", "coverage-engine,b", "coverage-engine$(x)", ""])
def test_a_name_the_broadcast_would_miss_or_the_dialplan_would_misread_is_refused(app: str) -> None:
    """The name is said to be wrong at start, with what to use instead."""
    settings = AriSettings(url="http://127.0.0.1:8088/ari", username="u", password="p", app=app)
    with pytest.raises(ValueError, match="coverage-engine-b"):
        settings.check_engine_app()


def test_a_caller_back_from_the_queue_and_since_ringing_a_doctor_retries_that_doctor() -> None:
    """The snapshot still says queue-result (how the caller last entered), but the engine had
    moved on to Dr. Nguyen: taken on after a restart, Nguyen is rung again, not skipped."""
    memory = {
        wire.DID: "+13125550100",
        wire.PRACTICE: "maple-grove",
        wire.TRIED: "operators/answering,oncall/nguyen",
    }
    ringing = Channel(
        "c1",
        state="Up",
        dialplan=DialplanLocation(
            app_name="StasisBroadcast", app_data="500,^coverage-engine,queue-result:JOINEMPTY"
        ),
        variables=memory,
    )
    waiting = Channel(
        "c2",
        state="Up",
        dialplan=ringing.dialplan,
        variables={**memory, wire.TRIED: "operators/answering"},
    )

    actions = reconcile(APP, [ringing, waiting], [], Registry(), claimed={"c1", "c2"})

    assert actions == [
        ResumeCall(ringing, CallMemory.from_variables(memory)),
        ResumeCall(waiting, CallMemory.from_variables(waiting.variables), queue_status="JOINEMPTY"),
    ]
