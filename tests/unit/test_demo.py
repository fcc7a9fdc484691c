"""The live demo's command line and how it tells a call's story."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coverage_engine.cli import main
from coverage_lab.cli.demo_cmd import SCENES, _story


def test_the_story_of_a_call_reads_as_sentences() -> None:
    """Journey events from the engine's log become the lines the demo prints."""
    events = [
        {"event": "journey", "journey_event": "decided", "status": "closed", "reason": "lunch"},
        {"event": "ari.request", "path": "/channels"},
        {"event": "journey", "journey_event": "oncall_not_confirmed", "doctor": "nguyen"},
        {"event": "journey", "journey_event": "oncall_confirmed", "doctor": "okafor"},
    ]
    log = "\n".join(json.dumps(e) for e in events) + "\nnot json\n"
    assert _story(log) == [
        "the engine decided: closed (lunch)",
        "nguyen's phone answered but nobody pressed 1 (a voicemail): hung up on it",
        "okafor pressed 1 to accept",
    ]


def test_the_scenes_cover_what_the_issue_asks_for() -> None:
    """Office hours, lunch, night, a holiday and an unconfirmed on-call doctor are all played."""
    titles = " ".join(s.title for s in SCENES)
    for word in ("office hours", "lunch", "night", "holiday", "voicemail"):
        assert word in titles


def test_an_invalid_config_stops_the_demo_before_any_pbx(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken coverage file is reported and nothing is started."""
    bad = tmp_path / "coverage.yaml"
    bad.write_text("practices: [\n", encoding="utf-8")
    assert main(["demo", "--config", str(bad)]) == 1
    assert "cannot be used" in capsys.readouterr().err
