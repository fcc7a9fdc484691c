"""The chaos run: callers at a steady rate, faults at random moments, judged as a patient would.

Two engines (A straight to ARI, B through a TCP proxy that can stall) share
the sandbox PBX and one PostgreSQL database. SIPp callers dial the
practices at night while faults are injected: an engine SIGKILLed (and
restarted after 0.5-3 s), an engine frozen with SIGSTOP for 15 s, B's
WebSocket silently stalled (the proxy stops forwarding), PostgreSQL
restarted, Asterisk restarted between calls. Afterwards every call is
judged from the outside (did a person answer, how long until the PBX
answered, was the call dropped, were two doctors' phones ringing for it at
once) and against its journey in the database (one, with the outcome and
the person the caller's side saw). `scripts/chaos` runs the full plan and
writes the figures; `tests/chaos` runs a short one in CI.

What each caller heard is captured on the wire (the RTP Asterisk sent to the
caller's media port, `coverage_lab.capture`), kept as a WAV per call under
`heard/`, and measured (`coverage_lab.silence`): the longest silence while
nobody was on the line with the caller, from the PBX's answer until a person
took the call (an operator's answer, a doctor's press of 1), and again if
that person left while the caller's line stayed up.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from coverage_engine.journey import Bridged, EventKind, Journey
from coverage_engine.records.location import location_of, open_store
from coverage_engine.records.model import JourneyFilter
from coverage_lab.ari_http import AriCredentials, ari_delete_quietly, ari_get
from coverage_lab.capture import WHOLE_PACKETS, AudioCapture, iter_pcap
from coverage_lab.engine_process import EngineProcess
from coverage_lab.phones import (
    CALLER_PORTS,
    CallerHandle,
    Callers,
    PhoneCall,
    Phones,
    answers,
    busy,
    media_port,
    presses,
)
from coverage_lab.postgres import TempCluster
from coverage_lab.proxy import AriProxy
from coverage_lab.sandbox import Sandbox, project_root
from coverage_lab.silence import longest, playout, ringback_of, rtp_ulaw, silences, write_wav

CHICAGO = ZoneInfo("America/Chicago")
NIGHT = datetime(2026, 12, 1, 3, 0, tzinfo=CHICAGO)  # Maple: Nguyen, backup Okafor
MAPLE, LAKESIDE, UNKNOWN = "+13125550100", "+16085550142", "+19995550123"
DOCTORS = ("patel", "nguyen", "okafor", "ruiz", "chen")
OPERATORS = ("operator1", "operator2", "operator3")
# The promise: never a silence over 1 s once the PBX has answered.
SILENCE_GOAL_S = 1.0
# The capture's clock (the kernel's) and SIPp's log of the 200 OK are the same
# clock, but the first packet can be stamped a moment before SIPp logs the answer.
_ANSWER_SLACK_S = 0.05


@dataclass(frozen=True)
class Plan:
    """How many calls and faults of each kind."""

    calls: int
    kills: int
    stops: int
    stalls: int
    pg_restarts: int
    asterisk_restarts: int
    gap: tuple[float, float] = (2.0, 5.0)  # seconds between two callers
    stop_seconds: float = 15.0
    stall_seconds: float = 15.0
    seed: int = 16


SHORT = Plan(calls=24, kills=3, stops=1, stalls=1, pg_restarts=1, asterisk_restarts=1)
FULL = Plan(calls=160, kills=20, stops=2, stalls=2, pg_restarts=2, asterisk_restarts=2)


@dataclass
class Fault:
    kind: str
    at: float
    target: str = ""
    takeover_s: float | None = None  # the survivor's take-over, when the victim held calls


@dataclass
class Verdict:
    caller: str
    did: str
    reached: str | None  # the phone that answered
    answer_s: float | None  # INVITE to the PBX's answer
    dropped: bool
    double_ring: bool
    journeys: int
    journey_ok: bool
    problem: str = ""
    cut: bool = False  # a conversation with a person ended by the system, not by either side
    # What the caller heard from the PBX's answer, while nobody was on the line
    # with them (`alone_s` seconds in all): its longest silence (None: not
    # measured, the PBX never answered), where it began (seconds after the
    # answer) and how much of it was digital zero (nothing sent) rather than
    # sound too quiet to hear.
    alone_s: float | None = None
    silence_s: float | None = None
    silence_at_s: float | None = None
    silence_zero_s: float | None = None
    recording: str = ""


@dataclass
class Report:
    plan: dict[str, Any]
    started: str
    seconds: float
    faults: list[Fault] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    engine_crashes: int = 0  # engines that stopped by themselves (not a fault we injected)
    capture_dropped: int | None = None  # audio packets the kernel dropped before tcpdump

    def figures(self) -> dict[str, Any]:
        v = self.verdicts
        answer_times = [x.answer_s for x in v if x.answer_s is not None]
        takeovers = [f.takeover_s for f in self.faults if f.takeover_s is not None]
        silences_s = [x.silence_s for x in v if x.silence_s is not None]
        kinds: dict[str, int] = {}
        for f in self.faults:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        return {
            "calls_placed": len(v),
            "engine_crashes": self.engine_crashes,
            "faults": kinds,
            "reached_a_person": sum(1 for x in v if x.reached),
            "dead_ended": sum(1 for x in v if not x.reached),
            "dropped_by_the_system": sum(1 for x in v if x.dropped),
            "conversations_cut": sum(1 for x in v if x.cut),
            "two_phones_ringing_for_one_step": sum(1 for x in v if x.double_ring),
            "journeys_lost": sum(1 for x in v if x.journeys == 0),
            "journeys_duplicated": sum(1 for x in v if x.journeys > 1),
            "journeys_wrong": sum(1 for x in v if x.journeys == 1 and not x.journey_ok),
            "worst_invite_to_answer_s": round(max(answer_times), 3) if answer_times else None,
            "answers_over_1s": sum(1 for t in answer_times if t > 1.0),
            "worst_takeover_s": round(max(takeovers), 2) if takeovers else None,
            "takeovers_measured": len(takeovers),
            "answered_by_the_pbx": len(answer_times),
            "silences_measured": len(silences_s),
            "worst_silence_s": round(max(silences_s), 2) if silences_s else None,
            "silences_over_1s": sum(1 for x in silences_s if x > SILENCE_GOAL_S),
            "capture_dropped": self.capture_dropped,
        }


def _config(folder: Path, pg_url: str) -> Path:
    """The reference configuration with short waits, its records in PostgreSQL."""
    text = (project_root() / "config" / "coverage.yaml").read_text(encoding="utf-8")
    text = re.sub(r"(\{to: operators, max_wait_seconds:) \d+\}", r"\1 8}", text)
    text = re.sub(r"(\{to: oncall_\w+, ring_seconds:) \d+", r"\1 10", text)
    text = text.replace("  path: ../var/records.sqlite", f"  url: {pg_url}\n  spool: spool.db")
    path = folder / "coverage.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class ChaosRun:
    """One run of `plan` against the sandbox; `run()` returns the report."""

    def __init__(self, sandbox: Sandbox, workdir: Path, plan: Plan) -> None:
        self.sandbox = sandbox
        self.workdir = workdir
        self.plan = plan
        self.rng = random.Random(plan.seed)  # noqa: S311 (fault timing, not secrets)
        self.ari: AriCredentials = sandbox.credentials()
        self.faults: list[Fault] = []
        # `_night_now` counts from here; `run` sets it again as the engines first start.
        self._night_began = time.time()
        self._busy = threading.Lock()  # a fault at a time
        self._placing = threading.Event()
        self._placing.set()

    # -- set-up --------------------------------------------------------------------------

    def _engines(self, pg_url: str, proxy: AriProxy) -> dict[str, EngineProcess]:
        engines = {}
        for name, app, url in (
            ("a", "coverage-engine", self.ari.url),
            ("b", "coverage-engine-b", f"http://127.0.0.1:{proxy.port}/ari"),
        ):
            folder = self.workdir / name
            folder.mkdir(parents=True, exist_ok=True)
            engines[app] = EngineProcess(
                _config(folder, pg_url),
                ari_url=url,
                ari_user=self.ari.user,
                ari_password=self.ari.password,
                log_path=folder / "engine.log",
                app=app,
            )
        return engines

    def _phones(self, phones: Phones) -> None:
        # Operators answer after the first queue wait (8 s) has run out, so
        # Maple's callers go on to the doctors; the last operators step waits 90 s.
        for op in OPERATORS:
            phones.start(op, answers(after=12, hangup_after=3))
        phones.start("nguyen", presses("1", after=3, delay=1, hangup_after=4))
        phones.start("okafor", presses("1", after=2, delay=1, hangup_after=4))
        phones.start("ruiz", busy())
        phones.start("chen", presses("1", after=2, delay=1, hangup_after=4))
        phones.start("patel", presses("1", after=2, delay=1, hangup_after=4))

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> Report:
        if not AudioCapture.available():
            raise RuntimeError(
                "tcpdump is not installed: the chaos run captures what each caller hears "
                "with it. Run scripts/bootstrap as root (it installs tcpdump)."
            )
        started = time.time()
        capture = AudioCapture(
            self.workdir / "heard.pcap",
            [media_port(port) for port in CALLER_PORTS],
            snaplen=WHOLE_PACKETS,
        )
        cluster = TempCluster()
        cluster.create()
        cluster.start()
        proxy = AriProxy(_ari_address(self.ari.url))
        phones = Phones(self.workdir / "phones")
        callers = Callers(self.workdir)
        engines = self._engines(cluster.create_database("chaos"), proxy)
        placed: list[CallerHandle] = []
        try:
            capture.start()
            capture.wait_listening()
            self._night_began = time.time()
            for engine in engines.values():
                engine.start(NIGHT)
            self._phones(phones)
            injector = threading.Thread(
                target=self._inject, args=(engines, proxy, cluster, placed), daemon=True
            )
            injector.start()
            for n in range(self.plan.calls):
                self._placing.wait()
                did = (MAPLE, MAPLE, LAKESIDE, UNKNOWN)[n % 4]
                placed.append(callers.place(did, max_seconds=240))
                time.sleep(self.rng.uniform(*self.plan.gap))
            injector.join(timeout=600)
            for call in placed:
                with contextlib.suppress(TimeoutError):
                    call.wait(timeout=240)
            capture.stop()
            stopped_at = time.time()
            # The last journeys reach the database: the engines' own writes at
            # once, the safety net's calls once an engine collects its notes,
            # and journeys of callers a dead engine left by the next sweep.
            _wait_for_journeys(cluster.url("chaos"), [c.caller for c in placed], within=60)
            verdicts = self._judge(placed, phones, cluster.url("chaos"))
            self._listen(verdicts, placed, phones, capture, stopped_at)
        finally:
            capture.stop()
            callers.stop_all()
            phones.stop_all()
            for engine in engines.values():
                engine.stop()
            proxy.close()
            cluster.destroy()
            self._clean()
        self._measure_takeovers(engines)
        crashes = sum(e.log().count("internal error") for e in engines.values())
        return Report(
            plan=asdict(self.plan),
            started=datetime.fromtimestamp(started, tz=UTC).isoformat(timespec="seconds"),
            seconds=round(time.time() - started, 1),
            faults=self.faults,
            verdicts=verdicts,
            engine_crashes=crashes,
            capture_dropped=capture.dropped(),
        )

    def _inject(
        self,
        engines: dict[str, EngineProcess],
        proxy: AriProxy,
        cluster: TempCluster,
        placed: list[CallerHandle],
    ) -> None:
        todo = (
            ["kill"] * self.plan.kills
            + ["stop"] * self.plan.stops
            + ["stall"] * self.plan.stalls
            + ["pg_restart"] * self.plan.pg_restarts
            + ["asterisk_restart"] * self.plan.asterisk_restarts
        )
        self.rng.shuffle(todo)
        span = self.plan.calls * sum(self.plan.gap) / 2
        pause = span / (len(todo) + 1)
        time.sleep(pause)
        for kind in todo:
            getattr(self, f"_{kind}")(engines, proxy, cluster)
            time.sleep(self.rng.uniform(0.5, 1.5) * pause)

    def _night_now(self) -> datetime:
        """The engines' clock now: one night for the whole run, as every engine shares one
        real clock. A restarted engine started at NIGHT again would live minutes in the
        past of the other's records: its sweep would find no journey old enough to close,
        and times across a take-over would mix two clocks."""
        return NIGHT + timedelta(seconds=time.time() - self._night_began)

    def _kill(self, engines: dict[str, EngineProcess], *_: object) -> None:
        app = self.rng.choice(sorted(engines))
        self.faults.append(Fault("sigkill", time.time(), app))
        engines[app].kill()
        time.sleep(self.rng.uniform(0.5, 3.0))
        engines[app].start(self._night_now())

    def _stop(self, engines: dict[str, EngineProcess], *_: object) -> None:
        app = self.rng.choice(sorted(engines))
        self.faults.append(Fault("sigstop", time.time(), app))
        engines[app].signal(signal.SIGSTOP)
        time.sleep(self.plan.stop_seconds)
        engines[app].signal(signal.SIGCONT)

    def _stall(self, engines: dict[str, EngineProcess], proxy: AriProxy, *_: object) -> None:
        self.faults.append(Fault("websocket_stall", time.time(), "coverage-engine-b"))
        proxy.stall()
        time.sleep(self.plan.stall_seconds)
        proxy.flow()

    def _pg_restart(self, _e: object, _p: object, cluster: TempCluster) -> None:
        self.faults.append(Fault("postgresql_restart", time.time(), "postgresql"))
        cluster.restart(down_for=2.0)

    def _asterisk_restart(self, *_: object) -> None:
        """Between calls: stop placing, let the calls in progress end, restart, go on."""
        self._placing.clear()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and _calls_up(self.ari):
            time.sleep(0.5)
        self.faults.append(Fault("asterisk_restart", time.time(), "asterisk"))
        self.sandbox.stop()
        self.sandbox.start()
        time.sleep(3)  # the engines reconnect (their backoff is at most 5 s)
        self._placing.set()

    # -- judging ----------------------------------------------------------------------------

    def _judge(self, placed: list[CallerHandle], phones: Phones, pg_url: str) -> list[Verdict]:
        with open_store(location_of(pg_url)) as store:
            journeys = store.journeys(JourneyFilter(), events=True)
        by_caller: dict[str, list[Journey]] = {}
        for j in journeys:
            by_caller.setdefault(j.caller_number, []).append(j)
        verdicts = []
        for call in placed:
            result = call.result()
            reached = phones.answered_by(call.caller)
            rings = [
                c
                for c in phones.calls()
                if c.caller == call.caller and c.phone in DOCTORS and not c.lost_race
            ]
            double = any(
                a is not b
                and a.invited_at < (b.ended_at or float("inf"))
                and b.invited_at < (a.ended_at or float("inf"))
                for a in rings
                for b in rings
            )
            answer = (
                result.answered_at - result.started_at if result.answered_at is not None else None
            )
            dropped = result.ended_by == "remote" and reached is None
            found = by_caller.get(call.caller, [])
            ok, problem = _matches(found[0], reached) if len(found) == 1 else (False, "")
            mine = [c for c in phones.calls() if c.caller == call.caller]
            cut = any(_cut(j, mine) for j in found)
            if cut and not problem:
                problem = "a conversation was cut by the system"
            verdicts.append(
                Verdict(
                    call.caller,
                    call.did,
                    reached,
                    answer,
                    dropped,
                    double,
                    len(found),
                    ok,
                    problem,
                    cut,
                )
            )
        return verdicts

    def _listen(
        self,
        verdicts: list[Verdict],
        placed: list[CallerHandle],
        phones: Phones,
        capture: AudioCapture,
        stopped_at: float,
    ) -> None:
        """What each caller heard from the PBX's answer: a WAV each, and its longest silence
        while nobody was on the line with them.

        A person is on the line from an operator's answer (the queue bridges
        at once) or a doctor's press of 1 (the engine bridges then) until
        their phone hangs up; the SIPp phones send no audio, so that stretch
        is silent by design and not counted. A caller whose line ended
        without a BYE (SIPp gave up) is counted until it gave up, or until
        the capture stopped.
        """
        conf = project_root() / "config" / "asterisk" / "indications.conf"
        ringback = ringback_of(conf.read_text(encoding="utf-8"))
        folder = self.workdir / "heard"
        folder.mkdir(parents=True, exist_ok=True)
        lines: dict[str, tuple[float, float]] = {}  # caller: the PBX's answer, the line's end
        windows: dict[int, list[tuple[float, float, str]]] = {}
        for call in placed:
            result = call.result()
            if result.answered_at is None:
                continue
            end = result.ended_at
            if end is None:
                end = min(stopped_at, result.started_at + call.max_seconds)
            lines[call.caller] = (result.answered_at, end)
            windows.setdefault(call.media_port, []).append(
                (result.answered_at - _ANSWER_SLACK_S, end, call.caller)
            )
        audio: dict[str, list[tuple[float, bytes]]] = {}
        for packet in iter_pcap(capture.path):
            for start, end, caller in windows.get(packet.dst_port, ()):
                if start <= packet.at <= end:
                    sound = rtp_ulaw(packet.payload)
                    if sound is not None:
                        audio.setdefault(caller, []).append((packet.at, sound))
                    break
        for verdict in verdicts:
            if verdict.caller not in lines:
                continue
            answered, end = lines[verdict.caller]
            samples = playout(audio.get(verdict.caller, []), answered, end - answered)
            recording = folder / f"caller-{verdict.caller[-4:]}.wav"
            write_wav(recording, samples)
            alone = alone_spans(_people(phones, verdict.caller), answered, end)
            worst = longest(silences(samples, ringback, alone))
            verdict.alone_s = round(sum(b - a for a, b in alone), 2)
            verdict.silence_s = worst.seconds if worst else 0.0
            verdict.silence_at_s = worst.at_s if worst else None
            verdict.silence_zero_s = worst.zero_s if worst else None
            verdict.recording = str(recording.relative_to(self.workdir))
        # The WAVs hold the same audio, laid out in time; the capture is large.
        capture.path.unlink(missing_ok=True)

    def _measure_takeovers(self, engines: dict[str, EngineProcess]) -> None:
        """For each fault that silenced an engine holding calls: when they were carried on.

        That is the survivor's `takeover` of them, or (after a SIGKILL) the
        restarted engine's own `call_resumed`, whichever came first within
        10 s. A silenced engine that held no calls has nothing to take over.
        """
        seen: dict[str, list[tuple[str, float]]] = {}
        for app, engine in engines.items():
            for line in engine.log().splitlines():
                if '"takeover"' not in line and '"call_resumed"' not in line:
                    continue
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    record = json.loads(line)
                    if record.get("event") == "takeover" and not record.get("calls"):
                        continue
                    if record.get("event") == "call_resumed" and record.get("queue_status"):
                        continue  # a caller back from the queue: carried on, not recovered
                    at = datetime.fromisoformat(str(record["timestamp"]).replace("Z", "+00:00"))
                    seen.setdefault(app, []).append((str(record["event"]), at.timestamp()))
        for fault in self.faults:
            if fault.kind not in ("sigkill", "sigstop", "websocket_stall"):
                continue
            delays = [
                at - fault.at
                for app, events in seen.items()
                for event, at in events
                if 0 <= at - fault.at < 10
                and (
                    (event == "takeover" and app != fault.target)
                    or (event == "call_resumed" and app == fault.target and fault.kind == "sigkill")
                )
            ]
            if delays:
                fault.takeover_s = round(min(delays), 2)

    def _clean(self) -> None:
        for channel in _channels(self.ari):
            ari_delete_quietly(self.ari, f"/channels/{channel['id']}")


def _cut(journey: Journey, calls: list[PhoneCall]) -> bool:
    """Whether a person the caller was put through to had the line ended by the system.

    The phones hang up by themselves once they have talked, and the callers
    never hang up first: so each time the journey says the caller was
    bridged to someone, one of that person's calls must have ended on their
    side. Fewer means Asterisk ended a conversation the patient was having.
    (Counted, not timed: the engines run on a clock set to the night.)
    """
    bridged: dict[str, int] = {}
    for stamped in journey.events:
        if isinstance(stamped.event, Bridged):
            who = stamped.event.target.rsplit("/", 1)[-1]
            bridged[who] = bridged.get(who, 0) + 1
    for who, times in bridged.items():
        ended_by_them = sum(1 for c in calls if c.phone == who and c.ended_by == "phone")
        if ended_by_them < times:
            return True
    return False


def _matches(journey: Journey, reached: str | None) -> tuple[bool, str]:
    """Whether a journey's outcome and person are what the caller's side saw."""
    if reached is None:
        ok = journey.outcome is not None and not journey.outcome.answered
        return ok, "" if ok else f"nobody answered, record says {journey.outcome}"
    if journey.outcome is None or not journey.outcome.answered:
        return False, f"{reached} answered, record says {journey.outcome}"
    who = (journey.answered_by or "").rsplit("/", 1)[-1]
    if who != reached:
        return False, f"{reached} answered, record says {journey.answered_by}"
    if [e.name for e in journey.events].count(EventKind.RECEIVED) != 1:
        return False, "received more than once"
    return True, ""


def _people(phones: Phones, caller: str) -> list[tuple[float, float]]:
    """When a person was on the line with `caller`: from taking the call to hanging up.

    Taking it is answering for a phone that only answers (an operator), and
    pressing for one that must press to accept (a doctor); a phone that lost a
    ringall race never had the caller.
    """
    spans = []
    for call in phones.calls():
        if call.caller != caller or call.lost_race:
            continue
        presses_to_accept = bool(phones[call.phone].behaviour.digits)
        taken = call.pressed_at if presses_to_accept else call.answered_at
        if taken is not None:
            spans.append((taken, call.ended_at if call.ended_at is not None else math.inf))
    return spans


def alone_spans(
    people: list[tuple[float, float]], answered: float, end: float
) -> list[tuple[float, float]]:
    """The stretches, in seconds from the answer, in which nobody was on the line.

    `people` are (from, to) times a person was there (they may overlap); the
    caller's line ran from `answered` to `end` (times since the epoch).
    """
    spans: list[tuple[float, float]] = []
    alone_from = answered
    for start, stop in sorted(people):
        if start > alone_from:
            spans.append((alone_from - answered, min(start, end) - answered))
        alone_from = max(alone_from, stop)
        if alone_from >= end:
            break
    if alone_from < end:
        spans.append((alone_from - answered, end - answered))
    return [(round(a, 3), round(b, 3)) for a, b in spans if b > a]


def _wait_for_journeys(url: str, callers: list[str], *, within: float) -> None:
    """Until every caller has one finished journey, or `within` seconds have passed."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with open_store(location_of(url)) as store:
            done = {j.caller_number for j in store.journeys() if j.outcome is not None}
        if all(c in done for c in callers):
            return
        time.sleep(2)


def _channels(ari: AriCredentials) -> list[dict[str, Any]]:
    found = ari_get(ari, "/channels")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def _calls_up(ari: AriCredentials) -> bool:
    return any(not str(c.get("name", "")).startswith("Local/") for c in _channels(ari))


def _ari_address(url: str) -> tuple[str, int]:
    found = re.match(r"https?://([^:/]+):(\d+)", url)
    if found is None:
        raise ValueError(f"no host:port in {url}")
    return found[1], int(found[2])


def markdown(report: Report, *, machine: str) -> str:
    """The figures as docs/reliability.md shows them."""
    f = report.figures()
    faults = ", ".join(f"{k} {v}" for k, v in sorted(f["faults"].items()))
    rows = [
        ("calls placed", f["calls_placed"]),
        ("engines that crashed by themselves (goal 0)", f["engine_crashes"]),
        ("faults injected", faults),
        ("callers who reached a person", f["reached_a_person"]),
        ("callers dead-ended (goal 0)", f["dead_ended"]),
        ("calls dropped by the system (goal 0)", f["dropped_by_the_system"]),
        ("conversations with a person cut by the system (goal 0)", f["conversations_cut"]),
        ("two doctors ringing for one caller (goal 0)", f["two_phones_ringing_for_one_step"]),
        ("journeys lost (goal 0)", f["journeys_lost"]),
        ("journeys duplicated (goal 0)", f["journeys_duplicated"]),
        ("journeys with a wrong outcome or person (goal 0)", f["journeys_wrong"]),
        ("worst INVITE to answer", f"{f['worst_invite_to_answer_s']} s"),
        ("answers later than 1 s", f["answers_over_1s"]),
        (
            "worst take-over after a fault",
            f"{f['worst_takeover_s']} s ({f['takeovers_measured']} measured)",
        ),
        (
            "worst silence with nobody on the line, after the answer",
            f"{f['worst_silence_s']} s ({f['silences_measured']} of "
            f"{f['answered_by_the_pbx']} answered calls measured{_dropped(f['capture_dropped'])})",
        ),
        (f"calls with a silence over {SILENCE_GOAL_S:g} s (goal 0)", f["silences_over_1s"]),
    ]
    lines = [f"Run of {report.started}, {report.seconds:.0f} s, {machine}.", ""]
    lines += ["| figure | measured |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    problems = [(v, _misses(v)) for v in report.verdicts]
    problems = [(v, misses) for v, misses in problems if misses or v.journeys != 1]
    if problems:
        lines += ["", "Calls that missed a goal:", ""]
        for v, misses in problems:
            lines.append(
                f"- {v.did} caller ***{v.caller[-4:]}: reached {v.reached}, "
                f"journeys {v.journeys}" + "".join(f", {m}" for m in misses)
            )
    return "\n".join(lines) + "\n"


def _misses(v: Verdict) -> list[str]:
    """What went wrong for one caller, in words (a journey count is shown beside it)."""
    misses = [v.problem] if v.problem else []
    if not v.reached:
        misses.append("no person")
    if v.silence_s is not None and v.silence_s > SILENCE_GOAL_S:
        misses.append(
            f"silence of {v.silence_s:.2f} s from {v.silence_at_s:.2f} s after the answer "
            f"({v.silence_zero_s:.2f} s of it digital zero; {v.recording})"
        )
    return misses


def _dropped(count: int | None) -> str:
    if count is None:
        return "; tcpdump gave no count of dropped packets"
    return f"; {count} packets dropped by the kernel, each heard as silence" if count else ""


Runner = Callable[[Sandbox, Path, Plan], Report]


def main(argv: list[str] | None = None) -> int:
    """`scripts/chaos`: the full plan (or --short) against this checkout's sandbox."""
    import argparse

    parser = argparse.ArgumentParser(prog="scripts/chaos", description=__doc__)
    parser.add_argument("--short", action="store_true", help="the CI plan instead of the full one")
    parser.add_argument("--workdir", type=Path, default=Path("chaos-results"))
    parser.add_argument("--machine", default="a 2-core VM shared with other workloads")
    args = parser.parse_args(argv)
    plan = SHORT if args.short else FULL
    args.workdir.mkdir(parents=True, exist_ok=True)
    box = Sandbox()
    was_running = box.is_running()
    box.start()
    try:
        report = ChaosRun(box, args.workdir, plan).run()
    finally:
        if not was_running:
            box.stop()
    (args.workdir / "report.json").write_text(
        json.dumps({"figures": report.figures(), **asdict(report)}, indent=2), encoding="utf-8"
    )
    text = markdown(report, machine=args.machine)
    (args.workdir / "figures.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
