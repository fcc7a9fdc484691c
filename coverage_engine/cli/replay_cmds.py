"""`replay` and `diff`: what a proposed configuration would change, before it is deployed.

Thin: load the files, read the call records through their public read API,
ask the pure `replay` and `calendar_diff`, print. Exit codes (for CI): 0 no
change, 1 changes found (or an invalid file), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from coverage_engine.calendar_diff import Difference, PracticeDiff, diff_configs, span_text
from coverage_engine.cli.routing_cmds import EXIT_FINDING, EXIT_OK, EXIT_USAGE, load_or_report
from coverage_engine.config import CoverageConfig
from coverage_engine.config.model import LAST_DAY, check_day_in_range
from coverage_engine.config.text import show
from coverage_engine.journey import Journey, JourneyKind
from coverage_engine.logs import mask_caller
from coverage_engine.records.model import JourneyFilter
from coverage_engine.records.sqlite import RecordStore, StoreError, records_path
from coverage_engine.replay import Change, RecordedCall, ReplayReport, replay

_AGE = re.compile(r"(\d{1,4})d")


def register(subparsers: Any) -> None:
    """Add `replay` and `diff` to the command line."""
    p = subparsers.add_parser(
        "replay",
        help="re-decide the recorded calls under a proposed config; list those that change",
        description="Each recorded call (its number, caller and instant) is decided again under "
        "the proposed configuration. Exit 1 when any call would change (for CI).",
    )
    p.add_argument("--config", required=True, type=Path, help="the proposed coverage YAML")
    p.add_argument(
        "--records",
        type=Path,
        help="the call records (default: records.path of --against, else of --config)",
    )
    p.add_argument(
        "--against",
        type=Path,
        metavar="CONFIG",
        help="compare with this configuration's decisions (default: the decisions "
        "recorded with the calls)",
    )
    p.add_argument(
        "--since",
        default="30d",
        metavar="WHEN",
        help="calls from this date (YYYY-MM-DD) or this many days back (30d, default)",
    )
    p.add_argument("--until", metavar="DATE", help="calls before this date (YYYY-MM-DD)")
    p.add_argument("--practice", metavar="ID", help="only calls to this practice")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=run_replay)

    p = subparsers.add_parser(
        "diff",
        help="where the coverage calendar of two configs differs, day by day",
        description="Exit 1 when the calendars differ (like diff), 0 when they agree.",
    )
    p.add_argument("old", type=Path, metavar="OLD", help="the configuration running now")
    p.add_argument("new", type=Path, metavar="NEW", help="the proposed configuration")
    p.add_argument("--days", type=int, default=90, metavar="N", help="days to compare (90)")
    p.add_argument("--from", dest="start", metavar="DATE", help="first day (default: today)")
    p.add_argument("--practice", metavar="ID", help="only this practice")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=run_diff)


# ---------------------------------------------------------------- replay


def _since(text: str, now: datetime) -> datetime:
    age = _AGE.fullmatch(text.strip())
    if age:
        return now - timedelta(days=int(age[1]))
    return _day_start(text)


def _day_start(text: str) -> datetime:
    day = date.fromisoformat(text.strip())
    check_day_in_range(day, text)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _calls(journeys: list[Journey]) -> list[RecordedCall]:
    return [RecordedCall(j.call_id, j.did, j.caller_number, j.started_at, j.plan) for j in journeys]


def run_replay(args: argparse.Namespace) -> int:
    """`replay --config PROPOSED [--against CURRENT] [--since 30d]`."""
    proposed = load_or_report(args.config)
    if isinstance(proposed, int):
        return proposed
    baseline: CoverageConfig | None = None
    if args.against is not None:
        loaded = load_or_report(args.against)
        if isinstance(loaded, int):
            return loaded
        baseline = loaded
    try:
        since = _since(args.since, datetime.now(UTC))
        until = _day_start(args.until) if args.until else None
    except ValueError:
        print(
            f"coverage-engine replay: --since {show(args.since)} / --until: write YYYY-MM-DD, "
            "or a number of days back like 30d",
            file=sys.stderr,
        )
        return EXIT_USAGE
    source = args.against or args.config
    owner = baseline or proposed
    path = args.records or records_path(owner.records.path if owner.records else None, source)
    try:
        with RecordStore.open(path) as store:
            # Calls only: a handoff check (the paging service's) was never routed.
            journeys = store.journeys(
                JourneyFilter(
                    since=since, until=until, practice=args.practice, kind=JourneyKind.CALL
                )
            )
    except (StoreError, OSError) as exc:
        print(
            f"coverage-engine replay: cannot read the call records {path}: {exc}", file=sys.stderr
        )
        return EXIT_USAGE
    report = replay(_calls(journeys), proposed, baseline)
    against = str(args.against) if args.against else "the decisions recorded"
    if args.json:
        print(json.dumps(_report_json(report, path, against), indent=2))
    else:
        print(_report_text(report, proposed, path, args.config, against))
    return EXIT_FINDING if report.changes else EXIT_OK


def _report_json(report: ReplayReport, path: Path, against: str) -> dict[str, Any]:
    return {
        "records": str(path),
        "against": against,
        "calls": report.calls,
        "changed": [c.to_json() for c in report.changes],
        "unchanged": report.unchanged,
        "not_comparable": list(report.not_comparable),
    }


def _report_text(
    report: ReplayReport, proposed: CoverageConfig, path: Path, config: Path, against: str
) -> str:
    lines = [f"Replayed {report.calls} call(s) from {path} under {config}, against {against}."]
    if report.changes:
        lines.append(f"{len(report.changes)} call(s) would change:")
        lines.extend(_change_text(change, proposed) for change in report.changes)
    lines.append(
        f"{len(report.changes)} would change, {report.unchanged} unchanged"
        + (
            f", {len(report.not_comparable)} without a recorded decision (not compared)"
            if report.not_comparable
            else ""
        )
        + "."
    )
    return "\n".join(lines)


def _change_text(change: Change, proposed: CoverageConfig) -> str:
    practice = proposed.practice(change.now.practice or change.was.practice)
    zone = practice.zone if practice is not None else ZoneInfo("UTC")
    at = change.call.at.astimezone(zone)
    who = mask_caller(change.call.caller) if change.call.caller else "unknown caller"
    return (
        f"  {at:%a %Y-%m-%d %H:%M %Z}  {change.call.did}  from {who}  ({change.call.call_id})\n"
        f"      was: {change.was.practice or 'no practice'} {change.was.status}, first "
        f"{change.was.first} ({change.was.reason})\n"
        f"      now: {change.now.practice or 'no practice'} {change.now.status}, first "
        f"{change.now.first} ({change.now.reason})"
    )


# ---------------------------------------------------------------- diff


def run_diff(args: argparse.Namespace) -> int:
    """`diff OLD NEW [--days 90] [--from DATE]`."""
    old = load_or_report(args.old)
    if isinstance(old, int):
        return old
    new = load_or_report(args.new)
    if isinstance(new, int):
        return new
    try:
        first = date.fromisoformat(args.start) if args.start else datetime.now(UTC).date()
        check_day_in_range(first, args.start or str(first))
    except ValueError:
        print(
            f"coverage-engine diff: --from {show(args.start)} is not a date from 2000-01-01 "
            "to 2199-12-31",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not 1 <= args.days <= 366 or first + timedelta(days=args.days - 1) > LAST_DAY:
        print(
            "coverage-engine diff: --days must be 1 to 366, within the supported dates",
            file=sys.stderr,
        )
        return EXIT_USAGE
    results = diff_configs(old, new, first, args.days)
    if args.practice is not None:
        results = [r for r in results if r.practice == args.practice]
        if not results:
            print(
                f"coverage-engine diff: no practice {show(args.practice)} in either file",
                file=sys.stderr,
            )
            return EXIT_USAGE
    if args.json:
        print(json.dumps([_practice_json(r) for r in results], indent=2))
    else:
        print(_diff_text(results, args.old, args.new, first, args.days))
    changed = any(r.differences or r.only_in for r in results)
    return EXIT_FINDING if changed else EXIT_OK


def _side_text(label: str, side: Any) -> list[str]:
    gap = f"  !! GAP: {side.gap}" if side.gap else ""
    return [
        f"      {label}: {side.status:<6} {side.reason}{gap}",
        f"           {' > '.join(side.people) or 'nobody'}"
        + (f"; on call: {side.oncall}" if side.oncall else ""),
    ]


def _diff_text(results: list[PracticeDiff], old: Path, new: Path, first: date, days: int) -> str:
    last = first + timedelta(days=days - 1)
    lines = [f"Coverage calendar: {old} -> {new}, {first} to {last}"]
    for result in results:
        lines.append("")
        title = f"{result.name} ({result.practice}), times in {result.timezone}"
        if result.only_in is not None:
            lines.append(f"{title}: only in the {result.only_in} file")
            continue
        if not result.differences:
            lines.append(f"{title}: no change")
            continue
        lines.append(f"{title}: {len(result.differences)} change(s)")
        for difference in result.differences:
            lines.append(f"  {difference.day:%a %Y-%m-%d} {span_text(difference)}")
            lines += _side_text("old", difference.old)
            lines += _side_text("new", difference.new)
    return "\n".join(lines)


def _practice_json(result: PracticeDiff) -> dict[str, Any]:
    def side(s: Any) -> dict[str, Any]:
        return {
            "status": s.status,
            "reason": s.reason,
            "people": list(s.people),
            "oncall": s.oncall,
            "gap": s.gap,
        }

    def one(d: Difference) -> dict[str, Any]:
        return {
            "day": d.day.isoformat(),
            "from": d.start.isoformat(),
            "until": d.end.isoformat(),
            "old": side(d.old),
            "new": side(d.new),
        }

    return {
        "practice": result.practice,
        "only_in": result.only_in,
        "differences": [one(d) for d in result.differences],
    }
