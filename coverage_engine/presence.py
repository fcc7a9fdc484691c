"""Operator presence applied to a call's plan: one rule, asked as a step is about to start.

The plan depends only on the configuration, the instant, the dialed number
and the caller. Who is logged in to the operator queue changes minute by
minute, so it is asked at the last moment, when the call is about to enter
an operators step (the ARI call flow), or when the FastAGI service hands the
steps to a dialplan that will run them at once. Either way each step passed
over is a journey event with its reason.

Only operators steps are ever passed over, and never the plan's last step:
the operators there are the safety net, tried whatever presence says (if
nobody is there either, app_queue returns at once and the dialplan's own
safety net takes over).
"""

from __future__ import annotations

from collections.abc import Callable

from coverage_engine.plan import Plan, StepKind

OperatorsCheck = Callable[[str, str], str | None]
"""(practice id, queue) -> why an operators step should be passed over right now, or None.

The engine passes the AMI presence gate (`ami.gate.PresenceGate.skip_reason`):
it reads an in-memory snapshot kept current by the AMI tracker, so asking
does no I/O. None as a check means presence is unknown: nothing is skipped.
"""


def reason_to_skip(plan: Plan, index: int, check: OperatorsCheck | None) -> str | None:
    """Why step `index` of `plan` is to be passed over now, or None to try it."""
    step = plan.steps[index]
    if check is None or step.kind is not StepKind.OPERATORS or index == len(plan.steps) - 1:
        return None
    return check(plan.practice_id, step.dial)
