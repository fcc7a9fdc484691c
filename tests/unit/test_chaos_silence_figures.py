"""The chaos suite's silence figures: when a caller was alone on the line, and how it reads."""

from __future__ import annotations

import math

import pytest

from coverage_lab.chaos import Report, Verdict, alone_spans, markdown

ANSWERED = 1000.0


@pytest.mark.parametrize(
    ("case", "people", "end", "alone"),
    [
        ("nobody ever took the call", [], 1030.0, [(0.0, 30.0)]),
        ("a doctor pressed 1 at 20 s and stayed", [(1020.0, 1024.0)], 1024.0, [(0.0, 20.0)]),
        (
            "the doctor hung up at 24 s and the line stayed up until 60 s",
            [(1020.0, 1024.0)],
            1060.0,
            [(0.0, 20.0), (24.0, 60.0)],
        ),
        (
            "a second doctor after the first left: alone only between them",
            [(1020.0, 1024.0), (1028.7, 1032.7)],
            1032.7,
            [(0.0, 20.0), (24.0, 28.7)],
        ),
        ("a person whose line never ended", [(1010.0, math.inf)], 1030.0, [(0.0, 10.0)]),
        (
            "two people at once (overlapping legs) are one stretch",
            [(1010.0, 1015.0), (1012.0, 1020.0)],
            1020.0,
            [(0.0, 10.0)],
        ),
    ],
)
def test_the_caller_is_alone_outside_the_people_on_the_line(
    case: str, people: list[tuple[float, float]], end: float, alone: list[tuple[float, float]]
) -> None:
    """Alone: from the answer to the first person, and from a person's leaving to the next."""
    assert alone_spans(people, ANSWERED, end) == alone


def verdict(caller: str, silence: float | None, **more: object) -> Verdict:
    fields: dict[str, object] = {
        "caller": caller,
        "did": "+13125550100",
        "reached": "nguyen",
        "answer_s": 0.02,
        "dropped": False,
        "double_ring": False,
        "journeys": 1,
        "journey_ok": True,
        "alone_s": 20.0 if silence is not None else None,
        "silence_s": silence,
        "silence_at_s": 7.8 if silence else None,
        "silence_zero_s": 0.0 if silence else None,
        "recording": f"heard/caller-{caller[-4:]}.wav",
    }
    fields.update(more)
    return Verdict(**fields)  # type: ignore[arg-type]


def test_the_worst_silence_and_the_calls_over_a_second_are_figures() -> None:
    """Three calls measured (0.3, 1.06 and 0 s), one the PBX never answered: worst 1.06 s,
    one over the goal, listed with where its silence was and its recording."""
    report = Report(
        plan={},
        started="2026-12-01T00:00:00+00:00",
        seconds=1.0,
        verdicts=[
            verdict("+15550100001", 0.3),
            verdict("+15550100002", 1.06),
            verdict("+15550100003", 0.0),
            verdict("+15550100004", None, answer_s=None, reached=None),
        ],
        capture_dropped=0,
    )
    figures = report.figures()
    assert figures["answered_by_the_pbx"] == 3
    assert figures["silences_measured"] == 3
    assert figures["worst_silence_s"] == 1.06
    assert figures["silences_over_1s"] == 1
    text = markdown(report, machine="a test")
    assert "| worst silence with nobody on the line, after the answer | 1.06 s (3 of 3" in text
    assert "| calls with a silence over 1 s (goal 0) | 1 |" in text
    assert (
        "caller ***0002: reached nguyen, journeys 1, silence of 1.06 s from 7.80 s after the "
        "answer (0.00 s of it digital zero; heard/caller-0002.wav)"
    ) in text
    assert "***0001" not in text
    assert "caller ***0004: reached None, journeys 1, no person" in text


def test_packets_the_kernel_dropped_are_said_beside_the_worst_silence() -> None:
    """A dropped packet is heard as silence: the figure says how many were dropped."""
    report = Report(plan={}, started="x", seconds=1.0, verdicts=[verdict("+1", 0.5)])
    report.capture_dropped = 12
    assert "12 packets dropped by the kernel, each heard as silence" in markdown(
        report, machine="a test"
    )
