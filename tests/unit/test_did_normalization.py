"""A dialed number reaches its practice however the carrier writes it (read once, in routing)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coverage_engine.bootstrap import EngineParts, load_holder, run_engine
from coverage_engine.clock import FrozenClock
from coverage_engine.config import load_text
from coverage_engine.config.numbers import normalize_number
from coverage_engine.journey.events import Bridged
from coverage_engine.records.sqlite import RecordStore
from coverage_engine.routing import decide
from coverage_lab.fake_ari import FakeAri
from tests.unit.reference import REFERENCE_CONFIG, reference_config
from tests.unit.test_run import bridged, config_in, until

CHICAGO = ZoneInfo("America/Chicago")
NIGHT = datetime(2026, 12, 1, 3, 0, tzinfo=CHICAGO)
MONDAY_10AM = datetime(2026, 11, 30, 10, 0, tzinfo=CHICAGO)

# (as the carrier sends it, E.164) with the reference file's default region US
READABLE = [
    ("+13125550100", "+13125550100"),
    ("13125550100", "+13125550100"),  # no `+`
    ("3125550100", "+13125550100"),  # 10 digits, as many US carriers send
    ("312-555-0100", "+13125550100"),
    ("(312) 555 0100", "+13125550100"),
    ("1.312.555.0100", "+13125550100"),
    ("011 1 312 555 0100", "+13125550100"),  # the US international prefix
    ("+1 312 555 0101", "+13125550101"),
    ("442079460000", "+442079460000"),  # an international number missing only its `+`
    ("6085550142", "+16085550142"),
]
UNREADABLE = ["", "   ", "abc", "312555O100", "+1312555010#", "5550100", "sip:3125550100", "++1"]


@pytest.mark.parametrize(("sent", "e164"), READABLE)
def test_numbers_are_read_into_e164(sent: str, e164: str) -> None:
    """Each way of writing a number is read as the same E.164 number."""
    assert normalize_number(sent, "US") == e164


@pytest.mark.parametrize("sent", UNREADABLE)
def test_text_that_is_no_phone_number_is_refused(sent: str) -> None:
    """Letters, symbols, a bare 7-digit local number, nothing at all: not a number."""
    assert normalize_number(sent, "US") is None


@pytest.mark.parametrize(("sent", "e164"), READABLE[:8])
def test_every_form_of_maple_groves_number_gets_maple_groves_plan(sent: str, e164: str) -> None:
    """Same practice, same steps as the E.164 number, and a note saying how it was read."""
    config = reference_config()
    plan = decide(config, NIGHT, sent)
    canonical = decide(config, NIGHT, e164)
    assert plan.practice_id == "maple-grove"
    assert plan.did == e164
    assert (plan.status, plan.steps, plan.announcement) == (
        canonical.status,
        canonical.steps,
        canonical.announcement,
    )
    if sent != e164:
        assert plan.notes[0] == f'dialed as "{sent}", read as {e164}'


@pytest.mark.parametrize("sent", ["", "abc", "sip:3125550100"])
def test_an_unreadable_dialed_number_still_reaches_the_operators(sent: str) -> None:
    """No number at all is routed like an unknown one, and the reason says which."""
    plan = decide(reference_config(), NIGHT, sent)
    assert not plan.known_did
    assert [s.target for s in plan.steps] == ["answering"]
    assert plan.reason.startswith(f'unreadable number "{sent}": not a phone number')


def test_the_default_region_reads_national_numbers_of_that_country() -> None:
    """A UK practice with default_region GB is reached by 020 7946 0000."""
    text = REFERENCE_CONFIG.read_text(encoding="utf-8").replace(
        "default_region: US\n", "default_region: GB\n"
    )
    text = text.replace("dids: [+16085550142]", "dids: [+442079460000]")
    config = load_text(text)
    assert decide(config, NIGHT, "020 7946 0000").practice_id == "lakeside"
    assert decide(config, NIGHT, "00442079460000").practice_id == "lakeside"


def test_an_unknown_region_is_a_check_error() -> None:
    """default_region must be a region libphonenumber knows."""
    text = REFERENCE_CONFIG.read_text(encoding="utf-8").replace(
        "default_region: US\n", "default_region: XX\n"
    )
    with pytest.raises(Exception, match=r"default_region: \"XX\" is not a region code"):
        load_text(text, "coverage.yaml")


def test_explain_accepts_ten_digits_and_refuses_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """explain reads the DID like the engine; a DID that is no number is a usage error."""
    from coverage_engine.cli import main

    args = ["explain", str(REFERENCE_CONFIG), "--at", "2026-12-01T03:00"]
    assert main([*args, "--did", "312 555 0100"]) == 0
    out = capsys.readouterr().out
    assert "Practice: Maple Grove Pediatrics (maple-grove)" in out
    assert 'Note:     dialed as "312 555 0100", read as +13125550100' in out
    assert main([*args, "--did", "front desk"]) == 2
    assert '--did "front desk" is not a phone number' in capsys.readouterr().err


async def test_the_engine_routes_a_ten_digit_did_to_its_practice(tmp_path: Path) -> None:
    """A call whose carrier sent 3125550100 rings Maple Grove's front desk, and is recorded so."""
    clock = FrozenClock(MONDAY_10AM)
    async with FakeAri() as fake:
        fake.dial_outcomes["PJSIP/frontdesk-maple"] = "answer"
        parts = EngineParts(config_in(tmp_path), fake.settings(), clock=clock)
        stop = asyncio.Event()
        runner = asyncio.create_task(run_engine(parts, load_holder(parts), stop))
        await fake.wait_for_websockets()
        caller = await fake.start_call("3125550100", "+13125559876")
        await until(lambda: bridged(fake, caller, f"{caller}-leg1"))
        stop.set()
        await asyncio.wait_for(runner, 5)
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        journey = store.get(caller)
    assert journey is not None
    assert journey.practice == "maple-grove"
    assert [e.event.target for e in journey.events if isinstance(e.event, Bridged)] == [
        "frontdesk-maple"
    ]


async def test_calls_to_unknown_numbers_are_counted_and_logged_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unknown and unreadable DIDs reach the default queue, a counter, and a masked log line."""
    clock = FrozenClock(MONDAY_10AM)
    async with FakeAri() as fake:
        parts = EngineParts(config_in(tmp_path), fake.settings(), clock=clock)
        stop = asyncio.Event()
        runner = asyncio.create_task(run_engine(parts, load_holder(parts), stop))
        await fake.wait_for_websockets()
        for did in ("+19995550123", "19995550124", "front-desk"):
            channel = await fake.start_call(did, "+13125559876")
            # The engine's own memory on the channel (the dialplan set COVERAGE_DID).
            await until(lambda c=channel: "COVERAGE_TRIED" in fake.channels[c].variables)  # type: ignore[misc]
        stop.set()
        await asyncio.wait_for(runner, 5)
    registry = parts.metrics.registry
    assert registry.get_sample_value("coverage_unknown_did_calls_total", {"kind": "unknown"}) == 2
    assert (
        registry.get_sample_value("coverage_unknown_did_calls_total", {"kind": "unreadable"}) == 1
    )
    logged = capsys.readouterr()
    lines = [ln for ln in (logged.out + logged.err).splitlines() if "did.unknown" in ln]
    assert len(lines) == 3
    assert "9995550123" not in lines[0]
    assert "*******0123" in lines[0]
