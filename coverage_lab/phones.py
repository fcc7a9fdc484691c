"""SIPp test phones and callers for journey tests against the sandbox PBX.

Every phone of config/asterisk/pjsip.conf has a fixed SIP port on 127.0.0.1
(`PHONE_PORTS`); a test starts a SIPp process on that port with a behaviour,
places calls from a SIPp caller on the carrier trunk, and then asks what a
person would have observed: which phone rang, which one answered, who hung up.

    from coverage_lab.phones import answers, never_answers, presses

    def test_after_hours_call_reaches_an_operator(phones, place_call):
        phones.start("operator1", never_answers())
        phones.start("operator2", answers(after=1))
        call = place_call("+15550100", hangup_after=6)
        result = call.wait()
        assert result.answered
        assert phones.answered_by(result.caller) == "operator2"

Behaviours (each phone treats every call it gets the same way):

* `answers(after=0, hangup_after=None)` rings `after` seconds, answers, stays
  until the far end hangs up (or hangs up itself after `hangup_after` s);
* `never_answers()` rings until the PBX cancels;
* `busy()` refuses every call with 486;
* `presses("1", after=0, delay=1)` answers, then sends the digits as SIP INFO
  `delay` seconds later (a doctor accepting a call);
* `voicemail(after=0)` answers and never presses anything (a personal
  voicemail greeting: the engine must not bridge the caller to it).

Results come from SIPp's own log: each scenario step writes
`EV|<time>|<event>|<call-id>|<detail>` lines (see tests/sipp/scenarios/).
`Phone.calls()` parses them into `PhoneCall`s, `CallerHandle.wait()` into a
`CallResult`. A call is matched between caller and phone by the caller's
number (`From` user), which `place_call` makes unique per call.

Whether two legs are *bridged* is a PBX fact: `bridged_endpoints(ari)` asks
ARI which endpoints share a bridge right now.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Literal

from coverage_lab.ari_http import AriCredentials, ari_get
from coverage_lab.sandbox import HOST, SIP_PORT, Sandbox, SipCredentials, project_root

# The phone/port map (docs/sandbox.md). pjsip.conf's static contacts point here.
PHONE_PORTS: dict[str, int] = {
    "carrier-out": 5070,  # the public network: external numbers dialed via the outbound trunk
    "frontdesk-maple": 5071,
    "frontdesk-lakeside": 5072,
    "operator1": 5073,
    "operator2": 5074,
    "operator3": 5075,
    "patel": 5081,
    "nguyen": 5082,
    "okafor": 5083,
    "ruiz": 5084,
    "chen": 5085,
}
# Callers take SIP ports from here up; any 127.0.0.1 source is the carrier trunk.
CALLER_PORTS = range(5100, 5200)
# Where the phones place their own calls from (an operator's feature code).
# Not the carrier's address: Asterisk takes anything from 127.0.0.1 for the
# carrier, whatever it claims to be (pjsip.conf identifies by address first).
PHONES_HOST = "127.0.0.2"
# SIPp opens an RTP socket per process; keep them clear of Asterisk's 10000-20000.
_MEDIA_BASE = 30000


def media_port(sip_port: int) -> int:
    """The RTP port of the SIPp process on `sip_port` (its SDP offers it; Asterisk sends there)."""
    return _MEDIA_BASE + (sip_port - 5000) * 10


_FOREVER_MS = 24 * 3600 * 1000
# A phone hung up by the PBX this soon after answering lost a ringall race.
_RACE_SECONDS = 0.5
# Unique across the whole test session, not per test: a call a test left up
# in Asterisk must never be mistaken for the next test's call.
_CALLER_NUMBERS = itertools.count(1)

Event = Literal[
    "invite",
    "ringing",
    "answered",
    "cancelled",
    "busy",
    "rejected",
    "dtmf",
    "remote_bye",
    "local_bye",
    "end",
]


def scenarios_dir() -> Path:
    return project_root() / "tests" / "sipp" / "scenarios"


# ----------------------------------------------------------------- behaviours
@dataclass(frozen=True, slots=True)
class Behaviour:
    """What a phone does with each call it receives (build with the helpers below)."""

    kind: Literal["answer", "busy"]
    answer_after: float | None = 0.0  # None: never answers (rings until cancelled)
    digits: str = ""  # sent as SIP INFO after answering
    digits_delay: float = 1.0
    hangup_after: float | None = None  # None: stays until the far end hangs up

    def describe(self) -> str:
        if self.kind == "busy":
            return "busy"
        if self.answer_after is None:
            return "never answers"
        text = f"answers after {self.answer_after:g}s"
        if self.digits:
            text += f", presses {self.digits} {self.digits_delay:g}s later"
        if self.hangup_after is not None:
            text += f", hangs up after {self.hangup_after:g}s"
        return text


def answers(after: float = 0.0, *, hangup_after: float | None = None) -> Behaviour:
    """Rings `after` seconds, answers, stays until hung up (or for `hangup_after` s)."""
    return Behaviour("answer", answer_after=after, hangup_after=hangup_after)


def never_answers() -> Behaviour:
    """Rings until the PBX gives up (CANCEL)."""
    return Behaviour("answer", answer_after=None)


def busy() -> Behaviour:
    """Refuses every call with 486 Busy Here."""
    return Behaviour("busy")


def presses(
    digits: str = "1",
    *,
    after: float = 0.0,
    delay: float = 1.0,
    hangup_after: float | None = None,
) -> Behaviour:
    """Answers after `after` s, sends `digits` as SIP INFO `delay` s later, then stays."""
    if not re.fullmatch(r"[0-9*#A-D]+", digits):
        raise ValueError(f"DTMF digits must be 0-9 * # A-D, not {digits!r}")
    return Behaviour(
        "answer", answer_after=after, digits=digits, digits_delay=delay, hangup_after=hangup_after
    )


def voicemail(after: float = 0.0) -> Behaviour:
    """Answers like a personal voicemail and never presses anything."""
    return answers(after)


def hangs_up(after_answer: float, *, answer_after: float = 0.0) -> Behaviour:
    """Answers after `answer_after` s and hangs up `after_answer` s into the call."""
    return answers(answer_after, hangup_after=after_answer)


# ----------------------------------------------------------- parsed results
@dataclass(frozen=True, slots=True)
class EventLine:
    at: float  # seconds since the epoch
    event: str
    call_id: str
    detail: str


@dataclass(frozen=True, slots=True)
class PhoneCall:
    """One call as a phone saw it."""

    phone: str
    call_id: str
    caller: str  # the caller's number as shown to this phone (From user)
    invited_at: float
    answered_at: float | None = None
    ended_at: float | None = None
    outcome: Literal["ringing", "answered", "cancelled", "busy"] = "ringing"
    ended_by: Literal["phone", "remote"] | None = None
    digits: str = ""
    pressed_at: float | None = None  # the first digit sent

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def talk_seconds(self) -> float | None:
        if self.answered_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.answered_at

    @property
    def lost_race(self) -> bool:
        """Answered, but another phone's answer won: Asterisk hung up at once.

        With a ringall queue several phones can answer within the same
        moment; app_queue keeps the first 200 OK and sends BYE to the others
        a few milliseconds later. Such a phone "answered" but never talked.
        """
        talk = self.talk_seconds
        return self.ended_by == "remote" and talk is not None and talk < _RACE_SECONDS


@dataclass(frozen=True, slots=True)
class CallResult:
    """One call as the caller experienced it."""

    caller: str
    did: str
    started_at: float
    ringing_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    rejected_with: int | None = None  # SIP status when refused before an answer
    ended_by: Literal["caller", "remote"] | None = None
    exit_code: int | None = None
    events: tuple[EventLine, ...] = field(default=())

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def seconds_to_answer(self) -> float | None:
        return None if self.answered_at is None else self.answered_at - self.started_at

    @property
    def talk_seconds(self) -> float | None:
        if self.answered_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.answered_at


_EV = re.compile(r"EV\|(?P<ts>[^|]*)\|(?P<event>[a-z_]+)\|(?P<call_id>[^|]*)\|(?P<detail>.*)")


def _parse_time(text: str) -> float:
    """SIPp's [timestamp]: `YYYY-MM-DD<TAB>HH:MM:SS.ffffff<TAB>epoch.usec` (3.6)."""
    parts = text.split()
    for part in reversed(parts):
        with contextlib.suppress(ValueError):
            value = float(part)
            if value > 1e9:
                return value
    with contextlib.suppress(ValueError):
        stamp = datetime.fromisoformat(" ".join(parts[:2]))
        return stamp.astimezone().timestamp()
    return time.time()


def parse_events(path: Path) -> list[EventLine]:
    """The EV lines of a SIPp log file, in order (missing file: none yet)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    events = []
    for line in text.splitlines():
        match = _EV.search(line)
        if match:
            events.append(
                EventLine(
                    at=_parse_time(match["ts"]),
                    event=match["event"],
                    call_id=match["call_id"].strip(),
                    detail=match["detail"].strip(),
                )
            )
    return events


def invite_display_names(path: Path) -> list[str]:
    """The caller names (the From header's display name) of the INVITEs in a phone's log."""
    names = []
    for ev in parse_events(path):
        if ev.event == "invite":
            display, _, _ = ev.detail.partition("<")
            names.append(display.strip().strip('"'))
    return names


_FROM_USER = re.compile(r"<?sips?:(?P<user>[^@;>]*)@")


def _caller_number(from_header: str) -> str:
    match = _FROM_USER.search(from_header)
    return match["user"] if match else from_header


def phone_calls(phone: str, events: list[EventLine]) -> list[PhoneCall]:
    """Fold a phone's events into one `PhoneCall` per Call-ID, in arrival order."""
    calls: dict[str, PhoneCall] = {}
    for ev in events:
        call = calls.get(ev.call_id)
        if ev.event == "invite":
            calls[ev.call_id] = PhoneCall(
                phone=phone,
                call_id=ev.call_id,
                caller=_caller_number(ev.detail),
                invited_at=ev.at,
            )
        elif call is None:
            continue
        elif ev.event == "answered":
            calls[ev.call_id] = replace(call, answered_at=ev.at, outcome="answered")
        elif ev.event == "cancelled":
            calls[ev.call_id] = replace(call, ended_at=ev.at, outcome="cancelled")
        elif ev.event == "busy":
            calls[ev.call_id] = replace(call, ended_at=ev.at, outcome="busy")
        elif ev.event == "dtmf":
            calls[ev.call_id] = replace(
                call, digits=call.digits + ev.detail, pressed_at=call.pressed_at or ev.at
            )
        elif ev.event in ("remote_bye", "local_bye"):
            calls[ev.call_id] = replace(
                call, ended_at=ev.at, ended_by="remote" if ev.event == "remote_bye" else "phone"
            )
    return list(calls.values())


def caller_result(
    caller: str, did: str, events: list[EventLine], exit_code: int | None
) -> CallResult:
    started = next((e.at for e in events if e.event == "invite"), time.time())
    result = CallResult(
        caller=caller, did=did, started_at=started, exit_code=exit_code, events=tuple(events)
    )
    for ev in events:
        if ev.event == "ringing" and result.ringing_at is None:
            result = replace(result, ringing_at=ev.at)
        elif ev.event == "answered":
            result = replace(result, answered_at=ev.at)
        elif ev.event == "rejected":
            result = replace(result, rejected_with=int(ev.detail), ended_at=ev.at)
        elif ev.event in ("remote_bye", "local_bye"):
            result = replace(
                result, ended_at=ev.at, ended_by="remote" if ev.event == "remote_bye" else "caller"
            )
    return result


# ------------------------------------------------------------- scenarios
def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    leftover = re.search(r"\{\{\w+\}\}", template)
    if leftover:
        raise ValueError(f"scenario placeholder {leftover.group(0)} was not filled")
    return template


def _ms(seconds: float | None) -> str:
    # SIPp reads timeout="0" as "no timeout": the shortest real wait is 1 ms.
    if seconds is None:
        return str(_FOREVER_MS)
    return str(max(1, round(seconds * 1000)))


def render_phone_scenario(user: str, behaviour: Behaviour) -> str:
    """The SIPp XML for one phone with one behaviour (tests/sipp/scenarios/phone_*.xml)."""
    src = scenarios_dir()
    if behaviour.kind == "busy":
        return _fill((src / "phone_busy.xml").read_text(encoding="utf-8"), {})
    dtmf_block = ""
    if behaviour.digits:
        info = (src / "phone_info.xml").read_text(encoding="utf-8")
        sends = "".join(
            _fill(info, {"digit": d, "cseq": str(102 + i), "user": user})
            for i, d in enumerate(behaviour.digits)
        )
        dtmf_block = _fill(
            (src / "phone_dtmf_block.xml").read_text(encoding="utf-8"),
            {"dtmf_ms": _ms(behaviour.digits_delay), "info_sends": sends},
        )
    return _fill(
        (src / "phone_answer.xml").read_text(encoding="utf-8"),
        {
            "user": user,
            "ring_ms": _ms(behaviour.answer_after),
            "hangup_ms": _ms(behaviour.hangup_after),
            "dtmf_block": dtmf_block,
        },
    )


def render_caller_scenario(
    caller: str, caller_name: str, hangup_after: float | None, *, password: str | None = None
) -> str:
    """The SIPp XML for one call; with `password`, a phone answering Asterisk's challenge.

    Such a scenario holds the phone's password: write it where only we can
    read it, and remove it after the call (see `CallerHandle`).
    """
    authenticate = password is not None
    src = scenarios_dir()
    values = {
        "caller": caller,
        # The name sits in a CDATA section inside a quoted SIP display
        # name: drop what could end either (quotes, brackets, newlines).
        "caller_name": re.sub(r'["\\<>\[\]\r\n]', "", caller_name),
        "hangup_ms": _ms(hangup_after),
    }
    challenge = ""
    if authenticate:
        block = (src / "caller_challenge.xml").read_text(encoding="utf-8")
        challenge = _fill(
            block,
            {"caller": caller, "caller_name": values["caller_name"], "password": password or ""},
        )
    return _fill(
        (src / "caller.xml").read_text(encoding="utf-8"),
        {
            **values,
            "challenge": challenge,
            "cseq": "2" if authenticate else "1",
            "bye_cseq": "3" if authenticate else "2",
        },
    )


def stop_sipp(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Stop a SIPp process: SIGINT, so it writes its last logs and statistics; SIGKILL if stuck."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def _sipp_common(workdir: Path, name: str, port: int, host: str = HOST) -> list[str]:
    return [
        "sipp",
        "-i",
        host,
        "-p",
        str(port),
        "-bind_local",
        "-mp",
        str(media_port(port)),
        "-nostdin",
        "-trace_logs",
        "-log_file",
        str(workdir / f"{name}.events.log"),
        "-trace_msg",
        "-message_file",
        str(workdir / f"{name}.messages.log"),
        "-trace_err",
        "-error_file",
        str(workdir / f"{name}.errors.log"),
    ]


# ----------------------------------------------------------------- phones
class Phone:
    """One SIPp phone process listening on its endpoint's port."""

    def __init__(self, name: str, behaviour: Behaviour, workdir: Path) -> None:
        if name not in PHONE_PORTS:
            raise ValueError(f"unknown phone {name!r}; known: {', '.join(PHONE_PORTS)}")
        self.name = name
        self.port = PHONE_PORTS[name]
        self.behaviour = behaviour
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.scenario = workdir / f"{name}.xml"
        self.scenario.write_text(render_phone_scenario(name, behaviour), encoding="utf-8")
        self.events_file = workdir / f"{name}.events.log"
        self._out = (workdir / f"{name}.out").open("wb")
        self.proc = subprocess.Popen(
            [*_sipp_common(workdir, name, self.port), "-sf", str(self.scenario)],
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def calls(self) -> list[PhoneCall]:
        """Every call this phone received so far."""
        return phone_calls(self.name, parse_events(self.events_file))

    def stop(self) -> None:
        stop_sipp(self.proc)
        self._out.close()

    def __repr__(self) -> str:
        return f"<Phone {self.name}:{self.port} {self.behaviour.describe()}>"


class Phones:
    """The test's phones: start some, then ask who received and answered what."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._phones: dict[str, Phone] = {}

    def start(self, name: str, behaviour: Behaviour) -> Phone:
        """Start (or restart with a new behaviour) the SIPp phone of endpoint `name`."""
        if name in self._phones:
            self._phones.pop(name).stop()
        phone = Phone(name, behaviour, self.workdir / "phones")
        self._phones[name] = phone
        _wait_udp_bound(phone.proc, phone.port)
        return phone

    def __getitem__(self, name: str) -> Phone:
        return self._phones[name]

    def calls(self, name: str | None = None) -> list[PhoneCall]:
        """Calls received by one phone, or by all of them in arrival order."""
        phones = [self._phones[name]] if name else list(self._phones.values())
        return sorted((c for p in phones for c in p.calls()), key=lambda c: c.invited_at)

    def rang(self, caller: str) -> list[str]:
        """Names of the phones that received a call from `caller`, in order."""
        return [c.phone for c in self.calls() if c.caller == caller]

    def answered_by(self, caller: str) -> str | None:
        """The phone that got `caller`'s call: the last to answer, ringall losers aside.

        Of phones that answered within the same race window, one that talked
        (its line stayed up past the window) wins over one that never saw
        its line end: with a ringall queue app_queue keeps the first 200 OK,
        and the loser's BYE can go missing from its log when its scenario
        ends. An earlier answer (a voicemail hung up) is no rival.
        """
        answered = sorted(
            (c for c in self.calls() if c.caller == caller and c.answered),
            key=lambda c: c.answered_at or 0.0,
        )
        kept = [c for c in answered if not c.lost_race] or answered
        if not kept:
            return None
        last = kept[-1].answered_at or 0.0
        rivals = [c for c in kept if last - (c.answered_at or 0.0) < _RACE_SECONDS]
        talked = [c for c in rivals if (c.talk_seconds or 0.0) >= _RACE_SECONDS]
        return (talked or rivals)[-1].phone

    def wait_for(
        self, predicate: Literal["invite", "answered"], caller: str, timeout: float = 30.0
    ) -> list[PhoneCall]:
        """Poll until some phone has `predicate` ("invite" or "answered") for `caller`."""
        deadline = time.monotonic() + timeout
        while True:
            calls = [c for c in self.calls() if c.caller == caller]
            if predicate == "invite" and calls:
                return calls
            if predicate == "answered" and any(c.answered for c in calls):
                return self._settled(caller, calls)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no phone {predicate} a call from {caller} within {timeout:.0f}s; "
                    f"phones: {self.describe()}"
                )
            time.sleep(0.1)

    def _settled(self, caller: str, calls: list[PhoneCall]) -> list[PhoneCall]:
        """Give ringall losers a moment to receive their BYE, so answered_by is right."""
        deadline = time.monotonic() + 2 * _RACE_SECONDS
        while sum(1 for c in calls if c.answered and c.ended_at is None) > 1:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
            calls = [c for c in self.calls() if c.caller == caller]
        return calls

    def describe(self) -> str:
        lines = []
        for phone in self._phones.values():
            calls = ", ".join(f"{c.caller}:{c.outcome}" for c in phone.calls()) or "no calls"
            lines.append(f"{phone!r} [{calls}]")
        return "; ".join(lines) or "none started"

    def stop_all(self) -> None:
        for phone in self._phones.values():
            phone.stop()
        self._phones.clear()


# ---------------------------------------------------------------- callers
class CallerHandle:
    """A SIPp caller placing one call to a DID: on the carrier trunk, or from a phone.

    A call from a phone (`phone` given) comes from `PHONES_HOST`, not the
    carrier's address, and answers Asterisk's digest challenge with the
    phone's credentials. The password never goes on SIPp's command line,
    where every user of the machine could read it (`ps`): it is in the
    scenario file itself, written owner-only in a private directory and
    removed when the call ends. (SIPp 3.6 cannot nest an injection-file
    field in its `[authentication]` keyword, which would have kept the XML
    free of it.)
    """

    def __init__(
        self,
        did: str,
        caller: str,
        caller_name: str,
        hangup_after: float | None,
        workdir: Path,
        port: int,
        max_seconds: float,
        phone: SipCredentials | None = None,
    ) -> None:
        self.did = did
        self.caller = caller
        self.workdir = workdir
        self.media_port = media_port(port)  # where Asterisk sends what the caller hears
        self.max_seconds = max_seconds  # SIPp gives up after this, BYE or not
        name = f"caller-{caller}"
        workdir.mkdir(parents=True, exist_ok=True)
        xml = render_caller_scenario(
            caller, caller_name, hangup_after, password=phone.password if phone else None
        )
        self._secret_file: Path | None = None
        if phone is None:
            scenario = workdir / f"{name}.xml"
            scenario.write_text(xml, encoding="utf-8")
        else:
            scenario = self._secret_file = _private_file(workdir / "secrets", f"{name}.xml", xml)
        self.events_file = workdir / f"{name}.events.log"
        self._out = (workdir / f"{name}.out").open("wb")
        self.proc = subprocess.Popen(
            [
                *_sipp_common(workdir, name, port, PHONES_HOST if phone else HOST),
                "-sf",
                str(scenario),
                "-s",
                did,
                "-m",
                "1",
                "-timeout",
                f"{max(1, round(max_seconds))}s",
                f"{HOST}:{SIP_PORT}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def result(self) -> CallResult:
        """What the caller experienced so far (the call may still be up)."""
        return caller_result(
            self.caller, self.did, parse_events(self.events_file), self.proc.poll()
        )

    def wait(self, timeout: float = 120.0) -> CallResult:
        """Wait for the call to end (SIPp exits), then return what the caller experienced."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_sipp(self.proc)
        self._ended()
        return self.result()

    def wait_answered(self, timeout: float = 30.0) -> CallResult:
        """Poll until the caller got a 200 OK (raises TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.result()
            if result.answered:
                return result
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise TimeoutError(f"caller {self.caller} -> {self.did} not answered: {self.result()}")

    def stop(self) -> None:
        stop_sipp(self.proc)
        self._ended()

    def _ended(self) -> None:
        self._out.close()
        # Kept test artifacts hold no password.
        if self._secret_file is not None:
            self._secret_file.unlink(missing_ok=True)


class Callers:
    """Places calls; hands out unique caller numbers and free local ports.

    `phone_credentials` gives a phone's SIP credentials for calls placed
    from a phone (default: the sandbox's generated ones).
    """

    def __init__(
        self,
        workdir: Path,
        phone_credentials: Callable[[str], SipCredentials] | None = None,
    ) -> None:
        self.workdir = workdir
        self._ports = itertools.cycle(CALLER_PORTS)
        self._calls: list[CallerHandle] = []
        self._phone_credentials = phone_credentials

    def place(
        self,
        did: str,
        *,
        caller: str | None = None,
        caller_name: str = "Test Caller",
        hangup_after: float | None = None,
        max_seconds: float = 180.0,
        from_phone: str | None = None,
    ) -> CallerHandle:
        """Call `did` at the sandbox's carrier trunk; returns at once (see `wait()`).

        `caller` defaults to a unique number (+1555010xxxx) so that phones can
        tell this call from the others; `hangup_after` is seconds of
        conversation after the answer (None: wait for the far end).
        `from_phone` places the call from that phone instead (an operator
        dialing `*21`): it authenticates as that endpoint, and `caller` is
        its name.
        """
        credentials = None
        if from_phone is not None:
            lookup = self._phone_credentials or Sandbox(log=lambda _m: None).phone_credentials
            credentials = lookup(from_phone)
        number = from_phone or caller or f"+1555010{next(_CALLER_NUMBERS) % 10000:04d}"
        handle = CallerHandle(
            did,
            number,
            caller_name,
            hangup_after,
            self.workdir / "callers",
            self._free_port(),
            max_seconds,
            credentials,
        )
        self._calls.append(handle)
        return handle

    def _free_port(self) -> int:
        in_use = {
            c_port for c in self._calls if c.proc.poll() is None for c_port in [_port_of(c.proc)]
        }
        for _ in CALLER_PORTS:
            port = next(self._ports)
            if port not in in_use:
                return port
        raise RuntimeError("every caller port is busy")

    def stop_all(self) -> None:
        for call in self._calls:
            call.stop()
        self._calls.clear()


def _private_file(directory: Path, name: str, text: str) -> Path:
    """`text` in `directory/name`, both readable by us alone."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return path


def _port_of(proc: subprocess.Popen[bytes]) -> int:
    args = proc.args
    assert isinstance(args, list)
    return int(args[args.index("-p") + 1])


def _wait_udp_bound(proc: subprocess.Popen[bytes], port: int, timeout: float = 5.0) -> None:
    """Return once SIPp listens on `port` (so no INVITE arrives before it does)."""
    hexport = f"{port:04X}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sipp exited at start (status {proc.returncode}): {proc.args!r}")
        with contextlib.suppress(OSError):
            for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
                local = line.split()[1]
                if local.endswith(":" + hexport):
                    return
        time.sleep(0.05)
    raise RuntimeError(f"sipp did not bind udp port {port} within {timeout}s")


# -------------------------------------------------------------------- ARI
def _endpoint_of(channel_name: str) -> str:
    # "PJSIP/operator2-0000000a" -> "operator2"
    base = channel_name.split("/", 1)[-1]
    return base.rsplit("-", 1)[0]


def bridged_endpoints(ari: AriCredentials) -> list[frozenset[str]]:
    """For each bridge in Asterisk, the set of endpoints in it (e.g. {carrier-in, operator2})."""
    channels = ari_get(ari, "/channels")
    bridges = ari_get(ari, "/bridges")
    assert isinstance(channels, list)
    assert isinstance(bridges, list)
    names = {c["id"]: _endpoint_of(c["name"]) for c in channels}
    return [frozenset(names.get(cid, cid) for cid in b.get("channels", [])) for b in bridges]


def wait_bridged(ari: AriCredentials, *endpoints: str, timeout: float = 30.0) -> None:
    """Poll until some bridge holds all of `endpoints` (raises TimeoutError)."""
    wanted = set(endpoints)
    deadline = time.monotonic() + timeout
    seen: list[frozenset[str]] = []
    while time.monotonic() < deadline:
        seen = bridged_endpoints(ari)
        if any(wanted <= bridge for bridge in seen):
            return
        time.sleep(0.2)
    raise TimeoutError(f"no bridge with {sorted(wanted)} within {timeout:.0f}s; bridges: {seen}")


@contextlib.contextmanager
def session(workdir: Path) -> Iterator[tuple[Phones, Callers]]:
    """Phones and callers that are all stopped on exit (what the pytest fixtures use)."""
    phones, callers = Phones(workdir), Callers(workdir)
    try:
        yield phones, callers
    finally:
        callers.stop_all()
        phones.stop_all()


__all__ = [
    "PHONE_PORTS",
    "Behaviour",
    "CallResult",
    "CallerHandle",
    "Callers",
    "Phone",
    "PhoneCall",
    "Phones",
    "answers",
    "bridged_endpoints",
    "busy",
    "hangs_up",
    "media_port",
    "never_answers",
    "presses",
    "session",
    "stop_sipp",
    "voicemail",
    "wait_bridged",
]
