"""The composition root and `coverage-engine run`, end to end against the fake ARI server."""

from __future__ import annotations

import argparse
import asyncio
import gc
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coverage_engine.bootstrap import (
    GC_YOUNG_THRESHOLD,
    EngineParts,
    load_holder,
    run_engine,
    tune_garbage_collector,
)
from coverage_engine.cli import main
from coverage_engine.cli.run_cmd import ari_settings_from
from coverage_engine.clock import FrozenClock
from coverage_engine.records.sqlite import RecordStore
from coverage_lab.fake_ari import FakeAri

CONFIG = Path(__file__).resolve().parents[2] / "config" / "coverage.yaml"
CHICAGO = ZoneInfo("America/Chicago")
MONDAY_10AM = datetime(2026, 11, 30, 10, 0, tzinfo=CHICAGO)


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll until the condition holds, failing after `seconds`."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - polling the fake's state is the point
            await asyncio.sleep(0.02)


def bridged(fake: FakeAri, *channels: str) -> bool:
    return any(set(channels) <= set(b["channels"]) for b in fake.bridges.values())


def config_in(folder: Path) -> Path:
    """The reference config, copied into `folder` with its call records kept there too."""
    config = folder / "coverage.yaml"
    text = CONFIG.read_text(encoding="utf-8")
    config.write_text(text.replace("../var/records.sqlite", "records.sqlite"), encoding="utf-8")
    return config


async def test_open_call_reaches_the_front_desk_and_stop_leaves_it_connected(
    tmp_path: Path,
) -> None:
    """Office hours: the front desk is dialed and bridged; stopping the engine hangs nobody up."""
    async with FakeAri() as fake:
        fake.dial_outcomes["PJSIP/frontdesk-maple"] = "answer"
        parts = EngineParts(config_in(tmp_path), fake.settings(), clock=FrozenClock(MONDAY_10AM))
        holder = load_holder(parts)
        stop = asyncio.Event()
        runner = asyncio.create_task(run_engine(parts, holder, stop))
        await fake.wait_for_websockets()
        caller = await fake.start_call("+13125550100", "+13125559876")
        # The bridge step's last request, the release handler on the leg: by
        # then "bridged" is recorded (it goes before that round trip).
        leg_variables = f"/channels/{caller}-leg1/variable"
        await until(lambda: bool(fake.requests_to("POST", leg_variables)))
        stop.set()
        await asyncio.wait_for(runner, 5)
        assert not fake.requests_to("DELETE", f"/channels/{caller}")
        assert not fake.requests_to("DELETE", f"/channels/{caller}-leg1")
        assert bridged(fake, caller, f"{caller}-leg1")
    # The call record, written through the same run: still in progress (the call
    # goes on), with the whole caller number and every step so far.
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        journey = store.get(caller)
    assert journey is not None
    assert (journey.practice, journey.caller_number, journey.outcome) == (
        "maple-grove",
        "+13125559876",
        None,
    )
    assert [e.name for e in journey.events] == [
        "received",
        "decided",
        "staff_ringing",
        "bridged",
    ]
    assert journey.events[-1].event.details()["kind"] == "staff"


async def test_an_invalid_reload_keeps_the_old_routing(tmp_path: Path) -> None:
    """A broken coverage file is rejected on reload and the next call is routed as before."""
    config = config_in(tmp_path)
    async with FakeAri() as fake:
        fake.dial_outcomes["PJSIP/frontdesk-maple"] = "answer"
        parts = EngineParts(
            config, fake.settings(), clock=FrozenClock(MONDAY_10AM), reload_poll_seconds=0.05
        )
        holder = load_holder(parts)
        stop = asyncio.Event()
        runner = asyncio.create_task(run_engine(parts, holder, stop))
        await fake.wait_for_websockets()
        config.write_text("practices: [this is: not valid\n", encoding="utf-8")
        assert holder.reload(why="test") is False
        caller = await fake.start_call("+13125550100")
        await until(lambda: bridged(fake, caller, f"{caller}-leg1"))
        stop.set()
        await asyncio.wait_for(runner, 5)
    failures = {"result": "failure"}
    assert parts.metrics.registry.get_sample_value("coverage_config_reloads_total", failures) == 1


def _args(**kw: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "ari_url": None,
        "ari_user": None,
        "ari_app": None,
        "ari_password_file": None,
        "ari_ca_file": None,
    }
    values.update(kw)
    return argparse.Namespace(**values)


def test_the_ari_password_comes_from_a_file_or_the_environment(tmp_path: Path) -> None:
    """The password is read from the file given, else the environment; flags set the rest."""
    secret = tmp_path / "ari-password"
    secret.write_text("s3cret\n", encoding="utf-8")
    settings = ari_settings_from(_args(ari_password_file=secret, ari_user="me"), {})
    assert (settings.password, settings.username, settings.app) == (
        "s3cret",
        "me",
        "coverage-engine",
    )
    from_env = ari_settings_from(
        _args(), {"COVERAGE_ARI_PASSWORD": "x", "COVERAGE_ARI_URL": "https://h:1/ari"}
    )
    assert (from_env.password, from_env.url) == ("x", "https://h:1/ari")
    assert "s3cret" not in repr(settings)


def test_no_password_is_refused_with_what_to_do() -> None:
    """Without a password the command says where to put one."""
    with pytest.raises(ValueError, match="COVERAGE_ARI_PASSWORD"):
        ari_settings_from(_args(), {})


def test_clock_start_without_the_environment_guard_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--clock-start` alone cannot move the production clock: the run exits 1 and says why."""
    monkeypatch.setenv("COVERAGE_ARI_PASSWORD", "x")
    monkeypatch.delenv("COVERAGE_ENGINE_ALLOW_CLOCK_OVERRIDE", raising=False)
    code = main(["run", "--config", str(CONFIG), "--clock-start", "2026-12-25T03:00-06:00"])
    assert code == 1
    assert "COVERAGE_ENGINE_ALLOW_CLOCK_OVERRIDE" in capsys.readouterr().err


def test_an_invalid_config_at_start_is_listed_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The engine does not start on a broken coverage file; every error is printed."""
    bad = tmp_path / "coverage.yaml"
    bad.write_text("practices: {}\nbogus: 1\n", encoding="utf-8")
    monkeypatch.setenv("COVERAGE_ARI_PASSWORD", "x")
    assert main(["run", "--config", str(bad)]) == 1
    assert "not valid" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "status"])
def test_every_command_that_reaches_ari_takes_the_same_ari_options(command: str) -> None:
    """`status` reads ARI like `run` does: parsed from its own command line, the settings are
    built without a missing option (it once lacked --ari-ca-file and stopped with a bug)."""
    from coverage_engine.cli import build_parser

    args = build_parser().parse_args(
        [command, "--config", str(CONFIG), "--ari-url", "https://pbx:8089/ari"]
    )
    settings = ari_settings_from(args, {"COVERAGE_ARI_PASSWORD": "x"})
    assert settings.url == "https://pbx:8089/ari"
    with_ca = build_parser().parse_args(
        [command, "--config", str(CONFIG), "--ari-ca-file", str(CONFIG)]
    )
    assert with_ca.ari_ca_file == str(CONFIG)


def test_an_engine_process_collects_young_garbage_less_often_and_keeps_the_ratios() -> None:
    """`run` (and the benchmark) raise only the first threshold: the generations keep
    their ratios, so every kind of collection becomes rarer alike."""
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        tune_garbage_collector()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
        assert GC_YOUNG_THRESHOLD > 700
    finally:
        gc.set_threshold(*before)
