"""Two engines on one PBX: both take calls, one dies mid-call, the other carries it to the doctor.

Both engines run `coverage-engine run` against the sandbox with the same
configuration and one PostgreSQL database for their records (a throwaway
cluster). Calls enter through StasisBroadcast, so each engine wins some.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from coverage_engine.journey import Outcome
from coverage_lab.ari_http import AriCredentials
from coverage_lab.engine_process import EngineProcess
from coverage_lab.phones import CallerHandle, Phones, answers, never_answers, presses, wait_bridged
from coverage_lab.records import kinds, wait_for_journey
from coverage_lab.sandbox import Sandbox
from tests.integration.test_journeys import MAPLE, MAPLE_NIGHT, UNKNOWN, fast_config

pytestmark = pytest.mark.integration

OPERATORS = ("operator1", "operator2", "operator3")


def shared_config(path: Path, pg_url: str) -> Path:
    """The journeys' fast configuration, its records in the shared PostgreSQL database."""
    fast_config(path)
    text = path.read_text(encoding="utf-8").replace(
        "  path: records.sqlite", f"  url: {pg_url}\n  spool: spool-{path.stem}.db"
    )
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def engines(
    ari: AriCredentials, tmp_path: Path, pg_url: str
) -> Iterator[tuple[EngineProcess, EngineProcess]]:
    """Engines A (coverage-engine) and B (coverage-engine-b), one database, Tuesday 03:00."""
    pair = []
    for name, app in (("a", "coverage-engine"), ("b", "coverage-engine-b")):
        folder = tmp_path / name
        folder.mkdir()
        pair.append(
            EngineProcess(
                shared_config(folder / "coverage.yaml", pg_url),
                ari_url=ari.url,
                ari_user=ari.user,
                ari_password=ari.password,
                log_path=folder / "engine.log",
                app=app,
                verbose=True,
            )
        )
    a, b = pair
    try:
        a.start(MAPLE_NIGHT)
        b.start(MAPLE_NIGHT)
        yield a, b
    finally:
        a.stop()
        b.stop()


def log_lines(engine: EngineProcess, event: str) -> list[dict[str, object]]:
    """The engine's JSON log lines of one event."""
    found = []
    for line in engine.log().splitlines():
        if f'"{event}"' in line:
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def carries(engine: EngineProcess, caller: str) -> bool:
    """Whether this engine's log has the caller's arrival (its journey began there).

    Logs mask numbers to their last four digits; the test callers' numbers
    differ in those.
    """
    return any(
        line.get("journey_event") == "received" and str(line.get("caller")).endswith(caller[-4:])
        for line in log_lines(engine, "journey")
    )


def pbx_status(engine: EngineProcess, ari: AriCredentials) -> dict[str, Any]:
    """`coverage-engine status --json` as an admin would run it."""
    env = {**os.environ, "COVERAGE_ARI_URL": ari.url, "COVERAGE_ARI_USER": ari.user}
    env["COVERAGE_ARI_PASSWORD"] = ari.password
    command = [sys.executable, "-m", "coverage_engine", "status", "--json"]
    done = subprocess.run(
        [*command, "--config", str(engine.config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def when(line: dict[str, object]) -> float:
    """A log line's time, as seconds since the epoch."""
    return datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00")).timestamp()


def test_both_engines_take_calls_and_a_killed_ones_caller_reaches_the_doctor(
    engines: tuple[EngineProcess, EngineProcess],
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
    pg_url: str,
    sandbox: Sandbox,
) -> None:
    """Ten callers are shared between the two engines. Then, at night with nobody in the queue,
    the engine ringing Dr. Nguyen for a caller is SIGKILLed: within 3 s the other takes the call
    over, stops the old ring before ringing her again, and she answers and presses 1. One
    journey in PostgreSQL tells it all, timed from the caller's arrival."""
    a, b = engines
    for op in OPERATORS:
        phones.start(op, answers(after=1, hangup_after=1))
    callers = [place_call(UNKNOWN) for _ in range(10)]
    for call in callers:
        call.wait(timeout=60)
    shares = [sum(carries(e, c.caller) for c in callers) for e in (a, b)]
    assert sum(shares) == 10
    assert min(shares) > 0, f"both engines should win some calls, got {shares}"

    for op in OPERATORS:
        sandbox.cli(f"queue remove member PJSIP/{op} from answering")
    phones.stop_all()
    phones.start("nguyen", presses("1", after=6, delay=1, hangup_after=3))
    phones.start("okafor", never_answers())
    call = place_call(MAPLE)
    # During the announcement: who holds the call, as the engines and `status` see it (the
    # CLI can take seconds on a loaded machine; the kill must come right after her phone
    # rings, so that the take-over stops that ring before she answers it).
    deadline = time.monotonic() + 20
    while not (carries(a, call.caller) or carries(b, call.caller)):
        assert time.monotonic() < deadline, "neither engine took the call"
        time.sleep(0.1)
    holder, survivor = (a, b) if carries(a, call.caller) else (b, a)
    status = pbx_status(a, ari)
    assert {e["app"]: e["alive"] for e in status["engines"]} == {a.app: True, b.app: True}
    (held,) = [c for c in status["calls"] if str(c["caller"]).endswith(call.caller[-4:])]
    assert held["held_by"] == holder.app
    phones.wait_for("invite", call.caller, timeout=40)  # after the announcement
    assert phones.rang(call.caller) == ["nguyen"]
    killed_at = time.time()
    holder.kill()

    wait_bridged(ari, "carrier-in", "nguyen", timeout=40)
    result = call.wait(timeout=60)
    assert result.answered
    assert phones.answered_by(call.caller) == "nguyen"
    first, second = phones.calls("nguyen")
    assert first.outcome == "cancelled"  # the dead engine's ring, stopped by the survivor
    assert first.ended_at is not None
    assert first.ended_at <= second.invited_at  # never rung twice at once
    (takeover,) = [line for line in log_lines(survivor, "takeover") if line.get("calls")]
    assert when(takeover) - killed_at < 3.0

    journey = wait_for_journey(pg_url, call.caller, timeout=20)
    assert kinds(journey).count("received") == 1
    assert kinds(journey).count("decided") == 2  # the first engine's, the survivor's (resumed)
    assert journey.outcome is Outcome.ANSWERED_BY_ONCALL
    assert journey.answered_by == "nguyen"
    # Time to a person counts from the caller's arrival, not from the take-over.
    assert journey.time_to_person is not None
    assert second.answered_at is not None
    seen_by_caller = second.answered_at - result.started_at
    assert seen_by_caller - 1 <= journey.time_to_person.total_seconds() <= seen_by_caller + 5
