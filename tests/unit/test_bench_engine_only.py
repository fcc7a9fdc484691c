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
    assert set(result["setup_ms"]) == {"p50", "p95", "p99"}
    # The two journeys alternate: 12 and 11 requests, as the event diet test lists them.
    assert result["requests_per_call"]["total"] == pytest.approx((12 + 11) / 2)
    assert json.loads(capsys.readouterr().out) == result
