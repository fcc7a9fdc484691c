"""The paging service against a real record file: ladders, acknowledgement, restarts, leases."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from coverage_engine.config import CoverageConfig
from coverage_engine.paging.notifiers import Delivery
from coverage_engine.paging.policy import Channel
from coverage_engine.paging.service import PagingDb, PagingMetrics, PagingService
from coverage_engine.paging.setup import Notifiers
from coverage_engine.records.sqlite import open_database
from coverage_engine.web.db import ConsoleDb
from tests.unit.console_support import NIGHT
from tests.unit.paging.support import (
    Clock,
    FakeNotifier,
    FakeVoice,
    config,
    page_events,
    receiving,
    take_message,
)

CALL = "1764579600.1"
VOICE_ONLY = """
    paging:
      channels: [voice]
"""
WEBHOOK_ONLY = """
    paging:
      channels: [webhook]
"""


@pytest.fixture
def records(tmp_path: Path) -> Path:
    return tmp_path / "records.sqlite"


@pytest.fixture
def clock() -> Clock:
    return Clock(NIGHT)


class Box:
    """A paging service on the record file, with fake channels the test scripts."""

    def __init__(self, records: Path, clock: Clock, cfg: CoverageConfig, owner: str = "a") -> None:
        self.db = PagingDb(open_database(records))
        self.webhook = FakeNotifier()
        self.email = FakeNotifier()
        self.voice = FakeVoice()
        self.metrics = PagingMetrics(CollectorRegistry())
        self.service = PagingService(
            self.db,
            config=lambda: cfg,
            now=clock,
            owner=owner,
            notifiers=lambda _settings: {Channel.WEBHOOK: self.webhook, Channel.EMAIL: self.email},
            voice=self.voice,
            metrics=self.metrics,
        )

    async def tick(self) -> int:
        tasks = await self.service.tick()
        await asyncio.gather(*tasks)
        return len(tasks)

    def close(self) -> None:
        self.db.close()


@pytest.fixture
def box(records: Path, clock: Clock) -> Iterator[Box]:
    made = Box(records, clock, config())
    yield made
    made.close()


def kinds(records: Path) -> list[str]:
    return [kind for kind, _ in page_events(records, CALL)]


async def test_an_urgent_message_is_paged_at_once_to_the_doctor_on_call(
    records: Path, box: Box
) -> None:
    """Taken at 03:00 on Tuesday Dec 1st: Dr. Nguyen is on call; voice, webhook, e-mail go out."""
    take_message(records, CALL)
    assert await box.tick() == 1
    assert [job.doctor for job in box.voice.calls] == ["nguyen"]
    assert box.voice.calls[0].dial == "PJSIP/nguyen"
    assert box.voice.calls[0].callback == "+1 555 765 4321"
    ((notice, _),) = box.webhook.sent
    assert (notice.recipient, notice.link) == (
        "nguyen",
        f"https://console.example.org/messages/{CALL}",
    )
    assert [to for _, to in box.email.sent] == ["nguyen@pager.example.net"]
    assert kinds(records) == [
        "page_requested",
        "page_sent",
        "page_failed",
        "page_sent",
        "page_sent",
    ]


async def test_a_routine_message_is_not_paged(records: Path, box: Box) -> None:
    """Routine messages wait for the office: no page, no event."""
    take_message(records, CALL, urgency="routine")
    assert await box.tick() == 0
    assert kinds(records) == []


async def test_nothing_is_paged_again_before_the_window_ends(
    records: Path, box: Box, clock: Clock
) -> None:
    """Nine minutes after an unanswered urgent page, nobody is paged; at ten, the primary again."""
    take_message(records, CALL)
    await box.tick()
    clock.advance(minutes=9)
    assert await box.tick() == 0
    clock.advance(minutes=1)
    assert await box.tick() == 1
    assert [job.doctor for job in box.voice.calls] == ["nguyen", "nguyen"]
    escalated = [d for k, d in page_events(records, CALL) if k == "page_escalated"]
    assert escalated == [{"attempt": 2, "target": "primary", "reason": "not acknowledged in time"}]


async def test_the_ladder_goes_primary_primary_backup_operators_and_starts_again(
    records: Path, box: Box, clock: Clock
) -> None:
    """Nobody answers: nguyen, nguyen, okafor (backup), the operators, then nguyen again."""
    take_message(records, CALL)
    targets = []
    for _ in range(5):
        await box.tick()
        clock.advance(minutes=10)
    targets = [job.doctor for job in box.voice.calls]
    assert targets == ["nguyen", "nguyen", "okafor", "nguyen"]
    page = box.db.pages.get(CALL)
    assert page is not None
    assert page.alerted_at == NIGHT + timedelta(minutes=30)
    assert [p.call_id for p in box.db.pages.alerts()] == [CALL]
    assert box.metrics.operator_alerts.labels("maple-grove")._value.get() == 1
    operators_mail = [to for n, to in box.email.sent if n.recipient == "operators"]
    assert operators_mail == ["manager@maplegrove.example"]


async def test_an_emergency_escalates_after_five_minutes(
    records: Path, box: Box, clock: Clock
) -> None:
    """The emergency window is 5 minutes."""
    take_message(records, CALL, urgency="emergency")
    await box.tick()
    clock.advance(minutes=5)
    assert await box.tick() == 1


async def test_a_voicemail_does_not_acknowledge_and_the_backup_is_paged(
    records: Path, clock: Clock
) -> None:
    """Dr. Nguyen's voicemail answers twice: not acknowledged; the backup, Dr. Okafor, presses 1."""
    box = Box(records, clock, config())
    box.voice.behaviour = {"nguyen": "voicemail", "okafor": "ack"}
    take_message(records, CALL)
    for _ in range(3):
        await box.tick()
        clock.advance(minutes=10)
    message = box.db.messages.get(CALL)
    assert message is not None
    assert message.acknowledged_by == "okafor"
    assert box.db.pages.get(CALL).state == "acknowledged"  # type: ignore[union-attr]
    assert await box.tick() == 0
    assert "page_acknowledged" in kinds(records)
    box.close()


async def test_a_doctor_who_cannot_be_dialed_is_passed_over_a_minute_later_not_ten(
    records: Path, clock: Clock
) -> None:
    """Voice only, and Dr. Nguyen's phone cannot be dialed: nothing reached anyone, so the next
    rung comes a minute later (nguyen again, then okafor), not after the 10-minute window."""
    box = Box(records, clock, config(VOICE_ONLY))
    box.voice.behaviour = {"nguyen": "unreachable", "okafor": "ack"}
    take_message(records, CALL)
    await box.tick()
    clock.advance(seconds=59)
    assert await box.tick() == 0
    clock.advance(seconds=1)
    await box.tick()
    clock.advance(minutes=1)
    await box.tick()
    assert [job.doctor for job in box.voice.calls] == ["nguyen", "nguyen", "okafor"]
    escalated = [d for k, d in page_events(records, CALL) if k == "page_escalated"]
    assert escalated == [
        {"attempt": 2, "target": "primary", "reason": "the last attempt reached nobody"},
        {"attempt": 3, "target": "backup", "reason": "the last attempt reached nobody"},
    ]
    assert box.db.messages.get(CALL).acknowledged_by == "okafor"  # type: ignore[union-attr]
    box.close()


async def test_an_acknowledgement_in_the_console_stops_the_paging(
    records: Path, box: Box, clock: Clock
) -> None:
    """Sam acknowledges in the console after the first page: no second page ever comes."""
    take_message(records, CALL)
    await box.tick()
    console = ConsoleDb.open(records)
    console.messages.acknowledge(CALL, by="sam", at=clock())
    console.close()
    clock.advance(minutes=30)
    assert await box.tick() == 0
    assert box.db.pages.get(CALL).state == "acknowledged"  # type: ignore[union-attr]


async def test_one_failing_channel_does_not_stop_the_others(records: Path, box: Box) -> None:
    """The webhook gives up; the voice page and the e-mail still go, and the record says so."""
    box.webhook.results = [Delivery(False, "HTTP 500 after 4 tries", 4)]
    take_message(records, CALL)
    await box.tick()
    failed = [d for k, d in page_events(records, CALL) if k == "page_failed"]
    assert {"attempt": 1, "channel": "webhook", "reason": "HTTP 500 after 4 tries",
            "doctor": "nguyen"} in failed  # fmt: skip
    assert len(box.email.sent) == 1
    assert len(box.voice.calls) == 1


async def test_a_correction_to_routine_cancels_the_page(
    records: Path, box: Box, clock: Clock
) -> None:
    """The operator set urgent by mistake and corrects it: the page is cancelled, on the record."""
    message = take_message(records, CALL)
    console = ConsoleDb.open(records)
    fields = message.fields.__class__.from_json({**message.fields.to_json(), "urgency": "routine"})
    console.messages.save(CALL, fields, by="olivia", at=clock(), expected_version=1)
    console.close()
    assert await box.tick() == 0
    assert kinds(records) == ["page_requested", "page_cancelled"]


async def test_a_page_of_an_unknown_practice_goes_to_the_operators_and_says_why(
    records: Path, clock: Clock
) -> None:
    """The practice left the configuration: the operators are alerted at once, message kept."""
    take_message(records, CALL)
    without = config()
    without = without.model_copy(
        update={"practices": {k: v for k, v in without.practices.items() if k != "maple-grove"}}
    )
    box = Box(records, clock, without)
    await box.tick()
    escalated = [d["reason"] for k, d in page_events(records, CALL) if k == "page_escalated"]
    assert escalated == [
        'passed over: practice "maple-grove" is not in the configuration (removed or '
        "renamed?): no doctor to page"
    ]
    assert [p.call_id for p in box.db.pages.alerts()] == [CALL]
    assert box.db.messages.get(CALL) is not None
    box.close()


async def test_an_urgent_message_on_a_call_to_an_unknown_number_alerts_the_operators(
    records: Path, box: Box
) -> None:
    """The call reached no practice: no doctor is paged; the operators are alerted at once and
    the record says why; the message is kept."""
    take_message(records, CALL, practice="")
    await box.tick()
    assert box.voice.calls == []
    events = page_events(records, CALL)
    assert ("page_escalated", {"attempt": 1, "target": "primary", "reason": "passed over: the "
            "call reached no practice (a number no practice claims): no doctor to page"}) in events
    assert ("page_sent", {"attempt": 1, "channel": "console", "target": "operators",
            "doctor": None}) in events  # fmt: skip
    assert [p.call_id for p in box.db.pages.alerts()] == [CALL]
    assert box.db.messages.get(CALL) is not None


async def test_a_doctor_without_a_pager_address_fails_that_channel_clearly(
    records: Path, clock: Clock
) -> None:
    """E-mail is on but nguyen has no pagers: address at runtime: page_failed says so."""
    cfg = config()
    practice = cfg.practices["maple-grove"]
    paging = practice.paging.model_copy(update={"pagers": {}})
    practices = {**cfg.practices, "maple-grove": practice.model_copy(update={"paging": paging})}
    box = Box(records, clock, cfg.model_copy(update={"practices": practices}))
    take_message(records, CALL)
    await box.tick()
    failed = [d["reason"] for k, d in page_events(records, CALL) if k == "page_failed"]
    assert "no pagers: address for nguyen" in failed
    box.close()


async def test_two_engines_never_page_the_same_message_at_once(records: Path, clock: Clock) -> None:
    """Two services on one record file claim at the same instant: one page goes out."""
    take_message(records, CALL)
    one, two = Box(records, clock, config(), "a"), Box(records, clock, config(), "b")
    counts = await asyncio.gather(one.tick(), two.tick())
    assert sorted(counts) == [0, 1]
    assert len(one.voice.calls) + len(two.voice.calls) == 1
    one.close()
    two.close()


async def test_an_attempt_cut_off_by_a_crash_is_taken_on_again_a_minute_later(
    records: Path, clock: Clock
) -> None:
    """The engine dies mid-page: after restart the same rung goes out again, not before a minute."""
    take_message(records, CALL)
    dead = Box(records, clock, config())
    claimed = dead.db.pages.claim_due(now=clock(), owner="a", lease=timedelta(minutes=3))
    page = claimed[0]
    assert dead.db.pages.start_attempt(
        page, owner="a", at=clock(), rung=0, next_rung=1,
        next_at=clock() + timedelta(minutes=10), alerts_operators=False, events=[],
    )  # fmt: skip
    dead.close()
    clock.advance(seconds=20)
    restarted = Box(records, clock, config())
    await restarted.db.run(lambda db: db.pages.recover(owner="a", now=clock()))
    assert await restarted.tick() == 0  # not within a minute of the cut-off page
    clock.advance(seconds=40)
    assert await restarted.tick() == 1
    assert [job.doctor for job in restarted.voice.calls] == ["nguyen"]
    failed = [d["reason"] for k, d in page_events(records, CALL) if k == "page_failed"]
    assert failed[:1] == ["cut off by an engine restart"]
    restarted.close()


async def test_a_reload_that_moves_the_webhook_sends_the_next_page_to_the_new_address(
    records: Path, clock: Clock
) -> None:
    """The clinic's IT points the webhook elsewhere with the engine running: the first page
    went to the old receiver, the next one (ten minutes later) goes to the new one."""
    async with receiving() as old, receiving() as new:
        current = [config(WEBHOOK_ONLY, webhook_at(old.url))]
        service = PagingService(
            PagingDb(open_database(records)),
            config=lambda: current[0],
            now=clock,
            owner="a",
            notifiers=Notifiers({"COVERAGE_WEBHOOK_SECRET": "rotated-by-it"}),
            voice=FakeVoice(),
        )
        take_message(records, CALL)
        await asyncio.gather(*await service.tick())
        current[0] = config(WEBHOOK_ONLY, webhook_at(new.url))
        clock.advance(minutes=10)
        await asyncio.gather(*await service.tick())
    assert (len(old.received), len(new.received)) == (1, 1)
    sent = [d for k, d in page_events(records, CALL) if k == "page_sent"]
    assert [(d["attempt"], d["channel"]) for d in sent] == [(1, "webhook"), (2, "webhook")]


def webhook_at(url: str) -> str:
    """engine.notifications with only a webhook, at `url`."""
    return f"""
  notifications:
    console_url: https://console.example.org
    webhook: {{url: "{url}", timeout_seconds: 2, tries: 1}}
"""
