"""`coverage-engine console`: serve the operators' console on its own, without the engine.

For a machine that reads the record file but carries no calls (a second
console for the practice, or the console while the engine is stopped for
maintenance): the board follows the journeys every engine writes to the
file. Operator presence needs AMI ($COVERAGE_AMI_USER, as for `run`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from coverage_engine.cli.run_cmd import ENV_CONSOLE_PORT, port_from
from coverage_engine.clock import ClockOverrideRefused, clock_from_options
from coverage_engine.config import ConfigError
from coverage_engine.records.location import records_location
from coverage_engine.records.sqlite import StoreError
from coverage_engine.web import DEFAULT_HOST, DEFAULT_PORT, ConsoleUnavailable


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "console",
        help="serve the operators' console without carrying calls",
        description="The console (board, screen pop, messages) on its own, over the record file.",
    )
    p.add_argument("--config", required=True, type=Path, help="the coverage YAML file")
    p.add_argument(
        "--port", type=int, help=f"port (default ${ENV_CONSOLE_PORT}, else {DEFAULT_PORT})"
    )
    p.add_argument("--host", default=DEFAULT_HOST, help="interface (default 127.0.0.1)")
    p.add_argument("--secure-cookies", action="store_true", help="served over HTTPS by a proxy")
    p.add_argument("--clock-start", metavar="INSTANT", help="TESTS AND DEMO ONLY (see `run`)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coverage_engine.ami import AmiError, AmiSettings, PanoramiskAmi, PresenceTracker
    from coverage_engine.ami.client import ENV_USER as AMI_USER_ENV
    from coverage_engine.bootstrap import config_holder
    from coverage_engine.logs import configure_logging
    from coverage_engine.web import start_console

    configure_logging(level="info")
    try:
        clock = clock_from_options(args.clock_start, os.environ)
        port = port_from(args.port, os.environ, ENV_CONSOLE_PORT, DEFAULT_PORT)
        holder = config_holder(args.config)  # with the changes file and the feed copies
        holder.load_initial()
        ami = AmiSettings.from_env() if os.environ.get(AMI_USER_ENV) else None
    except ConfigError as exc:
        print(f"coverage-engine console: {args.config} is not valid:", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue}", file=sys.stderr)
        return 1
    except (ValueError, OSError, ClockOverrideRefused, AmiError) as exc:
        print(f"coverage-engine console: {exc}", file=sys.stderr)
        return 1
    config = holder.current
    path = records_location(config.records, args.config)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        tracker = None
        tasks = [asyncio.create_task(holder.watch())]
        if ami is not None:
            try:
                tracker = PresenceTracker(await PanoramiskAmi.connect(ami))
                tasks.append(asyncio.create_task(tracker.run()))
            except AmiError as exc:
                print(f"coverage-engine console: no operator presence: {exc}", file=sys.stderr)
        console = await start_console(
            path,
            config=lambda: holder.current,
            now=clock.now,
            presence=(lambda: tracker.presence) if tracker is not None else (lambda: None),
            host=args.host,
            port=port,
            secure_cookies=args.secure_cookies,
            config_path=args.config,
        )
        print(f"console: {console.url}", file=sys.stderr)
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await console.close()

    try:
        asyncio.run(main())
    except (ConsoleUnavailable, StoreError) as exc:
        print(f"coverage-engine console: {exc}", file=sys.stderr)
        return 1
    return 0
