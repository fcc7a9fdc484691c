"""`coverage-engine calls ...` and `coverage-engine report`: read the call records.

Where the records are: `--db FILE`, or `--config FILE` (its `records.path`).
Dates given without a time zone are read in `--tz` (default UTC); `since` is
inclusive and `until` exclusive, so `--month 2026-03` is exactly March.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from coverage_engine.caller_text import csv_cell, for_terminal
from coverage_engine.config import ConfigError, load_config
from coverage_engine.journey import Decided, Journey, JourneyEvent, JourneyKind, Outcome
from coverage_engine.records import JourneyFilter
from coverage_engine.records.location import (
    RecordsLocation,
    location_of,
    open_store,
    records_location,
)
from coverage_engine.records.report import (
    SERVICE_LEVEL_THRESHOLD,
    Period,
    PracticeReport,
    build_report,
)
from coverage_engine.records.sqlite import RecordStore, StoreError

# The command line is the edge where the real clock is read; tests replace it.
clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


class UsageError(Exception):
    """A bad option value; the message says what was expected."""


def register(subparsers: Any) -> None:
    calls = subparsers.add_parser(
        "calls",
        help="find, show, export and purge call records",
        description="Every call's journey: who called, what was decided, who answered, when.",
    )
    sub = calls.add_subparsers(dest="calls_command", metavar="ACTION", required=True)

    p = sub.add_parser("list", help="one line per call, oldest first")
    _where_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("show", help="one call's timeline")
    _store_options(p)
    p.add_argument("call_id", metavar="ID", help="the call id shown by `calls list`")
    p.add_argument("--tz", default="UTC", help="time zone for the times shown (default UTC)")
    p.add_argument("--json", action="store_true", help="the journey as JSON")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("export", help="journeys as CSV or JSON lines, e.g. a month for an audit")
    _where_options(p)
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    p.add_argument("--output", type=Path, help="write to this file (created owner-only)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("purge", help="delete calls started before a date (retention policy)")
    _store_options(p)
    p.add_argument("--before", required=True, help="date or ISO time; older calls are deleted")
    p.add_argument("--tz", default="UTC", help="time zone of --before (default UTC)")
    p.add_argument("--dry-run", action="store_true", help="only say how many would go")
    p.set_defaults(func=_cmd_purge)

    p = subparsers.add_parser(
        "report",
        help="service figures per practice and period",
        description="Calls, after-hours share, who answered, abandonment, time to a person, "
        "service level and escalations, per practice and period.",
    )
    _where_options(p, outcome=False, caller=False)
    p.add_argument(
        "--period", choices=[x.value for x in Period], default="month", help="default: month"
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=SERVICE_LEVEL_THRESHOLD.total_seconds(),
        help="service level: answered within this many seconds (default 30)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per row")
    p.set_defaults(func=_cmd_report)


def _store_options(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--db", help="the call records: a SQLite file, or a postgresql:// URL"
    )
    where.add_argument(
        "--config", type=Path, help="the coverage config (uses records.path or records.url)"
    )


def _where_options(
    p: argparse.ArgumentParser, *, outcome: bool = True, caller: bool = True
) -> None:
    _store_options(p)
    p.add_argument("--since", help="from this date or ISO time (inclusive)")
    p.add_argument("--until", help="up to this date or ISO time (exclusive)")
    p.add_argument("--month", help="a calendar month, YYYY-MM (instead of since/until)")
    p.add_argument("--tz", default="UTC", help="time zone of dates and periods (default UTC)")
    p.add_argument("--practice", help="only this practice id")
    if outcome:
        p.add_argument("--outcome", choices=[o.value for o in Outcome])
    if caller:
        p.add_argument("--caller", help="caller number or part of it, e.g. the last four digits")
        p.add_argument(
            "--kind",
            choices=[k.value for k in JourneyKind],
            help="only calls, or only handoff checks (default: both)",
        )


# -- option parsing ---------------------------------------------------------------------


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone {name!r} (use a name like America/New_York)") from None


def parse_instant(text: str, tz: tzinfo) -> datetime:
    """A date (midnight) or ISO time; without an offset it is read in `tz`."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a date (YYYY-MM-DD) or ISO time") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def _month(text: str, tz: tzinfo) -> tuple[datetime, datetime]:
    try:
        year, month = (int(x) for x in text.split("-"))
        start = datetime(year, month, 1, tzinfo=tz)
    except ValueError:
        raise UsageError(f"--month {text!r}: expected YYYY-MM, e.g. 2026-03") from None
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    return start, end


def _filter(args: argparse.Namespace) -> JourneyFilter:
    tz = _zone(args.tz)
    if args.month and (args.since or args.until):
        raise UsageError("give either --month or --since/--until, not both")
    since: datetime | None
    until: datetime | None
    if args.month:
        since, until = _month(args.month, tz)
    else:
        since = parse_instant(args.since, tz) if args.since else None
        until = parse_instant(args.until, tz) if args.until else None
    outcome = getattr(args, "outcome", None)
    kind = getattr(args, "kind", None)
    return JourneyFilter(
        since=since,
        until=until,
        practice=args.practice,
        outcome=Outcome(outcome) if outcome else None,
        caller=getattr(args, "caller", None),
        kind=JourneyKind(kind) if kind else None,
    )


def _db_path(args: argparse.Namespace) -> RecordsLocation:
    """The records `--db` (a file or a postgresql:// URL) or `--config` names."""
    if args.db is not None:
        return location_of(args.db)
    return _records_from_config(Path(args.config))


def _records_from_config(config_file: Path) -> RecordsLocation:
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        raise StoreError(f"{config_file} is not a valid config:\n{exc}") from None
    except OSError as exc:
        raise StoreError(f"cannot read {config_file}: {exc.strerror or exc}") from None
    return records_location(config.records, config_file)


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[RecordStore]:
    with open_store(_db_path(args)) as store:
        yield store


def _fail(message: str, code: int = 1) -> int:
    print(f"coverage-engine: {message}", file=sys.stderr)
    return code


def _guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except UsageError as exc:
            return _fail(str(exc), 2)
        except StoreError as exc:
            return _fail(str(exc))

    return handler


# -- output helpers ---------------------------------------------------------------------


def _when(at: datetime | None, tz: tzinfo) -> str:
    return "" if at is None else at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def _secs(delta: timedelta | None) -> str:
    return "" if delta is None else f"{delta.total_seconds():.1f}s"


def journey_json(journey: Journey, *, events: bool) -> dict[str, Any]:
    """A journey as plain JSON (ISO times in UTC, durations in seconds)."""
    out: dict[str, Any] = {
        "call_id": journey.call_id,
        "practice": journey.practice,
        "did": journey.did,
        "caller_number": journey.caller_number,
        "caller_name": journey.caller_name,
        "started_at": journey.started_at.isoformat(),
        "ended_at": journey.ended_at.isoformat() if journey.ended_at else None,
        "status": journey.status,
        "reason": journey.reason,
        "kind": journey.kind.value,
        "outcome": journey.outcome.value if journey.outcome else None,
        "answered_by": journey.answered_by,
        "time_to_person_s": _float_secs(journey.time_to_person),
        "talk_time_s": _float_secs(journey.talk_time),
    }
    if events:
        out["plan"] = journey.plan
        out["events"] = [
            {"at": e.at.isoformat(), "kind": e.name, "details": e.event.details()}
            for e in journey.events
        ]
    return out


def _float_secs(delta: timedelta | None) -> float | None:
    return None if delta is None else delta.total_seconds()


# -- the commands ---------------------------------------------------------------------


@_guarded
def _cmd_list(args: argparse.Namespace) -> int:
    tz = _zone(args.tz)
    where = _filter(args)
    with _store(args) as store:
        journeys = store.journeys(where)
    if args.json:
        for journey in journeys:
            print(json.dumps(journey_json(journey, events=False)))
        return 0
    if not journeys:
        print("no calls match", file=sys.stderr)
        return 0
    header = ("started", "call id", "practice", "caller", "outcome", "answered by", "to person")
    # Every cell through for_terminal: the caller number (and anything else
    # the carrier or a peer could shape) must not reach the terminal raw.
    rows = [
        tuple(
            for_terminal(cell)
            for cell in (
                _when(j.started_at, tz),
                j.call_id,
                j.practice,
                j.caller_number,
                j.outcome.value if j.outcome else "(in progress)",
                j.answered_by or "",
                _secs(j.time_to_person),
            )
        )
        for j in journeys
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


@_guarded
def _cmd_show(args: argparse.Namespace) -> int:
    tz = _zone(args.tz)
    with _store(args) as store:
        journey = store.get(args.call_id)
    if journey is None:
        return _fail(f"no call {args.call_id!r} in the records (see `calls list`)")
    if args.json:
        print(json.dumps(journey_json(journey, events=True), indent=2))
        return 0
    print(timeline(journey, tz))
    return 0


def timeline(journey: Journey, tz: tzinfo) -> str:
    """A call's record as a person reads it: who called, the decision, then each event.

    Every value is shown through `for_terminal`: the caller's name and number
    (and the event details that repeat them) are the carrier's text.
    """
    t = for_terminal
    outcome = journey.outcome.value if journey.outcome else "(in progress)"
    answered_by = f" by {t(journey.answered_by)}" if journey.answered_by else ""
    if journey.kind is JourneyKind.HANDOFF_CHECK:
        lines = [
            f"handoff check {t(journey.call_id)}",
            f"  practice    {t(journey.practice)}",
            f"  handoff     {t(journey.reason)}",
            f"  started     {_when(journey.started_at, tz)}",
            f"  ended       {_when(journey.ended_at, tz)}",
            f"  outcome     {outcome}{answered_by}",
            "",
        ]
        return "\n".join(lines + _event_lines(journey, tz))
    lines = [
        f"call {t(journey.call_id)}",
        f"  caller      {t(journey.caller_number)} {t(journey.caller_name)}".rstrip(),
        f"  dialed      {t(journey.did)}",
        f"  practice    {t(journey.practice) or '(not decided)'}  {t(journey.status)}",
        f"  decision    {t(journey.reason)}",
        f"  started     {_when(journey.started_at, tz)}",
        f"  ended       {_when(journey.ended_at, tz)}",
        f"  outcome     {outcome}{answered_by}",
        f"  to person   {_secs(journey.time_to_person) or '-'}"
        f"   talk {_secs(journey.talk_time) or '-'}",
        "",
    ]
    return "\n".join(lines + _event_lines(journey, tz))


def _event_lines(journey: Journey, tz: tzinfo) -> list[str]:
    lines = []
    for event in journey.events:
        offset = (event.at - journey.started_at).total_seconds()
        shown = {k: v for k, v in _shown(event.event).items() if v not in (None, "", [], {})}
        # Event details repeat caller text (a name, a reason): escaped too.
        text = " ".join(f"{for_terminal(str(k))}={for_terminal(str(v))}" for k, v in shown.items())
        stamp = event.at.astimezone(tz).strftime("%H:%M:%S")
        lines.append(f"  {stamp} {offset:+7.1f}s  {event.name:<22} {text}".rstrip())
    return lines


def _shown(event: JourneyEvent) -> dict[str, Any]:
    """What a timeline line says of an event: the decision's gist, not its whole plan."""
    if isinstance(event, Decided):
        gist = {"practice": event.practice, "status": event.status, "reason": event.reason}
        gist["via"] = event.via.value
        return gist | ({"resumed": True} if event.resumed else {})
    return event.details()


_CSV_COLUMNS = (
    "call_id",
    "practice",
    "did",
    "caller_number",
    "caller_name",
    "started_at",
    "ended_at",
    "status",
    "reason",
    "outcome",
    "answered_by",
    "time_to_person_s",
    "talk_time_s",
    "events",
    "kind",  # call / handoff_check (added last, so older readers of the columns still work)
)


@contextmanager
def _output(path: Path | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        return
    # The export holds patient phone numbers: owner-only, like the store itself.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
        yield out


@_guarded
def _cmd_export(args: argparse.Namespace) -> int:
    where = _filter(args)
    with _store(args) as store:
        journeys = store.journeys(where, events=True)
    with _output(args.output) as out:
        if args.format == "jsonl":
            for journey in journeys:
                out.write(json.dumps(journey_json(journey, events=True)) + "\n")
        else:
            writer = csv.DictWriter(out, fieldnames=_CSV_COLUMNS, lineterminator="\n")
            writer.writeheader()
            for journey in journeys:
                row = journey_json(journey, events=False)
                row["events"] = " ".join(e.name for e in journey.events)
                # Text cells only: a spreadsheet must show a caller's
                # `=HYPERLINK(...)` as text, never run it (csv_cell says how).
                writer.writerow(
                    {k: csv_cell(v) if isinstance(v, str) else v for k, v in row.items()}
                )
    if args.output is not None:
        print(f"{len(journeys)} calls written to {args.output}", file=sys.stderr)
    return 0


@_guarded
def _cmd_purge(args: argparse.Namespace) -> int:
    before = parse_instant(args.before, _zone(args.tz))
    with _store(args) as store:
        if args.dry_run:
            count = len(store.journeys(JourneyFilter(until=before)))
            print(f"{count} calls started before {before.isoformat()} would be deleted")
            return 0
        # By hand, the whole file is rewritten too: nothing of the deleted
        # calls (or of what older versions left in free space) remains.
        removed = store.purge(before, now=clock(), by=getpass.getuser(), vacuum=True)
    print(f"deleted {removed} calls started before {before.isoformat()} (recorded in the audit)")
    return 0


@_guarded
def _cmd_report(args: argparse.Namespace) -> int:
    tz = _zone(args.tz)
    where = _filter(args)
    with _store(args) as store:
        journeys = store.journeys(where, events=True)
    rows = build_report(
        journeys,
        period=Period(args.period),
        tz=tz,
        threshold=timedelta(seconds=args.threshold),
    )
    if args.json:
        for row in rows:
            print(json.dumps(row.to_json()))
        return 0
    if not rows:
        print("no calls in that period", file=sys.stderr)
        return 0
    print("\n\n".join(render_report(row, args.threshold) for row in rows))
    return 0


def render_report(row: PracticeReport, threshold: float) -> str:
    """One practice and period as a short, readable block."""

    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    median = _secs(row.median_time_to_person) or "-"
    p90 = _secs(row.p90_time_to_person) or "-"
    return "\n".join(
        [
            f"{row.practice}  {row.period}",
            f"  calls                 {row.calls}",
            f"  after hours           {row.after_hours} ({pct(row.after_hours_share)})",
            f"  answered by staff     {row.answered_by_staff}",
            f"  answered by operators {row.answered_by_operator}",
            f"  answered by on-call   {row.answered_by_oncall}",
            f"  abandoned             {row.abandoned} ({pct(row.abandonment_rate)})",
            f"  failed over / errors  {row.failed_over} / {row.errors}",
            f"  unknown number        {row.unknown_did}",
            f"  time to a person      median {median}, 90th percentile {p90}",
            f"  service level         {pct(row.service_level)} answered within {threshold:g}s",
            f"  escalations           {row.escalations} (on-call primary missed -> backup)",
            f"  messages taken        {row.messages} ({row.urgent_messages} urgent or emergency, "
            f"{row.acknowledged_messages} acknowledged)",
            f"  pages                 {row.pages} ({row.pages_acknowledged} acknowledged; "
            f"{row.pages_to_backup} reached the backup, {row.pages_to_operators} the operators)",
            f"  time to acknowledge   median {_minutes(row.median_time_to_ack)}, "
            f"90th percentile {_minutes(row.p90_time_to_ack)}",
            f"  handoff checks        {row.handoff_checks} ({row.handoffs_confirmed} confirmed, "
            f"{row.handoffs_not_confirmed} not confirmed)",
        ]
    )


def _minutes(delta: timedelta | None) -> str:
    return "-" if delta is None else f"{delta.total_seconds() / 60:.1f} min"
