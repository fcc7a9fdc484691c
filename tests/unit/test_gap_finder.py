"""The gap finder: a moment whose chain ends at an unstaffed queue, with no fallback, is a gap."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coverage_engine.cli import main
from coverage_engine.config import load_text
from coverage_engine.config.semantics import unstaffed_week
from coverage_engine.coverage import coverage_calendar
from coverage_engine.plan import StepKind
from coverage_engine.routing import decide
from tests.unit.reference import LAKESIDE_DID, MAPLE_DID, REFERENCE_CONFIG

REFERENCE_TEXT = REFERENCE_CONFIG.read_text(encoding="utf-8")
CHICAGO = ZoneInfo("America/Chicago")

# Maple Grove's queue staffed 07:00-22:00 every day; nights have nobody.
NIGHTS_UNSTAFFED = """      staffed:
        monday: &day [{start: 07:00, end: 22:00}]
        tuesday: *day
        wednesday: *day
        thursday: *day
        friday: *day
        saturday: *day
        sunday: *day
"""


def unstaffed_nights(with_fallback: bool = False) -> str:
    """The reference file with Maple Grove's queue unstaffed 22:00-07:00 (and maybe a fallback)."""
    assert REFERENCE_TEXT.count("      staffed: always\n") == 1
    text = REFERENCE_TEXT.replace("      staffed: always\n", NIGHTS_UNSTAFFED)
    if with_fallback:
        text = text.replace(
            "    oncall:\n      doctors:\n        patel:",
            "    fallback: {name: Night Owl Answering, number: +13125550190, trunk: carrier-out}\n"
            "    oncall:\n      doctors:\n        patel:",
        )
    return text


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "coverage.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_reference_file_has_no_gap_for_a_whole_year(capsys: pytest.CaptureFixture[str]) -> None:
    """config/coverage.yaml: a staffed person or the fallback ends every chain, all of 2027."""
    for practice in ("maple-grove", "lakeside"):
        code = main(["calendar", str(REFERENCE_CONFIG), "--practice", practice,
                     "--from", "2027-01-01", "--days", "365"])  # fmt: skip
        out = capsys.readouterr().out
        assert code == 0, practice
        assert "!! GAP" not in out
        assert out.rstrip().endswith("No gaps: a staffed person is at the end of the chain at "
                                     "every minute of these days.")  # fmt: skip


def test_an_unstaffed_night_without_fallback_is_a_calendar_gap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each night 22:00-07:00 is flagged with the reason, and the calendar exits 1."""
    path = written(tmp_path, unstaffed_nights())
    code = main(["calendar", str(path), "--practice", "maple-grove", "--from", "2026-11-30",
                 "--days", "2"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    gaps = re.findall(r"^!!   (\S+ \S+)$", out, flags=re.MULTILINE)
    assert gaps == ["2026-11-30 00:00-07:00", "2026-11-30 22:00-24:00",
                    "2026-12-01 00:00-07:00", "2026-12-01 22:00-24:00"]  # fmt: skip
    assert (
        "!! GAP: the chain ends at queue answering, which nobody staffs then "
        "(operators.staffed), and no final fallback is named" in out
    )
    assert "!! 4 GAP(S) with no staffed person at the end:" in out


def test_check_warns_about_the_unstaffed_nights_with_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check passes (exit 0) but says when nobody is planned; --strict makes it exit 1."""
    text = unstaffed_nights()
    path = written(tmp_path, text)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    line = text[: text.index("      staffed:\n        monday: &day")].count("\n") + 1
    assert out[1] == (
        f"{path}:{line}: practices.maple-grove.operators.staffed: warning: nobody staffs queue "
        "answering Mon 22:00-Tue 07:00, Tue 22:00-Wed 07:00, Wed 22:00-Thu 07:00, "
        "Thu 22:00-Fri 07:00, Fri 22:00-Sat 07:00, Sat 22:00-Sun 07:00 and 1 more "
        "(63 hours a week) and no fallback is named: a call then ends at a queue nobody is "
        "planned to answer (name a fallback, or staff the queue)"
    )
    assert out[2] == f"{path}: 1 warning"
    assert main(["check", "--strict", str(path)]) == 1


def test_a_fallback_closes_the_gap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same nights with another answering service as fallback: no gap, no warning."""
    path = written(tmp_path, unstaffed_nights(with_fallback=True))
    assert main(["check", str(path)]) == 0
    assert "warning" not in capsys.readouterr().out
    code = main(["calendar", str(path), "--practice", "maple-grove", "--from", "2026-11-30"])
    assert code == 0
    assert "fallback 60s" in capsys.readouterr().out


def test_explain_at_an_unstaffed_night_says_it_is_a_gap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """explain's last line names the gap; the JSON says the queue is not staffed."""
    path = written(tmp_path, unstaffed_nights())
    args = ["explain", str(path), "--did", MAPLE_DID, "--at", "2026-12-01T03:00"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Note:     nobody staffs queue answering at this time (operators.staffed)" in out
    assert out.rstrip().splitlines()[-1].startswith("!! GAP: the chain ends at queue answering")
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["operators_staffed"] is False


def test_the_fallback_is_the_last_step_open_or_closed() -> None:
    """The commented Night Owl example, switched on: it follows the final operators step."""
    example = "    # fallback:\n    #   name: Night Owl Answering\n    #   number: +16085550190\n"
    assert example in REFERENCE_TEXT
    text = REFERENCE_TEXT.replace(
        example + "    #   trunk: carrier-out\n    #   ring_seconds: 60\n",
        "    fallback:\n      name: Night Owl Answering\n      number: +16085550190\n"
        "      trunk: carrier-out\n      ring_seconds: 60\n",
    )
    config = load_text(text)
    lakeside = ZoneInfo("America/Los_Angeles")
    for instant in (datetime(2026, 12, 1, 10, 0, tzinfo=lakeside),
                    datetime(2026, 12, 1, 3, 0, tzinfo=lakeside)):  # fmt: skip
        steps = decide(config, instant, LAKESIDE_DID).steps
        assert [s.kind for s in steps[-2:]] == [StepKind.OPERATORS, StepKind.FALLBACK]
        assert steps[-1].dial == "PJSIP/+16085550190@carrier-out"
        assert steps[-1].label == "Night Owl Answering"


def test_the_calendar_cuts_at_the_staffing_hours() -> None:
    """A closed evening is split where the answering service goes home."""
    config = load_text(unstaffed_nights())
    (day,) = coverage_calendar(config.practices["maple-grove"], date(2026, 12, 1), 1)
    spans = [(f"{s.start:%H:%M}", f"{s.end:%H:%M}", s.gap) for s in day.segments]
    assert spans[-2:] == [("17:30", "22:00", False), ("22:00", "00:00", True)]


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        ({}, [(0, 7 * 1440)]),
        ({d: [(0, 1440)] for d in range(7)}, []),
        ({0: [(480, 1020)]}, [(1020, 7 * 1440 + 480)]),
        ({d: [(420, 1320)] for d in range(7)},
         [(d * 1440 + 1320, (d + 1) * 1440 + 420) for d in range(7)]),
    ],
)  # fmt: skip
def test_unstaffed_stretches_run_across_midnight_and_the_week_end(
    hours: dict[int, list[tuple[int, int]]], expected: list[tuple[int, int]]
) -> None:
    """Stretches are whole: Sunday night into Monday morning is one."""
    from coverage_engine.config.model import WEEKDAYS, WeekHours

    week = WeekHours.model_validate(
        {WEEKDAYS[d]: [{"start": f"{s // 60:02d}:{s % 60:02d}",
                        "end": f"{e // 60:02d}:{e % 60:02d}"} for s, e in r]
         for d, r in hours.items()}
    )  # fmt: skip
    assert unstaffed_week(week) == expected


def test_an_empty_staffed_value_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`staffed:` with nothing after it is a mistake, not "never": check says what to write."""
    path = written(tmp_path, REFERENCE_TEXT.replace("      staffed: always\n", "      staffed:\n"))
    assert main(["check", str(path)]) == 1
    assert "practices.maple-grove.operators.staffed: write always" in capsys.readouterr().err


def test_the_plan_notes_unstaffed_hours_only_when_they_are(tmp_path: Path) -> None:
    """07:00 on the dot is staffed; 06:59 is not."""
    config = load_text(unstaffed_nights())
    at = datetime(2026, 12, 1, 7, 0, tzinfo=CHICAGO)
    assert decide(config, at, MAPLE_DID).operators_staffed
    assert not decide(config, at.replace(hour=6, minute=59), MAPLE_DID).operators_staffed


async def test_the_engine_carries_a_call_to_the_fallback_when_the_queue_is_empty(
    tmp_path: Path,
) -> None:
    """Lakeside at night with Night Owl as fallback: both doctors busy, nobody on the queue,
    and the fallback answers: bridged, answered by the other service's operators."""
    import asyncio

    from coverage_engine.bootstrap import EngineParts, load_holder, run_engine
    from coverage_engine.clock import FrozenClock
    from coverage_engine.journey import Outcome
    from coverage_engine.journey.events import Bridged
    from coverage_engine.records.sqlite import RecordStore
    from coverage_lab.fake_ari import FakeAri

    example = "    # fallback:\n    #   name: Night Owl Answering\n    #   number: +16085550190\n"
    text = REFERENCE_TEXT.replace(
        example + "    #   trunk: carrier-out\n    #   ring_seconds: 60\n",
        "    fallback:\n      name: Night Owl Answering\n      number: +16085550190\n"
        "      trunk: carrier-out\n      ring_seconds: 60\n",
    ).replace("../var/records.sqlite", "records.sqlite")
    config = written(tmp_path, text)
    night = datetime(2026, 12, 1, 3, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    async with FakeAri() as fake:
        fake.dial_outcomes["PJSIP/ruiz"] = "busy"
        fake.dial_outcomes["PJSIP/chen"] = "busy"
        fake.dial_outcomes["PJSIP/+16085550190@carrier-out"] = "answer"
        parts = EngineParts(config, fake.settings(), clock=FrozenClock(night))
        stop = asyncio.Event()
        runner = asyncio.create_task(run_engine(parts, load_holder(parts), stop))
        await fake.wait_for_websockets()
        caller = await fake.start_call(LAKESIDE_DID, "+15553334444")
        async with asyncio.timeout(10):
            while not fake.requests_to("POST", f"/channels/{caller}/continue"):  # noqa: ASYNC110
                await asyncio.sleep(0.01)  # the doctors were busy: into the queue
        await fake.reenter(caller, "queue-result", "JOINEMPTY")
        async with asyncio.timeout(10):
            while not any(caller in b["channels"] for b in fake.bridges.values()):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await fake.remote_hangup(caller)
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.wait_for(runner, 5)
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        journey = store.get(caller)
    assert journey is not None
    bridged = [e.event for e in journey.events if isinstance(e.event, Bridged)]
    assert [(b.step_kind, b.target) for b in bridged] == [(StepKind.FALLBACK, "+16085550190")]
    assert journey.outcome is Outcome.ANSWERED_BY_OPERATOR
