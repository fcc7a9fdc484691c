"""Operator presence folded from AMI events: the pure core, table-driven.

The event dicts below are written from Asterisk 22's AMI event documentation
(app_queue): `QueueStatus` answers with QueueParams / QueueMember (Name,
Location) / QueueEntry, live changes come as QueueMember* (MemberName,
Interface) and QueueCaller* events.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from coverage_engine.ami.presence import (
    DeviceState,
    Presence,
    QueueAvailability,
    apply,
    disconnected,
    member_from_event,
    snapshot,
)

Q = "answering"


def member_event(
    event: str,
    iface: str,
    *,
    paused: str = "0",
    status: str = "1",
    reason: str = "",
    queue: str = Q,
) -> dict[str, str]:
    return {
        "Event": event,
        "Queue": queue,
        "MemberName": iface.split("/")[-1],
        "Interface": iface,
        "StateInterface": iface,
        "Membership": "dynamic",
        "Penalty": "0",
        "CallsTaken": "3",
        "LastCall": "1700000000",
        "LastPause": "0",
        "LoginTime": "1699990000",
        "InCall": "0",
        "Status": status,
        "Paused": paused,
        "PausedReason": reason,
        "Ringinuse": "0",
        "Wrapuptime": "0",
    }


def status_member(iface: str, *, paused: str = "0", status: str = "1") -> dict[str, str]:
    """A QueueMember event of a QueueStatus response (Name/Location, not MemberName/Interface)."""
    e = member_event("QueueMember", iface, paused=paused, status=status)
    e["Name"] = e.pop("MemberName")
    e["Location"] = e.pop("Interface")
    return e


def params(queue: str = Q) -> dict[str, str]:
    return {
        "Event": "QueueParams",
        "Queue": queue,
        "Max": "0",
        "Strategy": "ringall",
        "Calls": "0",
        "Holdtime": "0",
        "TalkTime": "0",
        "Completed": "0",
        "Abandoned": "0",
        "ServiceLevel": "0",
        "ServicelevelPerf": "0.0",
        "Weight": "0",
    }


def caller(event: str, uid: str, queue: str = Q) -> dict[str, str]:
    return {
        "Event": event,
        "Queue": queue,
        "Channel": f"PJSIP/carrier-{uid}",
        "Uniqueid": uid,
        "Linkedid": uid,
        "Position": "1",
        "Count": "1",
        "CallerIDNum": "+15550100",
        "CallerIDName": "Patient",
    }


def avail(logged_in: int, available: int, paused: int, waiting: int) -> QueueAvailability:
    return QueueAvailability(Q, logged_in, available, paused, waiting)


EMPTY = snapshot([params()])
ONE = snapshot([params(), status_member("PJSIP/operator1")])


def test_before_any_snapshot_availability_is_unknown_not_zero() -> None:
    """Without a QueueStatus snapshot nothing is known, so the answer is None (not "nobody")."""
    assert Presence().availability(Q) is None


def test_a_queue_absent_from_the_snapshot_is_unknown() -> None:
    """A queue Asterisk did not report is not assumed empty."""
    assert EMPTY.availability("no-such-queue") is None


def test_snapshot_counts_members_paused_and_waiting_callers() -> None:
    """The QueueStatus response alone gives every count."""
    presence = snapshot(
        [
            params(),
            status_member("PJSIP/operator1"),
            status_member("PJSIP/operator2", paused="1"),
            status_member("PJSIP/operator3", status=str(int(DeviceState.UNAVAILABLE))),
            {
                "Event": "QueueEntry",
                "Queue": Q,
                "Position": "1",
                "Channel": "PJSIP/c-1",
                "Uniqueid": "111.1",
                "Wait": "12",
            },
            {"Event": "QueueStatusComplete", "EventList": "Complete", "ListItems": "5"},
        ]
    )
    assert presence.availability(Q) == avail(logged_in=3, available=1, paused=1, waiting=1)
    op1 = presence.members_of(Q)[0]
    assert (op1.name, op1.interface, op1.calls_taken) == ("operator1", "PJSIP/operator1", 3)


@pytest.mark.parametrize(
    ("start", "events", "expected"),
    [
        pytest.param(
            EMPTY,
            [member_event("QueueMemberAdded", "PJSIP/operator1")],
            avail(1, 1, 0, 0),
            id="login",
        ),
        pytest.param(
            ONE,
            [member_event("QueueMemberRemoved", "PJSIP/operator1")],
            avail(0, 0, 0, 0),
            id="logout",
        ),
        pytest.param(
            ONE,
            [member_event("QueueMemberPause", "PJSIP/operator1", paused="1", reason="lunch")],
            avail(1, 0, 1, 0),
            id="pause",
        ),
        pytest.param(
            ONE,
            [
                member_event("QueueMemberPause", "PJSIP/operator1", paused="1"),
                member_event("QueueMemberPause", "PJSIP/operator1", paused="0"),
            ],
            avail(1, 1, 0, 0),
            id="pause-then-unpause",
        ),
        pytest.param(
            ONE,
            [member_event("QueueMemberStatus", "PJSIP/operator1", status="5")],
            avail(1, 0, 0, 0),
            id="phone-unregistered",
        ),
        pytest.param(
            ONE,
            [member_event("QueueMemberStatus", "PJSIP/operator1", status="2")],
            avail(1, 1, 0, 0),
            id="on-a-call-still-logged-in",
        ),
        pytest.param(
            ONE,
            [caller("QueueCallerJoin", "1.1"), caller("QueueCallerJoin", "1.2")],
            avail(1, 1, 0, 2),
            id="two-callers-wait",
        ),
        pytest.param(
            ONE,
            [caller("QueueCallerJoin", "1.1"), caller("QueueCallerLeave", "1.1")],
            avail(1, 1, 0, 0),
            id="caller-answered",
        ),
        pytest.param(
            ONE,
            [caller("QueueCallerJoin", "1.1"), caller("QueueCallerAbandon", "1.1")],
            avail(1, 1, 0, 0),
            id="caller-hung-up",
        ),
        pytest.param(
            ONE,
            [caller("QueueCallerJoin", "1.1"), caller("QueueCallerJoin", "1.1")],
            avail(1, 1, 0, 1),
            id="duplicate-join-counts-once",
        ),
        pytest.param(
            ONE,
            [caller("QueueCallerLeave", "9.9")],
            avail(1, 1, 0, 0),
            id="leave-of-unknown-caller",
        ),
        pytest.param(
            ONE,
            [member_event("QueueMemberRemoved", "PJSIP/operator9")],
            avail(1, 1, 0, 0),
            id="remove-of-unknown-member",
        ),
        pytest.param(
            ONE,
            [member_event("QueueMemberAdded", "PJSIP/operator2", queue="other")],
            avail(1, 1, 0, 0),
            id="other-queue-does-not-count",
        ),
    ],
)
def test_live_events_fold_into_queue_availability(
    start: Presence, events: list[dict[str, str]], expected: QueueAvailability
) -> None:
    """Each sequence of live events leaves the queue with exactly these counts."""
    presence = start
    for event in events:
        presence = apply(presence, event)
    assert presence.availability(Q) == expected


@pytest.mark.parametrize(
    "event",
    [
        {"Event": "Newchannel", "Channel": "PJSIP/x-1"},
        {"Event": "QueueMemberAdded"},  # no queue
        {"Event": "QueueMemberAdded", "Queue": Q},  # no interface
        {"Event": "QueueCallerJoin", "Queue": Q},  # no caller id at all
        {"Event": "FullyBooted"},
    ],
)
def test_unrelated_or_incomplete_events_change_nothing(event: dict[str, str]) -> None:
    """An event the fold cannot use leaves the state exactly as it was."""
    assert apply(ONE, event) == ONE


def test_garbled_numbers_do_not_break_the_fold() -> None:
    """Non-numeric Status/CallsTaken/LastCall read as unknown/zero instead of raising."""
    event = member_event("QueueMemberStatus", "PJSIP/operator1")
    event.update(Status="banana", CallsTaken="", LastCall="x")
    member = member_from_event(event)
    assert member is not None
    assert (member.device, member.calls_taken, member.last_call) == (DeviceState.UNKNOWN, 0, None)


def test_pause_reason_is_kept_while_paused_and_dropped_on_unpause() -> None:
    """The reason shown to supervisors belongs to the current pause only."""
    paused = apply(
        ONE, member_event("QueueMemberPause", "PJSIP/operator1", paused="1", reason="lunch")
    )
    assert paused.members_of(Q)[0].paused_reason == "lunch"
    back = apply(
        paused, member_event("QueueMemberPause", "PJSIP/operator1", paused="0", reason="lunch")
    )
    assert back.members_of(Q)[0].paused_reason == ""


def test_disconnect_makes_availability_unknown_and_a_new_snapshot_replaces_all() -> None:
    """After the AMI link drops nothing is asserted; the next snapshot starts from scratch."""
    stale = apply(ONE, caller("QueueCallerJoin", "1.1"))
    assert disconnected(stale).availability(Q) is None
    fresh = snapshot([params()])
    assert fresh.availability(Q) == avail(0, 0, 0, 0)


def test_idle_time_counts_from_the_last_call_or_else_from_login() -> None:
    """Idle time is measured from LastCall, falling back to LoginTime for a fresh login."""
    member = ONE.members_of(Q)[0]
    now = datetime.fromtimestamp(1700000060, tz=UTC)
    assert member.idle_for(now) == timedelta(seconds=60)
    e = member_event("QueueMemberAdded", "PJSIP/operator2")
    e["LastCall"] = "0"
    fresh = member_from_event(e)
    assert fresh is not None
    assert fresh.idle_for(now) == timedelta(seconds=1700000060 - 1699990000)
