"""`coverage-engine agi`: refusing bad setups before listening."""

from __future__ import annotations

from pathlib import Path

import pytest

from coverage_engine.cli import main

CONFIG = Path(__file__).resolve().parents[2] / "config" / "coverage.yaml"


def test_clock_start_without_the_environment_guard_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deciding at another instant needs both the flag and the env guard; the flag alone exits 1."""
    monkeypatch.delenv("COVERAGE_ENGINE_ALLOW_CLOCK_OVERRIDE", raising=False)
    argv = [
        "agi",
        "--config",
        str(CONFIG),
        "--no-records",
        "--clock-start",
        "2026-11-27T03:00 America/Chicago",
    ]
    assert main(argv) == 1
    assert "refusing to start the clock" in capsys.readouterr().err


def test_a_missing_config_file_is_a_message_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A wrong --config path exits 1 naming the file."""
    assert main(["agi", "--config", str(tmp_path / "nope.yaml")]) == 1
    err = capsys.readouterr().err
    assert "nope.yaml" in err
    assert "Traceback" not in err
