"""Operators log in, pause, unpause and log out: through the CLI and from their phone (real PBX)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from coverage_engine.cli import main
from coverage_lab.phones import CallerHandle

pytestmark = pytest.mark.integration

Q = "answering"


def listing(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, str]]:
    """`operators list --json` for the `answering` queue: member name -> its JSON."""
    capsys.readouterr()
    assert main(["operators", "list", "--queue", Q, "--json"]) == 0
    queue = json.loads(capsys.readouterr().out)[Q]
    return {m["name"]: m for m in queue["members"]}


def eventually(capsys: pytest.CaptureFixture[str],
               check: Callable[[dict[str, dict[str, str]]], bool],
               timeout: float = 10.0) -> dict[str, dict[str, str]]:
    """Poll `operators list` until `check` holds (a phone's feature code takes a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        members = listing(capsys)
        if check(members) or time.monotonic() > deadline:
            return members
        time.sleep(0.3)


@pytest.mark.usefixtures("operators_ami_env")
def test_cli_login_pause_unpause_logout_show_in_operators_list(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each CLI action on operator2 is what `operators list` shows next, on the real queue."""
    assert "operator2" not in listing(capsys)

    assert main(["operators", "login", "operator2", "--queue", Q]) == 0
    assert listing(capsys)["operator2"]["paused"] is False

    assert main(["operators", "pause", "operator2", "--queue", Q, "--reason", "lunch"]) == 0
    member = listing(capsys)["operator2"]
    assert (member["paused"], member["reason"]) == (True, "lunch")
    assert member["state"] == "paused (lunch)"

    assert main(["operators", "unpause", "operator2", "--queue", Q]) == 0
    assert listing(capsys)["operator2"]["paused"] is False

    assert main(["operators", "logout", "operator2", "--queue", Q]) == 0
    assert "operator2" not in listing(capsys)


@pytest.mark.usefixtures("operators_ami_env")
def test_a_second_login_is_refused_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    """Logging in twice exits 1 with Asterisk's reason; the member stays logged in once."""
    assert main(["operators", "login", "operator3", "--queue", Q]) == 0
    try:
        capsys.readouterr()
        assert main(["operators", "login", "operator3", "--queue", Q]) == 1
        assert "coverage-engine operators:" in capsys.readouterr().err
        assert list(listing(capsys)) == ["operator3"]
    finally:
        main(["operators", "logout", "operator3", "--queue", Q])


@pytest.mark.usefixtures("operators_ami_env")
def test_feature_codes_from_the_operator_phone(
    capsys: pytest.CaptureFixture[str], place_call: Callable[..., CallerHandle]
) -> None:
    """operator1 dials *21, *23, *24, *22 from its own phone; the queue follows each."""

    def dial(code: str) -> None:
        # The operator's phone (authenticated as operator1) dials the code;
        # the PBX answers, plays a short confirmation and hangs up.
        result = place_call(code, from_phone="operator1").wait(timeout=30)
        assert result.answered, f"{code} was not answered: {result}"

    dial("*21")
    members = eventually(capsys, lambda m: "operator1" in m)
    assert members["operator1"]["paused"] is False
    dial("*23")
    assert eventually(capsys, lambda m: m["operator1"]["paused"])["operator1"]["paused"]
    dial("*24")
    assert not eventually(capsys, lambda m: not m["operator1"]["paused"])["operator1"]["paused"]
    dial("*22")
    assert "operator1" not in eventually(capsys, lambda m: "operator1" not in m)
