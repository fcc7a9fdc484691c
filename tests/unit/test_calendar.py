"""`coverage-engine calendar`: ranges per day, who answers, gaps flagged loudly."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from coverage_engine.cli import main
from coverage_engine.cli.routing_cmds import calendar_exit_code, render_calendar
from coverage_engine.coverage import DayCoverage, Segment
from coverage_engine.plan import Plan, Step, StepKind
from tests.unit.reference import REFERENCE_CONFIG


def calendar(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run the calendar command; its exit code and standard output."""
    code = main(["calendar", str(REFERENCE_CONFIG), *args])
    return code, capsys.readouterr().out


def rows(out: str) -> list[str]:
    """Each time range with its detail lines joined into one row, whitespace collapsed."""
    joined: list[str] = []
    for line in out.splitlines():
        if re.match(r"  \d\d:\d\d-", line):
            joined.append(" ".join(line.split()))
        elif line.startswith(" " * 15) and joined:
            joined[-1] += " | " + " ".join(line.split())
    return joined


def test_christmas_eve_shows_the_half_day_and_the_swap(capsys: pytest.CaptureFixture[str]) -> None:
    """Dec 24: front desk until 12:00, then closed for the holiday with okafor on call."""
    code, out = calendar(capsys, "--practice", "maple-grove", "--from", "2026-12-24", "--days", "1")
    assert code == 0
    assert [r.split(" ")[0] for r in rows(out)] == [
        "00:00-08:00",
        "08:00-12:00",
        "12:00-17:30",
        "17:30-24:00",
    ]
    table = rows(out)
    assert table[1].startswith("08:00-12:00 open office hours (Christmas Eve, closes at 12:00)")
    assert "frontdesk-maple 20s > operators 90s" in table[1]
    assert table[2].startswith("12:00-17:30 closed holiday: Christmas Eve (closed from 12:00)")
    assert "okafor 25s press-1 > patel 25s press-1" in table[2]
    assert "note: on call: okafor (swap: Christmas)" in table[2]
    assert "No gaps" in out


def test_a_plain_weekday_shows_lunch_and_the_handoff(capsys: pytest.CaptureFixture[str]) -> None:
    """A Monday: the 08:00 handoff coincides with opening; lunch is its own range."""
    code, out = calendar(capsys, "--practice", "maple-grove", "--from", "2026-11-30", "--days", "1")
    assert code == 0
    table = rows(out)
    assert table[0].startswith("00:00-08:00 closed outside hours")
    assert "on call: patel (backup nguyen)" in table[0]
    assert table[2].startswith("12:00-13:00 closed lunch")
    assert "on call: nguyen (backup okafor)" in table[2]


def test_a_dst_day_is_one_range_of_25_hours(capsys: pytest.CaptureFixture[str]) -> None:
    """Fall-back Sunday at Lakeside is closed all day: one row, midnight to midnight."""
    code, out = calendar(capsys, "--practice", "lakeside", "--from", "2026-11-01", "--days", "1")
    assert code == 0
    assert rows(out) == [
        "00:00-24:00 closed outside hours | ruiz 30s press-1 > chen 30s press-1 > operators 90s"
        " | on call: ruiz (backup chen)"
    ]


def test_several_days_are_all_listed(capsys: pytest.CaptureFixture[str]) -> None:
    """--days 7 gives seven day headings, each with at least one row."""
    code, out = calendar(capsys, "--practice", "lakeside", "--from", "2026-11-23", "--days", "7")
    assert code == 0
    headings = [line for line in out.splitlines() if line[:3] in ("Mon", "Tue", "Wed", "Thu")]
    assert len(headings) == 4
    assert "Thu 2026-11-26" in out
    assert "holiday: Thanksgiving Day" in out


def test_a_gap_is_flagged_and_exits_1() -> None:
    """A range whose plan could end unanswered is shouted about and fails the command."""
    start = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    end = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    unsafe = Plan(
        practice_id="p",
        practice_name="P",
        short_name="P",
        status="closed",
        reason="outside hours",
        steps=(Step(StepKind.ONCALL, "doc", "PJSIP/doc", 25, confirm=True),),
    )
    days = [DayCoverage(date(2026, 11, 30), (Segment(start, end, unsafe),))]
    text = render_calendar("P (p)", "UTC", days)
    assert "!! GAP: the chain ends with oncall, who may not answer" in text
    assert "!! 1 GAP(S)" in text
    assert calendar_exit_code(days) == 1
    assert "\033[1;31m!! GAP" in render_calendar("P (p)", "UTC", days, color=True)


def test_unknown_practice_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A practice id not in the file exits 2 and lists the known ones."""
    code = main(["calendar", str(REFERENCE_CONFIG), "--practice", "nope", "--from", "2026-11-30"])
    assert code == 2
    assert "maple-grove, lakeside" in capsys.readouterr().err


def test_bad_date_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A --from that is not a date makes argparse exit 2."""
    with pytest.raises(SystemExit) as exc:
        main(["calendar", str(REFERENCE_CONFIG), "--practice", "lakeside", "--from", "soon"])
    assert exc.value.code == 2
    assert "not a date" in capsys.readouterr().err


def test_html_calendar_is_written_alongside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--html writes a standalone page with each day, each range and the swap doctor."""
    page = tmp_path / "calendar.html"
    code, out = calendar(
        capsys, "--practice", "maple-grove", "--from", "2026-12-24", "--days", "2",
        "--html", str(page),
    )  # fmt: skip
    assert code == 0
    assert f"HTML calendar written to {page}" in out
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "Thursday 2026-12-24" in html
    assert "Friday 2026-12-25" in html
    assert '<tr class="closed"><td class="time">12:00&ndash;17:30</td>' in html
    assert "Dr. Adaeze Okafor (on call, primary) 25s press-1" in html
    assert "No gaps" in html
