"""The dialplan's safety net, with no engine connected: a person still answers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from coverage_lab.ari_http import AriCredentials
from coverage_lab.phones import (
    CallerHandle,
    Phones,
    answers,
    busy,
    never_answers,
    wait_bridged,
)
from coverage_lab.sandbox import Sandbox

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
def test_with_no_engine_and_no_operators_the_on_call_number_answers(
    phones: Phones, place_call: Callable[..., CallerHandle], ari: AriCredentials
) -> None:
    """An empty operator queue does not hold the caller: the on-call line (patel) rings."""
    phones.start("patel", answers(after=1, hangup_after=2))

    call = place_call("+15550100")
    phones.wait_for("answered", call.caller, timeout=45)
    wait_bridged(ari, "carrier-in", "patel", timeout=10)
    result = call.wait(timeout=60)

    assert result.ended_by == "remote"
    assert phones.answered_by(call.caller) == "patel"
    assert phones.rang(call.caller) == ["patel"]


def test_an_operator_logs_out_with_star_22_and_the_queue_forgets_them(
    sandbox: Sandbox, place_call: Callable[..., CallerHandle]
) -> None:
    """operator2's phone dialing *22 removes operator2 (and only them) from `answering`."""
    assert "operator2" in sandbox.cli("queue show answering")

    result = place_call("*22", caller="operator2").wait(timeout=30)

    assert result.answered  # the confirmation prompt
    members = sandbox.cli("queue show answering")
    assert "operator2" not in members
    assert "operator1" in members
