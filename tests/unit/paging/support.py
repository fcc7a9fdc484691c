"""Shared set-up of the paging tests: the config with paging on, a record file, messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from coverage_engine.config import CoverageConfig
from coverage_engine.config.loader import load_text
from coverage_engine.journey import (
    PageAnswered,
    PageEvent,
    PageFailed,
    PageSent,
)
from coverage_engine.message import Message, parse_fields
from coverage_engine.paging.notice import Notice
from coverage_engine.paging.notifiers import Delivery
from coverage_engine.paging.service import VoiceJob
from coverage_engine.records.sqlite import open_database
from coverage_engine.web.db import ConsoleDb
from tests.unit.console_support import MESSAGE, NIGHT, ROOT, place_call

PAGING = """
    paging:
      channels: [voice, webhook, email]
      ack_seconds: {urgent: 600, emergency: 300}
      escalation: [primary, primary, backup, operators]
      callback_trunk: carrier-out
      pagers: {patel: patel@pager.example.net, nguyen: nguyen@pager.example.net,
               okafor: okafor@pager.example.net}
      alert_email: [manager@maplegrove.example]
"""
NOTIFICATIONS = """
  notifications:
    console_url: https://console.example.org
    webhook: {url: "http://127.0.0.1:9/hook"}
    smtp: {host: 127.0.0.1, port: 2525, from: pages@answering.example}
"""


def config_text(paging: str = PAGING, notifications: str = NOTIFICATIONS) -> str:
    """config/coverage.yaml with `paging` for maple-grove and the engine's notifications."""
    text = (ROOT / "config" / "coverage.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "    short_name: COVERAGE\n", "    short_name: COVERAGE\n" + notifications, 1
    )
    marker = "    # What the operators' console shows when a call for Maple Grove comes in."
    return text.replace(marker, paging.strip("\n") + "\n\n" + marker, 1)


def config(paging: str = PAGING, notifications: str = NOTIFICATIONS) -> CoverageConfig:
    return load_text(config_text(paging, notifications))


def take_message(records: Path, call_id: str, *, at: datetime = NIGHT, **changes: str) -> Message:
    """A call to Maple Grove with a message taken on it by olivia (urgent unless changed)."""
    place_call(records, call_id, at=at)
    db = ConsoleDb.open(records)
    try:
        fields = parse_fields({**MESSAGE, **changes}, today=at.date())
        return db.messages.save(call_id, fields, by="olivia", at=at, expected_version=0)
    finally:
        db.close()


def events_of(records: Path, call_id: str) -> list[tuple[str, dict[str, object]]]:
    """The call's journey events as (kind, details), oldest first."""
    conn = open_database(records, create=False)
    try:
        import json

        rows = conn.execute(
            "SELECT kind, details FROM events WHERE call_id = ? ORDER BY id", (call_id,)
        ).fetchall()
        return [(kind, json.loads(details)) for kind, details in rows]
    finally:
        conn.close()


def page_events(records: Path, call_id: str) -> list[tuple[str, dict[str, object]]]:
    return [(k, d) for k, d in events_of(records, call_id) if k.startswith("page_")]


@dataclass
class FakeNotifier:
    """Records each notice; answers with the deliveries the test sets (default: delivered)."""

    results: list[Delivery] = field(default_factory=list)
    sent: list[tuple[Notice, str]] = field(default_factory=list)

    async def send(self, notice: Notice, to: str = "") -> Delivery:
        self.sent.append((notice, to))
        return self.results.pop(0) if self.results else Delivery(True, "HTTP 200", 1)


@dataclass
class FakeVoice:
    """A doctor's phone as the voice pager sees it: scripted per doctor (press 1, voicemail...)."""

    behaviour: dict[str, str] = field(default_factory=dict)  # doctor -> ack / voicemail / no_answer
    calls: list[VoiceJob] = field(default_factory=list)

    async def page(
        self,
        job: VoiceJob,
        acknowledge: Callable[[], Awaitable[None]],
        record: Callable[[Sequence[PageEvent]], Awaitable[None]],
    ) -> list[PageEvent]:
        self.calls.append(job)
        what = self.behaviour.get(job.doctor, "no_answer")
        await record([PageSent(job.attempt, "voice", "doctor", job.doctor)])
        if what == "no_answer":
            return [PageFailed(job.attempt, "voice", "no answer", job.doctor)]
        await record([PageAnswered(job.attempt, job.doctor)])
        if what == "ack":
            await acknowledge()
            return []
        return [PageFailed(job.attempt, "voice", "not confirmed", job.doctor)]
