"""Checks that relate one part of the coverage file to another.

These run on a model whose every field is already valid, and each returns the
key path to blame so the admin gets a line number. Together with the model's
own checks they guarantee the routing invariant: every plan ends with a person.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from zoneinfo import ZoneInfo

from coverage_engine.config.model import (
    WEEKDAYS,
    ChainStep,
    CoverageConfig,
    Practice,
    localize,
)
from coverage_engine.config.yamlsource import PathKey

Finding = tuple[PathKey, str]


def semantic_findings(config: CoverageConfig) -> list[Finding]:
    """Every cross-reference problem in the file, in file order."""
    findings = findings_for(config.practices, set(config.trunks))
    findings.extend(_notifications(config))
    return findings


def findings_for(practices: Mapping[str, Practice], trunks: set[str] | None) -> list[Finding]:
    """Cross-reference problems among these practices.

    Also used on the practices that validated when others did not, so the
    admin sees every problem in one run; `trunks` is None when the trunk list
    itself is invalid (trunk references are then not checked).
    """
    findings: list[Finding] = []
    findings.extend(_unique_dids(practices))
    for key, practice in practices.items():
        findings.extend(_practice_findings(trunks, key, practice))
    return findings


def _unique_dids(practices: Mapping[str, Practice]) -> Iterator[Finding]:
    owner: dict[str, str] = {}
    for key, practice in practices.items():
        for i, did in enumerate(practice.dids):
            if did in owner:
                other = owner[did]
                where = "this practice" if other == key else f'practice "{other}"'
                yield (
                    ("practices", key, "dids", i),
                    f"{did} is already a number of {where}; a number reaches one practice",
                )
            else:
                owner[did] = key


def _practice_findings(trunks: set[str] | None, key: str, practice: Practice) -> Iterator[Finding]:
    base: PathKey = ("practices", key)
    if practice.id != key:
        yield ((*base, "id"), f'id "{practice.id}" differs from its key "{key}"; remove it')
    zone = practice.zone
    for i, override in enumerate(practice.overrides):
        if localize(override.until, zone) <= localize(override.start, zone):
            yield ((*base, "overrides", i, "until"), "the override ends before it starts")
    if trunks is not None:
        yield from _trunks(trunks, practice, base)
    yield from _roster(practice, base, zone)
    yield from _chain(practice, practice.open_steps, (*base, "when_open", "chain"), "open")
    closed_path: PathKey = (*base, "when_closed")
    if practice.when_closed.chain is not None:
        closed_path = (*closed_path, "chain")
    yield from _chain(practice, practice.when_closed.steps, closed_path, "closed")
    yield from _paging(trunks, practice, (*base, "paging"))


def _paging(trunks: set[str] | None, practice: Practice, path: PathKey) -> Iterator[Finding]:
    paging = practice.paging
    trunk = paging.callback_trunk
    if trunks is not None and trunk is not None and trunk not in trunks:
        known = ", ".join(sorted(trunks)) or "none declared"
        yield ((*path, "callback_trunk"), f'trunk "{trunk}" is not listed under trunks: ({known})')
    doctors = practice.oncall.doctors if practice.oncall is not None else {}
    for doctor in paging.pagers:
        if doctor not in doctors:
            yield (
                (*path, "pagers", doctor),
                f'doctor "{doctor}" is not defined under oncall.doctors',
            )
    if "email" in paging.channels:
        missing = sorted(d for d in doctors if d not in paging.pagers)
        if missing:
            yield (
                (*path, "channels"),
                f"the email channel needs a pagers: address for every doctor "
                f"(missing: {', '.join(missing)})",
            )


def _notifications(config: CoverageConfig) -> Iterator[Finding]:
    """Channels and alerts that leave the box need the engine's notification settings."""
    notifications = config.engine.notifications
    for key, practice in config.practices.items():
        paging = practice.paging
        path: PathKey = ("practices", key, "paging")
        for wanted, setting in (("webhook", "webhook"), ("email", "smtp")):
            if wanted in paging.channels and (
                notifications is None or getattr(notifications, setting) is None
            ):
                yield (
                    (*path, "channels"),
                    f"the {wanted} channel needs engine.notifications.{setting}",
                )
        if paging.alert_email and (notifications is None or notifications.smtp is None):
            yield ((*path, "alert_email"), "alert_email needs engine.notifications.smtp")


def _trunks(declared: set[str], practice: Practice, base: PathKey) -> Iterator[Finding]:
    people = []
    if practice.staff is not None:
        people.append(((*base, "staff", "trunk"), practice.staff.trunk))
    if practice.oncall is not None:
        for doc_id, doctor in practice.oncall.doctors.items():
            people.append(((*base, "oncall", "doctors", doc_id, "trunk"), doctor.trunk))
    for path, trunk in people:
        if trunk is not None and trunk not in declared:
            known = ", ".join(sorted(declared)) or "none declared"
            yield (path, f'trunk "{trunk}" is not listed under trunks: ({known})')


def _roster(practice: Practice, base: PathKey, zone: ZoneInfo) -> Iterator[Finding]:
    roster = practice.oncall
    if roster is None:
        return
    path: PathKey = (*base, "oncall")
    known = set(roster.doctors)

    def unknown(doc: str, where: PathKey) -> Iterator[Finding]:
        if doc not in known:
            yield (
                where,
                f'doctor "{doc}" is not defined under oncall.doctors '
                f"(defined: {', '.join(sorted(known))})",
            )

    if roster.rotation is not None:
        rotation = roster.rotation
        for i, doc in enumerate(rotation.doctors):
            yield from unknown(doc, (*path, "rotation", "doctors", i))
        anchor_day = WEEKDAYS[rotation.anchor.weekday()]
        if anchor_day != rotation.handoff.weekday:
            yield (
                (*path, "rotation", "anchor"),
                f"{rotation.anchor} is a {anchor_day.capitalize()}, but the handoff is on "
                f"{rotation.handoff.weekday.capitalize()}; the anchor must be a handoff day",
            )
    if roster.primary is not None:
        yield from unknown(roster.primary, (*path, "primary"))
    rule = roster.backup_rule
    if roster.primary is not None and rule == roster.primary:
        # The same phone twice in a row wastes a whole ring time at 3 a.m.
        yield (
            (*path, "backup"),
            f'"{rule}" is the primary, so cannot also be the backup; name another doctor '
            "or write backup: none",
        )
    if rule == "next_in_rotation" and roster.rotation is None:
        yield ((*path, "backup"), "next_in_rotation needs a rotation; name a doctor or none")
    elif rule not in ("next_in_rotation", "none"):
        yield from unknown(rule, (*path, "backup"))
    for i, swap in enumerate(roster.swaps):
        yield from unknown(swap.doctor, (*path, "swaps", i, "doctor"))
        if swap.backup is not None:
            yield from unknown(swap.backup, (*path, "swaps", i, "backup"))
            if swap.backup == swap.doctor:
                yield (
                    (*path, "swaps", i, "backup"),
                    f'"{swap.doctor}" covers this swap, so cannot also be its backup; name '
                    "another doctor, or leave backup out to use the practice's backup rule",
                )
        if localize(swap.until, zone) <= localize(swap.start, zone):
            yield ((*path, "swaps", i, "until"), "the swap ends before it starts")


def _chain(
    practice: Practice, steps: tuple[ChainStep, ...], path: PathKey, when: str
) -> Iterator[Finding]:
    roster = practice.oncall
    if steps and steps[-1].to != "operators":
        last: PathKey = (*path, len(steps) - 1) if path[-1] == "chain" else path
        yield (
            last,
            f'the {when} chain ends with "{steps[-1].to}", which can go unanswered; '
            "its last step must be operators, so a person always answers",
        )
    for i, step in enumerate(steps):
        where: PathKey = (*path, i) if path[-1] == "chain" else path
        if step.to == "staff" and practice.staff is None:
            yield (where, "a staff step needs the practice's staff: (e.g. the front desk)")
        if step.reaches_doctor and roster is None:
            yield (where, f"the {when} chain rings a doctor but the practice has no oncall:")
            continue
        if roster is None:
            continue
        if step.to == "doctor" and step.doctor not in roster.doctors:
            yield (where, f'doctor "{step.doctor}" is not defined under oncall.doctors')
        # A policy's chain asks for a backup whenever there is one; only an
        # explicit chain that names the backup step is wrong without one.
        if step.to == "oncall_backup" and roster.backup_rule == "none" and path[-1] == "chain":
            yield (where, "the chain rings the on-call backup, but oncall.backup is none")
        if step.reaches_doctor and not step.must_confirm:
            # A mobile phone's voicemail answers like a person; only the
            # press-1 prompt tells them apart, so it is mandatory off the PBX.
            reachable = (
                [roster.doctors[step.doctor]]
                if step.to == "doctor" and step.doctor in roster.doctors
                else list(roster.doctors.values())
            )
            if any(d.external for d in reachable):
                yield (
                    where,
                    "confirm: false could let a doctor's voicemail take the call "
                    "(a doctor here is reached on an outside number); set confirm: true",
                )
