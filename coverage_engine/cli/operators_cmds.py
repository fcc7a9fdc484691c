"""`coverage-engine operators ...`: who is logged in to the operator queues, and changing it.

Talks to Asterisk over AMI. Where: COVERAGE_AMI_HOST / COVERAGE_AMI_PORT
(default 127.0.0.1:5038); as whom: COVERAGE_AMI_USER with the secret in
COVERAGE_AMI_SECRET_FILE (a file, so the secret never shows in `ps`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from coverage_engine.ami import operators
from coverage_engine.ami.client import Ami, AmiError, AmiSettings, PanoramiskAmi
from coverage_engine.ami.presence import DeviceState, Member, Presence, snapshot
from coverage_engine.caller_text import for_terminal

AmiFactory = Callable[[AmiSettings], Awaitable[Ami]]


async def _connect(settings: AmiSettings) -> Ami:
    return await PanoramiskAmi.connect(settings)


# Tests replace this with a function returning a fake (see tests/unit/test_operators_cli.py).
ami_factory: AmiFactory = _connect


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "operators",
        help="answering-service operators: list, login, logout, pause, unpause",
        description="See and change who is logged in to the operator queues (over AMI).",
    )
    sub = parser.add_subparsers(dest="operators_command", metavar="ACTION", required=True)

    p = sub.add_parser("list", help="who is logged in to which queue, paused or not")
    p.add_argument("--queue", help="only this queue")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("login", help="add an operator's phone to a queue")
    p.add_argument("endpoint", metavar="EXT", help="the operator's PJSIP endpoint, e.g. operator1")
    p.add_argument("--queue", required=True, help="queue name, e.g. answering")
    p.set_defaults(func=_cmd_login)

    p = sub.add_parser("logout", help="remove an operator's phone from a queue (default: all)")
    p.add_argument("endpoint", metavar="EXT")
    p.add_argument("--queue", help="only this queue")
    p.set_defaults(func=_cmd_logout)

    p = sub.add_parser("pause", help="stop calls to an operator for a while (stays logged in)")
    p.add_argument("endpoint", metavar="EXT")
    p.add_argument("--queue", help="only this queue (default: all the operator's queues)")
    p.add_argument("--reason", default="", help="shown in `operators list`, e.g. lunch")
    p.set_defaults(func=_cmd_pause)

    p = sub.add_parser("unpause", help="send calls to a paused operator again")
    p.add_argument("endpoint", metavar="EXT")
    p.add_argument("--queue", help="only this queue (default: all the operator's queues)")
    p.set_defaults(func=_cmd_unpause)


def _run(job: Callable[[Ami], Awaitable[str]]) -> int:
    async def main() -> str:
        ami = await ami_factory(AmiSettings.from_env())
        try:
            return await job(ami)
        finally:
            await ami.close()

    try:
        message = asyncio.run(main())
    except AmiError as exc:
        print(f"coverage-engine operators: {exc}", file=sys.stderr)
        return 1
    if message:
        print(message)
    return 0


def _cmd_login(args: argparse.Namespace) -> int:
    async def job(ami: Ami) -> str:
        await operators.login(ami, args.queue, args.endpoint)
        return f"{args.endpoint} logged in to {args.queue}"

    return _run(job)


def _cmd_logout(args: argparse.Namespace) -> int:
    async def job(ami: Ami) -> str:
        queues = await operators.logout(ami, args.queue, args.endpoint)
        return f"{args.endpoint} logged out of {', '.join(queues)}"

    return _run(job)


def _cmd_pause(args: argparse.Namespace) -> int:
    async def job(ami: Ami) -> str:
        await operators.pause(ami, args.queue, args.endpoint, paused=True, reason=args.reason)
        why = f" ({args.reason})" if args.reason else ""
        return f"{args.endpoint} paused{why}"

    return _run(job)


def _cmd_unpause(args: argparse.Namespace) -> int:
    async def job(ami: Ami) -> str:
        await operators.pause(ami, args.queue, args.endpoint, paused=False)
        return f"{args.endpoint} available again"

    return _run(job)


def _cmd_list(args: argparse.Namespace) -> int:
    async def job(ami: Ami) -> str:
        queue = operators.checked_name("queue", args.queue) if args.queue else None
        presence = snapshot(await ami.queue_status(queue))
        now = datetime.now(UTC)
        if args.json:
            return json.dumps(listing_json(presence, now), indent=2)
        return render_listing(presence, now)

    return _run(job)


# -- presentation (pure) ------------------------------------------------------

_BUSY = frozenset({DeviceState.INUSE, DeviceState.BUSY, DeviceState.ONHOLD, DeviceState.RINGINUSE})


def member_state(m: Member) -> str:
    """What a supervisor needs to know about one operator, in words."""
    if not m.reachable:
        return "phone offline"
    if m.paused:
        return f"paused ({m.paused_reason})" if m.paused_reason else "paused"
    if m.in_call or m.device in _BUSY:
        return "on a call"
    if m.device is DeviceState.RINGING:
        return "ringing"
    return "available"


def _duration(d: timedelta | None) -> str:
    if d is None:
        return "-"
    minutes = int(d.total_seconds()) // 60
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def render_listing(presence: Presence, now: datetime) -> str:
    lines: list[str] = []
    for queue in sorted(presence.queues):
        a = presence.availability(queue)
        if a is None:
            continue
        lines.append(
            f"{for_terminal(queue)}: {a.logged_in} logged in, {a.available} taking calls, "
            f"{a.paused} paused, {a.waiting} waiting"
        )
        members = presence.members_of(queue)
        if not members:
            lines.append("  (nobody logged in)")
            continue
        rows = [("OPERATOR", "INTERFACE", "STATE", "CALLS", "IDLE")]
        # Names and pause reasons come from AMI, where a phone or another AMI
        # client may have set them: escaped like any text from outside.
        rows += [
            (
                for_terminal(m.name),
                for_terminal(m.interface),
                for_terminal(member_state(m)),
                str(m.calls_taken),
                _duration(m.idle_for(now)),
            )
            for m in members
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for r in rows:
            lines.append(
                "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            )
    return "\n".join(lines) if lines else "no queues"


def listing_json(presence: Presence, now: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for queue in sorted(presence.queues):
        a = presence.availability(queue)
        if a is None:
            continue
        out[queue] = {
            "logged_in": a.logged_in,
            "available": a.available,
            "paused": a.paused,
            "waiting": a.waiting,
            "members": [
                {
                    "name": m.name,
                    "interface": m.interface,
                    "state": member_state(m),
                    "paused": m.paused,
                    "reason": m.paused_reason,
                    "calls_taken": m.calls_taken,
                    "idle_seconds": int(idle.total_seconds())
                    if (idle := m.idle_for(now)) is not None
                    else None,
                }
                for m in presence.members_of(queue)
            ],
        }
    return out
