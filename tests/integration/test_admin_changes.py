"""An admin's change reaches live calls: `override add` while the engine runs, then a SIPp call.

The engine (`coverage-engine run`) carries calls on the sandbox Asterisk; an
admin runs the command line in its own process, like at 6 a.m. from a
laptop. The command returns once the running engine confirms it loaded the
change, and the very next call follows it; the audit log has the change.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coverage_engine.journey import Outcome
from coverage_lab.engine_process import EngineProcess
from coverage_lab.phones import CallerHandle, Phones, answers, never_answers, wait_bridged
from coverage_lab.records import wait_for_journey
from coverage_lab.sandbox import AriCredentials

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHICAGO = ZoneInfo("America/Chicago")
MAPLE = "+13125550100"
CARRIER = "carrier-in"
OPERATORS = ("operator1", "operator2", "operator3")


def next_tuesday_night() -> datetime:
    """03:00 on a Tuesday at least a week ahead: closed, and still to come for the command."""
    day = (datetime.now(UTC) + timedelta(days=7)).astimezone(CHICAGO).date()
    day += timedelta(days=(1 - day.weekday()) % 7)
    return datetime(day.year, day.month, day.day, 3, 0, tzinfo=CHICAGO)


def coverage_engine(*args: str) -> subprocess.CompletedProcess[str]:
    """The command line, as an admin runs it from this checkout."""
    return subprocess.run(
        [sys.executable, "-m", "coverage_engine", *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip


@pytest.fixture
def engine(ari: AriCredentials, tmp_path: Path) -> Iterator[EngineProcess]:
    """The engine on a copy of config/coverage.yaml, its records and changes beside it."""
    config = tmp_path / "coverage.yaml"
    text = (ROOT / "config" / "coverage.yaml").read_text(encoding="utf-8")
    config.write_text(text.replace("../var/records.sqlite", "records.sqlite"), encoding="utf-8")
    proc = EngineProcess(config, ari_url=ari.url, ari_user=ari.user, ari_password=ari.password,
                         log_path=tmp_path / "engine.log", verbose=True)  # fmt: skip
    yield proc
    proc.stop()


def test_an_override_added_while_the_engine_runs_routes_the_next_call(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
) -> None:
    """Tuesday 03:00 is closed (announcement, operators). `override add --open` while the
    engine runs: the engine confirms, the call placed right after rings the front desk, and
    the audit log names who, why, before and after."""
    night = next_tuesday_night()
    engine.start(night)
    config = str(engine.config)
    explained = coverage_engine("explain", config, "--did", MAPLE, "--at", night.isoformat())
    assert "Status:   closed - outside hours" in explained.stdout
    phones.start("frontdesk-maple", answers(after=1, hangup_after=3))
    for op in OPERATORS:  # if the override were missed, nobody would take the queue
        phones.start(op, never_answers())

    added = coverage_engine(
        "override", "add", "--config", config, "--practice", "maple-grove", "--open",
        "--from", (night - timedelta(hours=1)).isoformat(),
        "--until", (night + timedelta(hours=5)).isoformat(),
        "--reason", "flu clinic opens early", "--by", "integration-test",
    )  # fmt: skip
    returned = time.monotonic()
    assert added.returncode == 0, added.stderr
    assert engine.proc is not None
    assert f"the running engine (pid {engine.proc.pid}) has it" in added.stdout
    call = place_call(MAPLE)
    placed_after = time.monotonic() - returned

    deadline = time.monotonic() + 20
    while phones.answered_by(call.caller) != "frontdesk-maple":
        assert time.monotonic() < deadline, f"the front desk did not answer: {phones.describe()}"
        time.sleep(0.1)
    wait_bridged(ari, CARRIER, "frontdesk-maple", timeout=10)
    assert phones.rang(call.caller) == ["frontdesk-maple"]
    journey = wait_for_journey(engine.config.parent / "records.sqlite", call.caller, timeout=20)
    assert journey.outcome is Outcome.ANSWERED_BY_STAFF
    assert (journey.status, journey.reason) == ("open", "override: flu clinic opens early")
    assert placed_after < 1.0  # the call followed the change within a second of the command

    log = coverage_engine("changes", "log", "--config", config, "--json")
    assert log.returncode == 0, log.stderr
    (entry,) = [json.loads(line) for line in log.stdout.splitlines()]
    assert (entry["action"], entry["by"], entry["via"], entry["why"]) == (
        "override.add", "integration-test", "cli", "flu clinic opens early",
    )  # fmt: skip
    assert entry["before"] is None
    assert entry["after"]["status"] == "open"
    assert entry["took_effect"] is True
