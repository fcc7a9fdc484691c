"""`override`, `swap` and `changes`: change routing under pressure, safely.

Thin: parse what the admin typed, call the change service (the console calls
the same one), print what happened and whether the running engine has it.
Exit codes: 0 done, 1 refused (nothing was written; the reasons are printed),
2 usage (bad arguments, unreadable file).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from coverage_engine.changes import Actor, Applied, ChangeRefused, ChangeService, Entry
from coverage_engine.changes.audit import AuditEntry
from coverage_engine.changes.files import loaded_status_path
from coverage_engine.changes.pickup import Pickup, wait_for_pickup
from coverage_engine.changes.when import parse_when
from coverage_engine.config.text import show

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> None:
    """Add `override`, `swap` and `changes` to the command line."""
    override = subparsers.add_parser(
        "override",
        help="close now, open late, or route straight to on-call: add, list, end",
        description="Temporary changes to when a practice is open, audited and reversible.",
    )
    sub = override.add_subparsers(dest="override_command", metavar="ACTION", required=True)
    p = sub.add_parser("add", help="add an override (closed, open or on-call) from/until")
    _common(p)
    p.add_argument("--practice", required=True, metavar="ID")
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument(
        "--closed",
        action="store_const",
        dest="mode",
        const="closed",
        help="closed: the closed chain (announcement, operators, doctors)",
    )
    kind.add_argument(
        "--open",
        action="store_const",
        dest="mode",
        const="open",
        help="open: the open chain (front desk, operators), e.g. open late",
    )
    kind.add_argument(
        "--oncall",
        action="store_const",
        dest="mode",
        const="oncall",
        help="closed, calls straight to the doctor on call, then the operators",
    )
    _span(p)
    p.set_defaults(func=_override_add)

    p = sub.add_parser("list", help="overrides running and coming (--all: past ones too)")
    _listing(p)
    p.set_defaults(func=_list, kind="override")

    p = sub.add_parser("end", help="end an override now (or --at); one not begun is cancelled")
    _common(p)
    p.add_argument("id", metavar="ID", help="the override's id, from `override list`")
    p.add_argument("--at", metavar="WHEN", help="when it ends (default: now)")
    p.set_defaults(func=_end, kind="override")

    swap = subparsers.add_parser(
        "swap",
        help="a doctor covers on call for a while: add, list, remove",
        description="Cover shifts that beat the rotation, audited and reversible.",
    )
    sub = swap.add_subparsers(dest="swap_command", metavar="ACTION", required=True)
    p = sub.add_parser("add", help="DOCTOR is on call from/until, whoever the rotation says")
    _common(p)
    p.add_argument("--practice", required=True, metavar="ID")
    p.add_argument("--doctor", required=True, metavar="ID", help="the doctor who covers")
    p.add_argument("--backup", metavar="ID", help="their backup (default: the practice's rule)")
    _span(p)
    p.set_defaults(func=_swap_add)

    p = sub.add_parser("list", help="swaps running and coming (--all: past ones too)")
    _listing(p)
    p.set_defaults(func=_list, kind="swap")

    p = sub.add_parser("remove", help="take a swap back (one running ends now)")
    _common(p)
    p.add_argument("id", metavar="ID", help="the swap's id, from `swap list`")
    p.set_defaults(func=_end, kind="swap", at=None)

    changes = subparsers.add_parser(
        "changes",
        help="the audit log of overrides and swaps: log, undo",
        description="Who changed what, when, why; and undoing a change.",
    )
    sub = changes.add_subparsers(dest="changes_command", metavar="ACTION", required=True)
    p = sub.add_parser("log", help="every change: who, when, why, before and after")
    p.add_argument("--config", required=True, type=Path, help="the coverage YAML file")
    p.add_argument("--practice", metavar="ID", help="only this practice")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_log)

    p = sub.add_parser("undo", help="put back what change N changed, as it was before")
    _common(p)
    p.add_argument("seq", type=int, metavar="N", help="the change's number, from `changes log`")
    p.set_defaults(func=_undo)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, type=Path, help="the coverage YAML file")
    p.add_argument("--reason", required=True, help="why: shown in explain and kept in the log")
    p.add_argument("--by", help="who makes the change (default: your login name)")
    p.add_argument(
        "--wait",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="how long to wait for the running engine to confirm (default 3; 0: do not wait)",
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")


def _span(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--from",
        dest="start",
        default="now",
        metavar="WHEN",
        help="now (default), HH:MM, +2h, or 2027-01-26 06:00 (practice time)",
    )
    p.add_argument(
        "--until",
        required=True,
        metavar="WHEN",
        help="HH:MM (next time the clock reads it), +4h, +2d, or a date and time",
    )


def _listing(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, type=Path, help="the coverage YAML file")
    p.add_argument("--practice", metavar="ID", help="only this practice")
    p.add_argument("--all", action="store_true", help="include those already over")
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def _actor(args: argparse.Namespace) -> Actor:
    # Under sudo, the admin's own name, not root's.
    by = args.by or os.environ.get("SUDO_USER") or getpass.getuser()
    return Actor(by=by, via="cli")


def _now() -> datetime:
    return datetime.now(UTC)  # the shell reads the clock; the service is handed it


def _refused(exc: ChangeRefused) -> int:
    print(f"coverage-engine: {exc.message}", file=sys.stderr)
    for line in exc.details:
        print(f"  {line}", file=sys.stderr)
    return EXIT_REFUSED


def _zone(service: ChangeService, practice: str) -> ZoneInfo:
    found = service.load().config.practice(practice)
    if found is None:
        raise ChangeRefused(f"no practice {show(practice)}")
    return found.zone


def _span_of(
    args: argparse.Namespace, zone: ZoneInfo
) -> tuple[datetime, datetime, list[str]] | int:
    notes: list[str] = []
    try:
        start, note = parse_when(args.start, zone, _now())
        notes += [note] if note else []
        until, note = parse_when(args.until, zone, start)
        notes += [note] if note else []
    except ValueError as exc:
        print(f"coverage-engine: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return start, until, notes


def _override_add(args: argparse.Namespace) -> int:
    service = ChangeService(args.config, now=_now)
    try:
        span = _span_of(args, _zone(service, args.practice))
        if isinstance(span, int):
            return span
        start, until, notes = span
        applied = service.add_override(
            _actor(args),
            practice=args.practice,
            start=start,
            until=until,
            reason=args.reason,
            status="open" if args.mode == "open" else "closed",
            route="oncall" if args.mode == "oncall" else None,
        )
    except ChangeRefused as exc:
        return _refused(exc)
    return _report(args, "override added", applied, notes)


def _swap_add(args: argparse.Namespace) -> int:
    service = ChangeService(args.config, now=_now)
    try:
        span = _span_of(args, _zone(service, args.practice))
        if isinstance(span, int):
            return span
        start, until, notes = span
        applied = service.add_swap(
            _actor(args),
            practice=args.practice,
            doctor=args.doctor,
            backup=args.backup,
            start=start,
            until=until,
            reason=args.reason,
        )
    except ChangeRefused as exc:
        return _refused(exc)
    return _report(args, "swap added", applied, notes)


def _end(args: argparse.Namespace) -> int:
    service = ChangeService(args.config, now=_now)
    notes: list[str] = []
    try:
        at = None
        if args.at is not None:
            entry = service.find(args.id)
            try:
                at, note = parse_when(args.at, entry.start.tzinfo or UTC, _now())  # type: ignore[arg-type]
            except ValueError as exc:
                print(f"coverage-engine: {exc}", file=sys.stderr)
                return EXIT_USAGE
            notes += [note] if note else []
        applied = service.end(_actor(args), args.id, reason=args.reason, at=at, kind=args.kind)
    except ChangeRefused as exc:
        return _refused(exc)
    verb = "override ended" if args.kind == "override" else "swap removed"
    return _report(args, verb, applied, notes)


def _undo(args: argparse.Namespace) -> int:
    service = ChangeService(args.config, now=_now)
    try:
        applied = service.undo(_actor(args), args.seq, reason=args.reason)
    except ChangeRefused as exc:
        return _refused(exc)
    return _report(args, f"change {args.seq} undone", applied, [])


def _report(args: argparse.Namespace, what: str, applied: Applied, notes: list[str]) -> int:
    pickup = Pickup("not yet")
    if args.wait > 0:
        status = loaded_status_path(args.config, ChangeService(args.config).load().config)
        pickup = wait_for_pickup(args.config, status, applied.changes_sha, args.wait)
    now = _now()
    if args.json:
        print(
            json.dumps(
                {
                    "change": applied.audit.to_json(),
                    "entry": applied.entry.to_json(now) if applied.entry else None,
                    "warnings": list(applied.warnings),
                    "notes": notes,
                    "engine": {
                        "outcome": pickup.outcome,
                        "pid": pickup.pid,
                        "errors": list(pickup.errors),
                    },
                },
                indent=2,
            )
        )
    else:
        entry = applied.entry
        if entry is not None:
            print(f"{what}: {entry.id} {_describe(entry, now)}")
        else:
            print(f"{what}: {applied.audit.entry} (it no longer applies)")
        print(
            f"change {applied.audit.seq} by {applied.audit.by}, kept in the audit log "
            "(coverage-engine changes log)"
        )
        for note in notes:
            print(f"note: {note}")
        for warning in applied.warnings:
            print(f"warning: {warning}")
        print(_pickup_text(pickup))
    return EXIT_OK


def _pickup_text(pickup: Pickup) -> str:
    if pickup.outcome == "loaded":
        return f"the running engine (pid {pickup.pid}) has it: the next call follows it"
    if pickup.outcome == "rejected":
        errors = "; ".join(pickup.errors[:3])
        return (
            f"!! the running engine (pid {pickup.pid}) rejected the configuration and keeps "
            f"its previous one: {errors}"
        )
    if pickup.outcome == "no engine":
        return (
            "no running engine reports this configuration: it takes effect when the engine "
            "starts (check, explain and calendar show it now)"
        )
    return (
        "the running engine has not confirmed it yet; it checks for changes twice a "
        "second (see its log, or run explain)"
    )


def _describe(entry: Entry, now: datetime) -> str:
    span = f"{entry.start:%a %Y-%m-%d %H:%M %Z} until {entry.until:%a %Y-%m-%d %H:%M %Z}"
    ended = ""
    if entry.until != entry.planned_until:
        ended = f" (ended early; planned until {entry.planned_until:%Y-%m-%d %H:%M %Z})"
    return f"{entry.practice} {entry.what} from {span}{ended}: {entry.reason} [{entry.state(now)}]"


def _list(args: argparse.Namespace) -> int:
    service = ChangeService(args.config, now=_now)
    try:
        entries = service.entries(args.kind, args.practice)
    except ChangeRefused as exc:
        return _refused(exc)
    now = _now()
    shown = [e for e in entries if args.all or e.state(now) in ("running", "upcoming")]
    if args.json:
        for entry in shown:
            print(json.dumps(entry.to_json(now)))
        return EXIT_OK
    if not shown:
        more = "" if args.all else " running or coming (--all shows past ones)"
        print(f"no {args.kind}s{more}")
        return EXIT_OK
    for entry in shown:
        source = "in the YAML" if entry.origin == "file" else f"added by {entry.by}"
        if entry.origin == "file" and entry.by:
            source += f", ended by {entry.by}"
        print(f"{entry.id}  {_describe(entry, now)}  ({source})")
    return EXIT_OK


def _log(args: argparse.Namespace) -> int:
    service = ChangeService(args.config, now=_now)
    entries = service.log()
    try:
        revision = service.applied_revision()
    except ChangeRefused:
        revision = None  # the files have errors now; the log is still readable
    if args.practice:
        entries = [e for e in entries if e.practice == args.practice]
    for entry in entries:
        interrupted = revision is not None and entry.revision > revision
        if args.json:
            data = entry.to_json()
            data["took_effect"] = not interrupted
            print(json.dumps(data))
        else:
            print(_log_line(entry, interrupted))
    if not entries and not args.json:
        print("no changes recorded")
    return EXIT_OK


def _log_line(entry: AuditEntry, interrupted: bool) -> str:
    def brief(item: Any) -> str:
        if not item:
            return "nothing"
        keys = ("status", "route", "doctor", "backup", "from", "until", "at")
        return ", ".join(f"{k} {item[k]}" for k in keys if k in item)

    undoes = f" (undoes change {entry.undoes})" if entry.undoes is not None else ""
    flag = "  !! interrupted: never took effect" if interrupted else ""
    return (
        f"{entry.seq:>4}  {entry.at:%Y-%m-%d %H:%M:%S %Z}  {entry.by} via {entry.via}  "
        f"{entry.action} {entry.entry} ({entry.practice}){undoes}: {entry.why}\n"
        f"      before: {brief(entry.before)}\n"
        f"      after:  {brief(entry.after)}{flag}"
    )
