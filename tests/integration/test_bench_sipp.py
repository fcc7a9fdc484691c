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
    """Every call of both paths rings its phone and is answered; JSON and Markdown are written."""
    assert main(["bench", "sipp", "--smoke", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    (step,) = result["steps"]
    for name in ("A", "B"):
        path = step["paths"][name]
        assert (path["placed"], path["answered"], path["failed"]) == (3, 3, 0)
        assert len(path["ring_samples_ms"]) == 3  # each phone INVITE matched to its caller
    assert "| smoke | B |" in (tmp_path / "report.md").read_text(encoding="utf-8")
