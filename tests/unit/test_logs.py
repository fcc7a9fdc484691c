"""Logging: JSON or console output, call ids bound per task, patient numbers masked."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import LogCapture

from coverage_engine.logs import (
    bind_call,
    call_context,
    configure_logging,
    mask_caller,
    mask_number,
    mask_phone_numbers,
)

CALLER = "+15557654321"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Each test configures logging its own way; put the defaults back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)


MASK_CASES: list[tuple[str, str]] = [
    ("+15557654321", "***4321"),
    ("caller 15557654321 waiting", "caller ***4321 waiting"),
    ("(555) 765-4321", "***4321"),
    ("+1 555 765 4321", "***4321"),
    ("555.765.4321", "***4321"),
    ("sip:+15557654321@10.0.0.5", "sip:***4321@10.0.0.5"),
    ("PJSIP/+15557654321@carrier-out", "PJSIP/***4321@carrier-out"),
    ("caller_id=abc15557654321x", "caller_id=abc***4321x"),
    ("caller-555-765-4321", "caller-***4321"),
    ("caller-5557654321", "caller-***4321"),
    ("x.5557654321", "x.***4321"),
    ("+1-555-765-4321", "***4321"),
    # Not phone numbers: kept as they are so logs stay useful.
    ("linkedid 1700000000.12", "linkedid 1700000000.12"),
    ("PJSIP/trunk-00000012", "PJSIP/trunk-00000012"),
    ("PJSIP/operator1-0000001a rang", "PJSIP/operator1-0000001a rang"),
    ("leg 1700000000.12-r0a1b2c-leg1", "leg 1700000000.12-r0a1b2c-leg1"),
    ("on 2026-03-01T02:14:03+00:00", "on 2026-03-01T02:14:03+00:00"),
    ("holiday 2026-12-25", "holiday 2026-12-25"),
    ("at 2026-03-01 02:14:03", "at 2026-03-01 02:14:03"),
    ("ARI at 192.168.100.200:8088", "ARI at 192.168.100.200:8088"),
    ("extension 1001, queue wait 300 s", "extension 1001, queue wait 300 s"),
]


@pytest.mark.parametrize(("text", "masked"), MASK_CASES)
def test_mask_number(text: str, masked: str) -> None:
    """Phone-number-like runs keep only their last four digits; ids, dates and IPs stay."""
    assert mask_number(text) == masked


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+13125559876", "+*******9876"),
        ("5551234", "***1234"),
        ("caller-555-123-4567", "caller-***-***-4567"),
        ("123", "***"),
        ("", ""),
    ],
)
def test_mask_caller_keeps_only_the_last_four_digits_of_a_number_field(
    number: str, masked: str
) -> None:
    """A field that is a caller's number shows its last four digits, however short or written."""
    assert mask_caller(number) == masked


def test_no_full_caller_number_reaches_the_log_output() -> None:
    """Whatever field carries it, the caller number is masked in every rendered JSON line."""
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    log = structlog.get_logger("test")
    with call_context("1700000000.12", "maple"):
        log.info(f"call from {CALLER}", caller=CALLER, did="+15550100")
        log.info("nested", details={"callers": [CALLER, {"n": 15557654321}]}, number=15557654321)
        log.warning("object", plan=RuntimeError(f"no route for {CALLER}"))
        try:
            raise ValueError(f"bad caller {CALLER}")
        except ValueError:
            log.exception("failed")
        logging.getLogger("aiohttp.access").warning("GET /calls?from=%s", CALLER)
    text = out.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 5
    assert "5557654321" not in text
    assert "4321" in lines[0]["event"]
    assert lines[0]["caller"] == "***4321"
    assert lines[3]["exception"].count("***4321") >= 1
    assert lines[4]["event"] == "GET /calls?from=***4321"
    assert all(line["call_id"] == "1700000000.12" for line in lines)
    assert all(line["practice"] == "maple" for line in lines)


def test_the_masking_processor_runs_before_anything_is_captured() -> None:
    """A LogCapture placed after the masking processor sees no whole caller number."""
    capture = LogCapture()
    structlog.configure(processors=[mask_phone_numbers, capture])
    structlog.get_logger().info("ringing", caller=CALLER, caller_name="JONES")
    assert capture.entries == [
        {"event": "ringing", "caller": "***4321", "caller_name": "JONES", "log_level": "info"}
    ]


async def test_each_call_task_logs_its_own_call_id() -> None:
    """Concurrent call tasks bind their ids without seeing each other's."""
    configure_logging(json=True, stream=io.StringIO())

    async def call(call_id: str, practice: str) -> None:
        bind_call(call_id, practice)
        await asyncio.sleep(0)
        structlog.get_logger().info("step", n=1)
        await asyncio.sleep(0)
        structlog.get_logger().info("step", n=2)

    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        await asyncio.gather(call("a.1", "maple"), call("b.2", "oak"))
    seen = sorted((e["call_id"], e["practice"], e["n"]) for e in logs)
    assert seen == [("a.1", "maple", 1), ("a.1", "maple", 2), ("b.2", "oak", 1), ("b.2", "oak", 2)]


@pytest.mark.parametrize(
    ("as_json", "looks_like_json"), [(True, True), (False, False), (None, True)]
)
def test_json_or_console_rendering(as_json: bool | None, looks_like_json: bool) -> None:
    """JSON when asked or when the stream is not a terminal; console rendering otherwise."""
    out = io.StringIO()
    configure_logging(json=as_json, stream=out)
    structlog.get_logger().info("hello", caller=CALLER)
    line = out.getvalue().strip()
    assert line.startswith("{") is looks_like_json
    assert "hello" in line
    assert "***4321" in line


def test_debug_lines_are_dropped_at_info_level() -> None:
    """The level filters structlog and standard-library lines alike."""
    out = io.StringIO()
    configure_logging(json=True, level="info", stream=out)
    structlog.get_logger().debug("noise")
    logging.getLogger("panoramisk").debug("noise")
    structlog.get_logger().info("kept")
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["kept"]
