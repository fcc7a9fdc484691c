"""The dialplan's safety net, with no engine connected: a person still answers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coverage_engine.journey import Outcome
from coverage_lab.ari_http import AriCredentials
from coverage_lab.engine_process import EngineProcess
from coverage_lab.phones import (
    CallerHandle,
    Phones,
    answers,
    busy,
    never_answers,
    presses,
    voicemail,
    wait_bridged,
)
from coverage_lab.records import kinds, wait_for_journey
from coverage_lab.sandbox import Sandbox, project_root

pytestmark = pytest.mark.integration

OPERATORS = ("operator1", "operator2", "operator3")


def test_with_no_engine_a_call_reaches_the_operator_who_picks_up(
    phones: Phones, place_call: Callable[..., CallerHandle], ari: AriCredentials
) -> None:
    """No application on ARI: the call goes to the `answering` queue and is bridged to operator2."""
    phones.start("operator1", never_answers())
    phones.start("operator2", answers(after=1, hangup_after=3))
    phones.start("operator3", busy())

    # The safety net answers at once and plays the emergency notice (~8 s)
    # before the queue rings: the caller stays until the operator hangs up.
    call = place_call("+15550100")
    phones.wait_for("answered", call.caller, timeout=45)
    wait_bridged(ari, "carrier-in", "operator2", timeout=10)
    result = call.wait(timeout=60)

    assert result.answered
    assert phones.answered_by(call.caller) == "operator2"
    assert set(phones.rang(call.caller)) == set(OPERATORS)
    (operator2_call,) = phones.calls("operator2")
    assert operator2_call.ended_by == "phone"
    # The PBX hung up the caller when the operator did: they were bridged.
    assert result.ended_by == "remote"
    assert result.ended_at is not None
    assert operator2_call.ended_at is not None
    assert abs(result.ended_at - operator2_call.ended_at) < 1


@pytest.fixture
def no_operators_logged_in(sandbox: Sandbox) -> None:
    """Log the three operators out of `answering` (the fixtures log them in again after)."""
    for op in OPERATORS:
        sandbox.cli(f"queue remove member PJSIP/{op} from answering")
    assert "No Members" in sandbox.cli("queue show answering")


@pytest.mark.usefixtures("no_operators_logged_in")
def test_a_number_no_practice_has_reaches_the_fixed_line_once_it_presses_1(
    phones: Phones, place_call: Callable[..., CallerHandle], ari: AriCredentials
) -> None:
    """No practice to look up: after the empty queue, COVERAGE_FALLBACK_DIAL (patel) rings
    and is connected only after pressing 1, like every other number the safety net rings."""
    phones.start("patel", presses("1", after=1, delay=1, hangup_after=3))

    call = place_call("+15550100")
    phones.wait_for("answered", call.caller, timeout=45)
    wait_bridged(ari, "carrier-in", "patel", timeout=20)
    result = call.wait(timeout=60)

    assert result.ended_by == "remote"
    assert phones.answered_by(call.caller) == "patel"
    assert phones.rang(call.caller) == ["patel"]
    assert phones.calls("patel")[-1].digits == "1"


TUESDAY_NIGHT = datetime(2026, 12, 1, 3, 0, tzinfo=ZoneInfo("America/Chicago"))


@pytest.fixture
def night_engine(ari: AriCredentials, tmp_path: Path) -> EngineProcess:
    """An engine (not started) on the reference configuration, its records next to it."""
    config = tmp_path / "coverage.yaml"
    text = (project_root() / "config" / "coverage.yaml").read_text(encoding="utf-8")
    config.write_text(text.replace("../var/records.sqlite", "records.sqlite"), encoding="utf-8")
    return EngineProcess(
        config,
        ari_url=ari.url,
        ari_user=ari.user,
        ari_password=ari.password,
        log_path=tmp_path / "engine.log",
    )


@pytest.fixture
def table_published_for_tuesday_night(night_engine: EngineProcess) -> None:
    """An engine ran at Tuesday 03:00 (Nguyen on call, Okafor backup), published, and stopped.

    Its clock is started at that instant; the table it leaves is in the
    PBX's own time, so the dialplan reads it as "now".
    """
    night_engine.start(clock_start=TUESDAY_NIGHT)
    try:
        night_engine.wait_log("safety_net.published", timeout=20)
    finally:
        assert night_engine.stop() == 0
    assert not night_engine.app_registered()


@pytest.mark.usefixtures("no_operators_logged_in", "table_published_for_tuesday_night")
def test_with_no_engine_and_no_operator_the_night_doctor_answers_only_after_pressing_1(
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
    night_engine: EngineProcess,
) -> None:
    """Maple Grove at night, nobody in the queue, no engine: Nguyen (on call that night, not
    the fixed line) answers silently like a voicemail and is hung up; the backup, Okafor,
    presses 1 and gets the caller. The next engine to start writes the call's journey from
    the safety net's notes, marked as the safety net's."""
    phones.start("nguyen", voicemail(after=1))
    phones.start("okafor", presses("1", after=1, delay=1, hangup_after=3))
    phones.start("patel", answers(after=1))

    call = place_call("+13125550100")
    phones.wait_for("answered", call.caller, timeout=90)
    wait_bridged(ari, "carrier-in", "okafor", timeout=60)
    result = call.wait(timeout=120)

    assert result.ended_by == "remote"
    assert phones.answered_by(call.caller) == "okafor"
    assert phones.rang(call.caller) == ["nguyen", "okafor"]
    (nguyen,) = phones.calls("nguyen")
    (okafor,) = phones.calls("okafor")
    # The silent answer was hung up by the PBX, before the backup's phone rang.
    assert nguyen.answered
    assert nguyen.ended_by == "remote"
    assert nguyen.digits == ""
    assert nguyen.ended_at is not None
    assert nguyen.ended_at <= okafor.invited_at
    assert okafor.digits == "1"

    night_engine.start(clock_start=TUESDAY_NIGHT)
    try:
        journey = wait_for_journey(night_engine.config.parent / "records.sqlite", call.caller)
    finally:
        night_engine.stop()
    assert kinds(journey)[:2] == ["received", "safety_net"]
    assert "oncall_not_confirmed" in kinds(journey)
    assert journey.outcome is Outcome.ANSWERED_BY_ONCALL
    assert journey.answered_by == "okafor"


def test_an_operator_logs_out_with_star_22_and_the_queue_forgets_them(
    sandbox: Sandbox, place_call: Callable[..., CallerHandle]
) -> None:
    """operator2's phone dialing *22 removes operator2 (and only them) from `answering`."""
    assert "operator2" in sandbox.cli("queue show answering")

    result = place_call("*22", from_phone="operator2").wait(timeout=30)

    assert result.answered  # the confirmation prompt
    members = sandbox.cli("queue show answering")
    assert "operator2" not in members
    assert "operator1" in members
