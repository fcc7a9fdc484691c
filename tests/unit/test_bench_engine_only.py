"""The engine-only benchmark in smoke mode: a few calls through the real engine and a fake ARI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coverage_engine.cli import main


def test_a_small_engine_only_run_completes_every_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Forty calls of both journeys all complete and the result carries its measurements."""
    out = tmp_path / "engine-only.json"
    code = main(
        [
            "bench",
            "engine-only",
            "--calls",
            "40",
            "--warmup",
            "4",
            "--concurrency",
            "8",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["calls"] == 40
    assert result["failures"] == 0
    assert result["cpu_us_per_call"] > 0
    # The record writer's thread is part of the engine's CPU, never all of it.
    assert 0 < result["writer_cpu_us_per_call"] < result["cpu_us_per_call"]
    for timing in ("setup_ms", "first_request_ms", "reaction_ms", "loop_lag_ms"):
        assert set(result[timing]) == {"p50", "p95", "p99", "max"}, timing
    # The two journeys alternate: 10 and 7 requests, as the event diet test lists them.
    assert result["requests_per_call"]["total"] == pytest.approx((10 + 7) / 2)
    assert json.loads(capsys.readouterr().out) == result


def test_the_scale_shape_keeps_calls_up_at_once_and_times_the_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Calls that ring, talk and hang up overlap: the result says how many were up at once,
    how late the event loop woke, and how soon the engine acted for each call."""
    out = tmp_path / "scale.json"
    args = ["--calls", "24", "--warmup", "0", "--concurrency", "12", "--hold", "0.5"]
    code = main(["bench", "engine-only", *args, "--answer-after", "0.2", "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["failures"] == 0
    assert (result["hold_seconds"], result["answer_after_seconds"]) == (0.5, 0.2)
    assert result["max_in_progress"] > 1
    assert result["loop_lag_ms"]["max"] >= 0
    # The front desk answers 0.2 s after it starts ringing: the setup includes that wait.
    assert result["setup_ms"]["max"] >= 200
    assert result["reaction_ms"]["p50"] < result["setup_ms"]["p50"]
    capsys.readouterr()


def test_without_records_the_engine_alone_is_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--no-records leaves the SQLite store out, and the result says so."""
    out = tmp_path / "alone.json"
    args = ["--calls", "20", "--warmup", "2", "--concurrency", "4", "--no-records"]
    assert main(["bench", "engine-only", *args, "--json", str(out)]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert (result["records"], result["failures"]) == (False, 0)
    assert result["writer_cpu_us_per_call"] is None
    capsys.readouterr()
