"""`coverage-engine operators ...` against the in-memory FakeAmi (no PBX)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from coverage_engine.ami.client import Ami, AmiSettings
from coverage_engine.ami.presence import snapshot
from coverage_engine.cli import main, operators_cmds
from coverage_lab.fake_ami import FakeAmi


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeAmi:
    """One FakeAmi with queues `answering` and `overflow`, used by every CLI call of a test."""
    ami = FakeAmi(queues={"answering": {}, "overflow": {}})

    async def factory(_settings: AmiSettings) -> Ami:
        return ami

    monkeypatch.setattr(operators_cmds, "ami_factory", factory)
    monkeypatch.setenv("COVERAGE_AMI_USER", "coverage-engine")
    monkeypatch.setenv("COVERAGE_AMI_SECRET", "unused-by-the-fake")
    return ami


def listing(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert main(["operators", "list", "--json"]) == 0
    data: dict[str, object] = json.loads(capsys.readouterr().out)
    return data


def test_login_pause_unpause_logout_each_show_in_the_listing(
    fake: FakeAmi, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every change an operator makes is what `operators list` shows next."""
    assert main(["operators", "login", "operator1", "--queue", "answering"]) == 0
    assert "operator1 logged in to answering" in capsys.readouterr().out
    data = listing(capsys)
    assert data["answering"]["available"] == 1  # type: ignore[index]

    assert main(["operators", "pause", "operator1", "--reason", "lunch"]) == 0
    member = listing(capsys)["answering"]["members"][0]  # type: ignore[index]
    assert (member["state"], member["reason"]) == ("paused (lunch)", "lunch")

    assert main(["operators", "unpause", "operator1"]) == 0
    assert listing(capsys)["answering"]["members"][0]["state"] == "available"  # type: ignore[index]

    assert main(["operators", "logout", "operator1"]) == 0
    assert "logged out of answering" in capsys.readouterr().out
    assert listing(capsys)["answering"]["members"] == []  # type: ignore[index]


def test_logout_without_a_queue_leaves_every_queue(fake: FakeAmi) -> None:
    """An operator in two queues who logs out is removed from both."""
    for queue in ("answering", "overflow"):
        assert main(["operators", "login", "operator2", "--queue", queue]) == 0
    assert main(["operators", "logout", "operator2"]) == 0
    assert fake.queues == {"answering": {}, "overflow": {}}


@pytest.mark.parametrize(
    "argv",
    [
        ["operators", "pause", "operator1", "--reason", "lunch\r\nAction: Originate"],
        ["operators", "login", "operator1\r\nAction: Originate", "--queue", "answering"],
        ["operators", "login", "operator1", "--queue", "answering,evil"],
        ["operators", "login", "../operator1", "--queue", "answering"],
    ],
)
def test_input_that_could_inject_ami_headers_is_refused(
    fake: FakeAmi, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Names and reasons with line breaks or odd characters never reach Asterisk."""
    assert main(argv) == 1
    assert "not valid" in capsys.readouterr().err or fake.actions == []
    assert [a for a in fake.actions if a[0] != "QueueStatus"] == []


def test_asterisk_errors_are_one_line_messages(
    fake: FakeAmi, capsys: pytest.CaptureFixture[str]
) -> None:
    """Logging out someone who is not logged in exits 1 with a sentence, not a traceback."""
    assert main(["operators", "logout", "operator3"]) == 1
    err = capsys.readouterr().err
    assert "operator3 is not logged in to any queue" in err
    assert "Traceback" not in err


def test_the_table_names_state_calls_and_idle_time() -> None:
    """The human listing shows each operator's state, calls taken and idle minutes."""
    presence = snapshot(
        [
            {"Event": "QueueParams", "Queue": "answering"},
            {
                "Event": "QueueMember",
                "Queue": "answering",
                "Name": "operator1",
                "Location": "PJSIP/operator1",
                "Status": "1",
                "Paused": "1",
                "PausedReason": "break",
                "CallsTaken": "4",
                "LastCall": "1700000000",
            },
            {
                "Event": "QueueMember",
                "Queue": "answering",
                "Name": "operator2",
                "Location": "PJSIP/operator2",
                "Status": "2",
                "Paused": "0",
                "InCall": "1",
            },
        ]
    )
    text = operators_cmds.render_listing(
        presence, datetime.fromtimestamp(1700000000 + 65 * 60, tz=UTC)
    )
    assert "answering: 2 logged in, 1 taking calls, 1 paused, 0 waiting" in text
    assert "paused (break)  4      1h05m" in text
    assert "on a call" in text


def test_names_and_reasons_from_ami_are_shown_escaped() -> None:
    """A member name or pause reason set by someone else cannot drive the supervisor's terminal."""
    presence = snapshot(
        [
            {"Event": "QueueParams", "Queue": "answering"},
            {
                "Event": "QueueMember",
                "Queue": "answering",
                "Name": "op\x1b]0;owned\x07",
                "Location": "PJSIP/operator1",
                "Status": "1",
                "Paused": "1",
                "PausedReason": "lunch\x1b[2J",
            },
        ]
    )
    text = operators_cmds.render_listing(presence, datetime.fromtimestamp(1700000000, tz=UTC))
    assert all(line.isprintable() for line in text.splitlines())
    assert "op\\x1b]0;owned\\x07" in text
    assert "paused (lunch\\x1b[2J)" in text
