"""Webhook and e-mail notifications against real local servers: up, down, slow, failing.

The webhook receiver is a real aiohttp server on the loopback and the mail
server is aiosmtpd; both are started by the tests. Every notification is
checked for patient data: none of the message's fields may leave the box.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from coverage_engine.config.model import Smtp, Webhook
from coverage_engine.paging.notice import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Notice,
    NoticeKind,
    verify,
)
from coverage_engine.paging.notifiers import EmailNotifier, WebhookNotifier
from tests.unit.paging.support import Receiver, receiving

SECRET = b"s3cret-shared-with-the-pager-gateway"
# What an operator typed: none of it may appear in anything that leaves the box.
PATIENT_DATA = ("Jane Q. Doe", "+15557654321", "5557654321", "7654321", "Tommy Doe",
                "2019-04-02", "fever 104 and a rash")  # fmt: skip


def notice(kind: NoticeKind = NoticeKind.PAGE) -> Notice:
    return Notice(
        kind=kind,
        practice="maple-grove",
        practice_name="Maple Grove Pediatrics",
        urgency="urgent",
        at=datetime(2026, 3, 1, 8, 14, tzinfo=UTC),
        timezone="America/Chicago",
        link="https://console.example.org/messages/1772352843.12",
        recipient="patel",
        attempt=1,
        delivery="1772352843.12/1/webhook",
    )


def assert_no_patient_data(raw: bytes) -> None:
    text = raw.decode("utf-8", errors="replace")
    leaked = [item for item in PATIENT_DATA if item in text]
    assert leaked == []


# -- the webhook receiver ---------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as box:
        yield box


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def webhook(url: str, **kw: Any) -> WebhookNotifier:
    settings = Webhook(url=url, timeout_seconds=kw.pop("timeout", 2), tries=kw.pop("tries", 3))
    return WebhookNotifier(settings, SECRET, backoff_base=0.01, **kw)


async def test_a_webhook_arrives_signed_and_its_signature_verifies(receiver: Receiver) -> None:
    """The receiver gets the JSON once, and the HMAC over timestamp.body checks out."""
    delivery = await webhook(receiver.url).send(notice())
    assert delivery.ok
    assert delivery.tries == 1
    ((headers, body),) = receiver.received
    assert verify(SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER],
                  now=datetime.now(UTC))  # fmt: skip
    assert not verify(b"another secret", headers[TIMESTAMP_HEADER], body,
                      headers[SIGNATURE_HEADER], now=datetime.now(UTC))  # fmt: skip
    assert not verify(SECRET, headers[TIMESTAMP_HEADER], body + b" ", headers[SIGNATURE_HEADER],
                      now=datetime.now(UTC))  # fmt: skip
    assert headers[DELIVERY_HEADER] == "1772352843.12/1/webhook"
    assert_no_patient_data(body)


async def test_a_webhook_that_fails_twice_is_retried_until_it_is_taken(
    receiver: Receiver,
) -> None:
    """500, 503, then 200: three tries, one delivery, the same delivery id each time."""
    receiver.answers = [500, 503, 200]
    delivery = await webhook(receiver.url).send(notice())
    assert (delivery.ok, delivery.tries) == (True, 3)
    assert {h[DELIVERY_HEADER] for h, _ in receiver.received} == {"1772352843.12/1/webhook"}


async def test_a_webhook_refusal_is_not_retried(receiver: Receiver) -> None:
    """A 403 will not change on a retry: one try, failed, and the record says why."""
    receiver.answers = [403]
    delivery = await webhook(receiver.url).send(notice())
    assert not delivery.ok
    assert delivery.tries == 1
    assert "HTTP 403" in delivery.detail


async def test_a_webhook_server_that_keeps_failing_gives_up_after_its_tries(
    receiver: Receiver,
) -> None:
    """Three 500s: not delivered, after three tries."""
    receiver.answers = [500, 500, 500]
    delivery = await webhook(receiver.url).send(notice())
    assert not delivery.ok
    assert delivery.detail == "HTTP 500 after 3 tries"


async def test_a_webhook_server_that_is_down_is_a_failed_delivery_not_a_crash() -> None:
    """Nothing listens on the port: tried, failed, explained."""
    delivery = await webhook(f"http://127.0.0.1:{free_port()}/hook", tries=2).send(notice())
    assert not delivery.ok
    assert delivery.tries == 2
    assert "after 2 tries" in delivery.detail


async def test_a_slow_webhook_server_times_out_and_the_next_try_gets_through(
    receiver: Receiver,
) -> None:
    """The first answer takes 5 s against a 1 s timeout; the retry is answered at once."""
    receiver.answers = ["slow", 200]
    delivery = await webhook(receiver.url, timeout=1).send(notice())
    assert (delivery.ok, delivery.tries) == (True, 2)


# -- the mail server --------------------------------------------------------------------


@dataclass
class MailHandler:
    """An aiosmtpd handler that keeps every message, or answers with the code the test sets."""

    answers: list[str] = field(default_factory=list)
    messages: list[tuple[list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        answer = self.answers.pop(0) if self.answers else "250 OK"
        if answer.startswith("250"):
            content = envelope.original_content or b""
            self.messages.append((list(envelope.rcpt_tos), content))
        return answer


@pytest.fixture
def mail() -> Iterator[tuple[MailHandler, int]]:
    handler = MailHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def emailer(port: int, tries: int = 3) -> EmailNotifier:
    settings = Smtp.model_validate(
        {
            "host": "127.0.0.1",
            "port": port,
            "from": "pages@answering.example",
            "tries": tries,
            "timeout_seconds": 2,
        }
    )
    return EmailNotifier(settings, backoff_base=0.01)


async def test_an_email_page_reaches_the_pager_address_without_patient_data(
    mail: tuple[MailHandler, int],
) -> None:
    """One message to the doctor's pager: subject says practice and urgency, body the link."""
    handler, port = mail
    delivery = await emailer(port).send(notice(), "3125550199@pager.example.net")
    assert delivery.ok
    ((recipients, raw),) = handler.messages
    assert recipients == ["3125550199@pager.example.net"]
    parsed = message_from_bytes(raw)
    assert parsed["Subject"] == "Maple Grove Pediatrics: URGENT message"
    assert "https://console.example.org/messages/1772352843.12" in raw.decode()
    assert "Sun Mar 01 02:14 CST" in raw.decode()
    assert_no_patient_data(raw)


async def test_a_mail_server_that_answers_451_is_tried_again(
    mail: tuple[MailHandler, int],
) -> None:
    """A temporary refusal (4xx) is retried; the second try is accepted."""
    handler, port = mail
    handler.answers = ["451 Try again later"]
    delivery = await emailer(port).send(notice(), "pager@example.org")
    assert (delivery.ok, delivery.tries) == (True, 2)
    assert len(handler.messages) == 1


async def test_a_mail_server_that_answers_554_is_not_tried_again(
    mail: tuple[MailHandler, int],
) -> None:
    """A permanent refusal (5xx) ends the delivery with the server's words."""
    handler, port = mail
    handler.answers = ["554 Rejected by policy"]
    delivery = await emailer(port).send(notice(), "pager@example.org")
    assert not delivery.ok
    assert delivery.tries == 1
    assert "554" in delivery.detail


async def test_a_mail_server_that_is_down_is_a_failed_delivery_not_a_crash() -> None:
    """Nothing listens: tried, failed, explained."""
    delivery = await emailer(free_port(), tries=2).send(notice(), "pager@example.org")
    assert not delivery.ok
    assert delivery.tries == 2


async def test_an_email_without_an_address_is_not_sent() -> None:
    """No pager address for the doctor: a clear failure, nothing attempted."""
    delivery = await emailer(free_port()).send(notice(), "")
    assert not delivery.ok
    assert delivery.detail == "no e-mail address to send to"


@pytest.mark.parametrize("kind", list(NoticeKind))
def test_no_notice_kind_carries_patient_data(kind: NoticeKind) -> None:
    """Whatever the kind, the JSON, subject and text hold only what a Notice is built from."""
    item = notice(kind)
    assert_no_patient_data(item.body() + item.subject().encode() + item.text().encode())
    assert set(item.to_json()) == {"kind", "practice", "practice_name", "urgency", "at",
                                   "recipient", "attempt", "link", "delivery"}  # fmt: skip
