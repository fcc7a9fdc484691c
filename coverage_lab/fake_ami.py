"""A fake `Ami` that behaves like app_queue over AMI, for tests of what uses AMI.

It keeps queues and members in memory and emits the same events Asterisk
would (`QueueMemberAdded`, `QueueMemberPause`, ...) on `notices`, so a
`PresenceTracker` or the engine can be driven without a PBX.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from coverage_engine.ami.client import AmiActionFailed, AmiConnected, AmiMessage, AmiNotice


@dataclass
class _FakeMember:
    name: str
    paused: bool = False
    reason: str = ""
    status: int = 1  # AST_DEVICE_NOT_INUSE: a registered, idle phone


@dataclass
class FakeAmi:
    """In-memory app_queue behind the `Ami` interface."""

    queues: dict[str, dict[str, _FakeMember]] = field(default_factory=dict)
    waiting: dict[str, list[str]] = field(default_factory=dict)
    notices: asyncio.Queue[AmiNotice] = field(default_factory=asyncio.Queue)
    actions: list[tuple[str, ...]] = field(default_factory=list)
    closed: bool = False

    def login(self) -> None:
        """Pretend the adapter just logged in (what `connect` reports)."""
        self.notices.put_nowait(AmiConnected())

    def _queue(self, queue: str) -> dict[str, _FakeMember]:
        if queue not in self.queues:
            raise AmiActionFailed("Queue", f"Unable to find queue {queue}")
        return self.queues[queue]

    def _record(self, queue: str, interface: str, m: _FakeMember) -> dict[str, str]:
        return {
            "Queue": queue,
            "MemberName": m.name,
            "Interface": interface,
            "StateInterface": interface,
            "Membership": "dynamic",
            "Penalty": "0",
            "CallsTaken": "0",
            "LastCall": "0",
            "LoginTime": "0",
            "InCall": "0",
            "Status": str(m.status),
            "Paused": "1" if m.paused else "0",
            "PausedReason": m.reason,
        }

    def _emit(self, event: str, headers: dict[str, str]) -> None:
        self.notices.put_nowait(AmiMessage({"Event": event, **headers}))

    async def queue_status(self, queue: str | None = None) -> list[dict[str, str]]:
        self.actions.append(("QueueStatus", queue or ""))
        out: list[dict[str, str]] = []
        for name, members in self.queues.items():
            if queue and name != queue:
                continue
            out.append({"Event": "QueueParams", "Queue": name})
            for interface, m in members.items():
                record = self._record(name, interface, m)
                record["Name"] = record.pop("MemberName")
                record["Location"] = record.pop("Interface")
                out.append({"Event": "QueueMember", **record})
            for pos, uid in enumerate(self.waiting.get(name, []), start=1):
                out.append(
                    {"Event": "QueueEntry", "Queue": name, "Position": str(pos), "Uniqueid": uid}
                )
        out.append({"Event": "QueueStatusComplete"})
        return out

    async def queue_add(
        self, queue: str, interface: str, member_name: str, *, paused: bool = False
    ) -> None:
        self.actions.append(("QueueAdd", queue, interface, member_name))
        members = self._queue(queue)
        if interface in members:
            raise AmiActionFailed("QueueAdd", "Unable to add interface: Already there")
        members[interface] = _FakeMember(member_name, paused=paused)
        self._emit("QueueMemberAdded", self._record(queue, interface, members[interface]))

    async def queue_remove(self, queue: str, interface: str) -> None:
        self.actions.append(("QueueRemove", queue, interface))
        members = self._queue(queue)
        if interface not in members:
            raise AmiActionFailed("QueueRemove", "Unable to remove interface: Not there")
        m = members.pop(interface)
        self._emit("QueueMemberRemoved", self._record(queue, interface, m))

    async def queue_pause(
        self, queue: str | None, interface: str, *, paused: bool, reason: str = ""
    ) -> None:
        self.actions.append(("QueuePause", queue or "", interface, str(paused), reason))
        hits = [
            (name, members[interface])
            for name, members in self.queues.items()
            if (queue is None or name == queue) and interface in members
        ]
        if not hits:
            raise AmiActionFailed("QueuePause", "Interface not found")
        for name, m in hits:
            m.paused, m.reason = paused, reason if paused else ""
            self._emit("QueueMemberPause", self._record(name, interface, m))

    def caller_joins(self, queue: str, uniqueid: str) -> None:
        """A caller enters `queue` (what Queue() in the dialplan does)."""
        self.waiting.setdefault(queue, []).append(uniqueid)
        self._emit("QueueCallerJoin", {"Queue": queue, "Uniqueid": uniqueid})

    def caller_leaves(self, queue: str, uniqueid: str) -> None:
        self.waiting.get(queue, []).remove(uniqueid)
        self._emit("QueueCallerLeave", {"Queue": queue, "Uniqueid": uniqueid})

    async def close(self) -> None:
        self.closed = True
