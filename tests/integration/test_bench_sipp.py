"""The side-by-side SIPp benchmark in smoke mode: a few calls per path, so it keeps working."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coverage_engine.cli import main
from coverage_lab.sandbox import Sandbox

pytestmark = pytest.mark.integration


def test_smoke_run_reaches_both_phones_and_writes_the_report(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Every call of every path rings a phone of its own and is answered, what each caller
    heard before a person is measured; JSON and Markdown are written."""
    assert main(["bench", "sipp", "--smoke", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    (step,) = result["steps"]
    for name, calls in (("A", 3), ("B", 3), ("C", 1)):
        path = step["paths"][name]
        assert (path["placed"], path["answered"], path["failed"]) == (calls, calls, 0)
        assert len(path["ring_samples_ms"]) == calls  # each phone INVITE matched to its caller
        # The person picked up, and the capture saw what the caller heard before.
        assert {"p50", "p99", "max"} <= set(path["person_ms"])
        assert {"p50", "p99", "max"} <= set(path["silence_ms"])
        assert path["over_silence_limit"] is not None
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| smoke | B |" in report
    assert "## Time to a human voice" in report
