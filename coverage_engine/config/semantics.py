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
    WeekHours,
    format_clock,
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
        if override.route == "oncall" and practice.oncall is None:
            yield (
                (*base, "overrides", i, "route"),
                "route: oncall needs the practice's oncall: (nobody is on call to route to)",
            )
    if trunks is not None:
        yield from _trunks(trunks, practice, base)
    yield from _roster(practice, base, zone)
    yield from _caller_rules(practice, base)
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
    if practice.fallback is not None:
        people.append(((*base, "fallback", "trunk"), practice.fallback.trunk))
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


def _caller_rules(practice: Practice, base: PathKey) -> Iterator[Finding]:
    seen: dict[str, str] = {}
    names: set[str] = set()
    for i, rule in enumerate(practice.callers):
        where: PathKey = (*base, "callers", i)
        if rule.name in names:
            yield ((*where, "name"), f'another caller rule is named "{rule.name}"')
        names.add(rule.name)
        if rule.route == "oncall" and practice.oncall is None:
            yield ((*where, "route"), "route: oncall needs the practice's oncall:")
        for j, number in enumerate(rule.numbers):
            if number in seen:
                yield (
                    (*where, "numbers", j),
                    f'{number} is already in caller rule "{seen[number]}"; a number belongs '
                    "to one rule",
                )
            seen.setdefault(number, rule.name)


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


# --- warnings: valid, but a practice manager must know --------------------------

_DAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WEEK = 7 * 24 * 60


def coverage_warnings(config: CoverageConfig) -> list[Finding]:
    """What is valid but leaves callers exposed: the gap finder's static half.

    Every chain ends at the operator queue (validation makes sure), so a
    moment has no staffed person at the end exactly when the queue is not
    staffed then and the practice names no final fallback.
    """
    findings: list[Finding] = []
    for key, practice in config.practices.items():
        staffed = practice.operators.staffed
        if staffed is None or practice.fallback is not None:
            continue
        gaps = unstaffed_week(staffed)
        if not gaps:
            continue
        hours = sum(end - start for start, end in gaps) / 60
        shown = ", ".join(_week_range(start, end) for start, end in gaps[:6])
        more = f" and {len(gaps) - 6} more" if len(gaps) > 6 else ""
        findings.append(
            (
                ("practices", key, "operators", "staffed"),
                f"warning: nobody staffs queue {practice.operators.queue} {shown}{more} "
                f"({hours:g} hours a week) and no fallback is named: a call then ends at a "
                "queue nobody is planned to answer (name a fallback, or staff the queue)",
            )
        )
    return findings


def unstaffed_week(staffed: WeekHours) -> list[tuple[int, int]]:
    """The week's unstaffed stretches as [start, end) minutes from Monday 00:00.

    A stretch across midnight, or from Sunday night into Monday, is one stretch.
    """
    covered = sorted(
        (day * 1440 + r.start, day * 1440 + r.end)
        for day in range(7)
        for r in staffed.for_weekday(day)
    )
    gaps: list[tuple[int, int]] = []
    cursor = 0
    for start, end in covered:
        if start > cursor:
            gaps.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < _WEEK:
        gaps.append((cursor, _WEEK))
    if len(gaps) > 1 and gaps[0][0] == 0 and gaps[-1][1] == _WEEK:
        # Sunday night runs into Monday morning.
        gaps = [*gaps[1:-1], (gaps[-1][0], gaps[0][1] + _WEEK)]
    return gaps


def _week_range(start: int, end: int) -> str:
    def at(minute: int) -> str:
        minute %= _WEEK
        return f"{_DAY_ABBR[minute // 1440]} {format_clock(minute % 1440)}"

    if end - start >= _WEEK:
        return "all week"
    if start // 1440 == (end - 1) // 1440:
        return f"{at(start)}-{format_clock((end - 1) % 1440 + 1)}"
    return f"{at(start)}-{at(end)}"
