"""Channels, bridges and a registry of calls, as translate and reconcile see them."""

from __future__ import annotations

from collections.abc import Mapping

from coverage_engine.ari import Bridge, CallerId, Channel, DialplanLocation
from coverage_engine.callflow import Call
from coverage_engine.callflow.events import CallerEntered, PlaybackEnded, QueueResult
from coverage_engine.engine.registry import Registry
from coverage_engine.plan import Plan, Step, StepKind

APP = "coverage-engine"
DID = "+13125550100"
QUEUE = Step(StepKind.OPERATORS, "answering", "answering", 90)
PATEL = Step(StepKind.ONCALL, "patel", "PJSIP/patel", 25, True, doctor_id="patel")
NIGHT = Plan(
    "maple-grove",
    "Maple Grove Pediatrics",
    "MGP",
    "closed",
    "night",
    (QUEUE, PATEL, QUEUE),
    announcement="coverage/coverage-emergency",
)


def channel(
    ident: str,
    *,
    stasis: str | None = None,
    state: str = "Up",
    variables: Mapping[str, str] | None = None,
) -> Channel:
    """A channel snapshot; `stasis` is its Stasis data ("<app>,<args>"), None outside Stasis."""
    return Channel(
        ident,
        state=state,
        caller=CallerId("Jane Doe", "+13125559876"),
        dialplan=DialplanLocation(
            app_name="Stasis" if stasis is not None else "", app_data=stasis or ""
        ),
        variables=dict(variables or {}),
    )


def bridge(ident: str, *channels: str) -> Bridge:
    return Bridge(ident, channels=channels)


def ringing_patel(call_id: str = "c1") -> Call:
    """A night call back from the first queue, ringing Dr. Patel on leg `<call>-leg2`."""
    call = Call(call_id)
    call.handle(CallerEntered(NIGHT, "+13125559876", "Jane Doe", DID))
    call.handle(PlaybackEnded(f"{call_id}-pb1"))
    call.handle(QueueResult("TIMEOUT"))
    assert call.state.leg_id == f"{call_id}-leg2"
    return call


def registry_of(*calls: Call) -> Registry:
    """A registry carrying `calls`, each with its current leg and first playback registered."""
    registry = Registry()
    for call in calls:
        registry.add_call(call)
        registry.add_playback(call.call_id, f"{call.call_id}-pb1")
        if call.state.leg_id is not None:
            registry.add_channel(call.call_id, call.state.leg_id)
    return registry
