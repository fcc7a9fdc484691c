"""Least privilege on the sandbox PBX: what the AMI users and an unproven phone cannot do.

A leaked AMI secret must not place calls (Originate through the carrier trunk
is toll fraud) or change the PBX; a SIP request that merely claims to be an
operator's phone must not log anyone out; a caller ID that spells a phone's
name is still just a caller.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from coverage_lab.phones import CallerHandle, Callers
from coverage_lab.sandbox import AmiCredentials, Sandbox, SipCredentials

pytestmark = pytest.mark.integration

Q = "answering"

# Actions a leaked secret could abuse, with arguments that would work for a
# user allowed to send them. The Originate is the toll-fraud one: a call out
# through the carrier trunk.
DANGEROUS = (
    {
        "Action": "Originate",
        "Channel": "PJSIP/+19005550100@carrier-out",
        "Application": "Playback",
        "Data": "beep",
        "Async": "true",
    },
    {"Action": "Command", "Command": "core show channels"},
    {"Action": "Hangup", "Channel": "/.*/"},
    {"Action": "Redirect", "Channel": "PJSIP/operator1-00000001", "Context": "x", "Exten": "s",
     "Priority": "1"},
    {"Action": "Setvar", "Variable": "COVERAGE_FALLBACK_DIAL", "Value": "PJSIP/x@carrier-out"},
    {"Action": "GetConfig", "Filename": "manager.conf"},
    {"Action": "UpdateConfig", "SrcFilename": "manager.conf", "DstFilename": "manager.conf"},
    {"Action": "Reload"},
    {"Action": "ModuleLoad", "Module": "app_system.so", "LoadType": "load"},
    {"Action": "DBPut", "Family": "x", "Key": "y", "Val": "z"},
)
CHANGES_QUEUES = (
    {"Action": "QueueAdd", "Queue": Q, "Interface": "PJSIP/operator2", "MemberName": "operator2"},
    {"Action": "QueuePause", "Interface": "PJSIP/operator1", "Paused": "true"},
    {"Action": "QueueRemove", "Queue": Q, "Interface": "PJSIP/operator1"},
)


class RawAmi:
    """A bare AMI connection: send an action, read its response (and events) as header dicts."""

    def __init__(self, creds: AmiCredentials, *, events: str = "off") -> None:
        self.sock = socket.create_connection((creds.host, creds.port), timeout=5)
        self.buffer = b""
        self.events: list[dict[str, str]] = []
        self.sock.recv(1024)  # "Asterisk Call Manager/..." banner
        reply = self.send(
            {"Action": "Login", "Username": creds.user, "Secret": creds.secret, "Events": events}
        )
        assert reply.get("Response") == "Success", reply

    def send(self, action: dict[str, str]) -> dict[str, str]:
        """Send one action; return its response (events that arrive meanwhile are kept)."""
        action_id = f"t{time.monotonic_ns()}"
        text = "".join(f"{k}: {v}\r\n" for k, v in {**action, "ActionID": action_id}.items())
        self.sock.sendall(text.encode() + b"\r\n")
        while True:
            message = self.read()
            if message.get("ActionID") == action_id and "Response" in message:
                return message
            if "Event" in message:
                self.events.append(message)

    def read(self) -> dict[str, str]:
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("AMI closed the connection")
            self.buffer += chunk
        block, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        headers = {}
        for line in block.decode(errors="replace").split("\r\n"):
            key, _, value = line.partition(": ")
            headers[key] = value
        return headers

    def collect_events(self, seconds: float) -> list[dict[str, str]]:
        """Read events for `seconds`; return every event received so far."""
        deadline = time.monotonic() + seconds
        self.sock.settimeout(0.2)
        try:
            while time.monotonic() < deadline:
                try:
                    message = self.read()
                except TimeoutError:
                    continue
                if "Event" in message:
                    self.events.append(message)
        finally:
            self.sock.settimeout(5)
        return self.events

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def engine_ami(sandbox: Sandbox) -> Iterator[RawAmi]:
    """An AMI session as the engine's user, receiving every event that user may read."""
    ami = RawAmi(sandbox.ami_credentials(), events="on")
    yield ami
    ami.close()


@pytest.fixture
def operators_ami(sandbox: Sandbox) -> Iterator[RawAmi]:
    """An AMI session as the user `coverage-engine operators` logs in as."""
    ami = RawAmi(sandbox.operators_ami_credentials())
    yield ami
    ami.close()


def members(sandbox: Sandbox) -> list[str]:
    """Who is in the queue, and who of them is paused (`queue show`, without its clock)."""
    shown = sandbox.cli(f"queue show {Q}").split("Callers", 1)[0]
    return sorted(
        match.group(1) + (" paused" if "paused" in line.lower() else "")
        for line in shown.splitlines()
        if (match := re.search(r"\((PJSIP/[\w.-]+)\)", line))
    )


def in_queue(sandbox: Sandbox, interface: str) -> bool:
    return any(member.split()[0] == interface for member in members(sandbox))


def assert_no_call_was_placed(sandbox: Sandbox) -> None:
    time.sleep(0.5)  # an originated call would be up by now
    assert sandbox.cli("core show channels count").startswith("0 active channels")


@pytest.mark.parametrize("action", DANGEROUS + CHANGES_QUEUES, ids=lambda a: a["Action"])
def test_the_engines_ami_user_is_refused_anything_that_changes_the_pbx(
    engine_ami: RawAmi, sandbox: Sandbox, action: dict[str, str]
) -> None:
    """The engine's user reads presence only: calls, commands, config, queue changes refused."""
    before = members(sandbox)
    reply = engine_ami.send(action)
    assert (reply["Response"], reply.get("Message")) == ("Error", "Permission denied")
    assert members(sandbox) == before
    assert_no_call_was_placed(sandbox)


@pytest.mark.parametrize("action", DANGEROUS, ids=lambda a: a["Action"])
def test_the_operators_ami_user_is_refused_calls_commands_and_config(
    operators_ami: RawAmi, sandbox: Sandbox, action: dict[str, str]
) -> None:
    """The user that logs operators in and out cannot place a call or touch the PBX either."""
    reply = operators_ami.send(action)
    assert (reply["Response"], reply.get("Message")) == ("Error", "Permission denied")
    assert_no_call_was_placed(sandbox)


def test_the_engines_ami_user_sees_queue_status_and_member_events_and_no_call_events(
    engine_ami: RawAmi, sandbox: Sandbox, place_call: Callable[..., CallerHandle]
) -> None:
    """Presence arrives (QueueStatus, QueueMember*); call events (class `call`) do not."""
    reply = engine_ami.send({"Action": "QueueStatus", "Queue": Q})
    assert reply["Response"] == "Success"
    sandbox.cli(f"queue remove member PJSIP/operator3 from {Q}")
    place_call("+15550100", hangup_after=1)  # the safety net answers: Newchannel, Newstate...

    events = engine_ami.collect_events(4)
    names = {e["Event"] for e in events}
    assert "QueueParams" in names  # the QueueStatus reply
    assert "QueueMemberRemoved" in names
    assert not names & {"Newchannel", "Newstate", "DialBegin", "VarSet", "Hangup"}, names


def test_the_operators_ami_user_logs_an_operator_out_and_in(
    operators_ami: RawAmi, sandbox: Sandbox
) -> None:
    """QueueRemove and QueueAdd work for `coverage-engine operators`' user (class `agent`)."""
    operator1 = "PJSIP/operator1"
    reply = operators_ami.send({"Action": "QueueRemove", "Queue": Q, "Interface": operator1})
    assert reply["Response"] == "Success", reply
    assert not in_queue(sandbox, "PJSIP/operator1")
    reply = operators_ami.send(
        {"Action": "QueueAdd", "Queue": Q, "Interface": operator1, "MemberName": "operator1"}
    )
    assert reply["Response"] == "Success", reply
    assert in_queue(sandbox, "PJSIP/operator1")


# -- SIP: phones prove who they are; the carrier is an address -------------------------


def test_a_request_claiming_to_be_an_operator_without_the_password_is_refused(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """operator2's phone with a wrong password dials *22: refused, operator2 stays logged in."""
    def wrong(phone: str) -> SipCredentials:
        return dataclasses.replace(sandbox.phone_credentials(phone), password="guessed")

    callers = Callers(tmp_path, phone_credentials=wrong)
    try:
        result = callers.place("*22", from_phone="operator2").wait(timeout=30)
    finally:
        callers.stop_all()

    assert not result.answered
    assert result.rejected_with in (401, 403)
    assert in_queue(sandbox, "PJSIP/operator2")


def test_a_phones_password_is_on_no_command_line_and_gone_after_its_call(
    sandbox: Sandbox, callers: Callers
) -> None:
    """While operator1 dials, its password is in no process's argv; afterwards in no file."""
    password = sandbox.phone_credentials("operator1").password
    call = callers.place("*24", from_phone="operator1")
    argv: list[bytes] = []
    deadline = time.monotonic() + 5
    while b"-sf" not in argv and time.monotonic() < deadline:  # until the fork became sipp
        argv = Path(f"/proc/{call.proc.pid}/cmdline").read_bytes().split(b"\0")
    scenario = Path(argv[argv.index(b"-sf") + 1].decode())
    assert not [arg for arg in argv if password.encode() in arg]
    assert scenario.stat().st_mode & 0o077 == 0
    assert scenario.parent.stat().st_mode & 0o077 == 0

    result = call.wait(timeout=30)

    assert result.answered, result
    assert not scenario.exists()
    left = [f for f in call.workdir.rglob("*") if f.is_file()]
    assert left
    assert not [f for f in left if password.encode() in f.read_bytes()]


def test_a_caller_id_that_spells_an_operator_is_just_a_caller(
    sandbox: Sandbox, place_call: Callable[..., CallerHandle]
) -> None:
    """From the carrier, 'operator2' dialing *22 is a patient's call, not operator2 logging out."""
    call = place_call("*22", caller="operator2", hangup_after=1)
    result = call.wait(timeout=60)

    assert in_queue(sandbox, "PJSIP/operator2")
    # It entered the coverage dialplan like any call from the carrier, whose
    # safety net (no engine runs here) answered it.
    assert result.answered, result
