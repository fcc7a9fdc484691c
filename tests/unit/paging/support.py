"""Shared set-up of the paging tests: the config with paging on, a record file, messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web

from coverage_engine.config import CoverageConfig
from coverage_engine.config.loader import load_text
from coverage_engine.journey import (
    HandoffAnswered,
    HandoffAttemptFailed,
    HandoffDialing,
    HandoffEvent,
    PageAnswered,
    PageEscalated,
    PageEvent,
    PageFailed,
    PageSent,
)
from coverage_engine.message import Message, parse_fields
from coverage_engine.paging.handoff import Handoff
from coverage_engine.paging.handoff_checks import HandoffCall
from coverage_engine.paging.notice import Notice
from coverage_engine.paging.notifiers import Delivery
from coverage_engine.paging.service import VoiceJob
from coverage_engine.records.handoffs import HandoffStore
from coverage_engine.records.pages import PageStore
from coverage_engine.records.sqlite import open_database
from coverage_engine.web.db import ConsoleDb
from tests.unit.console_support import MESSAGE, NIGHT, ROOT, place_call, with_paging

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


class Clock:
    """The services' clock, moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def config_text(paging: str = PAGING, notifications: str = NOTIFICATIONS) -> str:
    """config/coverage.yaml with `paging` for maple-grove and the engine's notifications."""
    text = (ROOT / "config" / "coverage.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "    short_name: COVERAGE\n", "    short_name: COVERAGE\n" + notifications, 1
    )
    return with_paging(text, paging)


def config(paging: str = PAGING, notifications: str = NOTIFICATIONS) -> CoverageConfig:
    return load_text(config_text(paging, notifications))


def take_message(
    records: Path,
    call_id: str,
    *,
    at: datetime = NIGHT,
    practice: str = "maple-grove",
    **changes: str,
) -> Message:
    """A call to Maple Grove (or `practice`, "" for a number no practice claims) with a message
    taken on it by olivia (urgent unless changed)."""
    place_call(records, call_id, at=at, practice=practice)
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

    # doctor -> ack / voicemail / no_answer / unreachable
    behaviour: dict[str, str] = field(default_factory=dict)
    calls: list[VoiceJob] = field(default_factory=list)

    async def page(
        self,
        job: VoiceJob,
        acknowledge: Callable[[], Awaitable[None]],
        record: Callable[[Sequence[PageEvent]], Awaitable[None]],
    ) -> list[PageEvent]:
        self.calls.append(job)
        what = self.behaviour.get(job.doctor, "no_answer")
        if what == "unreachable":  # the dial itself fails: nothing went out
            return [PageFailed(job.attempt, "voice", "could not call", job.doctor)]
        await record([PageSent(job.attempt, "voice", job.target, job.doctor)])
        if what == "no_answer":
            return [PageFailed(job.attempt, "voice", "no answer", job.doctor)]
        await record([PageAnswered(job.attempt, job.doctor)])
        if what == "ack":
            await acknowledge()
            return []
        return [PageFailed(job.attempt, "voice", "not confirmed", job.doctor)]


@dataclass
class Receiver:
    """A webhook endpoint whose answers the test chooses, one per request."""

    answers: list[int | str] = field(default_factory=list)  # status, or "slow"
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append((dict(request.headers), body))
        answer = self.answers.pop(0) if self.answers else 200
        if answer == "slow":
            await asyncio.sleep(5)
            answer = 200
        return web.Response(status=int(answer), text="ok")


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    """A real webhook receiver on the loopback (an aiohttp server), at `Receiver.url`."""
    box = Receiver()
    app = web.Application()
    app.router.add_post("/hook", box.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    box.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield box
    finally:
        await runner.cleanup()


@dataclass
class FakeCaller:
    """The doctors' phones as a handoff check sees them: per doctor, press 1 or a voicemail."""

    behaviour: dict[str, str] = field(default_factory=dict)  # doctor -> confirm / voicemail
    calls: list[HandoffCall] = field(default_factory=list)

    async def call(
        self,
        job: HandoffCall,
        confirm: Callable[[], Awaitable[None]],
        record: Callable[[Sequence[HandoffEvent]], Awaitable[None]],
    ) -> HandoffAttemptFailed | None:
        self.calls.append(job)
        await record([HandoffDialing(job.attempt, job.doctor)])
        await record([HandoffAnswered(job.attempt, job.doctor)])
        if self.behaviour.get(job.doctor) == "confirm":
            await confirm()
            return None
        return HandoffAttemptFailed(job.attempt, job.doctor, "answered, but nobody pressed 1")


def alert_on_a_page(records: Path, call_id: str) -> None:
    """An urgent message whose page has climbed to the operators' rung, as paging writes it."""
    take_message(records, call_id)
    conn = open_database(records)
    try:
        pages = PageStore(conn)
        (page,) = pages.claim_due(now=NIGHT, owner="t", lease=timedelta(minutes=3))
        escalated = PageEscalated(1, "operators", "not acknowledged in time")
        pages.start_attempt(page, owner="t", at=NIGHT, rung=3, next_rung=4,
                            next_at=NIGHT + timedelta(minutes=10), alerts_operators=True,
                            events=[escalated])  # fmt: skip
        sent = PageSent(1, "console", "operators")
        pages.finish_attempt(call_id, owner="t", at=NIGHT, events=[sent])
    finally:
        conn.close()


#: The check of `alert_on_a_handoff`.
CHECK = "handoff-maple-grove-2026-12-01T0800Z"


def alert_on_a_handoff(records: Path) -> None:
    """Dr. Okafor came on call at 02:00 and did not press 1 on the one call made."""
    handoff = Handoff("maple-grove", NIGHT - timedelta(hours=1), "okafor", "nguyen",
                      NIGHT + timedelta(days=6), "swap: flu")  # fmt: skip
    conn = open_database(records)
    try:
        store = HandoffStore(conn)
        store.open_check(handoff, attempts=1, at=handoff.at)
        (check,) = store.claim_due(now=handoff.at, owner="t", lease=timedelta(minutes=3))
        store.start_attempt(check, owner="t", at=handoff.at)
        failure = HandoffAttemptFailed(1, "okafor", "answered, but nobody pressed 1")
        alerting = store.failed(check, owner="t", at=handoff.at, failure=failure,
                                retry=timedelta(minutes=5))  # fmt: skip
        store.alerted(alerting, owner="t", at=handoff.at, events=[])
    finally:
        conn.close()
