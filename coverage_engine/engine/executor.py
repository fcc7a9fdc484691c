"""The call flow's commands as ARI requests: the one place that knows which request does what.

`execute` carries out one command and reports a failed request back as the
`CommandFailed` event the call flow decides about (a 404 on a gone channel
is normal on a phone system: `gone=True`). Timers and journey records are
not requests; the call runner keeps those. Transport quirks (a dial racing a
channel's entry into the application, the callee's display) belong to the
ARI client, not here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping

import structlog

from coverage_engine import wire
from coverage_engine.ari import AriError, AriOperations, CallerId, HangupReason, ResourceGone
from coverage_engine.callflow import commands as cmd
from coverage_engine.callflow.events import CommandFailed

log = structlog.get_logger("coverage_engine.engine")

Request = (
    cmd.Answer
    | cmd.StartRinging
    | cmd.StopRinging
    | cmd.StartMoh
    | cmd.StopMoh
    | cmd.Play
    | cmd.StopPlayback
    | cmd.CreateLeg
    | cmd.HangUp
    | cmd.MakeBridge
    | cmd.DestroyBridge
    | cmd.SetVariables
    | cmd.ContinueInDialplan
)
"""The commands that are ARI requests (the others are the runner's: timers, records)."""

_HANGUP_REASONS: Mapping[str, HangupReason] = {"normal": "normal", "no_answer": "no_answer"}


async def execute(ari: AriOperations, command: Request, *, call_id: str) -> CommandFailed | None:
    """Carry out one command of call `call_id`; a failed request becomes `CommandFailed`."""
    try:
        await _request(ari, command, call_id)
    except ResourceGone as exc:
        log.debug("resource_gone", command=type(command).__name__, message=exc.message)
        return CommandFailed(command, gone=True, reason=exc.message)
    except AriError as exc:
        log.warning("ari_request_failed", command=type(command).__name__, error=str(exc))
        return CommandFailed(command, gone=False, reason=str(exc))
    return None


async def _request(ari: AriOperations, command: Request, call_id: str) -> None:
    match command:
        case cmd.Answer(channel_id):
            await ari.answer(channel_id)
        case cmd.StartRinging(channel_id):
            await ari.ring(channel_id)
        case cmd.StopRinging(channel_id):
            await ari.ring_stop(channel_id)
        case cmd.StartMoh(channel_id):
            await ari.start_moh(channel_id)
        case cmd.StopMoh(channel_id):
            await ari.stop_moh(channel_id)
        case cmd.Play(channel_id, media, playback_id):
            await ari.play(channel_id, media, playback_id=playback_id)
        case cmd.StopPlayback(playback_id):
            await ari.stop_playback(playback_id)
        case cmd.CreateLeg():
            # One request (originate), where create + dial took two round trips.
            await ari.originate(
                command.dial,
                channel_id=command.leg_id,
                ring_seconds=command.timeout,
                app_args=wire.leg_args(command.caller_channel_id),
                originator=command.caller_channel_id,
                caller_id=CallerId(name=command.caller_name, number=command.caller_number),
            )
        case cmd.HangUp(channel_id, reason):
            await ari.hangup(channel_id, _HANGUP_REASONS.get(reason, "normal"))
        case cmd.MakeBridge(bridge_id, channel_ids):
            await ari.create_bridge(bridge_id, name=f"coverage {call_id}")
            await ari.add_to_bridge(bridge_id, channel_ids)
        case cmd.DestroyBridge(bridge_id):
            await ari.destroy_bridge(bridge_id)
        case cmd.SetVariables(channel_id, variables):
            await ari.set_variables(channel_id, variables)
        case cmd.ContinueInDialplan(channel_id, context, extension, priority, watch):
            if watch:
                # Keep hearing about the caller while app_queue has them: their
                # hang-up, and which operator answered. Best effort: without it
                # the record is poorer, but the caller must still reach the queue.
                await quietly(ari.subscribe_channel(channel_id))
            await ari.continue_in_dialplan(
                channel_id, context=context, extension=extension, priority=priority
            )


async def quietly(request: Awaitable[object]) -> None:
    """Await a best-effort request: gone is fine, other failures are logged."""
    try:
        await request
    except ResourceGone:
        pass
    except AriError as exc:
        log.warning("ari_request_failed", error=str(exc))
