"""`coverage-engine calls ...` and `report` against a real record file."""

from __future__ import annotations

import csv
import io
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coverage_engine.cli import calls_cmds, main
from coverage_engine.journey import Bridged, Ended, EventKind, Outcome, Received, parse_event
from coverage_engine.plan import StepKind
from coverage_engine.records import acknowledged
from coverage_engine.records.sqlite import RecordStore, SqliteRecorder, records_path

MARCH = datetime(2026, 3, 10, 7, 30, tzinfo=UTC)
APRIL = datetime(2026, 4, 2, 3, 0, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> Path:
    """A record file with three calls: two in March (maple, oak) and one in April (maple)."""
    path = tmp_path / "calls.db"
    rec, _ = SqliteRecorder.open(path, now=MARCH)
    calls = [
        ("m1", MARCH, "maple", "+15557654321", Outcome.ANSWERED_BY_OPERATOR, 12),
        ("o1", MARCH + timedelta(hours=1), "oak", "+15550001111", Outcome.ABANDONED_IN_QUEUE, None),
        ("m2", APRIL, "maple", "+15559998888", Outcome.ANSWERED_BY_ONCALL, 45),
    ]
    for call_id, at, practice, caller, outcome, ttp in calls:
        acks = [
            rec.write(call_id, at, Received("+15550100", caller, "PAT")),
            rec.write(
                call_id,
                at,
                parse_event(
                    EventKind.DECIDED, {"practice": practice, "status": "closed", "reason": "night"}
                ),
            ),
        ]
        if ttp is not None:
            answered = at + timedelta(seconds=ttp)
            acks.append(rec.write(call_id, answered, Bridged(StepKind.OPERATORS, "op1")))
        acks.append(rec.write(call_id, at + timedelta(seconds=90), Ended(outcome)))
        await acknowledged(*acks)
    rec.close()
    return path


LIST_CASES: list[tuple[list[str], list[str]]] = [
    ([], ["m1", "o1", "m2"]),
    (["--month", "2026-03"], ["m1", "o1"]),
    (["--since", "2026-04-01"], ["m2"]),
    (["--until", "2026-03-10T08:00:00+00:00"], ["m1"]),
    (["--practice", "maple"], ["m1", "m2"]),
    (["--outcome", "abandoned_in_queue"], ["o1"]),
    (["--caller", "8888"], ["m2"]),
    # 2026-04-02 03:00 UTC is still April 1 in Los Angeles, and after its midnight.
    (["--since", "2026-04-01", "--until", "2026-04-02", "--tz", "America/Los_Angeles"], ["m2"]),
]


@pytest.mark.parametrize(("options", "expected"), LIST_CASES)
def test_list_filters(
    db: Path, options: list[str], expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`calls list` picks the calls matching each filter, oldest first."""
    assert main(["calls", "list", "--db", str(db), "--json", *options]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["call_id"] for line in lines] == expected


def test_list_table_shows_caller_outcome_and_time(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table has a header and one line per call with its outcome and time to a person."""
    assert main(["calls", "list", "--db", str(db), "--practice", "maple"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["started", "call"]
    assert "+15557654321" in lines[1]
    assert "answered_by_operator" in lines[1]
    assert "12.0s" in lines[1]


def test_show_prints_the_timeline(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`calls show` gives the caller, the decision, the outcome and every event in order."""
    assert main(["calls", "show", "m1", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "outcome     answered_by_operator" in out
    assert "decision    night" in out
    kinds = [line.split()[2] for line in out.splitlines() if line.startswith("  07:")]
    assert kinds == ["received", "decided", "bridged", "ended"]


def test_show_an_unknown_call_is_a_finding(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Asking for a call id that is not recorded exits 1 and says how to find ids."""
    assert main(["calls", "show", "nope", "--db", str(db)]) == 1
    assert "calls list" in capsys.readouterr().err


def test_export_a_month_as_csv(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A month exports as CSV with the whole caller number (as spreadsheet text) and the events."""
    assert main(["calls", "export", "--db", str(db), "--month", "2026-03"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["call_id"] for r in rows] == ["m1", "o1"]
    assert rows[0]["caller_number"] == "'+15557654321"
    assert rows[0]["events"] == "received decided bridged ended"
    assert rows[0]["time_to_person_s"] == "12.0"


def test_export_jsonl_to_an_owner_only_file(db: Path, tmp_path: Path) -> None:
    """`--output` writes JSON lines with events to a file only its owner can read."""
    out = tmp_path / "march.jsonl"
    assert (
        main(["calls", "export", "--db", str(db), "--format", "jsonl", "--output", str(out)]) == 0
    )
    journeys = [json.loads(line) for line in out.read_text().splitlines()]
    assert [j["call_id"] for j in journeys] == ["m1", "o1", "m2"]
    assert [e["kind"] for e in journeys[0]["events"]] == ["received", "decided", "bridged", "ended"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_purge_deletes_and_is_audited(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dry run changes nothing; a purge deletes older calls and leaves an audit entry."""
    now = datetime(2026, 5, 1, tzinfo=UTC)
    monkeypatch.setattr(calls_cmds, "clock", lambda: now)
    assert main(["calls", "purge", "--db", str(db), "--before", "2026-04-01", "--dry-run"]) == 0
    assert "2 calls" in capsys.readouterr().out
    assert main(["calls", "purge", "--db", str(db), "--before", "2026-04-01"]) == 0
    assert "deleted 2 calls" in capsys.readouterr().out
    with RecordStore.open(db) as store:
        assert [j.call_id for j in store.journeys()] == ["m2"]
        (entry,) = store.audit()
    assert (entry.at, entry.action, entry.details["journeys"]) == (now, "purge", 2)


def test_report_json_per_practice_and_month(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`report --json` gives one row per practice and month with its figures."""
    assert main(["report", "--db", str(db), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    summary = [
        (r["practice"], r["period"], r["calls"], r["abandoned"], r["service_level"]) for r in rows
    ]
    assert summary == [
        ("maple", "2026-03", 1, 0, 1.0),
        ("maple", "2026-04", 1, 0, 0.0),  # 45 s: answered, but not within 30 s
        ("oak", "2026-03", 1, 1, 0.0),
    ]


def test_report_text_is_readable(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The text report names each figure in words."""
    assert main(["report", "--db", str(db), "--practice", "oak", "--period", "all"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "oak  all"
    assert "abandoned             1 (100.0%)" in out
    assert "service level         0.0% answered within 30s" in out


ERROR_CASES: list[tuple[list[str], int, str]] = [
    (["calls", "list", "--since", "last tuesday"], 2, "is not a date"),
    (["calls", "list", "--month", "March"], 2, "expected YYYY-MM"),
    (["calls", "list", "--tz", "Mars/Olympus"], 2, "unknown time zone"),
    (["calls", "list", "--month", "2026-03", "--since", "2026-03-01"], 2, "either --month"),
]


@pytest.mark.parametrize(("argv", "code", "message"), ERROR_CASES)
def test_bad_options_are_usage_errors(
    db: Path, argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad date, month or zone exits 2 with a message saying what was expected."""
    assert main([*argv, "--db", str(db)]) == code
    assert message in capsys.readouterr().err


def test_a_missing_record_file_names_records_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pointing at a file that does not exist exits 1 and creates nothing."""
    assert main(["calls", "list", "--db", str(tmp_path / "none.db")]) == 1
    assert "records.path" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


REFERENCE = Path(__file__).resolve().parents[2] / "config" / "coverage.yaml"


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        (None, "conf/calls.db"),
        ("records.db", "conf/records.db"),
        ("../var/records.sqlite", "conf/../var/records.sqlite"),
        ("/srv/records.db", "/srv/records.db"),
    ],
)
def test_records_path_is_relative_to_the_config_file(
    tmp_path: Path, configured: str | None, expected: str
) -> None:
    """A relative records.path is read from the config file's folder, not the working directory."""
    found = records_path(configured, tmp_path / "conf" / "coverage.yaml")
    assert found == (Path(expected) if expected.startswith("/") else tmp_path / expected)


def test_config_option_finds_the_records(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--config FILE` reads records.path from the coverage config."""
    text = REFERENCE.read_text().replace("path: ../var/records.sqlite", f"path: {db.name}")
    config = db.parent / "coverage.yaml"
    config.write_text(text)
    assert main(["calls", "list", "--config", str(config), "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_an_invalid_config_is_reported_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config that does not validate exits 1 and says which file is wrong."""
    config = tmp_path / "coverage.yaml"
    config.write_text("version: 7\n")
    assert main(["calls", "list", "--config", str(config)]) == 1
    assert "is not a valid config" in capsys.readouterr().err
