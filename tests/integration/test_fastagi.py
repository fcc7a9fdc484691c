"""FastAGI: a call through dialplan/freepbx-example.conf reaches the phone the routing core names.

The sandbox carrier normally sends calls to the ARI engine; for these tests a
test-only extension sends DIDs prefixed with `agi` to the example dialplan's
`coverage-agi` context instead, and `coverage-engine agi` runs with its clock
started at the instant of each case.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coverage_engine import routing
from coverage_engine.config import load_config
from coverage_engine.plan import StepKind
from coverage_lab.phones import (
    CallerHandle,
    Phones,
    answers,
    invite_display_names,
    presses,
)
from coverage_lab.sandbox import Sandbox

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "coverage.yaml"
CHICAGO = ZoneInfo("America/Chicago")
DID = "+13125550100"  # Maple Grove Pediatrics
MONDAY_10AM = datetime(2026, 11, 30, 10, 0, tzinfo=CHICAGO)  # open
MONDAY_3AM = datetime(2026, 11, 30, 3, 0, tzinfo=CHICAGO)  # closed

# Test-only: the carrier's context sends `agi<DID>` to the example dialplan.
TEST_ROUTE = """; written by tests/integration/test_fastagi.py
[coverage-inbound]
exten => _agi+X.,1,Goto(coverage-agi,${EXTEN:3},1)
"""


@pytest.fixture(scope="module")
def agi_route(sandbox: Sandbox) -> Iterator[None]:
    """Route `agi+<DID>` from the carrier into `coverage-agi` for this module's tests."""
    extra = sandbox.tree / "etc" / "asterisk" / "dialplan" / "zz-test-fastagi.conf"
    extra.write_text(TEST_ROUTE, encoding="utf-8")
    sandbox.cli("dialplan reload")
    yield
    extra.unlink(missing_ok=True)
    sandbox.cli("dialplan reload")


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"coverage-engine agi exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError("coverage-engine agi did not start listening")


@pytest.fixture
def agi_service(tmp_path: Path) -> Iterator[Callable[[datetime], None]]:
    """`start(instant)`: run `coverage-engine agi` deciding as if it were `instant`."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(instant: datetime) -> None:
        env = {**os.environ, "COVERAGE_ENGINE_ALLOW_CLOCK_OVERRIDE": "1"}
        env.pop("COVERAGE_AMI_USER", None)  # these cases do not depend on presence
        with (tmp_path / "agi.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "coverage_engine", "agi", "--config", str(CONFIG),
                 "--no-records", "--clock-start", instant.isoformat()],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        procs.append(proc)
        _wait_listening(4573, proc)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def expected_phone(instant: datetime, *, operators_free: bool) -> str:
    """The first phone the routing core's plan reaches at `instant` (operators: none free)."""
    plan = routing.decide(load_config(CONFIG), instant, DID)
    for step in plan.steps:
        if step.kind is StepKind.OPERATORS and not operators_free:
            continue  # an empty queue returns the caller at once (joinempty)
        return step.target if step.kind is not StepKind.OPERATORS else "operator1"
    raise AssertionError(f"no person in {plan}")


@pytest.mark.usefixtures("agi_route")
def test_open_hours_reach_the_front_desk(
    agi_service: Callable[[datetime], None], phones: Phones,
    place_call: Callable[..., CallerHandle],
) -> None:
    """Monday 10:00: the FastAGI plan rings the front desk, as the routing core says."""
    agi_service(MONDAY_10AM)
    expected = expected_phone(MONDAY_10AM, operators_free=False)
    assert expected == "frontdesk-maple"
    phones.start(expected, answers(after=1, hangup_after=2))
    call = place_call(f"agi{DID}")
    phones.wait_for("answered", call.caller, timeout=30)
    call.wait(timeout=30)
    assert phones.answered_by(call.caller) == expected


@pytest.mark.usefixtures("agi_route", "no_operators")
def test_closed_with_no_operator_reaches_the_oncall_doctor_after_pressing_1(
    agi_service: Callable[[datetime], None], phones: Phones,
    place_call: Callable[..., CallerHandle],
) -> None:
    """Monday 3:00, nobody in the queue: the on-call doctor rings and takes the call with 1."""
    agi_service(MONDAY_3AM)
    doctor = expected_phone(MONDAY_3AM, operators_free=False)
    # The doctor hangs up a few seconds after accepting; the caller was
    # answered long before (the emergency announcement), so it waits for that.
    phones.start(doctor, presses("1", after=1, delay=2, hangup_after=5))
    call = place_call(f"agi{DID}")
    phones.wait_for("answered", call.caller, timeout=60)
    result = call.wait(timeout=60)
    assert result.answered
    assert phones.answered_by(call.caller) == doctor
    assert phones.calls(doctor)[0].digits == "1"


@pytest.mark.usefixtures("agi_route")
def test_closed_with_an_operator_reaches_the_operator_with_the_practice_tag(
    agi_service: Callable[[datetime], None], phones: Phones,
    place_call: Callable[..., CallerHandle], logged_in: Callable[[str], None],
) -> None:
    """Monday 3:00 with operator1 logged in: operator1 answers and sees "MGP: <caller>"."""
    agi_service(MONDAY_3AM)
    logged_in("operator1")
    assert expected_phone(MONDAY_3AM, operators_free=True) == "operator1"
    phones.start("operator1", answers(after=1, hangup_after=2))
    call = place_call(f"agi{DID}", caller_name="Jane Doe")
    phones.wait_for("answered", call.caller, timeout=60)
    call.wait(timeout=60)
    assert phones.answered_by(call.caller) == "operator1"
    assert invite_display_names(phones["operator1"].events_file) == ["MGP: Jane Doe"]


async def _misbehave() -> None:
    """A port scan (connect, close) and a garbage client, while a real call is decided."""
    _, w = await asyncio.open_connection("127.0.0.1", 4573)
    w.close()
    _, w = await asyncio.open_connection("127.0.0.1", 4573)
    w.write(b"\x00\xffGET / HTTP/1.0\r\n\r\n" * 10)
    await w.drain()
    await asyncio.sleep(5)  # stays connected, saying nothing useful
    w.close()


@pytest.mark.usefixtures("agi_route")
def test_scanners_and_garbage_do_not_delay_a_live_call(
    agi_service: Callable[[datetime], None], phones: Phones,
    place_call: Callable[..., CallerHandle],
) -> None:
    """With a connect-and-close and a garbage client on the AGI port, the call is as fast."""
    agi_service(MONDAY_10AM)
    phones.start("frontdesk-maple", answers(after=0, hangup_after=1))

    def time_to_ring() -> float:
        call = place_call(f"agi{DID}")
        calls = phones.wait_for("invite", call.caller, timeout=30)
        call.wait(timeout=30)
        return calls[0].invited_at - call.result().started_at

    baseline = time_to_ring()
    # The bad clients run in a thread's event loop while the SIPp call goes on.
    import threading

    bad = threading.Thread(target=asyncio.run, args=(_misbehave(),))
    bad.start()
    try:
        time.sleep(0.2)
        disturbed = time_to_ring()
    finally:
        bad.join(timeout=15)
    assert disturbed < baseline + 1.0, (baseline, disturbed)
