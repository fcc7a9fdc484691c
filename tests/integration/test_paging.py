"""Urgent messages paged to the doctor on call: `coverage-engine run`, the sandbox, SIPp doctors.

An operator's message is saved in the record file as the console saves it
(on a call's journey); the engine's paging service, inside `coverage-engine
run`, calls the doctor on call at the engine's instant (Tuesday Dec 1st,
03:00 at Maple Grove: Dr. Nguyen primary, Dr. Okafor backup). Waits are
shortened: a doctor's phone rings 8 s, a page waits 20 s for its
acknowledgement, and the ladder is primary, backup, operators.
"""

from __future__ import annotations

import itertools
import json
import re
import signal
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coverage_engine.journey import Decided, Received
from coverage_engine.message import Message, parse_fields
from coverage_engine.records.sqlite import SqliteRecorder, open_database
from coverage_engine.web.db import ConsoleDb
from coverage_lab.ari_http import AriCredentials
from coverage_lab.engine_process import EngineProcess
from coverage_lab.phones import Phones, answers, never_answers, presses, voicemail, wait_bridged
from tests.unit.console_support import with_paging

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHICAGO = ZoneInfo("America/Chicago")
MAPLE = "+13125550100"
NIGHT = datetime(2026, 12, 1, 3, 0, tzinfo=CHICAGO)  # nguyen on call, okafor backup
ACK_SECONDS = 20
PAGING = f"""    paging:
      channels: [voice]
      ack_seconds: {{urgent: {ACK_SECONDS}, emergency: {ACK_SECONDS}}}
      escalation: [primary, backup, operators]
      ring_seconds: 8
      callback_trunk: carrier-out

"""
MESSAGE = {
    "caller_name": "Mary Jones",
    "callback": "(312) 555-0199",
    "patient_name": "Tom Jones",
    "patient_dob": "2019-04-02",
    "reason": "Fever of 104 since the evening.",
    "urgency": "urgent",
    "disposition": "message_for_office",
    "disposition_note": "",
}


def paging_config(path: Path) -> Path:
    text = (ROOT / "config" / "coverage.yaml").read_text(encoding="utf-8")
    text = with_paging(text, PAGING)
    text = text.replace("../var/records.sqlite", "records.sqlite")
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def engine(ari: AriCredentials, tmp_path: Path) -> Iterator[EngineProcess]:
    proc = EngineProcess(
        paging_config(tmp_path / "coverage.yaml"),
        ari_url=ari.url,
        ari_user=ari.user,
        ari_password=ari.password,
        log_path=tmp_path / "engine.log",
    )
    yield proc
    proc.stop()


def records(engine: EngineProcess) -> Path:
    return engine.config.parent / "records.sqlite"


def take_message(engine: EngineProcess, call_id: str, **changes: str) -> Message:
    """A finished call to Maple Grove and olivia's message on it, as the console saves it."""
    path = records(engine)
    recorder, _ = SqliteRecorder.open(path, now=NIGHT)
    try:
        recorder.write(call_id, NIGHT, Received(MAPLE, "+13125550199"))
        recorder.write(call_id, NIGHT, Decided("maple-grove", "closed", "after hours", {}))
        recorder.flush().result(timeout=10)
    finally:
        recorder.close()
    db = ConsoleDb.open(path)
    try:
        fields = parse_fields({**MESSAGE, **changes}, today=NIGHT.date())
        return db.messages.save(call_id, fields, by="olivia", at=NIGHT, expected_version=0)
    finally:
        db.close()


def page_events(engine: EngineProcess, call_id: str) -> list[tuple[str, dict[str, object]]]:
    conn = open_database(records(engine), create=False)
    try:
        rows = conn.execute(
            "SELECT kind, details FROM events WHERE call_id = ? ORDER BY id", (call_id,)
        ).fetchall()
    finally:
        conn.close()
    return [(k, json.loads(d)) for k, d in rows if k.startswith(("page_", "message_ack"))]


def wait_events(
    engine: EngineProcess, call_id: str, kind: str, *, count: int = 1, timeout: float = 60.0
) -> list[tuple[str, dict[str, object]]]:
    """Poll the record file until the call has `count` events of `kind`."""
    deadline = time.monotonic() + timeout
    while True:
        events = page_events(engine, call_id)
        if sum(1 for k, _ in events if k == kind) >= count:
            return events
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {count} x {kind} on {call_id} within {timeout:.0f}s: {events}")
        time.sleep(0.3)


def acknowledged_by(engine: EngineProcess, call_id: str) -> str | None:
    db = ConsoleDb.open(records(engine))
    try:
        message = db.messages.get(call_id)
        return None if message is None else message.acknowledged_by
    finally:
        db.close()


def test_an_urgent_message_is_paged_to_the_doctor_on_call_who_presses_1(
    engine: EngineProcess, phones: Phones
) -> None:
    """Dr. Nguyen (on call at 03:00 Tuesday) answers and presses 1: acknowledged, on the record."""
    phones.start("nguyen", presses("1", after=1, delay=2))
    phones.start("okafor", never_answers())
    engine.start(NIGHT)
    take_message(engine, "page-ack.1")
    events = wait_events(engine, "page-ack.1", "page_acknowledged")
    kinds = [k for k, _ in events]
    assert kinds[:4] == ["page_requested", "page_sent", "page_answered", "page_acknowledged"]
    assert "message_acknowledged" in kinds
    assert acknowledged_by(engine, "page-ack.1") == "nguyen"
    (call,) = phones.calls("nguyen")
    assert call.answered
    assert call.digits == "1"
    assert phones.calls("okafor") == []


def test_a_voicemail_is_not_an_acknowledgement_and_the_backup_is_paged(
    engine: EngineProcess, phones: Phones
) -> None:
    """Nguyen's voicemail answers and never presses 1; Okafor, the backup, then accepts."""
    phones.start("nguyen", voicemail(after=1))
    phones.start("okafor", presses("1", after=1, delay=2))
    engine.start(NIGHT)
    take_message(engine, "page-vm.1")
    events = wait_events(engine, "page-vm.1", "page_acknowledged", timeout=120)
    failed = [d for k, d in events if k == "page_failed"]
    assert failed[0]["doctor"] == "nguyen"
    assert "nobody pressed 1" in str(failed[0]["reason"])
    assert ("page_escalated", {"attempt": 2, "target": "backup",
            "reason": "not acknowledged in time"}) in events  # fmt: skip
    assert acknowledged_by(engine, "page-vm.1") == "okafor"
    assert [c.answered for c in phones.calls("nguyen")] == [True]


def test_press_2_connects_the_doctor_to_the_callback_number_on_the_carrier_trunk(
    engine: EngineProcess, phones: Phones, ari: AriCredentials
) -> None:
    """Nguyen presses 1 then 2: the callback number rings on the carrier and the two are bridged."""
    phones.start("nguyen", presses("12", after=1, delay=2))
    phones.start("carrier-out", answers(after=1))
    engine.start(NIGHT)
    take_message(engine, "page-cb.1")
    wait_bridged(ari, "nguyen", "carrier-out", timeout=60)
    events = wait_events(engine, "page-cb.1", "page_connected")
    assert ("page_connected", {"attempt": 1, "doctor": "nguyen", "result": "connected"}) in events
    (callee,) = phones.calls("carrier-out")
    # The patient sees the practice calling back, not the doctor's own phone.
    assert callee.caller == MAPLE


@pytest.mark.parametrize(
    ("callback", "why"),
    [("555-0199", "callback number not dialable"), ("", "no callback number")],
    ids=["seven digits", "none given"],
)
def test_a_callback_number_that_cannot_be_dialed_is_not_offered(
    engine: EngineProcess, phones: Phones, callback: str, why: str
) -> None:
    """A 7-digit callback, or none at all (an urgent message may lack one): still paged and
    acknowledged by press 1; press 2 does nothing; the record says why."""
    phones.start("nguyen", presses("12", after=1, delay=2))
    phones.start("carrier-out", answers())
    engine.start(NIGHT)
    take_message(engine, "page-nodial.1", callback=callback)
    events = wait_events(engine, "page-nodial.1", "page_connected", timeout=90)
    assert ("page_connected", {"attempt": 1, "doctor": "nguyen",
            "result": f"not offered: {why}"}) in events  # fmt: skip
    assert acknowledged_by(engine, "page-nodial.1") == "nguyen"
    assert phones.calls("carrier-out") == []


def test_a_doctor_whose_phone_cannot_be_dialed_fails_and_the_backup_is_paged(
    ari: AriCredentials, phones: Phones, tmp_path: Path
) -> None:
    """Dr. Nguyen's endpoint is not on the PBX (a typo, a phone removed): the dial fails at once,
    page_failed says so, and Dr. Okafor, the backup, is paged and presses 1."""
    config = paging_config(tmp_path / "coverage.yaml")
    retired, count = re.subn(r"(\n\s+nguyen: \{[^}\n]*endpoint: )nguyen\b", r"\1nguyen-retired",
                             config.read_text(encoding="utf-8"))  # fmt: skip
    assert count == 1, "Dr. Nguyen's endpoint is in the example configuration"
    config.write_text(retired, "utf-8")
    engine = EngineProcess(config, ari_url=ari.url, ari_user=ari.user, ari_password=ari.password,
                           log_path=tmp_path / "engine.log")  # fmt: skip
    phones.start("okafor", presses("1", after=1, delay=2))
    try:
        engine.start(NIGHT)
        take_message(engine, "page-gone.1")
        events = wait_events(engine, "page-gone.1", "page_acknowledged", timeout=120)
    finally:
        engine.stop()
    (failed,) = [d for k, d in events if k == "page_failed"]
    assert failed["doctor"] == "nguyen"
    assert "could not call nguyen (PJSIP/nguyen-retired)" in str(failed["reason"])
    assert ("page_escalated", {"attempt": 2, "target": "backup",
            "reason": "the last attempt reached nobody"}) in events  # fmt: skip
    assert acknowledged_by(engine, "page-gone.1") == "okafor"


def test_three_pages_survive_a_sigkill_none_lost_none_doubled(
    engine: EngineProcess, phones: Phones
) -> None:
    """Killed with three pages pending: after the restart all three go on, none within a minute."""
    phones.start("nguyen", never_answers())
    phones.start("okafor", never_answers())
    started = time.monotonic()
    engine.start(NIGHT)
    calls = [f"page-kill.{n}" for n in (1, 2, 3)]
    for call_id in calls:
        take_message(engine, call_id)
    for call_id in calls:
        wait_events(engine, call_id, "page_sent")
    engine.signal(signal.SIGKILL)
    engine.proc.wait(timeout=10)  # type: ignore[union-attr]
    before = {c: len([k for k, _ in page_events(engine, c) if k == "page_sent"]) for c in calls}
    # The engine's clock goes on from where it was, as a real clock would.
    engine.start(NIGHT + timedelta(seconds=time.monotonic() - started))
    for call_id in calls:
        wait_events(engine, call_id, "page_sent", count=before[call_id] + 1, timeout=120)
    conn = open_database(records(engine), create=False)
    try:
        for call_id in calls:
            sent = [
                datetime.fromisoformat(at)
                for (at,) in conn.execute(
                    "SELECT at FROM events WHERE call_id = ? AND kind = 'page_sent' ORDER BY id",
                    (call_id,),
                )
            ]
            gaps = [later - earlier for earlier, later in itertools.pairwise(sent)]
            assert all(gap >= timedelta(seconds=60) for gap in gaps), (call_id, sent)
            (state,) = conn.execute(
                "SELECT state FROM pages WHERE call_id = ?", (call_id,)
            ).fetchone()
            assert state == "pending"
    finally:
        conn.close()
