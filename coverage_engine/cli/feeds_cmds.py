"""`feeds status` and `feeds refresh`: the practices' on-call feeds, by hand.

The running engine fetches each feed every `refresh_minutes`; these commands
show where each copy stands and fetch now (after publishing a new schedule,
or from cron where no engine runs). Exit codes: 0 fine, 1 a feed that cannot
be used (never fetched, stale, failed), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coverage_engine.cli.routing_cmds import EXIT_FINDING, EXIT_OK, EXIT_USAGE, load_or_report
from coverage_engine.config.text import show
from coverage_engine.feeds import refresh
from coverage_engine.schedule.feed import state_of


def register(subparsers: Any) -> None:
    """Add `feeds` to the command line."""
    parser = subparsers.add_parser(
        "feeds",
        help="on-call schedules from iCalendar feeds: status, refresh",
        description="See and fetch the practices' on-call feeds (oncall.feed).",
    )
    sub = parser.add_subparsers(dest="feeds_command", metavar="ACTION", required=True)
    p = sub.add_parser("status", help="each feed: last fetched, stale or not, shifts, problems")
    p.add_argument("--config", required=True, type=Path, help="the coverage YAML file")
    p.set_defaults(func=_status)
    p = sub.add_parser("refresh", help="fetch the feeds now (the last good copy is kept)")
    p.add_argument("--config", required=True, type=Path, help="the coverage YAML file")
    p.add_argument("--practice", metavar="ID", help="only this practice")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    p.set_defaults(func=_refresh)


def _status(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if isinstance(config, int):
        return config
    code = EXIT_OK
    shown = 0
    for key, practice in config.practices.items():
        roster = practice.oncall
        if roster is None or roster.feed is None:
            continue
        shown += 1
        state = state_of(roster)
        print(f"{key}: {roster.feed.source} (every {roster.feed.refresh_minutes} min)")
        if state is None or not state.usable:
            code = EXIT_FINDING
            why = state.why_not if state is not None else "never read"
            print(f"  !! not used: {why}; the YAML rotation answers")
            continue
        print(f"  fetched {state.fetched_at:%Y-%m-%d %H:%M} UTC: {len(state.shifts)} shift(s)")
        if state.last_error:
            print(f"  last attempt failed: {state.last_error} (the copy above is used)")
        for problem in state.problems:
            print(f"  problem: {problem}")
    if not shown:
        print("no practice has an on-call feed (oncall.feed)")
    return code


def _refresh(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if isinstance(config, int):
        return config
    keys = [k for k, p in config.practices.items() if p.oncall is not None and p.oncall.feed]
    if args.practice is not None:
        if args.practice not in keys:
            print(
                f"coverage-engine feeds: practice {show(args.practice)} has no on-call feed",
                file=sys.stderr,
            )
            return EXIT_USAGE
        keys = [args.practice]
    if not keys:
        print("no practice has an on-call feed (oncall.feed)")
        return EXIT_OK

    async def all_of_them() -> list[Any]:
        now = datetime.now(UTC)
        return [
            await refresh(args.config, config, key, now, args.timeout)
            for key in keys
        ]

    code = EXIT_OK
    for result in asyncio.run(all_of_them()):
        if result.ok:
            problems = f", {result.problems} problem(s) (see check)" if result.problems else ""
            print(f"{result.practice}: fetched, {result.shifts} shift(s){problems}")
        else:
            code = EXIT_FINDING
            print(f"{result.practice}: !! not fetched: {result.error} (the last good copy is kept)")
    return code
