"""The paging service: climbs each pending page's ladder until someone acknowledges.

    store (pending pages) ──claim──> attempt: policy.plan_attempt (pure)
                                       ├─ voice   ─┐  each channel on its own:
                                       ├─ webhook ─┤  one failing never stops
                                       ├─ email   ─┤  the others
                                       └─ console ─┘  (banner + metric)
                                     results ──> journey events on the message's call

Runs inside `coverage-engine run`, beside the calls. Every step is written
to the record file before and after it happens (see `records.pages`), so a
restart or a crash resumes every page, and two engines sharing the file never
page the same message at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from coverage_engine.config.model import CoverageConfig, Notifications, Practice
from coverage_engine.journey import (
    PageEscalated,
    PageEvent,
    PageFailed,
    PageSent,
)
from coverage_engine.message import Message, Urgency
from coverage_engine.paging.notice import Notice, NoticeKind, message_link
from coverage_engine.paging.notifiers import Delivery
from coverage_engine.paging.policy import (
    Attempt,
    Channel,
    Target,
    escalation_reason,
    next_due,
    plan_attempt,
    soon_after_nothing_went_out,
)
from coverage_engine.records.handoffs import HandoffStore
from coverage_engine.records.messages import MessageStore
from coverage_engine.records.pages import Page, PageStore
from coverage_engine.records.sql import Connection

log = structlog.get_logger("coverage_engine.paging")

T = TypeVar("T")

#: How long a claimed page is ours: longer than any attempt's outcome takes to be known.
LEASE = timedelta(minutes=3)
#: How often the store is looked at for pages that came due (a message just taken).
POLL_SECONDS = 1.0


class Notifier(Protocol):
    """Sends one notice to one address (`notifiers.WebhookNotifier`, `EmailNotifier`)."""

    async def send(self, notice: Notice, to: str = "") -> Delivery: ...


@dataclass(frozen=True, slots=True)
class VoiceJob:
    """What a voice page needs: who to call, what to tell them, and how to report."""

    call_id: str
    practice: Practice
    urgency: Urgency
    attempt: int
    target: str  # the rung: primary / backup
    doctor: str
    dial: str  # the doctor's dial string, from validated config
    callback: str  # as the operator typed it (validated as a phone number, or empty)
    reason_category: str  # the message's disposition, read out after the number
    ring_seconds: int


class VoicePager(Protocol):
    """Calls a doctor for one attempt; returns once its outcome is known.

    `record` writes events as they happen (sent, answered, and after the
    outcome: page_connected); `acknowledge` is awaited the moment the doctor
    presses 1, before the call goes on (the number read out, press 2). The
    return value is the failure's events, if it failed.
    """

    async def page(
        self,
        job: VoiceJob,
        acknowledge: Callable[[], Awaitable[None]],
        record: Callable[[Sequence[PageEvent]], Awaitable[None]],
    ) -> list[PageEvent]: ...


class PagingMetrics:
    """What paging counts, on the engine's registry (no patient data, no call ids)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "coverage_pages",
            "Page deliveries, by practice, channel and result (sent / failed).",
            ["practice", "channel", "result"],
            registry=registry,
        )
        self.escalations = Counter(
            "coverage_page_escalations",
            "Pages that climbed to a next rung unacknowledged, by practice and target.",
            ["practice", "target"],
            registry=registry,
        )
        self.operator_alerts = Counter(
            "coverage_page_operator_alerts",
            "Times the operators were alerted about an unacknowledged message, by practice.",
            ["practice"],
            registry=registry,
        )
        self.unacknowledged_alerts = Gauge(
            "coverage_page_alerts_open",
            "Messages the operators are alerted about that nobody has acknowledged yet.",
            registry=registry,
        )
        self.handoff_checks = Counter(
            "coverage_handoff_checks",
            "Handoff checks ended, by practice and result (confirmed / not_confirmed / "
            "cancelled).",
            ["practice", "result"],
            registry=registry,
        )
        self.handoff_alerts_open = Gauge(
            "coverage_handoff_alerts_open",
            "Unconfirmed handoffs the operators are alerted about, not yet resolved.",
            registry=registry,
        )


class PagingDb:
    """The record file as paging uses it, one thread at a time (SQLite calls block)."""

    def __init__(self, conn: Connection, reopen: Callable[[], Connection] | None = None) -> None:
        self._conn = conn
        self._reopen = reopen
        self._lock = threading.Lock()
        self.pages = PageStore(conn)
        self.messages = MessageStore(conn)
        self.handoffs = HandoffStore(conn)

    def reconnect(self) -> None:
        """A new connection, after the database dropped ours (a PostgreSQL restart)."""
        if self._reopen is None:
            return
        with self._lock:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = self._reopen()
            self.pages = PageStore(self._conn)
            self.messages = MessageStore(self._conn)
            self.handoffs = HandoffStore(self._conn)

    async def run(self, work: Callable[[PagingDb], T]) -> T:
        def locked() -> T:
            with self._lock:
                return work(self)

        return await asyncio.to_thread(locked)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class Tasks:
    """The attempts a service has started, each a task of its own, all stopped with it."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def every(
    seconds: float,
    tick: Callable[[], Awaitable[object]],
    tasks: Tasks,
    db: PagingDb | None = None,
) -> None:
    """Run `tick` every `seconds` until cancelled; then stop the tasks it started.

    The records going away (a PostgreSQL restart) costs a round, never the
    engine: the round is logged, `db` reconnects, the next round goes on.
    """
    try:
        while True:
            try:
                await tick()
            except sqlite3.Error as exc:
                log.warning("paging.records_unavailable", error=str(exc))
                if db is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.to_thread(db.reconnect)
            await asyncio.sleep(seconds)
    finally:
        await tasks.stop()


class PagingService:
    """Pages every pending message, rung by rung, until it is acknowledged."""

    def __init__(
        self,
        db: PagingDb,
        *,
        config: Callable[[], CoverageConfig],
        now: Callable[[], datetime],
        owner: str,
        notifiers: Callable[[Notifications | None], Mapping[Channel, Notifier]],
        voice: VoicePager | None = None,
        metrics: PagingMetrics | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._db = db
        self._config = config
        self._now = now
        self._owner = owner
        self._notifiers = notifiers
        self._voice = voice
        self._metrics = metrics
        self._poll = poll_seconds
        self._tasks = Tasks()

    async def run(self) -> None:
        """Recover this owner's pages, then page what comes due, until cancelled."""
        taken = await self._db.run(lambda db: db.pages.recover(owner=self._owner, now=self._now()))
        if taken:
            log.info("paging.recovered", pages=len(taken))
        await every(self._poll, self.tick, self._tasks, self._db)

    async def tick(self) -> list[asyncio.Task[None]]:
        """Claim what is due and start an attempt for each (returns their tasks)."""
        now = self._now()
        due = await self._db.run(
            lambda db: db.pages.claim_due(now=now, owner=self._owner, lease=LEASE)
        )
        started = [self._tasks.start(self._attempt(p), name=f"page-{p.call_id}") for p in due]
        if self._metrics is not None:
            alerts = await self._db.run(lambda db: db.pages.alerts())
            self._metrics.unacknowledged_alerts.set(len(alerts))
        return started

    async def _attempt(self, page: Page) -> None:
        with structlog.contextvars.bound_contextvars(call_id=page.call_id, practice=page.practice):
            try:
                await self._climb(page)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug in one attempt: the lease runs out and the page is
                # taken on again; the other pages go on.
                log.exception("paging.attempt_failed")

    async def _climb(self, page: Page) -> None:
        now = self._now()
        if page.in_flight:
            # Another engine (or our previous life) died mid-attempt.
            page = await self._db.run(lambda db: db.pages.interrupted(page, at=now))
        message = await self._db.run(lambda db: db.messages.get(page.call_id))
        config = self._config()
        practice = config.practice(page.practice)
        attempt = plan_attempt(practice, page.rung, now, practice_id=page.practice)
        number = page.attempts + 1
        events: list[PageEvent] = [
            PageEscalated(number, skip.target.value, f"passed over: {skip.reason}")
            for skip in attempt.skipped
        ]
        if page.attempts > 0:
            reached = await self._db.run(lambda db: db.pages.reached(page.call_id, page.attempts))
            events.append(PageEscalated(number, attempt.target.value, escalation_reason(reached)))
        due = next_due(now, practice, page.urgency)
        started = await self._db.run(
            lambda db: db.pages.start_attempt(
                page,
                owner=self._owner,
                at=now,
                rung=attempt.rung,
                next_rung=attempt.next_rung,
                next_at=due,
                alerts_operators=attempt.target is Target.OPERATORS,
                events=events,
            )
        )
        if not started or message is None:
            return
        self._count_escalations(page, attempt, events)
        log.info(
            "paging.attempt",
            attempt=number,
            target=attempt.target.value,
            doctor=attempt.doctor,
            channels=[c.value for c in attempt.channels],
        )
        went_out: list[PageEvent] = []  # every event of this attempt, as it is written
        jobs = [self._deliver(channel, page, message, attempt, number, config, went_out)
                for channel in attempt.channels]  # fmt: skip
        results = await asyncio.gather(*jobs, return_exceptions=True)
        outcome: list[PageEvent] = []
        for channel, result in zip(attempt.channels, results, strict=True):
            if isinstance(result, BaseException):
                log.error("paging.channel_crashed", channel=channel.value, error=repr(result))
                reason = f"internal error: {type(result).__name__}"
                outcome.append(PageFailed(number, channel.value, reason, attempt.doctor))
            else:
                outcome.extend(result)
        reached = any(isinstance(e, PageSent) for e in [*went_out, *outcome])
        if not reached:
            log.warning("paging.reached_nobody", attempt=number, target=attempt.target.value)
        await self._db.run(
            lambda db: db.pages.finish_attempt(
                page.call_id,
                owner=self._owner,
                at=self._now(),
                events=outcome,
                sooner=None if reached else soon_after_nothing_went_out(now),
            )
        )

    def _count_escalations(self, page: Page, attempt: Attempt, events: list[PageEvent]) -> None:
        if self._metrics is None:
            return
        for event in events:
            if isinstance(event, PageEscalated):
                self._metrics.escalations.labels(page.practice, event.target).inc()
        if attempt.target is Target.OPERATORS:
            self._metrics.operator_alerts.labels(page.practice).inc()

    async def _deliver(
        self,
        channel: Channel,
        page: Page,
        message: Message,
        attempt: Attempt,
        number: int,
        config: CoverageConfig,
        went_out: list[PageEvent],
    ) -> list[PageEvent]:
        """One channel of one attempt; its result as events (never raises on a failure)."""
        practice = config.practice(page.practice)
        if channel is Channel.CONSOLE:
            events: list[PageEvent] = [PageSent(number, channel.value, attempt.target.value)]
        elif channel is Channel.VOICE:
            events = await self._voice_page(page, message, attempt, number, practice, went_out)
        else:
            events = await self._notify(channel, page, attempt, number, practice, config)
        self._count(channel.value, page, events)
        return events

    def _count(self, channel: str, page: Page, events: Sequence[PageEvent]) -> None:
        if self._metrics is None:
            return
        for event in events:
            if isinstance(event, PageSent | PageFailed):
                result = "sent" if isinstance(event, PageSent) else "failed"
                self._metrics.sent.labels(page.practice, channel, result).inc()

    async def _voice_page(
        self,
        page: Page,
        message: Message,
        attempt: Attempt,
        number: int,
        practice: Practice | None,
        went_out: list[PageEvent],
    ) -> list[PageEvent]:
        doctor = attempt.doctor
        if practice is None or doctor is None or practice.oncall is None:
            return [PageFailed(number, "voice", "nobody to call", doctor)]
        if self._voice is None:
            return [PageFailed(number, "voice", "voice paging is not running (no ARI)", doctor)]
        job = VoiceJob(
            call_id=page.call_id,
            practice=practice,
            urgency=page.urgency,
            attempt=number,
            target=attempt.target.value,
            doctor=doctor,
            dial=practice.oncall.doctors[doctor].dial,
            callback=message.fields.callback,
            reason_category=message.fields.disposition.value,
            ring_seconds=practice.paging.ring_seconds,
        )

        async def acknowledge() -> None:
            await self._db.run(
                lambda db: db.messages.acknowledge(
                    page.call_id,
                    by=doctor,
                    at=self._now(),
                    via="voice page",
                    page_attempt=number,
                )
            )
            log.info("paging.acknowledged", attempt=number, doctor=doctor, channel="voice")

        async def record(events: Sequence[PageEvent]) -> None:
            await self._db.run(lambda db: db.pages.record(page.call_id, self._now(), events))
            went_out.extend(events)
            self._count("voice", page, events)

        return await self._voice.page(job, acknowledge, record)

    async def _notify(
        self,
        channel: Channel,
        page: Page,
        attempt: Attempt,
        number: int,
        practice: Practice | None,
        config: CoverageConfig,
    ) -> list[PageEvent]:
        settings = config.engine.notifications
        # The configuration's notifiers now: a reload may have changed them.
        notifier = self._notifiers(settings).get(channel)
        doctor = attempt.doctor
        if notifier is None or settings is None:
            reason = f"the {channel.value} channel is not set up (engine.notifications)"
            return [PageFailed(number, channel.value, reason, doctor)]
        operators = attempt.target is Target.OPERATORS
        recipient = doctor if doctor is not None else "operators"
        notice = Notice(
            kind=NoticeKind.OPERATORS_ALERT if operators else NoticeKind.PAGE,
            practice=page.practice,
            practice_name=practice.name if practice is not None else page.practice,
            urgency=page.urgency.value,
            at=page.created_at,
            timezone=practice.timezone if practice is not None else "UTC",
            link=message_link(settings.console_url, page.call_id),
            recipient=recipient,
            attempt=number,
            delivery=f"{page.call_id}/{number}/{channel.value}",
        )
        addresses = [""]
        if channel is Channel.EMAIL:
            addresses = list(_email_addresses(practice, doctor, operators))
            if not addresses:
                why = f"no pagers: address for {doctor}" if doctor else "no alert_email"
                return [PageFailed(number, channel.value, why, doctor)]
        deliveries = await asyncio.gather(*(notifier.send(notice, to) for to in addresses))
        events: list[PageEvent] = []
        for delivery in deliveries:
            if delivery.ok:
                events.append(PageSent(number, channel.value, attempt.target.value, doctor))
            else:
                events.append(PageFailed(number, channel.value, delivery.detail, doctor))
            log.info(
                "paging.notified",
                channel=channel.value,
                ok=delivery.ok,
                tries=delivery.tries,
                detail=delivery.detail,
            )
        return events


def _email_addresses(practice: Practice | None, doctor: str | None, operators: bool) -> list[str]:
    if practice is None:
        return []
    if operators:
        return list(practice.paging.alert_email)
    address = practice.paging.pagers.get(doctor or "")
    return [address] if address else []
