"""`coverage-engine status`: the engines on the PBX, who holds which call, records, safety net.

What an on-call admin asks first at 3 a.m.: is an engine up (and is the
other one), which of them has the callers on the line right now, are the
records being written, and would the safety net ring tonight's doctor.
It reads only (ARI GETs, the records' open journeys, the spool's size); one
AstDB read for the safety net goes through the dialplan like the engine's.
Phone numbers are masked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from coverage_engine import wire
from coverage_engine.ari import AriError, AriSettings
from coverage_engine.ari.astdb import AstDb, AstDbError, Get
from coverage_engine.ari.client import AriClient
from coverage_engine.cli.run_cmd import add_ari_options, ari_settings_from
from coverage_engine.config import ConfigError, load_config
from coverage_engine.engine.liveness import beat_variable
from coverage_engine.engine.peers import DEAD_AFTER
from coverage_engine.logs import configure_logging, mask_caller
from coverage_engine.records.location import (
    PostgresRecords,
    RecordsLocation,
    open_connection,
    records_location,
)
from coverage_engine.records.sqlite import StoreError
from coverage_engine.safetynet.table import CURRENT_KEY


@dataclass
class EngineState:
    app: str
    alive: bool
    beat: str
    calls: int


@dataclass
class CallState:
    call_id: str
    caller: str
    did: str
    held_by: str
    where: str
    seconds: float


@dataclass
class Status:
    engines: list[EngineState] = field(default_factory=list)
    calls: list[CallState] = field(default_factory=list)
    records: dict[str, Any] = field(default_factory=dict)
    safety_net: str = ""
    problems: list[str] = field(default_factory=list)


def register(subparsers: Any) -> None:
    """Add the `status` command."""
    p = subparsers.add_parser(
        "status",
        help="the engines on the PBX, who holds which call, the records, the safety net",
    )
    p.add_argument("--config", required=True, type=Path, help="the coverage YAML file")
    add_ari_options(p, app=False)
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=_cmd_status)


def _cmd_status(args: argparse.Namespace) -> int:
    # Only warnings, and on stderr: stdout is the report (or its JSON).
    configure_logging(level="warning", stream=sys.stderr)
    try:
        config = load_config(args.config)
        settings = ari_settings_from(args, os.environ)
    except ConfigError as exc:
        print(f"coverage-engine status: {args.config} is not valid:\n{exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"coverage-engine status: {exc}", file=sys.stderr)
        return 1
    status = Status()
    status.records = _records(records_location(config.records, args.config), status)
    asyncio.run(_pbx(settings, status))
    if args.json:
        print(json.dumps(asdict(status), indent=2))
    else:
        _print(status)
    return 1 if status.problems else 0


async def _pbx(settings: AriSettings, status: Status) -> None:
    """Engines, calls and the safety net, as the PBX sees them."""
    # A look from outside: no event link, so no application of ours appears
    # on the PBX (the engines would take it for a silent peer).
    look = AriSettings(
        url=settings.url,
        username=settings.username,
        password=settings.password,
        app=f"{wire.APP_PREFIX}-status",
    )
    ari = AriClient(look)
    try:
        await ari.start(events=False)
        await _engines(ari, status)
        await _calls(ari, status)
        await _safety_net(ari, status)
    except AriError as exc:
        status.problems.append(f"the PBX does not answer on ARI: {exc}")
    finally:
        await ari.close()


async def _engines(ari: AriClient, status: Status) -> None:
    apps = [a for a in await ari.application_names() if a.startswith(wire.APP_PREFIX)]
    first = {a: await ari.get_global(beat_variable(a)) for a in apps}
    await asyncio.sleep(1.0)  # a live engine beats several times a second
    for app in sorted(apps):
        beat = await ari.get_global(beat_variable(app))
        if not beat:
            continue  # never beaten: not an engine (the paging service's application)
        held = await ari.application_channel_ids(app)
        alive = bool(beat) and beat != first[app]
        status.engines.append(EngineState(app, alive, beat, len(held)))
    if not any(e.alive for e in status.engines):
        status.problems.append(
            "no engine is running: every call goes to the dialplan's safety net "
            f"(an engine silent for {DEAD_AFTER:g} s is taken over by the others)"
        )


async def _calls(ari: AriClient, status: Status) -> None:
    holders: dict[str, str] = {}
    for engine in status.engines:
        for channel_id in await ari.application_channel_ids(engine.app):
            holders.setdefault(channel_id, engine.app)
    now = time.time()
    for channel in await ari.list_channels():
        if wire.is_leg(channel.id) or channel.name.startswith("Local/"):
            continue
        app = channel.dialplan.app_name
        if app not in ("StasisBroadcast", "Stasis", "Queue", "Dial", "MusicOnHold", "Read"):
            continue
        marked = ""
        try:
            marked = await ari.get_variable(channel.id, wire.ENGINE) or ""
        except AriError:
            continue
        held_by = marked or holders.get(channel.id, "")
        where = {
            "StasisBroadcast": "with an engine",
            "Stasis": "with an engine",
            "Queue": "in the operator queue",
        }.get(app, "in the safety net")
        if channel.dialplan.context == wire.FALLBACK_CONTEXT:
            where, held_by = "in the safety net", ""
        created = channel.creationtime.timestamp() if channel.creationtime else now
        status.calls.append(
            CallState(
                channel.id,
                mask_caller(channel.caller.number),
                channel.dialplan.exten,
                held_by,
                where,
                round(now - created, 1),
            )
        )


async def _safety_net(ari: AriClient, status: Status) -> None:
    try:
        (current,) = await AstDb(ari, owner=ari.app, timeout=3.0).run([Get(CURRENT_KEY)])
    except AstDbError as exc:
        status.safety_net = f"unknown ({exc})"
        return
    if current:
        status.safety_net = f"on-call table {current} in AstDB"
    else:
        status.safety_net = "no on-call table: the safety net rings only COVERAGE_FALLBACK_DIAL"
        status.problems.append(status.safety_net)


def _records(location: RecordsLocation, status: Status) -> dict[str, Any]:
    records: dict[str, Any] = {"store": str(location)}
    try:
        conn = open_connection(location)
    except StoreError as exc:
        status.problems.append(f"the call records cannot be used: {exc}")
        records["reachable"] = False
        return records
    try:
        (open_journeys,) = conn.execute(
            "SELECT COUNT(*) FROM journeys WHERE outcome IS NULL"
        ).fetchone()
        records.update(reachable=True, open_journeys=int(open_journeys))
    finally:
        conn.close()
    if isinstance(location, PostgresRecords) and location.spool.exists():
        with sqlite3.connect(location.spool) as spool:
            (waiting,) = spool.execute("SELECT COUNT(*) FROM pending").fetchone()
        records["spool_waiting"] = int(waiting)
        if waiting:
            status.problems.append(f"{waiting} journey writes wait in the spool for PostgreSQL")
    return records


def _print(status: Status) -> None:
    print("engines on the PBX")
    for e in status.engines:
        state = "alive" if e.alive else "SILENT"
        print(f"  {e.app:<28} {state:<7} beat {e.beat or '-':<8} channels {e.calls}")
    if not status.engines:
        print("  (none)")
    print("calls")
    for c in status.calls:
        print(
            f"  {c.call_id:<18} {c.caller:<10} {c.did:<14} {c.held_by or '-':<26} "
            f"{c.where} ({c.seconds:g} s)"
        )
    if not status.calls:
        print("  (none)")
    print("records")
    for key, value in status.records.items():
        print(f"  {key:<16} {value}")
    print("safety net")
    print(f"  {status.safety_net}")
    for problem in status.problems:
        print(f"problem: {problem}")
