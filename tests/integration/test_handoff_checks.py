"""Handoff checks against the sandbox: `coverage-engine run` calls the doctor coming on call.

The engine's clock starts a few seconds before Monday Dec 7th, 08:00 at Maple
Grove, when Dr. Okafor takes over from Dr. Nguyen until Monday 14th 08:00.
Maple Grove opts in with two attempts 10 s apart (the doctor's phone rings
8 s); its alert e-mail goes to a real mail server the test starts (aiosmtpd).
The sentence is real audio: our prompts and Asterisk's own date recordings,
and the engine logs `paging.prompt_failed` if the PBX could not play any.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from coverage_engine.journey import EventKind, JourneyKind, Outcome
from coverage_engine.records.sqlite import RecordStore
from coverage_lab.ari_http import AriCredentials
from coverage_lab.engine_process import EngineProcess
from coverage_lab.phones import Phones, never_answers, presses, voicemail
from tests.unit.console_support import with_paging

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHICAGO = ZoneInfo("America/Chicago")
HANDOFF = datetime(2026, 12, 7, 8, 0, tzinfo=CHICAGO)
CHECK = "handoff-maple-grove-2026-12-07T1400Z"


@dataclass
class Mailbox:
    """An aiosmtpd handler keeping every message."""

    messages: list[tuple[list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content or b""))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def checked_config(path: Path, smtp_port: int) -> Path:
    """config/coverage.yaml with Maple Grove's handoff checks on and its alert e-mail."""
    text = (ROOT / "config" / "coverage.yaml").read_text(encoding="utf-8")
    notifications = (
        "  notifications:\n"
        "    console_url: https://console.example.org\n"
        f"    smtp: {{host: 127.0.0.1, port: {smtp_port}, from: alerts@answering.example, "
        "tries: 2, timeout_seconds: 5}\n"
    )
    text = text.replace("    short_name: COVERAGE\n", "    short_name: COVERAGE\n" + notifications)
    paging = (
        "    paging:\n"
        "      channels: [voice]\n"
        "      alert_email: [manager@maplegrove.example]\n"
        "      handoff_check: {attempts: 2, retry_seconds: 10, ring_seconds: 8}\n\n"
    )
    text = with_paging(text, paging)
    text = text.replace("../var/records.sqlite", "records.sqlite")
    path.write_text(text, encoding="utf-8")
    return path


def engine_for(
    config: Path, ari: AriCredentials, log: Path, app: str = "coverage-engine"
) -> EngineProcess:
    return EngineProcess(config, ari_url=ari.url, ari_user=ari.user, ari_password=ari.password,
                         log_path=log, app=app)  # fmt: skip


def wait_ended(records: Path, timeout: float) -> RecordStore:
    """Poll until the check's journey has an outcome; return the store (caller closes it)."""
    deadline = time.monotonic() + timeout
    while True:
        if records.exists():
            store = RecordStore.open(records)
            journey = store.get(CHECK)
            if journey is not None and journey.outcome is not None:
                return store
            store.close()
        if time.monotonic() > deadline:
            raise TimeoutError(f"the handoff check did not end within {timeout:.0f}s")
        time.sleep(0.5)


def calls_show(config: Path) -> str:
    shown = subprocess.run(
        [sys.executable, "-m", "coverage_engine", "calls", "show", CHECK, "--config",
         str(config), "--tz", "America/Chicago"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return shown.stdout


def test_a_silent_doctor_is_not_confirmed_and_the_alert_fires(
    ari: AriCredentials, phones: Phones, mailbox: tuple[Mailbox, int], tmp_path: Path
) -> None:
    """Okafor's voicemail answers both calls and never presses 1: not confirmed; the practice's
    alert e-mail arrives (no patient data, a link to sign in) and the record says it all."""
    box, port = mailbox
    config = checked_config(tmp_path / "coverage.yaml", port)
    phones.start("okafor", voicemail(after=1))
    engine = engine_for(config, ari, tmp_path / "engine.log")
    try:
        engine.start(HANDOFF - timedelta(seconds=3))
        store = wait_ended(tmp_path / "records.sqlite", timeout=150)
    finally:
        engine.stop()
    with store:
        journey = store.get(CHECK)
        assert journey is not None
        kinds = [EventKind(e.name) for e in journey.events]
        assert journey.kind is JourneyKind.HANDOFF_CHECK
        assert journey.outcome is Outcome.HANDOFF_NOT_CONFIRMED
    assert kinds.count(EventKind.HANDOFF_DIALING) == 2
    assert kinds.count(EventKind.HANDOFF_ANSWERED) == 2
    assert EventKind.HANDOFF_DOCTOR_CONFIRMED not in kinds
    assert kinds[-4:] == [EventKind.HANDOFF_ALERT_RAISED, EventKind.HANDOFF_ALERT_SENT,
                          EventKind.HANDOFF_ALERT_SENT, EventKind.ENDED]  # fmt: skip
    assert [c.answered for c in phones.calls("okafor")] == [True, True]
    ((recipients, raw),) = box.messages
    assert recipients == ["manager@maplegrove.example"]
    mail = message_from_bytes(raw)
    assert mail["Subject"] == "Maple Grove Pediatrics: on-call handoff NOT confirmed"
    assert f"https://console.example.org/calls/{CHECK}" in raw.decode()
    shown = calls_show(config)
    assert f"handoff check {CHECK}" in shown
    assert "okafor comes on call (rotation)" in shown
    assert "handoff_alert_raised" in shown
    assert "outcome     handoff_not_confirmed" in shown
    assert "paging.prompt_failed" not in engine.log()


def test_a_doctor_who_presses_1_is_confirmed_and_two_engines_call_once(
    ari: AriCredentials, phones: Phones, mailbox: tuple[Mailbox, int], tmp_path: Path
) -> None:
    """Two engines share the record file; at 08:00 Okafor's phone rings once, she presses 1:
    confirmed, on the record, and no alert."""
    box, port = mailbox
    config = checked_config(tmp_path / "coverage.yaml", port)
    phones.start("okafor", presses("1", after=1, delay=3))
    one = engine_for(config, ari, tmp_path / "one.log")
    two = engine_for(config, ari, tmp_path / "two.log", app="coverage-engine-b")
    try:
        one.start(HANDOFF - timedelta(seconds=4))
        two.start(HANDOFF - timedelta(seconds=3))
        store = wait_ended(tmp_path / "records.sqlite", timeout=90)
        time.sleep(3)  # a second call, if one came, would have started by now
    finally:
        one.stop()
        two.stop()
    with store:
        journey = store.get(CHECK)
        assert journey is not None
        assert (journey.outcome, journey.answered_by) == (Outcome.HANDOFF_CONFIRMED, "okafor")
        kinds = [EventKind(e.name) for e in journey.events]
        confirmed = [e.event.details() for e in journey.events
                     if e.name == EventKind.HANDOFF_DOCTOR_CONFIRMED]  # fmt: skip
    assert kinds == [EventKind.HANDOFF_CHECK_STARTED, EventKind.HANDOFF_DIALING,
                     EventKind.HANDOFF_ANSWERED, EventKind.HANDOFF_DOCTOR_CONFIRMED,
                     EventKind.ENDED]  # fmt: skip
    assert confirmed == [{"attempt": 1, "doctor": "okafor"}]
    (call,) = phones.calls("okafor")
    assert call.digits == "1"
    assert box.messages == []
    listed = subprocess.run(
        [sys.executable, "-m", "coverage_engine", "calls", "list", "--config", str(config),
         "--kind", "handoff_check", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["call_id"], row["outcome"]) == (CHECK, "handoff_confirmed")
    assert "paging.prompt_failed" not in one.log() + two.log()


def test_a_check_cut_off_by_a_sigkill_goes_on_after_the_restart_and_is_not_made_twice(
    ari: AriCredentials, phones: Phones, mailbox: tuple[Mailbox, int], tmp_path: Path
) -> None:
    """The engine is killed while Okafor's phone rings for the first call: after the restart
    the cut-off call is on the record, the second call comes (not a new check, not a third
    call), and with no 1 pressed the alert fires once."""
    box, port = mailbox
    config = checked_config(tmp_path / "coverage.yaml", port)
    phones.start("okafor", never_answers())
    engine = engine_for(config, ari, tmp_path / "engine.log")
    records = tmp_path / "records.sqlite"
    started = time.monotonic()
    try:
        engine.start(HANDOFF - timedelta(seconds=3))
        engine.wait_log("handoff.calling", timeout=30)
        time.sleep(2)
        engine.kill()
        engine.start(HANDOFF - timedelta(seconds=3) + timedelta(seconds=time.monotonic() - started))
        store = wait_ended(records, timeout=120)
    finally:
        engine.stop()
    with store:
        journey = store.get(CHECK)
        assert journey is not None
        kinds = [EventKind(e.name) for e in journey.events]
        failed = [e.event.details()["reason"] for e in journey.events
                  if e.name == EventKind.HANDOFF_ATTEMPT_FAILED]  # fmt: skip
        assert journey.outcome is Outcome.HANDOFF_NOT_CONFIRMED
    assert kinds.count(EventKind.HANDOFF_CHECK_STARTED) == 1
    assert kinds.count(EventKind.HANDOFF_DIALING) == 2
    assert failed[0] == "cut off by an engine restart"
    assert len(failed) == 2
    assert len(phones.calls("okafor")) == 2
    assert len(box.messages) == 1
