"""The ARI engine follows operator presence over AMI, and briefs the operator (real PBX)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from coverage_engine import routing
from coverage_engine.config import load_config
from coverage_engine.journey import (
    Bridged,
    EventKind,
    Journey,
    OperatorAnswered,
    OperatorsSkipped,
)
from coverage_engine.plan import StepKind
from coverage_engine.records import JourneyFilter
from coverage_engine.records.sqlite import RecordStore, records_path
from coverage_lab.ari_http import AriCredentials
from coverage_lab.phones import (
    CallerHandle,
    Phones,
    answers,
    invite_display_names,
    never_answers,
    presses,
)
from coverage_lab.sandbox import AmiCredentials, Sandbox

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "coverage.yaml"
DID = "+13125550100"  # Maple Grove Pediatrics, short name MGP
# Monday 03:00 in Chicago: closed; the plan starts with the operators, then Dr. Patel.
MONDAY_3AM = datetime(2026, 11, 30, 3, 0, tzinfo=ZoneInfo("America/Chicago"))


def unique_number() -> str:
    """A caller number no other test used, so this call's record is found unambiguously.

    (The engine takes on calls earlier tests left in the application, and the
    default test numbers restart in every test.)
    """
    return f"+1555{time.time_ns() // 1000 % 10**7:07d}"


class EngineProcess:
    """`coverage-engine run` as a subprocess: its JSON log lines and its call records."""

    def __init__(
        self, log_file: Path, proc: subprocess.Popen[bytes], records: Path, config: Path
    ) -> None:
        self.config = config  # the configuration file the engine runs with
        self.log_file = log_file
        self.proc = proc
        self.records = records

    def journey_of(self, caller: str, until: EventKind) -> Journey:
        """The one call record of `caller`, once it holds an `until` event (or after 10 s)."""
        deadline = time.monotonic() + 10
        while True:
            with RecordStore.open(self.records) as store:
                found = store.journeys(JourneyFilter(caller=caller), events=True)
            done = found and any(e.name == until for e in found[0].events)
            if done or time.monotonic() > deadline:
                assert len(found) == 1, found
                return found[0]
            time.sleep(0.2)

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_file.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def wait_for(self, event: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("event") == event for e in self.lines()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise TimeoutError(f"engine never logged {event}: {self.log_file.read_text()}")
            time.sleep(0.1)


@pytest.fixture
def engine(
    ari: AriCredentials, ami_env: AmiCredentials, tmp_path: Path
) -> Iterator[EngineProcess]:
    """The engine on the sandbox, AMI on, its clock started at Monday 03:00 Chicago."""
    with _engine_process(ari, tmp_path, lambda text: text) as process:
        yield process


# Maple Grove's closed chain as shipped, and a variant that rings Dr. Patel
# before the operators: the call spends a while with a doctor before any queue.
CLOSED_CHAIN = """\
        - {to: operators, max_wait_seconds: 90}
        - {to: oncall_primary, ring_seconds: 25, confirm: true}   # must press 1
"""
DOCTOR_FIRST_CHAIN = """\
        - {to: oncall_primary, ring_seconds: 8, confirm: true}
        - {to: operators, max_wait_seconds: 90}
"""


@pytest.fixture
def engine_doctor_first(
    ari: AriCredentials, ami_env: AmiCredentials, tmp_path: Path
) -> Iterator[EngineProcess]:
    """The engine as `engine`, with Maple Grove's closed chain starting with Dr. Patel (8 s)."""

    def doctor_first(text: str) -> str:
        assert CLOSED_CHAIN in text
        return text.replace(CLOSED_CHAIN, DOCTOR_FIRST_CHAIN)

    with _engine_process(ari, tmp_path, doctor_first) as process:
        yield process


@contextlib.contextmanager
def _engine_process(
    ari: AriCredentials, tmp_path: Path, edit: Callable[[str], str]
) -> Iterator[EngineProcess]:
    """`coverage-engine run` on a copy of the reference config changed by `edit`."""
    env = {
        **os.environ,
        "COVERAGE_ARI_URL": ari.url,
        "COVERAGE_ARI_USER": ari.user,
        "COVERAGE_ARI_PASSWORD": ari.password,
        "COVERAGE_ENGINE_ALLOW_CLOCK_OVERRIDE": "1",
    }
    # A copy of the reference config, so the call records land in tmp_path/var,
    # with Maple Grove's whisper prompt for the operator switched on.
    config = tmp_path / "coverage.yaml"
    whisper = "whisper: coverage/whisper-mgp"
    text = CONFIG.read_text(encoding="utf-8")
    assert f"# {whisper}" in text
    config.write_text(edit(text.replace(f"# {whisper}", whisper)), encoding="utf-8")
    log_file = tmp_path / "engine.log"
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "coverage_engine", "run", "--config", str(config),
             "--clock-start", MONDAY_3AM.isoformat()],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    settings = load_config(config).records
    records = records_path(settings.path if settings else None, config)
    engine = EngineProcess(log_file, proc, records, config)
    try:
        engine.wait_for("ari_connected")
        engine.wait_for("ami.presence_synced")
        yield engine
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.usefixtures("no_operators")
def test_with_nobody_logged_in_a_closed_call_goes_straight_to_the_doctor(
    engine: EngineProcess, phones: Phones, place_call: Callable[..., CallerHandle]
) -> None:
    """Zero operators: Dr. Patel rings without a queue wait, and the journey says why."""
    plan = routing.decide(load_config(CONFIG), MONDAY_3AM, DID)
    assert plan.steps[0].kind is StepKind.OPERATORS  # what presence lets the caller skip
    doctor = next(s.target for s in plan.steps if s.kind is StepKind.ONCALL)
    # The caller is answered at once (announcement); the doctor ends the call.
    phones.start(doctor, presses("1", after=1, delay=1, hangup_after=3))
    call = place_call(DID, caller=unique_number())
    call.wait(timeout=90)
    # The engine's leg to the doctor carries its own caller ID, so the phone
    # is asked directly: it was the one and only phone rung, and it answered.
    (doctor_call,) = phones.calls(doctor)
    assert doctor_call.answered
    assert doctor_call.digits == "1"
    journey = engine.journey_of(call.caller, until=EventKind.BRIDGED)
    (skipped,) = [e.event for e in journey.events if isinstance(e.event, OperatorsSkipped)]
    assert skipped.reason == "no operator logged in to queue answering"
    assert EventKind.QUEUE_ENTERED not in [e.name for e in journey.events]
    (bridged,) = [e.event for e in journey.events if isinstance(e.event, Bridged)]
    assert (bridged.step_kind, bridged.target) == (StepKind.ONCALL, doctor)


def test_with_one_operator_logged_in_the_operator_answers_and_sees_the_practice(
    engine: EngineProcess, phones: Phones, place_call: Callable[..., CallerHandle],
    logged_in: Callable[[str], None], sandbox: Sandbox,
) -> None:
    """operator1 logged in: rings with "MGP: Jane Doe", hears the whisper; the journey names it."""
    log_start = sandbox.log_path().stat().st_size
    logged_in("operator1")
    time.sleep(0.5)  # the engine's presence follows the QueueMemberAdded event
    # The whisper (about 2 s) plays before the bridge: the operator stays past it.
    phones.start("operator1", answers(after=1, hangup_after=6))
    call = place_call(DID, caller=unique_number(), caller_name="Jane Doe")
    call.wait(timeout=90)
    (operator_call,) = phones.calls("operator1")
    assert operator_call.answered
    assert invite_display_names(phones["operator1"].events_file) == ["MGP: Jane Doe"]
    # The tag is for the operator only: nothing the caller received carries it.
    seen_by_caller = (call.workdir / f"caller-{call.caller}.messages.log").read_text(
        encoding="utf-8", errors="replace"
    )
    assert "SIP/2.0 200 OK" in seen_by_caller  # the log holds what the caller received
    assert "MGP:" not in seen_by_caller
    # The whisper prompt played on the operator's channel, never on the caller's.
    with sandbox.log_path().open(encoding="utf-8", errors="replace") as log:
        log.seek(log_start)
        plays = [line for line in log if "Playing 'coverage/whisper-mgp" in line]
    assert plays, "the whisper prompt was not played"
    assert all("<PJSIP/operator1-" in line for line in plays), plays
    journey = engine.journey_of(call.caller, until=EventKind.OPERATOR_ANSWERED)
    (answered,) = [e.event for e in journey.events if isinstance(e.event, OperatorAnswered)]
    assert answered.member == "PJSIP/operator1"


def test_operators_who_log_out_while_the_doctor_rings_are_skipped_before_the_queue(
    engine_doctor_first: EngineProcess, phones: Phones, sandbox: Sandbox,
    place_call: Callable[..., CallerHandle], logged_in: Callable[[str], None],
) -> None:
    """operator1 logs out while Dr. Patel rings unanswered: the backup, not an empty queue."""
    engine = engine_doctor_first
    logged_in("operator1")
    time.sleep(0.5)  # the engine's presence follows the QueueMemberAdded event
    config = load_config(engine.config)
    plan = routing.decide(config, MONDAY_3AM, DID)
    kinds = [s.kind for s in plan.steps]
    assert kinds == [StepKind.ONCALL, StepKind.OPERATORS, StepKind.ONCALL, StepKind.OPERATORS]
    primary, backup = plan.steps[0].target, plan.steps[2].target
    phones.start(primary, never_answers())
    phones.start(backup, presses("1", after=1, delay=1, hangup_after=3))
    phones.start("operator1", answers(after=1, hangup_after=3))
    call = place_call(DID, caller=unique_number())
    # The queue was staffed when the call arrived, so it stayed in the plan ...
    engine.journey_of(call.caller, until=EventKind.ONCALL_DIALING)
    sandbox.cli(f"queue remove member PJSIP/operator1 from {plan.steps[1].target}")
    call.wait(timeout=90)
    # ... and was passed over when the caller got there: the operator never rang.
    assert phones.calls("operator1") == []
    (backup_call,) = phones.calls(backup)
    assert backup_call.answered
    journey = engine.journey_of(call.caller, until=EventKind.BRIDGED)
    assert "operators skipped" not in journey.reason
    kinds_seen = [e.name for e in journey.events]
    assert EventKind.QUEUE_ENTERED not in kinds_seen
    (skipped,) = [e.event for e in journey.events if isinstance(e.event, OperatorsSkipped)]
    assert skipped.reason == "no operator logged in to queue answering"
    (bridged,) = [e.event for e in journey.events if isinstance(e.event, Bridged)]
    assert (bridged.step_kind, bridged.target) == (StepKind.ONCALL, backup)
