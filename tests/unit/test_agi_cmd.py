"""`coverage-engine agi`: refusing bad setups before listening, and the whisper variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from coverage_engine.cli import agi_cmd, main
from coverage_engine.config import load_text
from coverage_engine.plan import Plan

CONFIG = Path(__file__).resolve().parents[2] / "config" / "coverage.yaml"


def test_clock_start_without_the_environment_guard_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deciding at another instant needs both the flag and the env guard; the flag alone exits 1."""
    monkeypatch.delenv("COVERAGE_ENGINE_ALLOW_CLOCK_OVERRIDE", raising=False)
    argv = ["agi", "--config", str(CONFIG), "--no-records",
            "--clock-start", "2026-11-27T03:00 America/Chicago"]
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


def test_whisper_comes_from_the_practice_and_is_empty_without_one() -> None:
    """COVERAGE_WHISPER carries the practice's operators.whisper, or nothing."""
    whisper = "whisper: coverage/whisper-mgp"
    text = CONFIG.read_text().replace(f"# {whisper}", whisper)
    assert "\n      whisper: coverage/whisper-mgp" in text
    config = load_text(text)
    plan = Plan("maple-grove", "Maple Grove Pediatrics", "MGP", "closed", "night", ())
    assert agi_cmd._whisper(config, plan) == [("COVERAGE_WHISPER", "coverage/whisper-mgp")]
    unknown = Plan("", "", "COVERAGE", "closed", "unknown number", (), known_did=False)
    assert agi_cmd._whisper(config, unknown) == [("COVERAGE_WHISPER", "")]
