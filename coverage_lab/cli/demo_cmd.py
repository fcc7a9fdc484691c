"""`coverage-engine demo`: the main job, live, on a fresh machine.

It brings up the sandbox PBX (a real Asterisk 22), starts the engine
(`coverage-engine run`, the production code path) with config/coverage.yaml,
and places scripted SIPp calls at chosen instants: office hours, lunch,
night, a holiday, an on-call doctor whose voicemail answers without pressing
1, Lakeside's on-call-first nights, a number no practice has. For each call
it prints who answered and why (the engine's own journey of the call).

The engine's clock is started at each scene's instant with the guarded test
option; that is logged loudly by the engine, as it must be.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from coverage_engine.journey import EventKind
from coverage_lab.engine_process import EngineProcess

CHICAGO = ZoneInfo("America/Chicago")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
OPERATORS = ("operator1", "operator2", "operator3")


@dataclass(frozen=True)
class Scene:
    """One scripted call: when, to which number, how each phone behaves, who should answer."""

    title: str
    did: str
    at: datetime
    phones: dict[str, str]  # phone -> behaviour name (see `_behaviour`)
    expect: str  # the phone that should end up talking to the caller
    operators_on_shift: bool = True
    timeout: float = 120.0
    notes: tuple[str, ...] = field(default_factory=tuple)


SCENES: tuple[Scene, ...] = (
    Scene(
        "Maple Grove, Monday 10:00: office hours",
        "+13125550100",
        datetime(2026, 11, 30, 10, 0, tzinfo=CHICAGO),
        {"frontdesk-maple": "answers"},
        expect="frontdesk-maple",
    ),
    Scene(
        "Maple Grove, Monday 12:30: closed for lunch",
        "+13125550100",
        datetime(2026, 11, 30, 12, 30, tzinfo=CHICAGO),
        {"frontdesk-maple": "answers", "operator2": "answers"},
        expect="operator2",
    ),
    Scene(
        "Maple Grove, Tuesday 03:00: night",
        "+13125550101",
        datetime(2026, 12, 1, 3, 0, tzinfo=CHICAGO),
        {"operator1": "answers", "nguyen": "presses 1"},
        expect="operator1",
    ),
    Scene(
        "Maple Grove, Thanksgiving Thursday 10:00: a holiday",
        "+13125550100",
        datetime(2026, 11, 26, 10, 0, tzinfo=CHICAGO),
        {"frontdesk-maple": "answers", "operator3": "answers"},
        expect="operator3",
    ),
    Scene(
        "Maple Grove, Tuesday 03:00, no operator on shift: the on-call doctor's voicemail",
        "+13125550100",
        datetime(2026, 12, 1, 3, 0, tzinfo=CHICAGO),
        {"nguyen": "voicemail", "okafor": "presses 1"},
        expect="okafor",
        operators_on_shift=False,
    ),
    Scene(
        "Lakeside, Monday 20:00: closed, the doctor on call first",
        "+16085550142",
        datetime(2026, 11, 30, 20, 0, tzinfo=LOS_ANGELES),
        {"ruiz": "presses 1", "operator1": "answers"},
        expect="ruiz",
    ),
    Scene(
        "A number no practice has: the default route",
        "+19995550000",
        datetime(2026, 11, 30, 10, 0, tzinfo=CHICAGO),
        {"operator1": "answers"},
        expect="operator1",
    ),
)


def register(subparsers: Any) -> None:
    """Add `demo` to the command line."""
    demo = subparsers.add_parser(
        "demo",
        help="live demo: sandbox Asterisk + engine + scripted calls; who answered and why",
    )
    demo.add_argument("--config", type=Path, default=Path("config/coverage.yaml"), metavar="FILE")
    demo.add_argument(
        "--scene", type=int, action="append", metavar="N", help="run only scene N (1-based)"
    )
    demo.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep each scene's engine log and SIPp traces in DIR (default: a temporary folder)",
    )
    demo.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Run the scenes; exit 0 when every call reached the expected person."""
    from coverage_engine.config import ConfigError, load_config
    from coverage_lab.sandbox import Sandbox, SandboxError

    try:
        load_config(args.config)
    except (ConfigError, OSError) as exc:
        print(f"demo: {args.config} cannot be used: {exc}", file=sys.stderr)
        return 1
    if os.geteuid() != 0:
        print(
            "demo: needs root (the sandbox PBX uses debootstrap, chroot, unshare)", file=sys.stderr
        )
        return 1
    chosen = [SCENES[n - 1] for n in args.scene] if args.scene else list(SCENES)
    sandbox = Sandbox(log=lambda message: print(f"   sandbox: {message}", flush=True))
    was_running = sandbox.is_running()
    print("== starting the sandbox PBX (the first run downloads and caches Asterisk)", flush=True)
    try:
        sandbox.start()
    except SandboxError as exc:
        print(f"demo: the sandbox PBX cannot start: {exc}", file=sys.stderr)
        return 1
    failures = 0
    try:
        with tempfile.TemporaryDirectory(prefix="coverage-demo-") as tmp:
            work = args.keep.resolve() if args.keep else Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            for number, scene in enumerate(chosen, start=1):
                ok = _play(scene, number, sandbox, args.config.resolve(), work)
                failures += 0 if ok else 1
    finally:
        if not was_running:
            sandbox.stop()
    print(f"\n{len(chosen) - failures} of {len(chosen)} calls reached the expected person.")
    return 0 if failures == 0 else 1


def _play(scene: Scene, number: int, sandbox: Any, config: Path, work: Path) -> bool:
    from coverage_lab.phones import Callers, Phones

    creds = sandbox.credentials()
    print(f"\n== {number}. {scene.title}", flush=True)
    local = scene.at.strftime("%a %Y-%m-%d %H:%M %Z")
    print(f"   a patient calls {scene.did} at {local}")
    scene_dir = work / f"scene-{number}"
    scene_dir.mkdir(exist_ok=True)
    engine = EngineProcess(
        config,
        ari_url=creds.url,
        ari_user=creds.user,
        ari_password=creds.password,
        log_path=scene_dir / "engine.log",
    )
    phones, callers = Phones(scene_dir), Callers(scene_dir)
    if not scene.operators_on_shift:
        _set_operators(sandbox, logged_in=False)
    try:
        for phone, behaviour in scene.phones.items():
            phones.start(phone, _behaviour(behaviour))
        engine.start(scene.at)
        call = callers.place(
            scene.did,
            caller=f"+1555010{number:04d}",
            caller_name="Demo Patient",
            max_seconds=scene.timeout,
        )
        with contextlib.suppress(TimeoutError):  # reported below as "answered by nobody"
            phones.wait_for("answered", call.caller, timeout=scene.timeout)
        result = call.wait(timeout=30)
        time.sleep(0.5)  # the engine logs the end of the call
        answered_by = phones.answered_by(call.caller)
        # Consecutive repeats are the queue ringing the same operator again.
        rang = [
            p
            for i, p in enumerate(phones.rang(call.caller))
            if i == 0 or phones.rang(call.caller)[i - 1] != p
        ]
        answered_at = (
            next((c.answered_at for c in phones.calls(answered_by) if c.answered), None)
            if answered_by
            else None
        )
    finally:
        callers.stop_all()
        phones.stop_all()
        engine.stop()
        if not scene.operators_on_shift:
            _set_operators(sandbox, logged_in=True)
    for line in _story(engine.log()):
        print(f"   {line}")
    print(f"   phones that rang: {', '.join(rang) or 'none'}")
    # From the patient's dialing to a person picking up (the engine itself
    # answers the patient at once, so the caller's own "answered" says little).
    wait = f" {answered_at - result.started_at:.1f} s after dialing" if answered_at else ""
    ok: bool = answered_by == scene.expect
    mark = "ok" if ok else f"UNEXPECTED (expected {scene.expect})"
    print(f"   => answered by {answered_by or 'nobody'}{wait} [{mark}]", flush=True)
    return ok


def _behaviour(name: str) -> Any:
    from coverage_lab.phones import answers, presses, voicemail

    table: dict[str, Callable[[], Any]] = {
        # Whoever answers talks for 3 s and hangs up; the PBX then releases
        # the caller (the engine answered the caller at once, so the caller
        # cannot tell a person from the engine: they wait for the far end).
        "answers": lambda: answers(after=2, hangup_after=3),
        "presses 1": lambda: presses("1", after=2, hangup_after=3),
        "voicemail": lambda: voicemail(after=2),
    }
    return table[name]()


def _set_operators(sandbox: Any, *, logged_in: bool) -> None:
    """Log the three operators out of (or back into) the `answering` queue."""
    for op in OPERATORS:
        if logged_in:
            sandbox.cli(f"queue add member PJSIP/{op} to answering")
        else:
            sandbox.cli(f"queue remove member PJSIP/{op} from answering")


_WORDS: dict[str, Callable[[dict[str, Any]], str]] = {
    EventKind.DECIDED: lambda e: f"the engine decided: {e.get('status')} ({e.get('reason')})",
    EventKind.ANNOUNCEMENT_PLAYED: lambda e: "the caller heard the emergency announcement",
    EventKind.STAFF_RINGING: lambda e: f"rang the {e.get('label') or e.get('target')}",
    EventKind.QUEUE_ENTERED: lambda e: (
        f"put the caller in the operator queue (up to {e.get('max_wait')} s)"
    ),
    EventKind.OPERATORS_SKIPPED: lambda e: f"skipped the operator queue: {e.get('reason')}",
    EventKind.QUEUE_TIMEOUT: lambda e: f"no operator took the call ({e.get('status')})",
    EventKind.OPERATOR_ANSWERED: lambda e: f"an operator answered ({e.get('member')})",
    EventKind.ONCALL_DIALING: lambda e: f"rang {e.get('label') or e.get('doctor')}",
    EventKind.ONCALL_NO_ANSWER: lambda e: f"{e.get('doctor')} did not answer",
    EventKind.ONCALL_BUSY: lambda e: f"{e.get('doctor')} was busy",
    EventKind.ONCALL_DECLINED: lambda e: f"{e.get('doctor')} declined",
    EventKind.ONCALL_NOT_CONFIRMED: lambda e: (
        f"{e.get('doctor')}'s phone answered but nobody pressed 1 (a voicemail): hung up on it"
    ),
    EventKind.ONCALL_CONFIRMED: lambda e: f"{e.get('doctor')} pressed 1 to accept",
    EventKind.BRIDGED: lambda e: f"bridged the caller with {e.get('target')}",
    EventKind.ENDED: lambda e: f"call ended: {e.get('outcome')}",
}


def _story(log: str) -> list[str]:
    """The engine's journey events of the scene's call, in words."""
    lines = []
    for raw in log.splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("event") != "journey":
            continue
        words = _WORDS.get(str(entry.get("journey_event")))
        if words is not None:
            lines.append(words(entry))
    return lines or ["(the engine logged no journey for this call)"]
