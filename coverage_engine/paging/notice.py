"""What a notification says, and its signature (pure).

A notification leaves the box (a webhook, an e-mail to a pager gateway), so
it carries no patient data at all: no caller or patient name, no number, no
reason. Only the practice, the urgency, the time, whom it is for and a link
to the message in the console, where reading it needs a sign-in. `Notice` is
built from those fields alone, so nothing else can slip into one.

Webhooks are signed with HMAC-SHA256 over `<timestamp>.<body>` (the
`X-Coverage-Timestamp` header, then the raw body), so a receiver can check
both who sent it and that it is fresh; `verify` is that check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import quote
from zoneinfo import ZoneInfo

SIGNATURE_HEADER = "X-Coverage-Signature"
TIMESTAMP_HEADER = "X-Coverage-Timestamp"
DELIVERY_HEADER = "X-Coverage-Delivery"
#: How old a signed timestamp a receiver should still accept (see `verify`).
SIGNATURE_TOLERANCE = timedelta(minutes=5)


class NoticeKind(StrEnum):
    """Why the notification is sent."""

    PAGE = "page"  # an urgent message for the doctor on call
    OPERATORS_ALERT = "operators_alert"  # nobody acknowledged it: the operators must act
    HANDOFF_UNCONFIRMED = "handoff_unconfirmed"  # the incoming doctor did not confirm


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification, patient data free by construction."""

    kind: NoticeKind
    practice: str  # the practice id
    practice_name: str
    urgency: str  # emergency / urgent ("" for a handoff check)
    at: datetime  # when the message was taken (or the handoff is)
    timezone: str  # the practice's, for the human-readable time
    link: str  # the console page that needs a sign-in
    recipient: str  # a doctor id, or "operators"
    attempt: int
    delivery: str  # the same for every retry of one attempt: receivers drop duplicates

    def to_json(self) -> dict[str, str | int]:
        """The webhook's body."""
        return {
            "kind": self.kind.value,
            "practice": self.practice,
            "practice_name": self.practice_name,
            "urgency": self.urgency,
            "at": self.at.isoformat(),
            "recipient": self.recipient,
            "attempt": self.attempt,
            "link": self.link,
            "delivery": self.delivery,
        }

    def body(self) -> bytes:
        """The webhook body as sent (and signed)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    @property
    def local_time(self) -> str:
        """The time as the practice reads it, e.g. `Tue Mar 01 02:14 CST`."""
        return self.at.astimezone(ZoneInfo(self.timezone)).strftime("%a %b %d %H:%M %Z")

    def subject(self) -> str:
        """The e-mail subject: short enough for an SMS gateway."""
        if self.kind is NoticeKind.HANDOFF_UNCONFIRMED:
            return f"{self.practice_name}: on-call handoff NOT confirmed"
        what = f"{self.urgency.upper()} message"
        if self.kind is NoticeKind.OPERATORS_ALERT:
            return f"{self.practice_name}: {what} NOT acknowledged"
        return f"{self.practice_name}: {what}"

    def text(self) -> str:
        """The e-mail body: what happened, when, and where to sign in."""
        if self.kind is NoticeKind.HANDOFF_UNCONFIRMED:
            lead = (
                f"The doctor coming on call for {self.practice_name} at {self.local_time} "
                "did not confirm by phone. Reach them another way."
            )
        elif self.kind is NoticeKind.OPERATORS_ALERT:
            lead = (
                f"An {self.urgency} message for {self.practice_name} taken {self.local_time} "
                f"has not been acknowledged after {self.attempt} pages. Reach the doctor on "
                "call another way."
            )
        else:
            lead = (
                f"An {self.urgency} message for {self.practice_name} was taken "
                f"{self.local_time}. Sign in to read and acknowledge it."
            )
        return f"{lead}\n\n{self.link}\n"


def message_link(console_url: str, call_id: str) -> str:
    """The console page of a call's message."""
    return f"{console_url.rstrip('/')}/messages/{quote(call_id, safe='')}"


def call_link(console_url: str, call_id: str) -> str:
    """The console page of a call (a handoff check's record)."""
    return f"{console_url.rstrip('/')}/calls/{quote(call_id, safe='')}"


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The `X-Coverage-Signature` value: `sha256=<hex>` of HMAC(secret, timestamp.body)."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: bytes,
    timestamp: str,
    body: bytes,
    signed: str,
    *,
    now: datetime,
    tolerance: timedelta = SIGNATURE_TOLERANCE,
) -> bool:
    """Whether a received webhook is ours and fresh (what a receiver runs)."""
    try:
        sent = datetime.fromtimestamp(int(timestamp), tz=now.tzinfo)
    except (ValueError, OverflowError, OSError):
        return False
    if abs(now - sent) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), signed)
