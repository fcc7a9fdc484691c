"""Availability-aware routing: when the operators step is skipped, and why (pure rule)."""

from __future__ import annotations

import pytest

from coverage_engine.ami.gate import PresenceGate, skip_reason
from coverage_engine.ami.presence import Presence, QueueAvailability, snapshot

Q = "answering"


@pytest.mark.parametrize(
    ("availability", "max_waiting", "expected"),
    [
        pytest.param(None, None, None, id="unknown-presence-never-skips"),
        pytest.param(
            QueueAvailability(Q, 0, 0, 0, 0),
            None,
            "no operator logged in to queue answering",
            id="nobody-logged-in",
        ),
        pytest.param(
            QueueAvailability(Q, 2, 0, 2, 0),
            None,
            "no operator available in queue answering (2 paused)",
            id="all-paused",
        ),
        pytest.param(
            QueueAvailability(Q, 2, 0, 1, 0),
            None,
            "no operator available in queue answering (1 paused, 1 phone(s) offline)",
            id="paused-and-offline",
        ),
        pytest.param(
            QueueAvailability(Q, 1, 1, 0, 3),
            3,
            "3 caller(s) already waiting in queue answering (the practice allows 3)",
            id="queue-full-for-this-practice",
        ),
        pytest.param(QueueAvailability(Q, 1, 1, 0, 2), 3, None, id="room-in-the-queue"),
        pytest.param(QueueAvailability(Q, 1, 1, 0, 9), None, None, id="no-limit-configured"),
    ],
)
def test_skip_reason(
    availability: QueueAvailability | None, max_waiting: int | None, expected: str | None
) -> None:
    """The operators step is skipped exactly when nobody can answer or the queue is too long."""
    assert skip_reason(availability, max_waiting) == expected


def test_gate_uses_current_presence_and_the_practice_limit() -> None:
    """The gate reads presence at the moment it is asked and the calling practice's own limit."""
    current = [Presence()]
    gate = PresenceGate(lambda: current[0], {"maple-grove": 1}.get)
    assert gate.skip_reason("maple-grove", Q) is None  # not synced yet: go to the queue
    current[0] = snapshot(
        [
            {"Event": "QueueParams", "Queue": Q},
            {
                "Event": "QueueMember",
                "Queue": Q,
                "Name": "op1",
                "Location": "PJSIP/op1",
                "Status": "1",
                "Paused": "0",
            },
            {"Event": "QueueEntry", "Queue": Q, "Uniqueid": "1.1"},
        ]
    )
    assert gate.skip_reason("lakeside", Q) is None
    assert gate.skip_reason("maple-grove", Q) == (
        "1 caller(s) already waiting in queue answering (the practice allows 1)"
    )
