"""The one home of routing policy: who should answer this call, and who next.

`decide` is pure: configuration, instant and dialed number in, an ordered
`Plan` of people out. The model's validation guarantees every chain ends with
the operators, so every plan ends with a person; the property tests check it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from coverage_engine.config.model import (
    CallerRule,
    ChainStep,
    CoverageConfig,
    Fallback,
    Practice,
)
from coverage_engine.config.text import show
from coverage_engine.plan import OnCall, Plan, Step, StepKind
from coverage_engine.schedule import oncall_at, practice_status, require_aware
from coverage_engine.schedule.rotation import OnCallAssignment
from coverage_engine.schedule.status import active_override


def decide(config: CoverageConfig, instant: datetime, did: str, caller: str | None = None) -> Plan:
    """The plan for a call to `did` from `caller` at `instant` (timezone-aware).

    The caller matters only through the practice's caller rules (`callers:`),
    matched on the number read like the DID.
    """
    require_aware(instant)
    number = config.normalize(did)
    practice = config.practice_for_did(number) if number is not None else None
    if practice is None:
        return default_plan(config, instant, did, number)
    calling = config.normalize(caller) if caller else None
    plan = decide_for_practice(practice, instant, did=number or did, caller=calling)
    if number != did:
        plan = replace(plan, notes=(f"dialed as {show(did)}, read as {number}", *plan.notes))
    return plan


def default_plan(
    config: CoverageConfig, instant: datetime, did: str, number: str | None = None
) -> Plan:
    """A number no practice claims, or no number at all, still reaches a person.

    `number` is `did` read as E.164 (None: it is not a phone number).
    """
    route = config.engine.default_route
    if number is None:
        reason = (
            f"unreadable number {show(did)}: not a phone number, default route to the operators"
        )
    else:
        reason = f"unknown number {number}: no practice has it, default route to the operators"
    step = Step(
        kind=StepKind.OPERATORS,
        target=route.queue,
        dial=route.queue,
        ring_seconds=route.max_wait_seconds,
        label=f"answering-service operators (queue {route.queue})",
    )
    return Plan(
        practice_id="",
        practice_name="",
        short_name=route.short_name,
        status="closed",
        reason=reason,
        steps=(step,),
        known_did=False,
        at=instant,
        did=number or did,
    )


def caller_rule(practice: Practice, caller: str | None, status: str) -> CallerRule | None:
    """The first of the practice's caller rules that names `caller` (E.164) and applies now."""
    if caller is None:
        return None
    for rule in practice.callers:
        if caller in rule.numbers and (rule.when == "always" or status == "closed"):
            return rule
    return None


def decide_for_practice(
    practice: Practice, instant: datetime, did: str = "", caller: str | None = None
) -> Plan:
    """The plan for a call to `practice` at `instant` from `caller` (E.164, if known)."""
    require_aware(instant)
    status = practice_status(practice, instant)
    assignment = (
        oncall_at(practice.oncall, practice.zone, instant) if practice.oncall is not None else None
    )
    chain = practice.open_steps if status.status == "open" else practice.when_closed.steps
    override = active_override(practice, instant)
    notes: list[str] = []
    if override is not None and override.route == "oncall" and practice.oncall is not None:
        chain = practice.when_closed.oncall_steps
        notes.append(f"straight to the doctor on call (override: {override.reason})")
    rule = caller_rule(practice, caller, status.status)
    if rule is not None:
        effects = []
        if rule.route == "oncall" and practice.oncall is not None:
            chain = practice.when_closed.oncall_steps
            effects.append("straight to the doctor on call")
        if rule.skip_announcement:
            effects.append("no announcement")
        notes.append(f"caller rule {rule.name}: {', '.join(effects)}")
    if assignment is not None and assignment.source not in ("rotation", "fixed"):
        notes.append(f"on call: {assignment.primary} ({assignment.source})")
    feed_gap = assignment.feed_gap if assignment is not None else None
    if feed_gap is not None:
        notes.append(f"{feed_gap}: on call by the YAML rotation instead")
    steps: list[Step] = []
    for chain_step in chain:
        step = _resolve(practice, chain_step, assignment)
        if step is None:
            # A role nobody fills right now (a one-doctor rotation has no
            # backup); the chain goes on to the next person.
            if (
                chain_step.to == "oncall_backup"
                and assignment is not None
                and assignment.backup_is_primary
            ):
                notes.append(
                    f"skipped oncall_backup: the backup, {assignment.primary}, is on call "
                    "as primary now (never rung twice)"
                )
            else:
                notes.append(f"skipped {chain_step.to}: nobody in that role now")
        else:
            steps.append(step)
    if practice.fallback is not None:
        steps.append(_fallback_step(practice.fallback))
    local = instant.astimezone(practice.zone)
    staffed = practice.operators.staffed_at(local.weekday(), local.hour * 60 + local.minute)
    if not staffed:
        notes.append(
            f"nobody staffs queue {practice.operators.queue} at this time (operators.staffed)"
        )
    return Plan(
        practice_id=practice.id,
        practice_name=practice.name,
        short_name=practice.short_name,
        status=status.status,
        reason=status.reason,
        steps=tuple(steps),
        announcement=(
            practice.when_closed.announcement
            if status.status == "closed" and not (rule is not None and rule.skip_announcement)
            else None
        ),
        oncall=OnCall(assignment.primary, assignment.backup) if assignment is not None else None,
        notes=tuple(notes),
        whisper=practice.operators.whisper,
        at=local,
        did=did,
        operators_staffed=staffed,
        caller_rule=rule.name if rule is not None else None,
        feed_gap=feed_gap,
    )


def _fallback_step(fallback: Fallback) -> Step:
    """The final fallback, rung when the operators do not take the call."""
    return Step(
        kind=StepKind.FALLBACK,
        target=fallback.address,
        dial=fallback.dial,
        ring_seconds=fallback.ring_seconds,
        confirm=fallback.confirm,
        label=fallback.name,
    )


def _resolve(
    practice: Practice, step: ChainStep, assignment: OnCallAssignment | None
) -> Step | None:
    """One chain step as a concrete attempt, or None when nobody fills that role."""
    if step.to == "operators":
        ops = practice.operators
        return Step(
            kind=StepKind.OPERATORS,
            target=ops.queue,
            dial=ops.queue,
            ring_seconds=step.max_wait_seconds or ops.max_wait_seconds,
            label=f"answering-service operators (queue {ops.queue})",
        )
    if step.to == "staff":
        staff = practice.staff
        if staff is None:  # rejected by validation; kept total for safety
            return None
        return Step(
            kind=StepKind.STAFF,
            target=staff.address,
            dial=staff.dial,
            ring_seconds=step.ring_seconds or staff.ring_seconds,
            confirm=step.must_confirm,
            label=f"{staff.name} ({staff.address})",
        )
    roster = practice.oncall
    if roster is None or assignment is None:
        return None
    role: str | None
    if step.to == "oncall_primary":
        doctor_id, role = assignment.primary, "primary"
    elif step.to == "oncall_backup":
        if assignment.backup is None:  # e.g. a rotation of one doctor
            return None
        doctor_id, role = assignment.backup, "backup"
    else:
        doctor_id, role = step.doctor or "", None
    doctor = roster.doctors.get(doctor_id)
    if doctor is None:
        return None
    label = f"{doctor.name} (on call, {role})" if role else doctor.name
    return Step(
        kind=StepKind.ONCALL,
        target=doctor_id,
        dial=doctor.dial,
        ring_seconds=step.ring_seconds or 25,
        confirm=step.must_confirm,
        label=label,
        doctor_id=doctor_id,
        role="primary" if role == "primary" else "backup" if role == "backup" else None,
    )
