"""Operator actions (log in, log out, pause, unpause) on top of an `Ami`.

Everything a person types here ends up in an AMI header. AMI is a line
protocol: a carriage return or newline in a value would start a new header
(a different `Interface`, a second `Action`). So names are checked against a
strict pattern and reasons against control characters before anything is sent.
"""

from __future__ import annotations

import re

from coverage_engine.ami.client import Ami, AmiActionFailed, AmiError

# PJSIP endpoint ids and app_queue queue names as the reference config uses them.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_MAX_REASON = 64


class OperatorInputError(AmiError):
    """A name or reason that cannot be sent to Asterisk as given."""


def checked_name(kind: str, value: str) -> str:
    if not _NAME.fullmatch(value):
        raise OperatorInputError(
            f"{kind} {value!r} is not valid: use letters, digits, '.', '_' or '-' "
            "(as in pjsip.conf / queues.conf)"
        )
    return value


def checked_reason(reason: str) -> str:
    if len(reason) > _MAX_REASON or any(not ch.isprintable() for ch in reason):
        raise OperatorInputError(
            f"the pause reason must be at most {_MAX_REASON} printable characters"
        )
    return reason.strip()


def interface_for(endpoint: str) -> str:
    """The app_queue member interface of a PJSIP endpoint (`operator1` -> `PJSIP/operator1`)."""
    if endpoint.upper().startswith("PJSIP/"):
        endpoint = endpoint[len("PJSIP/") :]
    return f"PJSIP/{checked_name('endpoint', endpoint)}"


async def login(ami: Ami, queue: str, endpoint: str) -> None:
    interface = interface_for(endpoint)
    await ami.queue_add(checked_name("queue", queue), interface, interface.split("/", 1)[1])


async def logout(ami: Ami, queue: str | None, endpoint: str) -> list[str]:
    """Remove `endpoint` from `queue`, or from every queue it is in. Returns those queues."""
    interface = interface_for(endpoint)
    if queue is not None:
        queues = [checked_name("queue", queue)]
    else:
        queues = await queues_of(ami, interface)
        if not queues:
            raise AmiActionFailed("QueueRemove", f"{endpoint} is not logged in to any queue")
    for name in queues:
        await ami.queue_remove(name, interface)
    return queues


async def pause(
    ami: Ami, queue: str | None, endpoint: str, *, paused: bool, reason: str = ""
) -> None:
    await ami.queue_pause(
        checked_name("queue", queue) if queue else None,
        interface_for(endpoint),
        paused=paused,
        reason=checked_reason(reason) if paused else "",
    )


async def queues_of(ami: Ami, interface: str) -> list[str]:
    """The queues `interface` is currently a member of, from a fresh QueueStatus."""
    found: list[str] = []
    for event in await ami.queue_status():
        if event.get("Event", "").lower() != "queuemember":
            continue
        where = event.get("Location") or event.get("Interface")
        if where == interface and event.get("Queue") not in found:
            found.append(event.get("Queue", ""))
    return found
