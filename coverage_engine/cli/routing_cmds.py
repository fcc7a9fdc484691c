"""`check`, `explain` and `calendar`: see what will happen before a patient finds out.

Thin: load the file, ask the routing core, print. Exit codes: 0 fine, 1 a
finding (invalid file, a coverage gap), 2 usage (bad arguments, unreadable file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from coverage_engine.cli.calendar_html import people_in_order, render_calendar_html
from coverage_engine.config import ConfigError, CoverageConfig, Loaded, load_report
from coverage_engine.config.model import LAST_DAY, check_day_in_range, localize
from coverage_engine.config.text import show
from coverage_engine.coverage import DayCoverage, Segment, coverage_calendar, gap_reason
from coverage_engine.plan import Plan, Step, StepKind
from coverage_engine.routing import decide
from coverage_engine.wallclock import wall_time_note

EXIT_OK, EXIT_FINDING, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> None:
    """Add `check`, `explain` and `calendar` to the command line."""
    check = subparsers.add_parser(
        "check", help="validate a coverage file and list every problem with its line"
    )
    check.add_argument("config", type=Path, metavar="CONFIG")
    check.add_argument(
        "--strict", action="store_true", help="exit 1 on warnings too (for CI and deploy scripts)"
    )
    check.set_defaults(func=run_check)

    explain = subparsers.add_parser(
        "explain", help="what happens to a call to a number at an instant, and why"
    )
    explain.add_argument("config", type=Path, metavar="CONFIG")
    explain.add_argument("--did", required=True, help="the dialed number, e.g. +13125550100")
    explain.add_argument(
        "--at",
        help="ISO-8601 instant, e.g. 2026-12-24T15:00 (no offset: the practice's local time); "
        "default: now",
    )
    explain.add_argument("--caller", help="the caller's number (optional)")
    explain.add_argument("--json", action="store_true", help="print one JSON object")
    explain.set_defaults(func=run_explain)

    calendar = subparsers.add_parser(
        "calendar", help="day by day, who answers when; flags any gap (exit 1)"
    )
    calendar.add_argument("config", type=Path, metavar="CONFIG")
    calendar.add_argument("--practice", required=True, metavar="ID")
    calendar.add_argument("--from", dest="start", required=True, metavar="DATE", type=_date_arg)
    calendar.add_argument("--days", type=_days_arg, default=7, metavar="N")
    calendar.add_argument(
        "--html", type=Path, metavar="FILE", help="also write the calendar as an HTML page"
    )
    calendar.set_defaults(func=run_calendar)


def _date_arg(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{show(text)} is not a date (YYYY-MM-DD)") from None
    try:
        check_day_in_range(day, text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return day


def _days_arg(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 366:
        raise argparse.ArgumentTypeError(f"{show(text)} is not a number of days from 1 to 366")
    return int(text)


def load_or_report(path: Path, err: TextIO | None = None) -> CoverageConfig | int:
    """The config, or an exit code after printing every problem to `err` (stderr)."""
    loaded = load_loaded_or_report(path, err)
    return loaded if isinstance(loaded, int) else loaded.config


def load_loaded_or_report(path: Path, err: TextIO | None = None) -> Loaded | int:
    """The config with its warnings, or an exit code after printing every problem."""
    err = err or sys.stderr
    try:
        return load_report(path)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=err)
        count = len(exc.issues)
        print(f"{path}: {count} error{'s' if count != 1 else ''}, not loaded", file=err)
        return EXIT_FINDING
    except OSError as exc:
        print(f"coverage-engine: cannot read {path}: {exc.strerror or exc}", file=err)
        return EXIT_USAGE


def run_check(args: argparse.Namespace) -> int:
    """`check CONFIG`: exit 0 with a summary (and any warnings), or 1 with every error."""
    loaded = load_loaded_or_report(args.config)
    if isinstance(loaded, int):
        return loaded
    config = loaded.config
    practices = ", ".join(
        f"{pid} ({len(p.dids)} number{'s' if len(p.dids) != 1 else ''})"
        for pid, p in config.practices.items()
    )
    doctors = sum(len(p.oncall.doctors) for p in config.practices.values() if p.oncall)
    print(
        f"{args.config}: OK: {len(config.practices)} practice"
        f"{'s' if len(config.practices) != 1 else ''}: {practices}; {doctors} doctors; "
        f"unknown numbers go to queue {config.engine.default_route.queue}"
    )
    if loaded.overlay.source is not None:
        changes = loaded.overlay.changes
        print(
            f"{loaded.overlay.name}: {len(changes.overrides)} override(s), "
            f"{len(changes.swaps)} swap(s) and {len(changes.ended_early)} early end(s) made with "
            f"commands, revision {changes.revision} (coverage-engine override list, swap list, "
            "changes log)"
        )
    for warning in loaded.warnings:
        print(warning)
    if loaded.warnings:
        count = len(loaded.warnings)
        print(f"{args.config}: {count} warning{'s' if count != 1 else ''}")
        if args.strict:
            return EXIT_FINDING
    return EXIT_OK


def parse_instant(text: str, zone: ZoneInfo) -> tuple[datetime, str | None]:
    """An ISO-8601 instant, and a note when its wall-clock time is ambiguous.

    Without an offset it is wall-clock time in `zone`, read like every time
    in the coverage file: in the missing DST hour it is the jump, in the
    repeated hour the first reading; the note says so. Raises ValueError for
    text that is no date and time, or a date outside the supported range.
    """
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    check_day_in_range(moment.date(), text)
    if moment.tzinfo is not None:
        return moment, None
    return localize(moment, zone), wall_time_note(moment, zone)


def run_explain(args: argparse.Namespace) -> int:
    """`explain CONFIG --did --at`: the plan, step by step, and why."""
    config = load_or_report(args.config)
    if isinstance(config, int):
        return config
    if config.normalize(args.did) is None:
        print(
            f"coverage-engine explain: --did {show(args.did)} is not a phone number (write it as "
            "the carrier sends it, e.g. +13125550100 or 3125550100)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    practice = config.practice_for_did(args.did)
    zone = practice.zone if practice is not None else ZoneInfo("UTC")
    note = None
    if args.at is None:
        instant = datetime.now(UTC)  # the shell may read the clock; the core never does
    else:
        try:
            instant, note = parse_instant(args.at, zone)
        except ValueError as exc:
            print(
                f"coverage-engine explain: --at {show(args.at)}: {_instant_problem(exc)}",
                file=sys.stderr,
            )
            return EXIT_USAGE
    plan = decide(config, instant, args.did, args.caller)
    if note is not None:
        plan = replace(plan, notes=(note, *plan.notes))
    plan = replace(plan, notes=(*plan.notes, *_made_by_commands(args.config, plan, instant)))
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
    else:
        print(render_plan(config, plan))
    return EXIT_OK


def _made_by_commands(config_path: Path, plan: Plan, instant: datetime) -> list[str]:
    """Who made the override or swap in force, when a command made it (the audit's words)."""
    from coverage_engine.changes import ChangeRefused, ChangeService

    if not plan.known_did:
        return []
    try:
        entries = [
            *ChangeService(config_path).entries("override", plan.practice_id),
            *ChangeService(config_path).entries("swap", plan.practice_id),
        ]
    except ChangeRefused:
        return []
    return [
        f"{e.kind} {e.id} ({e.what}: {e.reason}) was "
        + (
            f"added by {e.by} at {e.added:%Y-%m-%d %H:%M}"
            if e.origin == "command"
            else f"cut short by {e.by} (it ends {e.until:%Y-%m-%d %H:%M})"
        )
        for e in entries
        if e.by is not None and e.start <= instant < e.until
    ]


def _instant_problem(exc: ValueError) -> str:
    text = str(exc)
    if "out of range" in text and "dates go from" in text:
        return text.split(" is ", 1)[1]
    return "is not an ISO-8601 date and time (e.g. 2026-12-24T15:00 or 2026-12-24T15:00-06:00)"


def step_text(step: Step) -> str:
    """One step as a sentence fragment."""
    if step.kind is StepKind.OPERATORS:
        return f"operators: queue {step.target}, wait up to {step.ring_seconds} s"
    if step.kind is StepKind.FALLBACK:
        confirm = ", must press 1 to accept" if step.confirm else ""
        return f"fallback: {step.label}, {step.dial}, ring {step.ring_seconds} s{confirm}"
    confirm = ", must press 1 to accept" if step.confirm else ""
    return f"{step.kind.value}: {step.label}, {step.dial}, ring {step.ring_seconds} s{confirm}"


def render_plan(config: CoverageConfig, plan: Plan) -> str:
    """`explain` output for people."""
    at = plan.at.strftime("%a %Y-%m-%d %H:%M %Z (UTC%z)") if plan.at else "?"
    lines = [f"Call to {plan.did} at {at}"]
    if not plan.known_did:
        lines.append("Practice: none (this number is not in the file)")
    else:
        lines.append(f"Practice: {plan.practice_name} ({plan.practice_id})")
    lines.append(f"Status:   {plan.status} - {plan.reason}")
    if plan.oncall is not None and plan.known_did:
        practice = config.practice(plan.practice_id)
        doctors = practice.oncall.doctors if practice and practice.oncall else {}

        def who(doc: str | None) -> str:
            return f"{doctors[doc].name} ({doc})" if doc in doctors else str(doc)

        backup = who(plan.oncall.backup) if plan.oncall.backup else "none"
        lines.append(f"On call:  {who(plan.oncall.primary)}; backup {backup}")
    lines.extend(f"Note:     {note}" for note in plan.notes)
    lines.append("What happens:")
    if plan.announcement:
        lines.append(f"   -  the caller hears {plan.announcement}")
    for i, step in enumerate(plan.steps, start=1):
        lines.append(f"  {i:>2}. {step_text(step)}")
    lines.append(ending_text(plan))
    return "\n".join(lines)


def ending_text(plan: Plan) -> str:
    """The last line of `explain`: who is at the end of the chain, or the gap."""
    gap = gap_reason(plan)
    if gap is not None:
        return f"!! GAP: {gap}; live presence still decides, but nobody is planned to answer."
    if plan.steps and plan.steps[-1].kind is StepKind.FALLBACK:
        return f"The last step is the final fallback, {plan.steps[-1].label}: a person answers."
    return "The last step is the operator queue: a person always answers."


_ANSI = {"open": "\033[32m", "closed": "\033[33m", "gap": "\033[1;31m", "end": "\033[0m"}


def render_calendar(
    practice_name: str, zone: str, days: list[DayCoverage], color: bool = False
) -> str:
    """The calendar for a terminal: per day, each range, then who answers in order."""

    def paint(text: str, kind: str) -> str:
        return f"{_ANSI[kind]}{text}{_ANSI['end']}" if color else text

    indent = " " * 15
    lines = [f"Coverage calendar: {practice_name} (times in {zone})", ""]
    for day in days:
        lines.append(day.day.strftime("%a %Y-%m-%d"))
        for seg in day.segments:
            span = f"{seg.start.strftime('%H:%M')}-{_end_of(seg, day.day)}"
            status = paint(f"{seg.plan.status:<6}", seg.plan.status)
            lines.append(f"  {span}  {status}  {seg.plan.reason}")
            reason = gap_reason(seg.plan)
            if reason is not None:
                lines.append(indent + paint(f"!! GAP: {reason}", "gap"))
            lines.append(indent + " > ".join(people_in_order(seg.plan, names=False)))
            if seg.plan.oncall is not None:
                backup = seg.plan.oncall.backup or "none"
                lines.append(f"{indent}on call: {seg.plan.oncall.primary} (backup {backup})")
            lines.extend(f"{indent}note: {note}" for note in seg.plan.notes)
        lines.append("")
    gaps = [(d.day, s) for d in days for s in d.gaps]
    if gaps:
        lines.append(paint(f"!! {len(gaps)} GAP(S) with no staffed person at the end:", "gap"))
        lines.extend(f"!!   {day} {s.start:%H:%M}-{_end_of(s, day)}" for day, s in gaps)
    else:
        lines.append(
            "No gaps: a staffed person is at the end of the chain at every minute of these days."
        )
    return "\n".join(lines)


def _end_of(segment: Segment, day: date) -> str:
    """A segment's end as the day's wall clock: midnight at the end of the day is 24:00."""
    return "24:00" if segment.end.date() > day else segment.end.strftime("%H:%M")


def run_calendar(args: argparse.Namespace) -> int:
    """`calendar CONFIG --practice ID --from DATE --days N`."""
    config = load_or_report(args.config)
    if isinstance(config, int):
        return config
    practice = config.practice(args.practice)
    if practice is None:
        known = ", ".join(config.practices)
        print(
            f"coverage-engine calendar: no practice {show(args.practice)} (known: {known})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.start + timedelta(days=args.days - 1) > LAST_DAY:
        print(
            f"coverage-engine calendar: the calendar would go past {LAST_DAY}, the last "
            "date supported",
            file=sys.stderr,
        )
        return EXIT_USAGE
    days = coverage_calendar(practice, args.start, args.days)
    title = f"{practice.name} ({practice.id})"
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    print(render_calendar(title, practice.timezone, days, color))
    if args.html is not None:
        try:
            args.html.write_text(
                render_calendar_html(title, practice.timezone, days), encoding="utf-8"
            )
        except OSError as exc:
            print(f"coverage-engine calendar: cannot write {args.html}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"HTML calendar written to {args.html}")
    return calendar_exit_code(days)


def calendar_exit_code(days: list[DayCoverage]) -> int:
    """1 when any minute of these days has nobody reachable, else 0."""
    return EXIT_FINDING if any(d.gaps for d in days) else EXIT_OK
