"""Which handoffs a practice has, which checks are due and still wanted, and what is said (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from coverage_engine.config import CoverageConfig
from coverage_engine.logs import mask_number
from coverage_engine.paging.handoff import GRACE, Handoff, due, handoffs, not_wanted
from coverage_engine.paging.prompts import handoff_sentence, spoken_instant
from tests.unit.paging.support import config

CHICAGO = ZoneInfo("America/Chicago")
# Maple Grove's rotation (patel, nguyen, okafor from Monday 2026-11-02 08:00): Dec 7 okafor,
# Dec 14 patel, Dec 21 nguyen, with okafor covering Christmas (Dec 24 12:00 - Dec 26 08:00).
HANDOFF = datetime(2026, 12, 7, 8, 0, tzinfo=CHICAGO)
CHECKED = """
    paging:
      channels: [voice]
      handoff_check: {attempts: 3, retry_seconds: 300, ring_seconds: 30}
"""


def checked() -> CoverageConfig:
    return config(CHECKED)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=CHICAGO)


def test_the_weekly_handoff_brings_the_next_doctor_until_the_one_after() -> None:
    """Monday Dec 7 08:00: Dr. Nguyen hands over to Dr. Okafor, on call until Monday 14th 08:00."""
    practice = checked().practices["maple-grove"]
    (handoff,) = handoffs(practice, at(7, 7), at(7, 9))
    assert handoff == Handoff("maple-grove", HANDOFF, "okafor", "nguyen", at(14, 8), "rotation")
    assert handoff.check_id == "handoff-maple-grove-2026-12-07T1400Z"
    assert mask_number(handoff.check_id) == handoff.check_id  # logs keep it readable


def test_a_swap_is_two_handoffs_its_start_and_its_end() -> None:
    """Christmas: Okafor takes over from Nguyen at noon on the 24th; Nguyen is back on the
    26th at 08:00 until his turn ends on the 28th."""
    practice = checked().practices["maple-grove"]
    found = handoffs(practice, at(23, 0), at(27, 0))
    assert [(h.at, h.doctor, h.previous, h.until, h.source) for h in found] == [
        (at(24, 12), "okafor", "nguyen", at(26, 8), "swap: Christmas"),
        (at(26, 8), "nguyen", "okafor", at(28, 8), "rotation"),
    ]


def test_a_practice_with_a_fixed_doctor_and_no_swap_has_no_handoff() -> None:
    """Lakeside: Dr. Ruiz is always on call; nothing to check."""
    assert handoffs(checked().practices["lakeside"], at(1, 0), at(28, 0)) == []


def test_a_check_is_due_from_the_handoff_for_an_hour_and_only_where_it_is_switched_on() -> None:
    """Due at 08:00 and until 09:00 (an engine started late still checks); not before, not
    after; never for a practice that did not opt in."""
    practice = checked().practices["maple-grove"]
    assert due(practice, HANDOFF - timedelta(seconds=1)) == []
    assert [h.doctor for h in due(practice, HANDOFF)] == ["okafor"]
    assert [h.doctor for h in due(practice, HANDOFF + GRACE)] == ["okafor"]
    assert due(practice, HANDOFF + GRACE + timedelta(seconds=1)) == []
    assert due(config().practices["maple-grove"], HANDOFF) == []


def test_a_pending_check_is_no_longer_wanted_when_the_configuration_changed() -> None:
    """The swap removed (Nguyen stays on call), the check switched off, the turn over."""
    cfg = checked()
    practice = cfg.practices["maple-grove"]
    assert not_wanted(practice, "okafor", at(24, 12), at(24, 12)) is None
    assert oncall_without_swaps(cfg) is not None
    reason = not_wanted(oncall_without_swaps(cfg), "okafor", at(24, 12), at(24, 12))
    assert reason == "okafor no longer comes on call then (the configuration changed)"
    assert not_wanted(config().practices["maple-grove"], "okafor", HANDOFF, HANDOFF) == (
        "handoff checks were switched off for the practice"
    )
    assert not_wanted(practice, "okafor", HANDOFF, at(14, 8)) == "okafor's turn on call is over"
    assert not_wanted(None, "okafor", HANDOFF, HANDOFF) == (
        "the practice is no longer in the configuration"
    )


def oncall_without_swaps(cfg: CoverageConfig) -> object:
    practice = cfg.practices["maple-grove"]
    assert practice.oncall is not None
    roster = practice.oncall.model_copy(update={"swaps": ()})
    return practice.model_copy(update={"oncall": roster})


@pytest.mark.parametrize(
    ("instant", "said"),
    [
        (at(14, 8), ["day-1", "mon-11", "h-14", "at", "number:8", "a-m"]),
        (
            at(21, 17, 5),
            ["day-1", "mon-11", "20", "h-1", "at", "number:5", "oh", "number:5", "p-m"],
        ),
        (at(26, 12, 30), ["day-6", "mon-11", "20", "h-6", "at", "number:12", "number:30", "p-m"]),
        (
            datetime(2026, 12, 31, 0, 0, tzinfo=CHICAGO),
            ["day-4", "mon-11", "30", "h-1", "at", "number:12", "a-m"],
        ),
    ],
    ids=["monday 8 am", "21st 5:05 pm", "saturday 12:30", "31st midnight"],
)
def test_an_instant_is_said_with_asterisks_own_recordings(
    instant: datetime, said: list[str]
) -> None:
    """Weekday, month, ordinal day, "at", the time and AM/PM: the core sounds SayUnixTime uses."""
    media = spoken_instant(instant, CHICAGO)
    assert [m.removeprefix("sound:digits/") for m in media] == said


def test_the_sentence_names_the_practice_and_the_end_of_the_turn() -> None:
    """ "You are on call for Maple Grove Pediatrics until Monday December 14th at 8 AM, press 1";
    the fallback leaves the practice's name out; a turn with no end says no "until"."""
    practice = checked().practices["maple-grove"]
    sentence = handoff_sentence(practice, at(14, 8))
    assert sentence.media[:3] == (
        "sound:coverage/handoff-on-call",
        "sound:coverage/practice-maple-grove",
        "sound:coverage/handoff-until",
    )
    assert sentence.media[-1] == "sound:coverage/handoff-press-1"
    assert "sound:coverage/practice-maple-grove" not in sentence.fallback
    assert "sound:digits/day-1" in sentence.fallback
    endless = handoff_sentence(practice, None)
    assert endless.media == (
        "sound:coverage/handoff-on-call",
        "sound:coverage/practice-maple-grove",
        "sound:coverage/handoff-press-1",
    )
