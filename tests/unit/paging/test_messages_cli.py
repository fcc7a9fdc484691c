"""`coverage-engine messages list|show|ack|resend` on a real record file."""

from __future__ import annotations

from pathlib import Path

import pytest

from coverage_engine.cli import main
from coverage_engine.records.pages import PageStore
from coverage_engine.records.sqlite import open_database
from tests.unit.paging.support import events_of, page_events, take_message

CALL = "1764579600.7"


@pytest.fixture
def records(tmp_path: Path) -> Path:
    path = tmp_path / "records.sqlite"
    take_message(path, CALL)
    return path


def test_list_shows_the_message_and_its_page(
    records: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line: the call, the practice, urgent, unread, and paging with nothing sent yet."""
    assert main(["messages", "list", "--db", str(records)]) == 0
    out = capsys.readouterr().out
    assert CALL in out
    assert "maple-grove" in out
    assert "urgent" in out
    assert "paging (0 sent)" in out


def test_ack_stops_the_paging_and_is_on_the_record(
    records: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The supervisor acknowledges from a terminal: the page is closed, the event names the way."""
    assert main(["messages", "ack", CALL, "--db", str(records)]) == 0
    conn = open_database(records, create=False)
    page = PageStore(conn).get(CALL)
    conn.close()
    assert page is not None
    assert page.state == "acknowledged"
    acks = [d for k, d in events_of(records, CALL) if k == "message_acknowledged"]
    assert acks[0]["via"] == "command line"


def test_resend_of_an_acknowledged_message_is_refused_clearly(
    records: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing to resend once acknowledged: exit 2 and a sentence saying why."""
    main(["messages", "ack", CALL, "--db", str(records)])
    assert main(["messages", "resend", CALL, "--db", str(records)]) == 2
    assert "nothing to resend" in capsys.readouterr().err


def test_resend_starts_the_ladder_again(records: Path) -> None:
    """A resend is a new page request on the record, due now."""
    assert main(["messages", "resend", CALL, "--db", str(records)]) == 0
    whys = [d["why"] for k, d in page_events(records, CALL) if k == "page_requested"]
    assert whys[0] == "taken"
    assert whys[1].startswith("resent by ")


def test_show_of_an_unknown_message_is_a_clear_error(
    records: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A call id with no message: exit 2, one line."""
    assert main(["messages", "show", "nope", "--db", str(records)]) == 2
    assert "there is no message on call nope" in capsys.readouterr().err
