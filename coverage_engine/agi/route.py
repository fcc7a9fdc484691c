"""`agi://127.0.0.1:4573/route`: the routing decision as channel variables.

For PBXs whose dialplan is owned by FreePBX (or anyone else) and cannot hand
calls to an ARI application: the dialplan asks, we run the same routing core
the engine runs, and answer with variables the dialplan follows step by step
(`dialplan/freepbx-example.conf`):

    COVERAGE_PRACTICE, COVERAGE_PRACTICE_NAME, COVERAGE_SHORT_NAME
    COVERAGE_REASON            why (e.g. "closed: lunch")
    COVERAGE_ANNOUNCEMENT      sound to play to the caller first, or empty
    COVERAGE_STEPS             how many steps
    COVERAGE_STEP_<n>_KIND     staff | operators | oncall          (n from 1)
    COVERAGE_STEP_<n>_DIAL     dial string (a queue name for operators)
    COVERAGE_STEP_<n>_RING     ring seconds (max wait in the queue for operators)
    COVERAGE_STEP_<n>_CONFIRM  1: the callee must press 1 to take the call
    COVERAGE_STEP_<n>_TARGET / _LABEL   who, for logs and displays
    COVERAGE_WHISPER           the practice's prompt for the operator only, or empty
    COVERAGE_STATUS            open | closed | error   (set LAST)

COVERAGE_STATUS is set after everything else, so a dialplan that sees it set
knows the steps are complete; empty or `error` means "take the safety net".
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from coverage_engine import wire
from coverage_engine.agi.protocol import AgiRequest
from coverage_engine.agi.server import AgiSession
from coverage_engine.caller_text import display_name
from coverage_engine.clock import Clock
from coverage_engine.journey import Decided, OperatorsSkipped, Received, Via
from coverage_engine.logs import mask_caller
from coverage_engine.plan import Plan, Router, Step
from coverage_engine.presence import OperatorsCheck, reason_to_skip
from coverage_engine.records import JourneyRecorder
from coverage_engine.wire import StepField

log = structlog.get_logger("coverage_engine.agi")


def did_of(request: AgiRequest) -> str:
    """The dialed number: the first AGI argument if given, else the extension.

    Only `+` and digits are kept, as the ARI entry point does: the DID is a key
    into configuration, never text that reaches a dial string.
    """
    raw = request.args[0] if request.args else request.env.get("agi_extension", "")
    return "".join(ch for ch in raw if ch == "+" or ch.isdigit())


def caller_of(request: AgiRequest) -> tuple[str, str]:
    """(number, name) of the caller; Asterisk says `unknown` when there is none."""
    number = request.env.get("agi_callerid", "")
    name = request.env.get("agi_calleridname", "")
    return ("" if number == "unknown" else number), ("" if name == "unknown" else name)


def plan_variables(
    plan: Plan, steps: Sequence[Step] | None = None, *, caller_shown: str = ""
) -> list[tuple[str, str]]:
    """The channel variables that carry `plan` (or only `steps` of it), COVERAGE_STATUS last.

    `caller_shown` is the caller's name as operators' phones may show it.
    """
    steps = plan.steps if steps is None else steps
    out = [
        (wire.AGI_CALLER_NAME, caller_shown),
        (wire.PRACTICE, plan.practice_id),
        (wire.AGI_PRACTICE_NAME, plan.practice_name),
        (wire.AGI_SHORT_NAME, plan.short_name),
        (wire.AGI_REASON, plan.reason),
        (wire.AGI_ANNOUNCEMENT, plan.announcement or ""),
        (wire.AGI_WHISPER, plan.whisper or ""),
        (wire.AGI_STEPS, str(len(steps))),
    ]
    for n, step in enumerate(steps, start=1):
        out += [
            (wire.agi_step(n, StepField.KIND), step.kind.value),
            (wire.agi_step(n, StepField.DIAL), step.dial),
            (wire.agi_step(n, StepField.RING), str(step.ring_seconds)),
            (wire.agi_step(n, StepField.CONFIRM), "1" if step.confirm else "0"),
            (wire.agi_step(n, StepField.TARGET), step.target),
            (wire.agi_step(n, StepField.LABEL), step.label),
        ]
    out.append((wire.AGI_STATUS, plan.status))
    return out


class RouteHandler:
    """Decides one call per AGI request; records the journey's start when a recorder is given.

    The dialplan runs the steps it is given one after the other, without
    asking again, so operator presence (`presence`) is applied as the steps
    are handed over: an operators step nobody can answer now is left out of
    the answer, and its journey says why.
    """

    def __init__(
        self,
        route: Router,
        clock: Clock,
        recorder: JourneyRecorder | None = None,
        *,
        operators_check: OperatorsCheck | None = None,
    ) -> None:
        self._route = route
        self._clock = clock
        self._recorder = recorder
        self._operators_check = operators_check

    async def __call__(self, request: AgiRequest, session: AgiSession) -> None:
        did = did_of(request)
        raw_number, name = caller_of(request)
        received = Received.of(did, raw_number, name)
        number = received.caller_number
        now = self._clock.now()
        try:
            plan = self._route(now, did, number)
        except Exception:
            # The dialplan's safety net still gets the caller to a person.
            log.exception("agi.routing_failed", did=did)
            await session.set_variable(wire.AGI_STATUS, "error")
            return
        skipped = [
            OperatorsSkipped(index, step.target, reason)
            for index, step in enumerate(plan.steps)
            if (reason := reason_to_skip(plan, index, self._operators_check)) is not None
        ]
        offered = [s for i, s in enumerate(plan.steps) if i not in {k.step for k in skipped}]
        log.info(
            "agi.decided",
            did=did,
            caller=mask_caller(number),
            status=plan.status,
            reason=plan.reason,
            steps=len(offered),
            skipped=[k.reason for k in skipped],
        )
        if self._recorder is not None and request.uniqueid:
            # Acks are not awaited: a slow disk must never delay a caller. A
            # failed write surfaces in the recorder's own log.
            for event in (received, Decided.of(plan, via=Via.FASTAGI), *skipped):
                self._recorder.write(request.uniqueid, now, event)
        shown = display_name(name) or number
        for var, value in plan_variables(plan, offered, caller_shown=shown):
            await session.set_variable(var, value)
