"""Caller-aware routing: the hospital's ER reaches the doctor on call at once, and it shows."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coverage_engine.cli import main
from coverage_engine.config import ConfigError, load_text
from coverage_engine.routing import decide
from tests.unit.reference import MAPLE_DID, REFERENCE_CONFIG, reference_config

CHICAGO = ZoneInfo("America/Chicago")
NIGHT = datetime(2026, 12, 1, 3, 0, tzinfo=CHICAGO)
OFFICE = datetime(2026, 12, 1, 10, 0, tzinfo=CHICAGO)
ER = "+13125557000"
PATIENT = "+13125559876"
TEXT = REFERENCE_CONFIG.read_text(encoding="utf-8")


def kinds(plan: object) -> list[str]:
    return [s.kind.value for s in plan.steps]  # type: ignore[attr-defined]


@pytest.mark.parametrize("caller", [ER, "3125557000", "(312) 555-7000", "+13125557001"])
def test_the_er_at_night_goes_straight_to_the_doctor_without_the_announcement(
    caller: str,
) -> None:
    """Primary, backup, operators; no announcement; the rule is named in the plan."""
    plan = decide(reference_config(), NIGHT, MAPLE_DID, caller)
    assert kinds(plan) == ["oncall", "oncall", "operators"]
    assert plan.announcement is None
    assert plan.caller_rule == "hospital-er"
    assert "caller rule hospital-er: straight to the doctor on call, no announcement" in plan.notes


@pytest.mark.parametrize("caller", [PATIENT, None, "", "anonymous", "+13125557002"])
def test_everyone_else_gets_the_closed_chain_with_the_announcement(caller: str | None) -> None:
    """A patient, a withheld number or text that is no number: the practice's own chain."""
    plan = decide(reference_config(), NIGHT, MAPLE_DID, caller)
    assert kinds(plan) == ["operators", "oncall", "oncall", "operators"]
    assert plan.announcement == "coverage/coverage-emergency"
    assert plan.caller_rule is None


def test_during_office_hours_a_closed_only_rule_does_not_apply() -> None:
    """when: closed (the default): the ER calling at 10:00 reaches the front desk."""
    plan = decide(reference_config(), OFFICE, MAPLE_DID, ER)
    assert kinds(plan) == ["staff", "operators"]
    assert plan.caller_rule is None


def test_when_always_applies_during_office_hours_too() -> None:
    """when: always: the ER at 10:00 goes to the doctor on call as well."""
    always = "        skip_announcement: true\n        when: always\n"
    config = load_text(TEXT.replace("        skip_announcement: true\n", always))
    plan = decide(config, OFFICE, MAPLE_DID, ER)
    assert kinds(plan) == ["oncall", "oncall", "operators"]
    assert plan.caller_rule == "hospital-er"


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("        route: oncall\n        skip_announcement: true\n", "",
         "a caller rule needs route: oncall or skip_announcement: true"),
        ("numbers: [+13125557000, +13125557001]", "numbers: [+13125557000, +13125557000]",
         'is already in caller rule "hospital-er"'),
        ("numbers: [+13125557000, +13125557001]", "numbers: [312-555-7000]",
         "is not an E.164 phone number"),
        ("numbers: [+13125557000, +13125557001]", "numbers: []", "must not be empty"),
    ],
)  # fmt: skip
def test_bad_caller_rules_are_check_errors(old: str, new: str, words: str) -> None:
    """A rule that does nothing, a number twice, a number not in E.164, no number at all."""
    assert TEXT.count(old) == 1
    with pytest.raises(ConfigError) as error:
        load_text(TEXT.replace(old, new), "coverage.yaml")
    assert words in str(error.value)
    assert "practices.maple-grove.callers[0]" in str(error.value)


def test_explain_caller_shows_the_rule(capsys: pytest.CaptureFixture[str]) -> None:
    """explain --caller: a note in the text, caller_rule in the JSON."""
    args = ["explain", str(REFERENCE_CONFIG), "--did", MAPLE_DID, "--at", "2026-12-01T03:00"]
    assert main([*args, "--caller", "312-555-7000"]) == 0
    assert "Note:     caller rule hospital-er" in capsys.readouterr().out
    assert main([*args, "--caller", ER, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["caller_rule"] == "hospital-er"
    assert main([*args, "--caller", PATIENT, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["caller_rule"] is None


def test_replay_finds_the_er_calls_a_new_rule_would_change(tmp_path: Path) -> None:
    """Without the rule the ER's night call met the operators first; with it, the doctor."""
    from coverage_engine.replay import RecordedCall, replay

    without = load_text(TEXT.replace("numbers: [+13125557000, +13125557001]",
                                     "numbers: [+13125557999]"))  # fmt: skip
    calls = [RecordedCall("er", MAPLE_DID, ER, NIGHT, None),
             RecordedCall("patient", MAPLE_DID, PATIENT, NIGHT, None)]  # fmt: skip
    report = replay(calls, reference_config(), baseline=without)
    assert [c.call.call_id for c in report.changes] == ["er"]
    assert report.changes[0].was.first == "operators answering"
    assert report.changes[0].now.first == "oncall nguyen"


async def test_the_journey_records_which_caller_rule_matched(tmp_path: Path) -> None:
    """The ER's night call through the engine: the Decided event keeps the rule's name."""
    import asyncio

    from coverage_engine.bootstrap import EngineParts, load_holder, run_engine
    from coverage_engine.clock import FrozenClock
    from coverage_engine.records.sqlite import RecordStore
    from coverage_lab.fake_ari import FakeAri
    from tests.unit.test_run import config_in

    async with FakeAri() as fake:
        parts = EngineParts(config_in(tmp_path), fake.settings(), clock=FrozenClock(NIGHT))
        stop = asyncio.Event()
        runner = asyncio.create_task(run_engine(parts, load_holder(parts), stop))
        await fake.wait_for_websockets()
        channel = await fake.start_call(MAPLE_DID, "3125557000")
        async with asyncio.timeout(5):
            while not [  # noqa: ASYNC110
                r
                for r in fake.requests_to("POST", "/channels")
                if r.query.get("channelId", "").startswith(f"{channel}-leg")
            ]:
                await asyncio.sleep(0.01)  # the doctor's leg: the rule was applied
        stop.set()
        await asyncio.wait_for(runner, 5)
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        journey = store.get(channel)
    assert journey is not None
    assert journey.plan is not None
    assert journey.plan["caller_rule"] == "hospital-er"
    assert journey.plan["announcement"] is None
