"""The panoramisk AMI adapter against a small in-process AMI server speaking the wire protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from coverage_engine.ami.client import (
    AmiActionFailed,
    AmiConnected,
    AmiDisconnected,
    AmiLoginFailed,
    AmiMessage,
    AmiSettings,
    AmiTimeout,
    AmiUnavailable,
    PanoramiskAmi,
    read_secret,
)
from coverage_engine.ami.presence import QueueAvailability
from coverage_engine.ami.tracker import PresenceTracker

EOL = "\r\n"


def frame(**headers: str) -> bytes:
    return (EOL.join(f"{k}: {v}" for k, v in headers.items()) + EOL + EOL).encode()


class FakeAmiServer:
    """Answers Login, QueueAdd, QueuePause, QueueStatus like Asterisk 22; ignores `Hang`."""

    def __init__(self, secret: str = "s3cret") -> None:
        self.secret = secret
        self.writers: list[asyncio.StreamWriter] = []
        self.members: list[str] = []
        self.seen: list[dict[str, str]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                lines = raw.decode().strip().split(EOL)
                action = dict(line.split(": ", 1) for line in lines if ": " in line)
                self.seen.append(action)
                writer.write(self.answer(action))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def answer(self, a: dict[str, str]) -> bytes:
        aid = a.get("ActionID", "")
        name = a.get("Action", "").lower()
        if name == "login":
            if a.get("Secret") != self.secret:
                return frame(Response="Error", ActionID=aid, Message="Authentication failed")
            return frame(Response="Success", ActionID=aid, Message="Authentication accepted")
        if name == "queueadd":
            self.members.append(a["Interface"])
            # This exact message makes panoramisk wait for more unless as_list=False.
            return frame(Response="Success", ActionID=aid, Message="Added interface to queue")
        if name == "queuepause":
            if a["Interface"] not in self.members:
                return frame(Response="Error", ActionID=aid, Message="Interface not found")
            return frame(Response="Success", ActionID=aid, Message="Interface paused successfully")
        if name == "queuestatus":
            if a.get("Queue") == "nope":
                return frame(Response="Error", ActionID=aid, Message="No such queue")
            out = frame(
                Response="Success",
                ActionID=aid,
                EventList="start",
                Message="Queue status will follow",
            )
            out += frame(Event="QueueParams", Queue="answering", ActionID=aid)
            for m in self.members:
                out += frame(
                    Event="QueueMember",
                    Queue="answering",
                    Name=m,
                    Location=m,
                    Membership="dynamic",
                    Status="1",
                    Paused="0",
                    ActionID=aid,
                )
            out += frame(
                Event="QueueStatusComplete",
                ActionID=aid,
                EventList="Complete",
                ListItems=str(1 + len(self.members)),
            )
            return out
        if name == "hang":
            return b""
        return frame(Response="Error", ActionID=aid, Message="Invalid/unknown command")

    def push(self, **headers: str) -> None:
        for w in self.writers:
            w.write(frame(**headers))


@asynccontextmanager
async def ami_server(secret: str = "s3cret") -> AsyncIterator[tuple[FakeAmiServer, int]]:
    fake = FakeAmiServer(secret)
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield fake, port
    finally:
        for w in fake.writers:
            w.close()
        server.close()
        await server.wait_closed()


def settings(port: int, secret: str = "s3cret") -> AmiSettings:
    return AmiSettings(username="coverage", secret=secret, port=port, timeout=1.0)


async def test_queue_add_completes_and_status_lists_the_new_member() -> None:
    """QueueAdd returns (despite panoramisk's as_list trap); QueueStatus then lists the member."""
    async with ami_server() as (_fake, port):
        ami = await PanoramiskAmi.connect(settings(port))
        try:
            await ami.queue_add("answering", "PJSIP/operator1", "operator1")
            events = await ami.queue_status()
        finally:
            await ami.close()
    assert [e["Event"] for e in events] == ["QueueParams", "QueueMember", "QueueStatusComplete"]
    assert events[1]["Location"] == "PJSIP/operator1"


async def test_wrong_secret_is_a_login_error_an_admin_can_act_on() -> None:
    """A refused login raises AmiLoginFailed naming the user, without the secret."""
    async with ami_server() as (_fake, port):
        with pytest.raises(AmiLoginFailed, match="coverage") as exc:
            await PanoramiskAmi.connect(settings(port, secret="wrong"))
    assert "wrong" not in str(exc.value)


async def test_nobody_listening_is_unavailable_within_the_timeout() -> None:
    """Connecting to a closed port fails with AmiUnavailable instead of retrying forever."""
    async with ami_server() as (_fake, port):
        pass  # the port is closed again now
    with pytest.raises(AmiUnavailable, match="manager interface"):
        await PanoramiskAmi.connect(settings(port))


async def test_an_unanswered_action_times_out() -> None:
    """An action Asterisk never answers raises AmiTimeout after the configured deadline."""
    async with ami_server() as (_fake, port):
        ami = await PanoramiskAmi.connect(settings(port))
        try:
            with pytest.raises(AmiTimeout):
                await ami._send({"Action": "Hang"}, as_list=False)
        finally:
            await ami.close()


async def test_errors_from_asterisk_become_action_failures() -> None:
    """An "Error" response (pausing a non-member, an unknown queue) raises AmiActionFailed."""
    async with ami_server() as (_fake, port):
        ami = await PanoramiskAmi.connect(settings(port))
        try:
            with pytest.raises(AmiActionFailed, match="Interface not found"):
                await ami.queue_pause("answering", "PJSIP/nobody", paused=True, reason="lunch")
            with pytest.raises(AmiActionFailed, match="No such queue"):
                await ami.queue_status("nope")
        finally:
            await ami.close()


async def test_events_arrive_on_our_own_queue_and_feed_the_tracker() -> None:
    """Unsolicited events land on `notices` (no stray tasks) and the tracker folds them."""
    async with ami_server() as (fake, port):
        ami = await PanoramiskAmi.connect(settings(port))
        tracker = PresenceTracker(ami)
        task = asyncio.create_task(tracker.run())
        try:
            async with asyncio.timeout(2):
                await tracker.wait_synced()
            fake.push(
                Event="QueueMemberAdded",
                Queue="answering",
                MemberName="operator2",
                Interface="PJSIP/operator2",
                Status="1",
                Paused="0",
            )
            async with asyncio.timeout(2):
                presence = await tracker.wait_until(lambda p: len(p.members) == 1)
        finally:
            task.cancel()
            await ami.close()
    assert presence.availability("answering") == QueueAvailability("answering", 1, 1, 0, 0)


def test_secret_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    """The secret is read from COVERAGE_AMI_SECRET, else from the file COVERAGE_AMI_SECRET_FILE."""
    path = tmp_path / "ami-secret"
    path.write_text("from-file\n")
    assert read_secret({"COVERAGE_AMI_SECRET_FILE": str(path)}) == "from-file"
    assert read_secret({"COVERAGE_AMI_SECRET": "inline"}) == "inline"
    include = tmp_path / "manager-secret.conf"
    include.write_text("; for manager.conf\nsecret = from-include\n")
    assert read_secret({"COVERAGE_AMI_SECRET_FILE": str(include)}) == "from-include"


def test_settings_repr_never_shows_the_secret() -> None:
    """Logging the settings object cannot leak the AMI secret."""
    assert "s3cret" not in repr(settings(5038))


def test_connected_notice_is_a_plain_value() -> None:
    """Notices compare by value, so tests and the tracker can match on them."""
    assert AmiConnected() == AmiConnected()
    assert AmiMessage({"Event": "X"}).name == "X"


async def test_a_dropped_connection_is_reported_and_followed_by_a_fresh_login() -> None:
    """Asterisk restarting: disconnected, then panoramisk logs in again and a connect follows."""
    async with ami_server() as (fake, port):
        ami = await PanoramiskAmi.connect(settings(port))
        try:
            assert await asyncio.wait_for(ami.notices.get(), 1) == AmiConnected()
            for writer in fake.writers:
                writer.close()
            assert await asyncio.wait_for(ami.notices.get(), 2) == AmiDisconnected()
            # panoramisk retries after its reconnect delay (2 s) and logs in again.
            assert await asyncio.wait_for(ami.notices.get(), 5) == AmiConnected()
            assert [a["Action"] for a in fake.seen].count("Login") == 2
        finally:
            await ami.close()
