"""The interim routing-only demo: says what it is and who would answer each scene."""

from __future__ import annotations

from pathlib import Path

import pytest

from coverage_engine.cli import main
from tests.unit.reference import REFERENCE_CONFIG


def test_demo_says_it_is_routing_only_and_walks_the_scenes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each scene names its status and first person; the swap scene rings okafor."""
    code = main(["demo", "--config", str(REFERENCE_CONFIG)])
    out = capsys.readouterr().out
    assert code == 0
    assert "routing-only" in out
    assert out.count("== ") == 7
    assert "open (office hours)" in out
    assert "closed (lunch)" in out
    assert "closed (holiday: Thanksgiving)" in out
    swap_scene = out.split("Christmas Eve 15:00")[1].split("== ")[0]
    assert "Dr. Adaeze Okafor (on call, primary)" in swap_scene
    assert "default route" in out


def test_demo_with_an_invalid_file_fails_like_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken file makes the demo exit 1 with the check's messages."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("practices: {}\n", encoding="utf-8")
    assert main(["demo", "--config", str(bad)]) == 1
    assert f"{bad}:" in capsys.readouterr().err
