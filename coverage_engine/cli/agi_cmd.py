"""`coverage-engine agi --config FILE`: the FastAGI decision service.

For dialplans that ask `AGI(agi://127.0.0.1:4573/route,<did>)` instead of
handing calls to the ARI engine (docs/freepbx.md). Runs the same routing core
on the same configuration file. FastAGI has no authentication of its own, so
it listens on the loopback and answers loopback peers only by default;
`--allow` names other addresses, `--secret-file` (or COVERAGE_AGI_SECRET_FILE)
adds a shared secret the dialplan holds, never given on the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import signal
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from coverage_engine import routing
from coverage_engine.agi.route import RouteHandler
from coverage_engine.agi.server import LOOPBACK, AgiServer, Guard
from coverage_engine.ami.client import ENV_USER as AMI_USER_ENV
from coverage_engine.ami.client import AmiError, AmiSettings, PanoramiskAmi
from coverage_engine.ami.gate import PresenceGate
from coverage_engine.ami.tracker import PresenceTracker
from coverage_engine.bootstrap import config_holder, keep_days, presence_gate
from coverage_engine.clock import Clock, ClockOverrideRefused, clock_from_options
from coverage_engine.config import ConfigError, CoverageConfig
from coverage_engine.logs import configure_logging
from coverage_engine.records.location import RecordsLocation, open_recorder, records_location
from coverage_engine.records.postgres import PostgresRecorder
from coverage_engine.records.recorder import JourneyRecorder
from coverage_engine.records.retention import keep_records
from coverage_engine.records.sqlite import (
    SqliteRecorder,
    StoreError,
)
from coverage_engine.reload import ConfigHolder

log = structlog.get_logger("coverage_engine.agi")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "agi",
        help="serve routing decisions over FastAGI (for FreePBX-style dialplans)",
        description="Answer AGI(agi://HOST:PORT/route,<did>) with the routing decision "
        "as channel variables (docs/freepbx.md).",
    )
    p.add_argument("--config", required=True, type=Path, help="the coverage YAML file")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, default=4573, help="TCP port (default 4573)")
    p.add_argument(
        "--allow",
        action="append",
        metavar="CIDR",
        help="an address or network allowed to connect, e.g. 10.0.0.5 (repeatable; "
        "default: the loopback only)",
    )
    p.add_argument(
        "--secret-file",
        type=Path,
        help="a file holding the shared secret the dialplan sets as COVERAGE_AGI_SECRET "
        f"(or ${ENV_SECRET_FILE})",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=100,
        help="connections served at once; more are closed at once (default 100)",
    )
    p.add_argument(
        "--no-records", action="store_true", help="do not write journeys to the record store"
    )
    p.add_argument(
        "--clock-start",
        metavar="INSTANT",
        help="tests and demo only: decide as if it were INSTANT "
        "(also needs COVERAGE_ENGINE_ALLOW_CLOCK_OVERRIDE=1)",
    )
    p.set_defaults(func=_cmd_agi)


def _recorder(config: CoverageConfig, config_file: Path) -> SqliteRecorder | PostgresRecorder:
    # The same records the engine and `calls list --config` use. No crash
    # recovery here: journeys opened by this service stay at "decided" (the
    # dialplan carries the call on, out of our sight), and recovery could
    # close journeys a running ARI engine still owns in the same store.
    location = records_location(config.records, config_file)
    return open_recorder(location, now=datetime.now(UTC), recover=False)


ENV_SECRET_FILE = "COVERAGE_AGI_SECRET_FILE"  # noqa: S105 - the variable's name


def guard_from_options(args: argparse.Namespace, environ: Mapping[str, str]) -> Guard:
    """The allowlist, shared secret and connection cap asked for (ValueError if unusable)."""
    allow = LOOPBACK
    if args.allow:
        try:
            allow = tuple(ipaddress.ip_network(a, strict=False) for a in args.allow)
        except ValueError as exc:
            raise ValueError(
                f"--allow: {exc} (give an address or a network, e.g. 10.0.0.0/24)"
            ) from None
    if args.max_connections < 1:
        raise ValueError("--max-connections must be at least 1")
    secret_file = args.secret_file or environ.get(ENV_SECRET_FILE)
    secret = None
    if secret_file:
        try:
            secret = Path(secret_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read the secret file {secret_file}: {exc.strerror}") from exc
        if len(secret) < 16 or not secret.isprintable() or " " in secret:
            raise ValueError(
                f"the secret in {secret_file} must be at least 16 printable characters "
                "without spaces (e.g. `openssl rand -hex 24`)"
            )
    return Guard(allow=allow, secret=secret, max_connections=args.max_connections)


def _cmd_agi(args: argparse.Namespace) -> int:
    configure_logging()
    try:
        # Reloaded like the engine's (YAML, changes file, feed copies): an
        # override made with the CLI reaches the next AGI request too.
        holder = config_holder(args.config)
        config = holder.load_initial()
        clock = clock_from_options(args.clock_start, os.environ)
        guard = guard_from_options(args, os.environ)
        location = records_location(config.records, args.config)
        recorder = None if args.no_records else _recorder(config, args.config)
    except (ConfigError, ClockOverrideRefused, ValueError, StoreError, OSError) as exc:
        print(f"coverage-engine agi: {exc}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_serve(args, holder, clock, recorder, location, guard))
    finally:
        if recorder is not None:
            recorder.close()


async def _serve(
    args: argparse.Namespace,
    holder: ConfigHolder[CoverageConfig],
    clock: Clock,
    recorder: JourneyRecorder | None,
    records: RecordsLocation,
    guard: Guard,
) -> int:
    # Operator presence, as for the ARI engine: skip an operators step nobody
    # can answer. Optional; on when COVERAGE_AMI_USER is set.
    ami: PanoramiskAmi | None = None
    gate: PresenceGate | None = None
    tasks: list[asyncio.Task[None]] = [asyncio.create_task(holder.watch(), name="config-watch")]
    if os.environ.get(AMI_USER_ENV):
        try:
            ami = await PanoramiskAmi.connect(AmiSettings.from_env())
        except AmiError as exc:
            log.error("ami.unavailable", error=str(exc), message="operator presence off")
        else:
            tracker = PresenceTracker(ami)
            tasks.append(asyncio.create_task(tracker.run(), name="operator-presence"))
            gate = presence_gate(lambda: holder.current, tracker)
    if recorder is not None:
        # On a FreePBX system this service may be the records' only writer;
        # keep_days is read at each run, so a reload can change it.
        tasks.append(
            asyncio.create_task(
                keep_records(records, lambda: keep_days(holder.current), clock.now),
                name="retention",
            )
        )
    handler = RouteHandler(
        lambda instant, did, caller: routing.decide(holder.current, instant, did, caller),
        clock,
        recorder,
        operators_check=gate.skip_reason if gate is not None else None,
    )
    server = AgiServer({"route": handler}, guard=guard)
    try:
        host, port = await server.start(args.host, args.port)
    except OSError as exc:
        print(
            f"coverage-engine agi: cannot listen on {args.host}:{args.port}: {exc.strerror}",
            file=sys.stderr,
        )
        await _stop(tasks, ami)
        return 1
    allowed = ", ".join(str(n) for n in guard.allow)
    secret = "with" if guard.secret else "without"
    print(
        f"coverage-engine agi: serving agi://{host}:{port}/route to {allowed}, "
        f"{secret} a shared secret",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        await server.close()
        await _stop(tasks, ami)
    return 0


async def _stop(tasks: list[asyncio.Task[None]], ami: PanoramiskAmi | None) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if ami is not None:
        await ami.close()
