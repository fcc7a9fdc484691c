"""The handoff-check service: calls each doctor coming on call; alerts when one does not confirm.

    configuration ──paging.handoff.due (pure)──> open_check (one per practice and instant)
    store ──claim──> still wanted? (pure) ──no──> cancelled
                       └─yes──> call the doctor: press 1 ──> confirmed
                                  └─ no 1: again `retry_seconds` later, up to `attempts`
                                           └─ none left ──> alert: console banner + metric,
                                                            the practice's webhook and
                                                            alert_email (no patient data)

Runs inside `coverage-engine run` beside the paging service, on the same
record file and the same ARI application for outbound calls. Everything is
written before and after it happens (`records.handoffs`), so a restart
neither loses a check nor makes it twice, and two engines sharing the file
never both call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

import structlog

from coverage_engine.config.model import CoverageConfig, HandoffCheck, Notifications, Practice
from coverage_engine.journey import (
    HandoffAlertFailed,
    HandoffAlertSent,
    HandoffAttemptFailed,
    HandoffEvent,
)
from coverage_engine.paging.handoff import Handoff, due, not_wanted
from coverage_engine.paging.notice import Notice, NoticeKind, call_link
from coverage_engine.paging.policy import Channel
from coverage_engine.paging.prompts import Sentence, handoff_sentence
from coverage_engine.paging.service import (
    POLL_SECONDS,
    Notifier,
    PagingDb,
    PagingMetrics,
    Tasks,
    every,
)
from coverage_engine.records.handoffs import ALERTING
from coverage_engine.records.handoffs import HandoffCheck as Check

log = structlog.get_logger("coverage_engine.paging")

#: Beyond the ring and the prompts, how long a claimed check stays ours.
LEASE_MARGIN = timedelta(minutes=3)
#: The defaults of `paging.handoff_check`, for a check whose practice left the configuration.
DEFAULTS = HandoffCheck()


@dataclass(frozen=True, slots=True)
class HandoffCall:
    """One call of a handoff check: who, how, and what they hear."""

    check_id: str
    practice: Practice
    doctor: str
    dial: str  # the doctor's dial string, from validated config
    attempt: int
    ring_seconds: int
    sentence: Sentence


class HandoffCaller(Protocol):
    """Calls the doctor coming on call; None once they pressed 1, else why not.

    `confirm` is awaited when 1 is pressed, before the call goes on;
    `record` writes the call's progress (dialing, answered) as it happens.
    """

    async def call(
        self,
        job: HandoffCall,
        confirm: Callable[[], Awaitable[None]],
        record: Callable[[Sequence[HandoffEvent]], Awaitable[None]],
    ) -> HandoffAttemptFailed | None: ...


def _open(db: PagingDb, *, handoff: Handoff, attempts: int, at: datetime) -> Check | None:
    return db.handoffs.open_check(handoff, attempts=attempts, at=at)


class HandoffService:
    """Opens the checks of every handoff that comes due, and works them to an end."""

    def __init__(
        self,
        db: PagingDb,
        *,
        config: Callable[[], CoverageConfig],
        now: Callable[[], datetime],
        owner: str,
        notifiers: Callable[[Notifications | None], Mapping[Channel, Notifier]],
        caller: HandoffCaller | None = None,
        metrics: PagingMetrics | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._db = db
        self._config = config
        self._now = now
        self._owner = owner
        self._notifiers = notifiers
        self._caller = caller
        self._metrics = metrics
        self._poll = poll_seconds
        self._tasks = Tasks()

    async def run(self) -> None:
        """Release this owner's leases, then open and work due checks, until cancelled."""
        taken = await self._db.run(lambda db: db.handoffs.recover(owner=self._owner))
        if taken:
            log.info("handoff.recovered", checks=len(taken))
        await every(self._poll, self.tick, self._tasks, self._db)

    async def tick(self) -> list[asyncio.Task[None]]:
        """Open the checks that came due, claim what is due, and start working each."""
        now = self._now()
        for practice in self._config().practices.values():
            settings = practice.paging.handoff_check
            attempts = (settings or DEFAULTS).attempts
            for handoff in due(practice, now):
                opened = await self._db.run(
                    partial(_open, handoff=handoff, attempts=attempts, at=now)
                )
                if opened is not None:
                    log.info("handoff.check_opened", check=opened.check_id,
                             practice=opened.practice, doctor=opened.doctor)  # fmt: skip
        lease = LEASE_MARGIN + timedelta(seconds=self._longest_ring())
        claimed = await self._db.run(
            lambda db: db.handoffs.claim_due(now=now, owner=self._owner, lease=lease)
        )
        started = [
            self._tasks.start(self._work(c), name=f"handoff-{c.check_id}") for c in claimed
        ]
        if self._metrics is not None:
            alerts = await self._db.run(lambda db: db.handoffs.alerts(now))
            self._metrics.handoff_alerts_open.set(len(alerts))
        return started

    def _longest_ring(self) -> int:
        rings = [
            p.paging.handoff_check.ring_seconds
            for p in self._config().practices.values()
            if p.paging.handoff_check is not None
        ]
        return max(rings, default=DEFAULTS.ring_seconds)

    async def _work(self, check: Check) -> None:
        with structlog.contextvars.bound_contextvars(call_id=check.check_id,
                                                     practice=check.practice):  # fmt: skip
            try:
                await self._step(check)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug in one check: its lease runs out and it is taken on again.
                log.exception("handoff.check_failed")

    async def _step(self, check: Check) -> None:
        config = self._config()
        practice = config.practice(check.practice)
        settings = (practice.paging.handoff_check if practice else None) or DEFAULTS
        retry = timedelta(seconds=settings.retry_seconds)
        now = self._now()
        if check.in_flight:
            # Our previous life (or another engine) died during the call.
            check = await self._db.run(
                lambda db: db.handoffs.interrupted(check, at=now, retry=retry)
            )
        if check.state == ALERTING:
            await self._alert(check, practice, config)
            return
        if check.next_at > now:
            return  # the cut-off call above made the next one due later
        why = not_wanted(practice, check.doctor, check.starts_at, now)
        if why is not None or practice is None:
            reason = why or "the practice is no longer in the configuration"
            await self._db.run(
                lambda db: db.handoffs.cancel(check, owner=self._owner, at=now, reason=reason)
            )
            self._count(check, "cancelled")
            log.info("handoff.cancelled", doctor=check.doctor, reason=reason)
            return
        await self._call(check, practice, settings, retry)

    async def _call(
        self, check: Check, practice: Practice, settings: HandoffCheck, retry: timedelta
    ) -> None:
        now = self._now()
        started = await self._db.run(
            lambda db: db.handoffs.start_attempt(check, owner=self._owner, at=now)
        )
        if not started:
            return
        attempt = check.attempts + 1
        log.info("handoff.calling", doctor=check.doctor, attempt=attempt)
        confirmed = False

        async def confirm() -> None:
            nonlocal confirmed
            await self._db.run(
                lambda db: db.handoffs.confirmed(
                    check, owner=self._owner, at=self._now(), attempt=attempt
                )
            )
            confirmed = True

        async def record(events: Sequence[HandoffEvent]) -> None:
            await self._db.run(lambda db: db.handoffs.record(check.check_id, self._now(), events))

        failure: HandoffAttemptFailed | None
        if self._caller is None:
            failure = HandoffAttemptFailed(attempt, check.doctor, "calls are not running (no ARI)")
        elif practice.oncall is None or check.doctor not in practice.oncall.doctors:
            failure = HandoffAttemptFailed(attempt, check.doctor, "the doctor is not configured")
        else:
            job = HandoffCall(
                check_id=check.check_id,
                practice=practice,
                doctor=check.doctor,
                dial=practice.oncall.doctors[check.doctor].dial,
                attempt=attempt,
                ring_seconds=settings.ring_seconds,
                sentence=handoff_sentence(practice, check.until),
            )
            failure = await self._caller.call(job, confirm, record)
        if confirmed:
            self._count(check, "confirmed")
            log.info("handoff.confirmed", doctor=check.doctor, attempt=attempt)
            return
        if failure is None:  # pragma: no cover - a caller that returns without confirming
            failure = HandoffAttemptFailed(attempt, check.doctor, "no confirmation")
        log.info("handoff.not_confirmed", doctor=check.doctor, attempt=attempt,
                 reason=failure.reason)  # fmt: skip
        after = await self._db.run(
            lambda db: db.handoffs.failed(
                check, owner=self._owner, at=self._now(), failure=failure, retry=retry
            )
        )
        if after.state == ALERTING:
            await self._alert(after, practice, self._config())

    async def _alert(self, check: Check, practice: Practice | None, config: CoverageConfig) -> None:
        """The operators' banner and metric, the practice's webhook and alert e-mail."""
        log.warning("handoff.alert", doctor=check.doctor, attempts=check.attempts)
        events: list[HandoffEvent] = [HandoffAlertSent(Channel.CONSOLE.value)]
        settings = config.engine.notifications
        channels: list[tuple[Channel, str]] = []
        if practice is not None:
            if Channel.WEBHOOK.value in practice.paging.channels:
                channels.append((Channel.WEBHOOK, ""))
            channels += [(Channel.EMAIL, to) for to in practice.paging.alert_email]
        notifiers = self._notifiers(settings)
        sends = []
        for channel, to in channels:
            notifier = notifiers.get(channel)
            if notifier is None or settings is None:
                why = f"the {channel.value} channel is not set up (engine.notifications)"
                events.append(HandoffAlertFailed(channel.value, why))
                continue
            notice = Notice(
                kind=NoticeKind.HANDOFF_UNCONFIRMED,
                practice=check.practice,
                practice_name=practice.name if practice is not None else check.practice,
                urgency="",
                at=check.starts_at,
                timezone=practice.timezone if practice is not None else "UTC",
                link=call_link(settings.console_url, check.check_id),
                recipient="operators",
                attempt=check.attempts,
                delivery=f"{check.check_id}/alert/{channel.value}",
            )
            sends.append((channel, to, notifier.send(notice, to)))
        deliveries = await asyncio.gather(*(send for _, _, send in sends))
        for (channel, to, _), delivery in zip(sends, deliveries, strict=True):
            if delivery.ok:
                events.append(HandoffAlertSent(channel.value, to))
            else:
                events.append(HandoffAlertFailed(channel.value, delivery.detail))
        await self._db.run(
            lambda db: db.handoffs.alerted(check, owner=self._owner, at=self._now(), events=events)
        )
        self._count(check, "not_confirmed")

    def _count(self, check: Check, result: str) -> None:
        if self._metrics is not None:
            self._metrics.handoff_checks.labels(check.practice, result).inc()
