"""FastAGI: a call through dialplan/freepbx-example.conf reaches the phone the routing core names.

The sandbox carrier normally sends calls to the ARI engine; for these tests a
test-only extension sends DIDs prefixed with `agi` to the example dialplan's
`coverage-agi` context instead, and `coverage-engine agi` runs with its clock
started at the instant of each case.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
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
def agi_service(sandbox: Sandbox, tmp_path: Path) -> Iterator[Callable[..., None]]:
    """`start(instant)`: run `coverage-engine agi` deciding as if it were `instant`.

    It checks the shared secret the sandbox's dialplan holds (COVERAGE_AGI_SECRET);
    `start(instant, secret_file=other)` runs it with another one.
    """
    procs: list[subprocess.Popen[bytes]] = []

    def start(instant: datetime, secret_file: Path | None = None) -> None:
        env = {**os.environ, "COVERAGE_ENGINE_ALLOW_CLOCK_OVERRIDE": "1"}
        env.pop("COVERAGE_AMI_USER", None)  # these cases do not depend on presence
        secret = secret_file or sandbox.agi_secret_file()
        with (tmp_path / "agi.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "coverage_engine", "agi", "--config", str(CONFIG),
                 "--no-records", "--clock-start", instant.isoformat(),
                 "--secret-file", str(secret)],
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


@pytest.mark.usefixtures("agi_route")
def test_every_phone_rung_shows_the_practice_tag_and_a_harmless_name(
    agi_service: Callable[..., None], phones: Phones,
    place_call: Callable[..., CallerHandle],
) -> None:
    """The front desk's Dial() shows "MGP: " and the service's display name, not the raw one."""
    agi_service(MONDAY_10AM)
    phones.start("frontdesk-maple", answers(after=1, hangup_after=2))
    call = place_call(f"agi{DID}", caller_name="Jane\x1bP0;pwned\x07 \u202eeoD " + "A" * 200)
    phones.wait_for("answered", call.caller, timeout=30)
    call.wait(timeout=30)
    (shown,) = invite_display_names(phones["frontdesk-maple"].events_file)
    assert shown == "MGP: " + "JaneP0;pwned eoD " + "A" * (40 - len("JaneP0;pwned eoD "))


@pytest.mark.usefixtures("agi_route")
def test_a_service_without_the_dialplans_secret_is_not_followed(
    agi_service: Callable[..., None], phones: Phones,
    place_call: Callable[..., CallerHandle], tmp_path: Path, logged_in: Callable[[str], None],
) -> None:
    """The service holds another secret: it answers nothing, and the safety net's queue answers."""
    other = tmp_path / "other-secret"
    other.write_text("not-the-dialplans-secret-0123\n")
    agi_service(MONDAY_10AM, secret_file=other)
    logged_in("operator2")
    phones.start("frontdesk-maple", answers(after=0, hangup_after=1))
    phones.start("operator2", answers(after=1, hangup_after=2))

    call = place_call(f"agi{DID}")
    phones.wait_for("answered", call.caller, timeout=60)
    call.wait(timeout=60)

    # Not the front desk the routing core would have named: the safety net's queue.
    assert phones.answered_by(call.caller) == "operator2"
    assert phones.rang(call.caller) == ["operator2"]
    log = (tmp_path / "agi.log").read_text(encoding="utf-8")
    assert "wrong or missing COVERAGE_AGI_SECRET" in log


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
    bad = threading.Thread(target=asyncio.run, args=(_misbehave(),))
    bad.start()
    try:
        time.sleep(0.2)
        disturbed = time_to_ring()
    finally:
        bad.join(timeout=15)
    assert disturbed < baseline + 1.0, (baseline, disturbed)


# -- a rogue answer: whoever holds the port is not trusted ------------------------------


class RogueAgi:
    """A FastAGI 'service' on 127.0.0.1:4573 that answers every request with `variables`.

    What a process that grabbed the port while the real service restarted
    could do: set any channel variable to anything.
    """

    def __init__(self, variables: list[tuple[str, str]]) -> None:
        self.variables = variables
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(5)

    def _run(self) -> None:
        async def main() -> None:
            self.server = await asyncio.start_server(self._answer, "127.0.0.1", 4573)
            self.ready.set()
            await self.server.serve_forever()

        with contextlib.suppress(asyncio.CancelledError):
            self.loop.run_until_complete(main())
        self.loop.run_until_complete(self.server.wait_closed())

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()).strip():
            pass  # the AGI environment
        for name, value in self.variables:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            writer.write(f'SET VARIABLE {name} "{escaped}"\n'.encode())
            await writer.drain()
            await reader.readline()
        writer.close()

    def stop(self) -> None:
        def shut() -> None:
            self.server.close()
            for task in asyncio.all_tasks(self.loop):
                task.cancel()

        self.loop.call_soon_threadsafe(shut)
        self.thread.join(5)
        self.loop.close()


def answer(*steps: tuple[str, str], **extra: str) -> list[tuple[str, str]]:
    """Variables of a 'closed' decision with `steps` as (kind, dial), then `extra`, status last."""
    variables = [("COVERAGE_SHORT_NAME", "MGP"), ("COVERAGE_STEPS", str(len(steps)))]
    for n, (kind, dial) in enumerate(steps, start=1):
        variables += [
            (f"COVERAGE_STEP_{n}_KIND", kind),
            (f"COVERAGE_STEP_{n}_DIAL", dial),
            (f"COVERAGE_STEP_{n}_RING", "10"),
            (f"COVERAGE_STEP_{n}_CONFIRM", "0"),
        ]
    return [*variables, *extra.items(), ("COVERAGE_STATUS", "closed")]


QUEUE = ("operators", "answering")
ROGUE_ANSWERS = {
    # A Dial option that runs a subroutine on the callee, then a second leg.
    "dial-options": answer(("staff", "PJSIP/frontdesk-maple,10,U(coverage-operator-self^s^1)"),
                           QUEUE),
    "second-leg": answer(("oncall", "PJSIP/frontdesk-maple&PJSIP/+19005550100@carrier-out"),
                         QUEUE),
    # Characters a validated config produces, but a number no practice has.
    "toll-number": answer(("oncall", "PJSIP/+19005550100@carrier-out"), QUEUE),
    # A Local channel into the operators' feature codes (*22 logs out).
    "local-channel": answer(("staff", "Local/*22@coverage-operators"), QUEUE),
    # Values built to make GotoIf jump past the checks.
    "expression-jump": answer(('x" = "x"?ring:', "PJSIP/frontdesk-maple,1,U(x)"), QUEUE,
                              COVERAGE_ANNOUNCEMENT="beep&coverage/coverage-emergency,skip"),
    "queue-options": answer(("operators", "answering,,,,1,evil"), QUEUE),
    # Nothing usable at all, and a step count to spin on: the safety net.
    "nothing-usable": answer(("staff", "PJSIP/+19005550100@carrier-out"),
                             ("oncall", "Local/s@coverage-operators"),
                             COVERAGE_STEPS="99999999"),
}


@pytest.mark.usefixtures("agi_route")
@pytest.mark.parametrize("case", sorted(ROGUE_ANSWERS))
def test_a_rogue_answer_never_dials_outside_the_pattern_and_a_person_answers(
    case: str, phones: Phones, place_call: Callable[..., CallerHandle], sandbox: Sandbox,
    logged_in: Callable[[str], None],
) -> None:
    """Whatever the port holder answers, nothing outside the pattern is dialed; a person answers."""
    logged_in("operator2")
    phones.start("operator2", answers(after=1, hangup_after=2))
    phones.start("frontdesk-maple", answers(after=0, hangup_after=1))
    phones.start("carrier-out", answers(after=0, hangup_after=1))
    log_start = sandbox.log_path().stat().st_size
    rogue = RogueAgi(ROGUE_ANSWERS[case])
    try:
        call = place_call(f"agi{DID}")
        phones.wait_for("answered", call.caller, timeout=60)
        call.wait(timeout=60)
    finally:
        rogue.stop()

    assert phones.answered_by(call.caller) == "operator2"
    assert phones.calls("frontdesk-maple") == []
    assert phones.calls("carrier-out") == []
    with sandbox.log_path().open("rb") as handle:
        handle.seek(log_start)
        log = handle.read().decode(errors="replace")
    assert "refused a" in log or "no usable step" in log
    assert "] Dial(" not in log  # every dial string of these answers was refused
