"""The handoff-check service on a real record file: calls, retries, alert, restarts, two engines.

Maple Grove opts in; at Monday Dec 7 08:00 (Chicago) Dr. Okafor takes over
from Dr. Nguyen until Monday 14th 08:00. The doctors' phones are scripted
(`FakeCaller`); the journey, the alert and the notifications are real.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry

from coverage_engine.config import CoverageConfig
from coverage_engine.journey import EventKind, JourneyKind, Outcome
from coverage_engine.paging.handoff import due
from coverage_engine.paging.handoff_checks import HandoffService
from coverage_engine.paging.policy import Channel
from coverage_engine.paging.service import PagingDb, PagingMetrics
from coverage_engine.records.model import JourneyFilter
from coverage_engine.records.sqlite import RecordStore, open_database
from tests.unit.paging.support import Clock, FakeCaller, FakeNotifier, config, events_of

CHICAGO = ZoneInfo("America/Chicago")
HANDOFF = datetime(2026, 12, 7, 8, 0, tzinfo=CHICAGO)
CHECK = "handoff-maple-grove-2026-12-07T1400Z"
CHECKED = """
    paging:
      channels: [voice, webhook]
      alert_email: [manager@maplegrove.example]
      handoff_check: {attempts: 3, retry_seconds: 300, ring_seconds: 30}
"""


class Engine:
    """One engine's handoff-check service on the record file, with scripted phones."""

    def __init__(self, records: Path, clock: Clock, cfg: CoverageConfig, owner: str = "a") -> None:
        self.db = PagingDb(open_database(records))
        self.caller = FakeCaller()
        self.webhook = FakeNotifier()
        self.email = FakeNotifier()
        self.metrics = PagingMetrics(CollectorRegistry())
        self.config = cfg
        self.service = HandoffService(
            self.db,
            config=lambda: self.config,
            now=clock,
            owner=owner,
            notifiers=lambda _s: {Channel.WEBHOOK: self.webhook, Channel.EMAIL: self.email},
            caller=self.caller,
            metrics=self.metrics,
        )

    async def tick(self) -> int:
        tasks = await self.service.tick()
        await asyncio.gather(*tasks)
        return len(tasks)

    def close(self) -> None:
        self.db.close()


@pytest.fixture
def records(tmp_path: Path) -> Path:
    return tmp_path / "records.sqlite"


@pytest.fixture
def clock() -> Clock:
    return Clock(HANDOFF - timedelta(minutes=1))


@pytest.fixture
def engine(records: Path, clock: Clock) -> Iterator[Engine]:
    made = Engine(records, clock, config(CHECKED))
    yield made
    made.close()


def kinds(records: Path) -> list[str]:
    return [kind for kind, _ in events_of(records, CHECK)]


async def test_the_doctor_coming_on_call_is_called_at_the_handoff_and_confirms(
    records: Path, engine: Engine, clock: Clock
) -> None:
    """Nothing before 08:00; at 08:00 Dr. Okafor's phone is called with the sentence naming
    the practice and Monday 14th, 8 AM; she presses 1; the journey ends confirmed."""
    engine.caller.behaviour = {"okafor": "confirm"}
    assert await engine.tick() == 0
    clock.advance(minutes=1)
    assert await engine.tick() == 1
    (job,) = engine.caller.calls
    assert (job.doctor, job.dial, job.attempt, job.ring_seconds) == (
        "okafor",
        "PJSIP/okafor",
        1,
        30,
    )
    assert "sound:coverage/practice-maple-grove" in job.sentence.media
    assert [
        m for m in job.sentence.media if m.split("/")[-1].startswith(("day-", "mon-", "h-"))
    ] == ["sound:digits/day-1", "sound:digits/mon-11", "sound:digits/h-14"]
    assert kinds(records) == [
        EventKind.HANDOFF_CHECK_STARTED,
        EventKind.HANDOFF_DIALING,
        EventKind.HANDOFF_ANSWERED,
        EventKind.HANDOFF_DOCTOR_CONFIRMED,
        EventKind.ENDED,
    ]
    with RecordStore.open(records) as store:
        journey = store.get(CHECK)
    assert journey is not None
    assert (journey.kind, journey.outcome) == (JourneyKind.HANDOFF_CHECK, Outcome.HANDOFF_CONFIRMED)
    assert journey.answered_by == "okafor"
    clock.advance(hours=1)
    assert await engine.tick() == 0
    assert len(engine.caller.calls) == 1
    assert engine.metrics.handoff_checks.labels("maple-grove", "confirmed")._value.get() == 1


async def test_a_silent_doctor_is_called_three_times_then_the_operators_and_practice_are_alerted(
    records: Path, engine: Engine, clock: Clock
) -> None:
    """A voicemail answers at 08:00, 08:05 and 08:10; then the alert: the console's banner,
    the webhook and the practice's alert e-mail, no patient data; the journey ends unconfirmed."""
    clock.advance(minutes=1)
    for _ in range(3):
        await engine.tick()
        clock.advance(minutes=4)
        assert await engine.tick() == 0  # not before retry_seconds
        clock.advance(minutes=1)
    assert [job.attempt for job in engine.caller.calls] == [1, 2, 3]
    events = events_of(records, CHECK)
    assert [k for k, _ in events][-6:] == [
        EventKind.HANDOFF_ATTEMPT_FAILED,
        EventKind.HANDOFF_ALERT_RAISED,
        EventKind.HANDOFF_ALERT_SENT,
        EventKind.HANDOFF_ALERT_SENT,
        EventKind.HANDOFF_ALERT_SENT,
        EventKind.ENDED,
    ]
    sent = [d for k, d in events if k == EventKind.HANDOFF_ALERT_SENT]
    assert sent == [
        {"channel": "console", "to": ""},
        {"channel": "webhook", "to": ""},
        {"channel": "email", "to": "manager@maplegrove.example"},
    ]
    ((notice, _),) = engine.webhook.sent
    assert notice.subject() == "Maple Grove Pediatrics: on-call handoff NOT confirmed"
    assert notice.link == f"https://console.example.org/calls/{CHECK}"
    (alert,) = engine.db.handoffs.alerts(clock())
    assert (alert.check_id, alert.doctor, alert.attempts) == (CHECK, "okafor", 3)
    with RecordStore.open(records) as store:
        (journey,) = store.journeys(JourneyFilter(kind=JourneyKind.HANDOFF_CHECK))
    assert journey.outcome is Outcome.HANDOFF_NOT_CONFIRMED
    await engine.tick()
    assert engine.metrics.handoff_alerts_open._value.get() == 1
    assert engine.metrics.handoff_checks.labels("maple-grove", "not_confirmed")._value.get() == 1


async def test_the_alert_stands_until_someone_resolves_it_or_the_turn_ends(
    records: Path, engine: Engine, clock: Clock
) -> None:
    """Olivia reaches Dr. Okafor on her cell and marks it: the alert is gone, on the record."""
    clock.advance(minutes=1)
    for _ in range(3):
        await engine.tick()
        clock.advance(minutes=5)
    assert len(engine.db.handoffs.alerts(clock())) == 1
    assert engine.db.handoffs.alerts(datetime(2026, 12, 14, 8, 0, tzinfo=CHICAGO)) == []
    engine.db.handoffs.resolve(CHECK, by="olivia", at=clock(), note="reached on her cell")
    assert engine.db.handoffs.alerts(clock()) == []
    assert events_of(records, CHECK)[-1] == (
        EventKind.HANDOFF_ALERT_RESOLVED,
        {"by": "olivia", "note": "reached on her cell"},
    )


async def test_two_engines_on_one_record_file_make_one_call(records: Path, clock: Clock) -> None:
    """Both see the handoff come due at the same instant: one check, one call."""
    one, two = (
        Engine(records, clock, config(CHECKED), "a"),
        Engine(records, clock, config(CHECKED), "b"),
    )
    one.caller.behaviour = two.caller.behaviour = {"okafor": "confirm"}
    clock.advance(minutes=1)
    counts = await asyncio.gather(one.tick(), two.tick())
    assert sorted(counts) == [0, 1]
    assert len(one.caller.calls) + len(two.caller.calls) == 1
    assert kinds(records).count(EventKind.HANDOFF_CHECK_STARTED) == 1
    one.close()
    two.close()


async def test_a_call_cut_off_by_a_crash_is_an_attempt_and_the_check_goes_on_after_a_restart(
    records: Path, clock: Clock
) -> None:
    """The engine dies while the phone rings: after the restart the check is neither lost nor
    made afresh: the cut-off call is on the record and the next comes retry_seconds after it."""
    dead = Engine(records, clock, config(CHECKED))
    clock.advance(minutes=1)
    (handoff,) = due(dead.config.practices["maple-grove"], clock())
    dead.db.handoffs.open_check(handoff, attempts=3, at=clock())
    (claimed,) = dead.db.handoffs.claim_due(now=clock(), owner="a", lease=timedelta(minutes=4))
    assert dead.db.handoffs.start_attempt(claimed, owner="a", at=clock())
    dead.close()
    clock.advance(seconds=30)
    restarted = Engine(records, clock, config(CHECKED))
    restarted.caller.behaviour = {"okafor": "confirm"}
    await restarted.db.run(lambda db: db.handoffs.recover(owner="a"))
    assert await restarted.tick() == 1  # finds the cut-off call
    assert restarted.caller.calls == []
    clock.advance(minutes=4)
    assert await restarted.tick() == 0
    clock.advance(seconds=30)
    assert await restarted.tick() == 1
    assert [job.attempt for job in restarted.caller.calls] == [2]
    failed = [d for k, d in events_of(records, CHECK) if k == EventKind.HANDOFF_ATTEMPT_FAILED]
    assert failed == [{"attempt": 1, "doctor": "okafor", "reason": "cut off by an engine restart"}]
    assert kinds(records).count(EventKind.HANDOFF_CHECK_STARTED) == 1
    assert kinds(records)[-1] == EventKind.ENDED
    restarted.close()


async def test_a_check_whose_swap_was_removed_is_cancelled_not_called(
    records: Path, clock: Clock
) -> None:
    """Christmas noon: Okafor's swap starts; the first call is not answered; the swap is then
    removed from the file (Nguyen stays on): the retry is cancelled, and the record says why."""
    clock.at = datetime(2026, 12, 24, 12, 0, tzinfo=CHICAGO)
    engine = Engine(records, clock, config(CHECKED))
    await engine.tick()
    practice = engine.config.practices["maple-grove"]
    assert practice.oncall is not None
    roster = practice.oncall.model_copy(update={"swaps": ()})
    changed = practice.model_copy(update={"oncall": roster})
    engine.config = engine.config.model_copy(
        update={"practices": {**engine.config.practices, "maple-grove": changed}}
    )
    clock.advance(minutes=5)
    await engine.tick()
    check = "handoff-maple-grove-2026-12-24T1800Z"
    assert [job.doctor for job in engine.caller.calls] == ["okafor"]
    assert events_of(records, check)[-2] == (
        EventKind.HANDOFF_CHECK_CANCELLED,
        {"reason": "okafor no longer comes on call then (the configuration changed)"},
    )
    engine.close()
