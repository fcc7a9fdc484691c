"""SIGKILL of the engine while a caller waits in the operator queue (sandbox PBX, real engine)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coverage_engine.journey import EventKind, Outcome
from coverage_lab.ari_http import AriCredentials
from coverage_lab.engine_process import EngineProcess
from coverage_lab.phones import CallerHandle, Phones, never_answers
from coverage_lab.records import kinds, wait_for_journey
from coverage_lab.sandbox import Sandbox
from tests.unit.test_run import config_in

pytestmark = pytest.mark.integration

# Monday 03:00 in Chicago: Maple Grove is closed; after the announcement the
# caller waits in the `answering` queue for up to 90 s.
MONDAY_3AM = datetime(2026, 11, 30, 3, 0, tzinfo=ZoneInfo("America/Chicago"))
MAPLE_DID = "+13125550100"
OPERATORS = ("operator1", "operator2", "operator3")


@pytest.fixture
def hang_up_everyone(sandbox: Sandbox) -> Iterator[None]:
    """Hang up every channel when the test ends.

    Stopping a SIPp caller does not send a BYE: without this the caller would
    stay in the `answering` queue and ring the next test's operators.
    """
    yield
    sandbox.cli("channel request hangup all")
    deadline = time.monotonic() + 10
    while "0 active channels" not in sandbox.cli("core show channels count"):
        if time.monotonic() > deadline:
            raise TimeoutError("channels left in the sandbox after the test")
        time.sleep(0.2)


@pytest.fixture
def engine(
    ari: AriCredentials, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EngineProcess]:
    """A `coverage-engine run` child on the sandbox, records in tmp_path; stopped at the end."""
    monkeypatch.setenv("COVERAGE_METRICS_PORT", "0")
    process = EngineProcess(
        config_in(tmp_path),
        ari_url=ari.url,
        ari_user=ari.user,
        ari_password=ari.password,
        log_path=tmp_path / "engine.log",
        app=ari.app,
    )
    yield process
    process.stop()


@pytest.mark.usefixtures("hang_up_everyone")
def test_sigkill_while_queued_keeps_every_event_and_the_restart_closes_the_journey(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[[str], CallerHandle],
    tmp_path: Path,
) -> None:
    """Killed with the caller in the queue: after restart the journey is whole and closed."""
    for operator in OPERATORS:
        phones.start(operator, never_answers())
    db = tmp_path / "records.sqlite"
    engine.start(MONDAY_3AM)

    call = place_call(MAPLE_DID)
    queued = wait_for_journey(db, call.caller, lambda j: EventKind.QUEUE_ENTERED in kinds(j))
    engine.kill()
    assert engine.proc is not None
    assert engine.proc.returncode == -9

    engine.start()
    closed = wait_for_journey(db, call.caller, lambda j: j.outcome is not None)
    assert closed.events[: len(queued.events)] == queued.events
    assert kinds(closed) == [
        EventKind.RECEIVED,
        EventKind.DECIDED,
        EventKind.ANNOUNCEMENT_PLAYED,
        EventKind.QUEUE_ENTERED,
        EventKind.ENGINE_RESTARTED,
        EventKind.ENDED,
    ]
    assert closed.outcome is Outcome.FAILED_OVER_TO_DIALPLAN
    assert (closed.practice, closed.status, closed.did) == ("maple-grove", "closed", MAPLE_DID)
    # The caller was never dropped: the call is still up, waiting in Asterisk's queue.
    assert call.proc.poll() is None
    assert call.result().answered
    assert call.caller not in engine.log()
