"""The configuration model: how values are read, defaults, and the safety rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from coverage_engine.config import ConfigError, CoverageConfig, load_text
from coverage_engine.config.model import format_clock
from coverage_engine.plan import StepKind
from coverage_engine.routing import decide

MINIMAL = """\
engine:
  default_route: {queue: answering}
trunks: [carrier-out]
practices:
  tiny:
    name: Tiny Clinic
    short_name: TC
    dids: [+15550001111]
    timezone: America/New_York
    hours:
      monday: [{start: 09:00, end: 17:30}]
    operators: {queue: answering}
EXTRA
"""


def build(extra: str = "    when_closed: {chain: [{to: operators}]}\n") -> CoverageConfig:
    """A one-practice file with `extra` lines appended under the practice."""
    return load_text(MINIMAL.replace("EXTRA\n", extra), "coverage.yaml")


def errors(extra: str) -> str:
    """The error text for a file that must not load."""
    with pytest.raises(ConfigError) as exc:
        build(extra)
    return str(exc.value)


def test_unquoted_times_are_times_not_base_60_numbers() -> None:
    """`end: 17:30` is the time 17:30 (YAML 1.1 alone would say 1050)."""
    monday = build().practices["tiny"].hours.monday
    assert [(format_clock(r.start), format_clock(r.end)) for r in monday] == [("09:00", "17:30")]


def test_a_bare_number_is_not_a_time() -> None:
    """Writing minutes since midnight is refused: a time is written HH:MM."""
    text = MINIMAL.replace("end: 17:30", "end: 1050").replace(
        "EXTRA\n", "    when_closed: {chain: [{to: operators}]}\n"
    )
    with pytest.raises(ConfigError, match='"1050" is not a time'):
        load_text(text, "coverage.yaml")


def test_unquoted_numbers_and_codes_keep_their_text() -> None:
    """+1555... keeps its plus; the country code NO is not read as false."""
    config = build(
        "    when_closed: {chain: [{to: operators}]}\n    holidays: {national: {country: 'NO'}}\n"
    )
    practice = config.practices["tiny"]
    assert practice.dids == ("+15550001111",)
    assert practice.holidays.national is not None
    assert practice.holidays.national.country == "NO"


def test_loaded_config_is_immutable() -> None:
    """Models are frozen: changing a loaded value raises."""
    practice = build().practices["tiny"]
    with pytest.raises(ValidationError):
        practice.name = "Other"  # type: ignore[misc]
    assert isinstance(practice.dids, tuple)


def test_unknown_top_level_key_suggests_the_close_match() -> None:
    """A misspelt top-level key names the key it probably meant."""
    text = MINIMAL.replace("practices:", "practises:").replace("EXTRA\n", "")
    with pytest.raises(ConfigError) as exc:
        load_text(text, "coverage.yaml")
    assert 'coverage.yaml:4: practises: unknown key "practises" (did you mean "practices"?)' in str(
        exc.value
    )


@pytest.mark.parametrize(
    ("policy", "kinds"),
    [
        ("operators_first", ["operators", "oncall", "oncall", "operators"]),
        ("oncall_first", ["oncall", "oncall", "operators"]),
    ],
)
def test_policy_shorthand_expands_to_a_chain_ending_with_operators(
    policy: str, kinds: list[str]
) -> None:
    """`policy:` stands for the usual chains; doctors always must press 1."""
    config = build(
        "    oncall:\n"
        "      doctors: {a: {name: Dr. A, endpoint: a}, b: {name: Dr. B, endpoint: b}}\n"
        "      primary: a\n"
        "      backup: b\n"
        f"    when_closed: {{policy: {policy}, oncall_ring_seconds: 40}}\n"
    )
    plan = decide(config, datetime(2026, 11, 29, 12, 0, tzinfo=UTC), "+15550001111")
    assert [s.kind.value for s in plan.steps] == kinds
    assert all(s.confirm and s.ring_seconds == 40 for s in plan.steps if s.kind is StepKind.ONCALL)


def test_external_doctor_without_press_1_is_refused() -> None:
    """A doctor on a mobile number must confirm, or voicemail could take the call."""
    text = errors(
        "    oncall:\n"
        "      doctors: {a: {name: Dr. A, number: +15550002222, trunk: carrier-out}}\n"
        "      primary: a\n"
        "    when_closed:\n"
        "      chain:\n"
        "        - {to: oncall_primary, confirm: false}\n"
        "        - {to: operators}\n"
    )
    assert "practices.tiny.when_closed.chain[0]: confirm: false could let" in text


def test_external_doctor_dial_string_goes_through_the_trunk() -> None:
    """An outside number is dialled as PJSIP/<number>@<trunk>, with press 1."""
    config = build(
        "    oncall:\n"
        "      doctors: {a: {name: Dr. A, number: +15550002222, trunk: carrier-out}}\n"
        "      primary: a\n"
        "    when_closed: {policy: oncall_first}\n"
    )
    plan = decide(config, datetime(2026, 11, 29, 12, 0, tzinfo=UTC), "+15550001111")
    assert plan.steps[0].dial == "PJSIP/+15550002222@carrier-out"
    assert plan.steps[0].confirm is True


def test_staff_step_without_staff_is_refused() -> None:
    """A chain cannot ring a front desk the practice does not have."""
    text = errors("    when_closed: {chain: [{to: staff}, {to: operators}]}\n")
    assert "practices.tiny.when_closed.chain[0]: a staff step needs" in text


def test_backup_step_with_no_backup_rule_is_refused() -> None:
    """Asking for the on-call backup when the roster has none is an error."""
    text = errors(
        "    oncall:\n"
        "      doctors: {a: {name: Dr. A, endpoint: a}}\n"
        "      primary: a\n"
        "    when_closed: {chain: [{to: oncall_backup}, {to: operators}]}\n"
    )
    assert "practices.tiny.when_closed.chain[0]: the chain rings the on-call backup" in text


def test_one_doctor_rotation_skips_the_backup_with_a_note() -> None:
    """With nobody to back up, the backup step is skipped and explain says so."""
    config = build(
        "    oncall:\n"
        "      doctors: {a: {name: Dr. A, endpoint: a}}\n"
        "      rotation: {doctors: [a], handoff: {weekday: monday, time: 08:00},"
        " anchor: 2026-11-02}\n"
        "    when_closed: {policy: oncall_first}\n"
    )
    plan = decide(config, datetime(2026, 11, 29, 12, 0, tzinfo=UTC), "+15550001111")
    assert [s.kind.value for s in plan.steps] == ["oncall", "operators"]
    assert plan.oncall is not None
    assert plan.oncall.backup is None
    assert "skipped oncall_backup: nobody in that role now" in plan.notes


def test_without_staff_the_open_chain_is_the_operators() -> None:
    """A practice with no front desk sends open-hours calls to the operators."""
    plan = decide(build(), datetime(2026, 11, 30, 15, 0, tzinfo=UTC), "+15550001111")
    assert plan.status == "open"
    assert [s.kind.value for s in plan.steps] == ["operators"]
    assert plan.oncall is None


def test_records_path_is_accepted_and_engine_is_required() -> None:
    """records.path is kept for the record store; a file without engine is refused."""
    config = load_text(
        MINIMAL.replace("EXTRA\n", "    when_closed: {chain: [{to: operators}]}\n").replace(
            "trunks:", "records: {path: var/records.sqlite}\ntrunks:"
        ),
        "coverage.yaml",
    )
    assert config.records is not None
    assert config.records.path == "var/records.sqlite"
    with pytest.raises(ConfigError, match="engine: required key is missing"):
        load_text(MINIMAL.replace("EXTRA\n", "").split("trunks:")[0].replace("engine:", "x:"))
