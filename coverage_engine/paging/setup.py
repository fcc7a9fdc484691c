"""Paging's part of the composition root: the paging and handoff-check services, their
channels and their ARI link.

Secrets come from files named in the configuration or from the environment,
never from the YAML or the command line. A channel that cannot be set up
(no webhook secret, say) is logged once at start; each page then records
that channel's failure in words, and the other channels go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from coverage_engine.ari import Ari, AriSettings
from coverage_engine.config.model import CoverageConfig, Notifications
from coverage_engine.paging.handoff_checks import HandoffService
from coverage_engine.paging.notifiers import EmailNotifier, WebhookNotifier
from coverage_engine.paging.policy import Channel
from coverage_engine.paging.service import Notifier, PagingDb, PagingMetrics, PagingService
from coverage_engine.paging.voice import AriVoicePager, VoiceLink
from coverage_engine.records.location import RecordsLocation, SqliteRecords, open_connection

log = structlog.get_logger("coverage_engine.paging")

ENV_WEBHOOK_SECRET = "COVERAGE_WEBHOOK_SECRET"  # noqa: S105 - the variable's name
ENV_SMTP_PASSWORD = "COVERAGE_SMTP_PASSWORD"  # noqa: S105 - the variable's name
#: The voice pages' ARI application is the engine's, with this after it.
PAGE_APP_SUFFIX = "-page"


def _secret(file: str | None, environ: Mapping[str, str], variable: str) -> tuple[str | None, str]:
    """(the secret, "") or (None, why not): from `file` if named, else from $`variable`."""
    if file is not None:
        try:
            return Path(file).read_text(encoding="utf-8").strip() or None, ""
        except OSError as exc:
            return None, f"cannot read {file}: {exc.strerror or exc}"
    return environ.get(variable) or None, ""


class Notifiers:
    """The webhook and e-mail notifiers of the configuration as it is now.

    Built again whenever `engine.notifications` or a secret changes, so a
    clinic's IT can point the webhook elsewhere, or rotate its secret, with
    the engine running: the next page goes out the new way. Problems (no
    webhook secret) are logged once per change, not once per page.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._key: object = object()
        self._built: dict[Channel, Notifier] = {}

    def __call__(self, settings: Notifications | None) -> Mapping[Channel, Notifier]:
        webhook: tuple[str | None, str] = (None, "")
        smtp: tuple[str | None, str] = (None, "")
        if settings is not None and settings.webhook is not None:
            webhook = _secret(settings.webhook.secret_file, self._environ, ENV_WEBHOOK_SECRET)
        if settings is not None and settings.smtp is not None:
            smtp = _secret(settings.smtp.password_file, self._environ, ENV_SMTP_PASSWORD)
        key = (settings, webhook, smtp)
        if key != self._key:
            self._key = key
            self._built = self._build(settings, webhook, smtp)
            log.info("paging.notifiers", channels=sorted(c.value for c in self._built))
        return self._built

    @staticmethod
    def _build(
        settings: Notifications | None,
        webhook: tuple[str | None, str],
        smtp: tuple[str | None, str],
    ) -> dict[Channel, Notifier]:
        found: dict[Channel, Notifier] = {}
        if settings is None:
            return found
        if settings.webhook is not None:
            secret, problem = webhook
            if secret is None:
                log.error(
                    "paging.webhook_off",
                    message=f"no webhook secret ({problem or 'none given'}): set "
                    f"{ENV_WEBHOOK_SECRET} or webhook.secret_file; webhook pages are recorded "
                    "as failed until then",
                )
            else:
                found[Channel.WEBHOOK] = WebhookNotifier(settings.webhook, secret.encode())
        if settings.smtp is not None:
            password, problem = smtp
            if problem:
                log.error("paging.smtp_password_unreadable", message=problem)
            found[Channel.EMAIL] = EmailNotifier(settings.smtp, password)
        return found


@dataclass
class RunningPaging:
    """The paging service and its voice link, as the engine runs them."""

    service: PagingService | None = None
    handoffs: HandoffService | None = None
    db: PagingDb | None = None
    link: VoiceLink | None = None
    pager: AriVoicePager | None = None
    _closers: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)

    def tasks(self) -> list[asyncio.Task[None]]:
        """The tasks to run beside the engine (none when paging could not start)."""
        found = []
        if self.link is not None:
            found.append(asyncio.create_task(self.link.run(), name="paging-voice-link"))
        if self.service is not None:
            found.append(asyncio.create_task(self.service.run(), name="paging"))
        if self.handoffs is not None:
            found.append(asyncio.create_task(self.handoffs.run(), name="handoff-checks"))
        return found

    async def close(self) -> None:
        if self.pager is not None:
            await self.pager.close()
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                await closer()
        if self.db is not None:
            await asyncio.to_thread(self.db.close)


async def start_paging(
    records: RecordsLocation | Path,
    *,
    config: Callable[[], CoverageConfig],
    now: Callable[[], datetime],
    ari_settings: AriSettings,
    ari_factory: Callable[[AriSettings], Ari] | None,
    production_ari: bool,
    registry: CollectorRegistry,
    environ: Mapping[str, str],
) -> RunningPaging:
    """Open paging's connection to the records and its ARI link; never stops the calls.

    The ARI link is `ari_factory`'s, else the real client when `production_ari`
    (tests that fake the engine's ARI get no voice pages unless they ask).
    """
    running = RunningPaging()
    page_settings = replace(ari_settings, app=ari_settings.app + PAGE_APP_SUFFIX)
    try:
        location = SqliteRecords(records) if isinstance(records, Path) else records
        running.db = PagingDb(
            await asyncio.to_thread(open_connection, location, create=True),
            reopen=lambda: open_connection(location, create=True),
        )
    except Exception as exc:
        log.error("paging.unavailable", error=str(exc))
        return running
    ari: Ari | None = None
    if ari_factory is not None:
        ari = ari_factory(page_settings)
    elif production_ari:
        from coverage_engine.ari.client import AriClient

        client = AriClient(page_settings)
        await client.__aenter__()
        running._closers.append(lambda: client.__aexit__(None, None, None))
        ari = client
    if ari is not None:
        running.link = VoiceLink(ari)
        running.pager = AriVoicePager(running.link)
    owner = f"{socket.gethostname()}/{page_settings.app}"
    notifiers = Notifiers(environ)
    metrics = PagingMetrics(registry)
    running.service = PagingService(
        running.db,
        config=config,
        now=now,
        owner=owner,
        notifiers=notifiers,
        voice=running.pager,
        metrics=metrics,
    )
    running.handoffs = HandoffService(
        running.db,
        config=config,
        now=now,
        owner=owner,
        notifiers=notifiers,
        caller=running.pager,
        metrics=metrics,
    )
    log.info("paging.started", app=page_settings.app)
    return running
