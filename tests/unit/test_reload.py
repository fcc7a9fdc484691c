"""Config reloads: valid files replace the config for new calls, invalid ones are rejected."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from coverage_engine.reload import ConfigHolder, describe_errors


class InvalidConfig(Exception):
    """A loader's error carrying every problem found, like the config package's."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"{len(errors)} errors")
        self.errors = errors


def load(path: Path) -> dict[str, str]:
    """A tiny loader: `key=value` lines; lines without `=` are errors, all reported."""
    lines = path.read_text().splitlines()
    errors = [f"line {n}: no '='" for n, line in enumerate(lines, 1) if line and "=" not in line]
    if errors:
        raise InvalidConfig(errors)
    return dict(line.split("=", 1) for line in lines if line)


def write(path: Path, text: str, *, bump: int = 0) -> None:
    """Write the file and move its mtime on, so mtime-based detection sees every write."""
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + bump * 1_000_000_000))


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A valid config file."""
    path = tmp_path / "coverage.conf"
    write(path, "route=operators\n")
    return path


def test_the_initial_load_installs_version_one(config_file: Path) -> None:
    """load_initial reads the file and makes it current."""
    holder = ConfigHolder(config_file, load)
    assert holder.load_initial() == {"route": "operators"}
    assert (holder.current, holder.version) == ({"route": "operators"}, 1)


def test_an_invalid_file_at_start_raises(config_file: Path) -> None:
    """With no previous config to keep, an invalid file at start is the caller's error."""
    write(config_file, "nonsense\n")
    with pytest.raises(InvalidConfig):
        ConfigHolder(config_file, load).load_initial()


def test_a_valid_change_replaces_the_config(config_file: Path) -> None:
    """A valid new file becomes current and the version goes up."""
    seen: list[dict[str, str]] = []
    holder = ConfigHolder(config_file, load, on_change=seen.append)
    holder.load_initial()
    write(config_file, "route=oncall\n", bump=1)
    assert holder.reload()
    assert (holder.current, holder.version) == ({"route": "oncall"}, 2)
    assert seen == [{"route": "operators"}, {"route": "oncall"}]


def test_an_invalid_change_is_rejected_with_every_error_logged(config_file: Path) -> None:
    """An invalid file keeps the old config and logs each of its errors."""
    holder = ConfigHolder(config_file, load)
    holder.load_initial()
    write(config_file, "route=oncall\nbad one\nbad two\n", bump=1)
    with capture_logs() as logs:
        assert not holder.reload()
    assert (holder.current, holder.version) == ({"route": "operators"}, 1)
    assert [e["error"] for e in logs if e["event"] == "config.error"] == [
        "line 2: no '='",
        "line 3: no '='",
    ]
    (rejected,) = [e for e in logs if e["event"] == "config.rejected"]
    assert (rejected["log_level"], rejected["error_count"]) == ("error", 2)


def test_change_detection_ignores_touches_and_already_rejected_content(config_file: Path) -> None:
    """Same bytes with a new mtime is no change; a rejected file is not retried until edited."""
    holder = ConfigHolder(config_file, load)
    holder.load_initial()
    assert not holder.changed_on_disk()
    write(config_file, "route=operators\n", bump=1)  # touched, same content
    assert not holder.changed_on_disk()
    write(config_file, "broken\n", bump=2)
    assert holder.changed_on_disk()
    holder.reload()
    assert not holder.changed_on_disk()
    write(config_file, "route=oncall\n", bump=3)
    assert holder.changed_on_disk()


def test_describe_errors_understands_pydantic_style_errors() -> None:
    """An exception with errors() returning dicts gives one 'where: what' line per error."""

    class PydanticLike(Exception):
        def errors(self) -> list[dict[str, object]]:
            return [{"loc": ("practices", 0, "did"), "msg": "Field required"}]

    assert describe_errors(PydanticLike()) == ["practices.0.did: Field required"]
    assert describe_errors(ValueError("plain")) == ["plain"]


async def eventually(check: Callable[[], bool]) -> None:
    """Poll a condition the background watcher should make true within 5 s."""
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met within 5 s")


async def wait_for_version(holder: ConfigHolder[dict[str, str]], version: int) -> None:
    """Wait until the holder reaches a version."""
    await eventually(lambda: holder.version >= version)


async def test_the_watcher_reloads_when_the_file_changes(config_file: Path) -> None:
    """A watched file that changes on disk is reloaded without a signal."""
    holder = ConfigHolder(config_file, load, poll_interval=0.02)
    holder.load_initial()
    watcher = asyncio.create_task(holder.watch(handle_sighup=False))
    try:
        write(config_file, "route=oncall\n", bump=1)
        await wait_for_version(holder, 2)
        assert holder.current == {"route": "oncall"}
    finally:
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher


async def test_sighup_reloads_and_an_invalid_file_keeps_old_routing(config_file: Path) -> None:
    """SIGHUP reloads at once; a broken file sent by SIGHUP leaves the config as it was."""
    holder = ConfigHolder(config_file, load, poll_interval=60)
    holder.load_initial()
    watcher = asyncio.create_task(holder.watch())
    try:
        await asyncio.sleep(0.01)  # let the watcher install its signal handler
        write(config_file, "route=oncall\n")
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for_version(holder, 2)
        write(config_file, "broken\n")
        with capture_logs() as logs:
            os.kill(os.getpid(), signal.SIGHUP)
            await eventually(lambda: any(e["event"] == "config.rejected" for e in logs))
        assert (holder.current, holder.version) == ({"route": "oncall"}, 2)
    finally:
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher


def test_the_real_config_loader_rejects_a_broken_edit_and_keeps_routing(tmp_path: Path) -> None:
    """With load_config: a broken coverage.yaml edit logs its issues and the old config stays."""
    from coverage_engine.config.loader import load_config

    reference = Path(__file__).resolve().parents[2] / "config" / "coverage.yaml"
    path = tmp_path / "coverage.yaml"
    path.write_text(reference.read_text())
    holder = ConfigHolder(path, load_config)
    original = holder.load_initial()
    write(path, reference.read_text().replace("practices:", "practices: [", 1), bump=1)
    with capture_logs() as logs:
        assert not holder.reload()
    assert holder.current is original
    errors = [e["error"] for e in logs if e["event"] == "config.error"]
    assert errors
    assert all("coverage.yaml" in error for error in errors)
