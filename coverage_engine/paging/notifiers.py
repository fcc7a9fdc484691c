"""Notifications out of the box: a signed webhook and e-mail over SMTP, each retried.

Each notifier tries a few times with a growing pause (1 s, 2 s, 4 s ...) on
what may pass (a server down, slow, a 5xx or 429, an SMTP 4xx), and gives up
at once on what will not (a 4xx refusal, an SMTP 5xx). It never raises: the
result says what happened, so one channel's failure is written on the record
and never stops the others.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiohttp
import structlog

from coverage_engine.config.model import Smtp, Webhook
from coverage_engine.paging.notice import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Notice,
    signature,
)

log = structlog.get_logger("coverage_engine.paging")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one notification went: delivered or not, in words for the record."""

    ok: bool
    detail: str
    tries: int


def backoff(attempt: int, base: float) -> float:
    """The pause before try `attempt + 1` (attempt counts from 1): base, 2 base, 4 base, <= 30 s."""
    return float(min(base * 2 ** (attempt - 1), 30.0))


class _Permanent(Exception):
    """A refusal that will not change on a retry."""


class WebhookNotifier:
    """POSTs each notice as JSON, signed with the shared secret."""

    def __init__(
        self,
        settings: Webhook,
        secret: bytes,
        *,
        backoff_base: float = 1.0,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._secret = secret
        self._base = backoff_base
        self._sleep = sleep
        self._clock = clock

    async def send(self, notice: Notice, to: str = "") -> Delivery:
        """Deliver `notice` (`to` is unused: the receiver routes by `recipient`)."""
        body = notice.body()
        timeout = aiohttp.ClientTimeout(total=self._settings.timeout_seconds)
        last = ""
        tries = self._settings.tries
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for attempt in range(1, tries + 1):
                try:
                    status = await self._post(session, body, notice.delivery)
                except _Permanent as exc:
                    return Delivery(False, str(exc), attempt)
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    last = _describe(exc)
                else:
                    if 200 <= status < 300:
                        return Delivery(True, f"HTTP {status}", attempt)
                    last = f"HTTP {status}"
                if attempt < tries:
                    await self._sleep(backoff(attempt, self._base))
        return Delivery(False, f"{last} after {tries} tries", tries)

    async def _post(self, session: aiohttp.ClientSession, body: bytes, delivery: str) -> int:
        # Signed afresh per try: the timestamp says when this request was made.
        stamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "coverage-engine",
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: signature(self._secret, stamp, body),
            DELIVERY_HEADER: delivery,
        }
        async with session.post(
            self._settings.url, data=body, headers=headers, allow_redirects=False
        ) as response:
            await response.read()
            status = response.status
        if 400 <= status < 500 and status not in (408, 425, 429):
            raise _Permanent(f"HTTP {status} (refused; not retried)")
        return status


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "no answer in time"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


class EmailNotifier:
    """Sends each notice as a short plain-text e-mail (pager and SMS gateways read these)."""

    def __init__(
        self,
        settings: Smtp,
        password: str | None = None,
        *,
        backoff_base: float = 1.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._password = password
        self._base = backoff_base
        self._sleep = sleep

    def message(self, notice: Notice, to: str) -> EmailMessage:
        """The e-mail for `notice` to the address `to`."""
        mail = EmailMessage()
        mail["From"] = self._settings.sender
        mail["To"] = to
        mail["Subject"] = notice.subject()
        mail["Date"] = format_datetime(notice.at)
        mail["Message-ID"] = make_msgid(domain=self._settings.sender.rsplit("@", 1)[1])
        mail["X-Coverage-Delivery"] = notice.delivery
        mail.set_content(notice.text())
        return mail

    async def send(self, notice: Notice, to: str = "") -> Delivery:
        """Deliver `notice` to the address `to` (none: nothing to send to)."""
        if not to:
            return Delivery(False, "no e-mail address to send to", 0)
        mail = self.message(notice, to)
        last = ""
        tries = self._settings.tries
        for attempt in range(1, tries + 1):
            try:
                await asyncio.to_thread(self._deliver, mail)
            except _Permanent as exc:
                return Delivery(False, str(exc), attempt)
            except (smtplib.SMTPException, OSError, TimeoutError) as exc:
                last = _describe(exc)
            else:
                return Delivery(True, f"accepted by {self._settings.host}", attempt)
            if attempt < tries:
                await self._sleep(backoff(attempt, self._base))
        return Delivery(False, f"{last} after {tries} tries", tries)

    def _deliver(self, mail: EmailMessage) -> None:
        """One SMTP session (blocking: runs in a worker thread)."""
        s = self._settings
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds) as client:
                if s.starttls:
                    client.starttls(context=ssl.create_default_context())
                if s.username is not None and self._password is not None:
                    client.login(s.username, self._password)
                client.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {code for code, _ in exc.recipients.values()}
            if all(code >= 500 for code in codes):
                raise _Permanent(f"SMTP refused the address ({min(codes)})") from exc
            raise
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500:
                raw = exc.smtp_error
                text = (raw.decode(errors="replace") if isinstance(raw, bytes) else raw)[:200]
                raise _Permanent(f"SMTP {exc.smtp_code} {text} (not retried)") from exc
            raise
