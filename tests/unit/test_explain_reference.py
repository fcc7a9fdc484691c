"""`explain --json` end to end for the two reference practices at chosen instants."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from coverage_engine.cli import main
from tests.unit.reference import LAKESIDE_DID, MAPLE_DID, REFERENCE_CONFIG

MAPLE_OPEN = [("staff", "frontdesk-maple", 20, False), ("operators", "answering", 90, False)]
LAKESIDE_OPEN = [("staff", "frontdesk-lakeside", 25, False), ("operators", "answering", 90, False)]
LAKESIDE_CLOSED = [
    ("oncall", "ruiz", 30, True),
    ("oncall", "chen", 30, True),
    ("operators", "answering", 90, False),
]


def maple_closed(primary: str, backup: str) -> list[tuple[str, str, int, bool]]:
    """Maple Grove's closed chain: operators, primary, backup, operators again."""
    return [
        ("operators", "answering", 90, False),
        ("oncall", primary, 25, True),
        ("oncall", backup, 25, True),
        ("operators", "answering", 90, False),
    ]


# Rotation by hand: patel's week starts Mon 2026-11-02 08:00, then nguyen
# (11-09), okafor (11-16), patel (11-23), nguyen (11-30), okafor (12-07),
# patel (12-14), nguyen (12-21), okafor (12-28).
CASES: list[tuple[str, str, str, str, str, list[tuple[str, str, int, bool]], tuple[str, str]]] = [
    # (id, did, at, status, reason, steps, (primary, backup))
    ("weekday-morning", MAPLE_DID, "2026-11-30T10:00", "open", "office hours", MAPLE_OPEN,
     ("nguyen", "okafor")),
    ("lunch", MAPLE_DID, "2026-11-30T12:30", "closed", "lunch",
     maple_closed("nguyen", "okafor"), ("nguyen", "okafor")),
    ("before-handoff", MAPLE_DID, "2026-11-30T07:59", "closed", "outside hours",
     maple_closed("patel", "nguyen"), ("patel", "nguyen")),
    ("friday-after-16", MAPLE_DID, "2026-12-04T16:00", "closed", "outside hours",
     maple_closed("nguyen", "okafor"), ("nguyen", "okafor")),
    ("saturday-morning", MAPLE_DID, "2026-11-28T09:00", "open", "office hours", MAPLE_OPEN,
     ("patel", "nguyen")),
    ("thanksgiving", MAPLE_DID, "2026-11-26T10:00", "closed", "holiday: Thanksgiving",
     maple_closed("patel", "nguyen"), ("patel", "nguyen")),
    ("day-after-thanksgiving", "+13125550101", "2026-11-27T10:00", "closed",
     "holiday: Day after Thanksgiving", maple_closed("patel", "nguyen"), ("patel", "nguyen")),
    ("christmas-eve-morning", MAPLE_DID, "2026-12-24T11:59", "open",
     "office hours (Christmas Eve, closes at 12:00)", MAPLE_OPEN, ("nguyen", "okafor")),
    ("christmas-eve-afternoon-swap", MAPLE_DID, "2026-12-24T12:00", "closed",
     "holiday: Christmas Eve (closed from 12:00)", maple_closed("okafor", "patel"),
     ("okafor", "patel")),
    ("swap-ends", MAPLE_DID, "2026-12-26T08:00", "closed", "outside hours",
     maple_closed("nguyen", "okafor"), ("nguyen", "okafor")),
    ("good-friday-utc-offset", MAPLE_DID, "2026-04-03T15:00:00Z", "closed",
     "holiday: Good Friday", None, None),  # type: ignore[list-item]
    ("independence-observed-monday", MAPLE_DID, "2027-07-05T10:00", "closed",
     "holiday: Independence Day (observed)", None, None),  # type: ignore[list-item]
    ("lakeside-opens", LAKESIDE_DID, "2026-11-30T07:00", "open", "office hours", LAKESIDE_OPEN,
     ("ruiz", "chen")),
    ("lakeside-closes", LAKESIDE_DID, "2026-11-30T19:00", "closed", "outside hours",
     LAKESIDE_CLOSED, ("ruiz", "chen")),
    ("lakeside-federal-observed", LAKESIDE_DID, "2026-07-03T10:00", "closed",
     "holiday: Independence Day (observed)", LAKESIDE_CLOSED, ("ruiz", "chen")),
    ("lakeside-mlk", LAKESIDE_DID, "2027-01-18T10:00-08:00", "closed",
     "holiday: Martin Luther King Jr. Day", LAKESIDE_CLOSED, ("ruiz", "chen")),
]  # fmt: skip


def explain_json(capsys: pytest.CaptureFixture[str], did: str, at: str) -> dict[str, Any]:
    """Run `coverage-engine explain --json` and parse its one JSON object."""
    code = main(["explain", str(REFERENCE_CONFIG), "--did", did, "--at", at, "--json"])
    assert code == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


@pytest.mark.parametrize(
    ("did", "at", "status", "reason", "steps", "oncall"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_explain_reference_instant(
    capsys: pytest.CaptureFixture[str],
    did: str,
    at: str,
    status: str,
    reason: str,
    steps: list[tuple[str, str, int, bool]] | None,
    oncall: tuple[str, str] | None,
) -> None:
    """Each chosen instant gets the status, reason, steps and doctors worked out by hand."""
    out = explain_json(capsys, did, at)
    assert out["status"] == status
    assert out["reason"] == reason
    assert out["practice"] == ("lakeside" if did == LAKESIDE_DID else "maple-grove")
    if steps is not None:
        got = [(s["kind"], s["target"], s["ring_seconds"], s["confirm"]) for s in out["steps"]]
        assert got == steps
    if oncall is not None:
        assert out["oncall"] == {"primary": oncall[0], "backup": oncall[1]}
    assert out["steps"][-1]["kind"] == "operators"


def test_closed_maple_grove_plays_the_emergency_announcement_first(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Closed Maple Grove calls carry the announcement; open ones do not."""
    closed = explain_json(capsys, MAPLE_DID, "2026-11-30T20:00")
    opened = explain_json(capsys, MAPLE_DID, "2026-11-30T09:00")
    assert closed["announcement"] == "coverage/coverage-emergency"
    assert opened["announcement"] is None


def test_unknown_did_takes_the_default_route_with_a_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A number no practice claims goes to the default operator queue and says why."""
    out = explain_json(capsys, "+19995550000", "2026-11-30T10:00Z")
    assert out["practice"] is None
    assert out["known_did"] is False
    assert "unknown number" in out["reason"]
    assert [(s["kind"], s["target"]) for s in out["steps"]] == [("operators", "answering")]
    assert out["oncall"] is None


def test_explain_without_json_tells_the_story(capsys: pytest.CaptureFixture[str]) -> None:
    """The text form names the practice, the reason, the swap and each step in order."""
    code = main(["explain", str(REFERENCE_CONFIG), "--did", MAPLE_DID, "--at", "2026-12-24 15:00"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Maple Grove Pediatrics (maple-grove)" in out
    assert "closed - holiday: Christmas Eve (closed from 12:00)" in out
    assert "swap: Christmas" in out
    assert out.index("Dr. Adaeze Okafor") < out.index("Dr. Priya Patel (on call, backup)")
    assert "must press 1" in out


def test_explain_rejects_a_bad_instant_as_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An --at that is not ISO-8601 is a usage error (exit 2) with a hint."""
    code = main(["explain", str(REFERENCE_CONFIG), "--did", MAPLE_DID, "--at", "tomorrow"])
    assert code == 2
    assert "ISO-8601" in capsys.readouterr().err


def test_explain_digits_only_did_matches_the_e164_number(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A carrier that drops the leading + still reaches the practice."""
    out = explain_json(capsys, "16085550142", "2026-11-30T10:00")
    assert out["practice"] == "lakeside"


def test_python_m_runs_the_same_cli() -> None:
    """`python -m coverage_engine check` works from a fresh process, as the README says."""
    result = subprocess.run(
        [sys.executable, "-m", "coverage_engine", "check", str(REFERENCE_CONFIG)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "OK: 2 practices" in result.stdout


def test_explain_at_a_time_that_does_not_exist_reads_the_jump(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--at 02:30 on spring-forward night (no offset) is read as 03:00 CDT, the jump."""
    out = explain_json(capsys, MAPLE_DID, "2026-03-08T02:30")
    assert out["at"] == "2026-03-08T03:00:00-05:00"
