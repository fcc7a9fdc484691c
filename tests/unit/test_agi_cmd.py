"""`coverage-engine agi`: refusing bad setups before listening, and reloading while it serves."""

from __future__ import annotations

import os
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


async def test_an_override_reaches_the_next_agi_request_without_a_restart(tmp_path: Path) -> None:
    """The FastAGI service reloads like the engine: closed for a snow day, then asked again."""
    import asyncio
    import re
    import sys
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from coverage_engine.changes import Actor, ChangeService
    from tests.unit.test_agi import env, play_asterisk

    chicago = ZoneInfo("America/Chicago")
    day = (datetime.now(UTC) + timedelta(days=8)).astimezone(chicago).date()
    day += timedelta(days=(1 - day.weekday()) % 7)  # a Tuesday, 10:00: office hours
    at = datetime(day.year, day.month, day.day, 10, 0, tzinfo=chicago)
    config = tmp_path / "coverage.yaml"
    config.write_text(CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "coverage_engine", "agi", "--config", str(config), "--port", "0",
        "--no-records", "--clock-start", at.isoformat(),
        env={**os.environ, "COVERAGE_ENGINE_ALLOW_CLOCK_OVERRIDE": "1"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        found = re.search(r":(\d+)/route", line)
        assert found is not None, line
        port = int(found[1])
        before = await play_asterisk(port, env())
        assert before["COVERAGE_STATUS"] == "open"
        snow = {"start": at - timedelta(hours=1), "until": at + timedelta(hours=8)}
        ChangeService(config).add_override(
            Actor("jdoe"), practice="maple-grove", reason="snow day", **snow
        )
        for _ in range(50):  # the service polls twice a second
            after = await play_asterisk(port, env())
            if after["COVERAGE_STATUS"] == "closed":
                break
            await asyncio.sleep(0.1)
        assert after["COVERAGE_STATUS"] == "closed"
        assert after["COVERAGE_REASON"] == "override: snow day"
    finally:
        proc.terminate()
        await proc.wait()
