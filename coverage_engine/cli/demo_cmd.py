"""`demo`: an interim, routing-only demo of who would answer at chosen instants.

It runs no Asterisk and places no calls: for a handful of scripted instants it
asks the routing core, and prints who would answer and why. The live demo
(sandbox PBX, engine, SIPp calls) replaces this module later.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from coverage_engine.cli.routing_cmds import load_or_report, parse_instant, step_text
from coverage_engine.config import CoverageConfig
from coverage_engine.routing import decide

# (what the scene shows, dialed number, local time at the practice)
SCENES: tuple[tuple[str, str, str], ...] = (
    ("Maple Grove, Monday morning: office hours", "+13125550100", "2026-11-30T10:00"),
    ("Maple Grove, Monday 12:30: lunch closure", "+13125550100", "2026-11-30T12:30"),
    ("Maple Grove, Monday 23:00: night", "+13125550101", "2026-11-30T23:00"),
    ("Maple Grove, Thanksgiving: a holiday", "+13125550100", "2026-11-26T10:00"),
    ("Maple Grove, Christmas Eve 15:00: half day + swap", "+13125550100", "2026-12-24T15:00"),
    ("Lakeside, Monday 20:00: on-call doctor first", "+16085550142", "2026-11-30T20:00"),
    ("A number no practice has: default route", "+19995550000", "2026-11-30T10:00-06:00"),
)


def register(subparsers: Any) -> None:
    """Add `demo` to the command line."""
    demo = subparsers.add_parser(
        "demo", help="routing-only demo: who would answer at a few chosen instants, and why"
    )
    demo.add_argument("--config", type=Path, default=Path("config/coverage.yaml"), metavar="FILE")
    demo.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Print each scene's plan; exit like `check` when the file is invalid."""
    config = load_or_report(args.config)
    if isinstance(config, int):
        return config
    print(
        "coverage-engine demo (routing-only: no PBX and no calls yet; this shows who WOULD "
        "answer, decided by the routing core from " + str(args.config) + ")\n"
    )
    for title, did, at in SCENES:
        print(_scene(config, title, did, at))
    return 0


def _scene(config: CoverageConfig, title: str, did: str, at: str) -> str:
    practice = config.practice_for_did(did)
    instant = parse_instant(at, practice.zone if practice is not None else ZoneInfo("UTC"))
    plan = decide(config, instant, did)
    local = plan.at.strftime("%a %Y-%m-%d %H:%M %Z") if plan.at else at
    first = plan.steps[0]
    lines = [
        f"== {title}",
        f"   call to {did} at {local}: {plan.status} ({plan.reason})",
        f"   answers first: {first.label or first.target}",
    ]
    if plan.announcement:
        lines.append(f"   the caller first hears: {plan.announcement}")
    lines.extend(f"   {i}. {step_text(step)}" for i, step in enumerate(plan.steps, start=1))
    lines.extend(f"   note: {note}" for note in plan.notes)
    return "\n".join(lines) + "\n"
