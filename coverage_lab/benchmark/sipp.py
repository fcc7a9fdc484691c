"""Side by side against the sandbox PBX: a call by dialplan alone (A) and through the engine (B).

    path A (baseline)  caller -> Asterisk: Dial(PJSIP/bench-direct)               -> phone A
    path B (engine)    caller -> Asterisk: Stasis -> engine -> originate         -> phone B
    path C (engine)    caller -> Asterisk: Stasis -> engine -> announcement, queue -> operators

Both phones are SIPp processes that answer after ringing a second; both
callers are SIPp processes placing calls at the same rate at the same time,
so whatever the machine's neighbours do hits both paths alike. The engine's clock runs from
a Monday 12:05 in Chicago: path B dials Lakeside's number (open, 10:05 in Los
Angeles: the front desk is the first step); path A dials a bench-only DID
that config/asterisk/extensions.conf sends straight to a phone. Path C, at
a low rate of its own, is the other journey patients meet most: Maple
Grove's lunch closure, so the emergency announcement, then the operator
queue, where one of three SIPp operators answers after a couple of seconds.

Time to a human voice: besides SIP, the benchmark captures the audio
Asterisk sends the callers (`audio`: tcpdump on loopback) and measures, per
call, the INVITE to the first thing the caller hears (a 180's local
ringback, Asterisk's ringback, the announcement, music) and to the person
picking up (the phone's 200 OK), and the longest silence in between.

Per call: time to ring (the caller's INVITE to the phone's INVITE; matched by
the caller's number, unique per call) and time to the caller's 200 OK.
Note what the 200 OK means on each path: on A, Asterisk answers the caller
when the phone answers; on B the engine answers the caller first (so the
caller hears ringback from Asterisk while the front desk rings), so B's 200
OK comes before its phone even rings.

Per step: failed calls, SIPp retransmissions (callers and phones), the
engine's CPU and peak RSS, Asterisk's CPU, the SIPp processes' CPU, and
p50/p95/p99 of both times with B/A and B-A. A step is invalid when SIPp
itself could not keep up (its error log has warnings, or placing the calls
took more than 10% longer than the rate allows): then the numbers say more
about SIPp than about Asterisk or the engine.

Everything runs on 127.0.0.1; run it inside `scripts/netns-run` so the
sandbox's fixed ports do not collide with another checkout's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from math import inf
from pathlib import Path
from zoneinfo import ZoneInfo

from coverage_lab.benchmark.audio import CallAudio, audio_by_call, first_audio, silences
from coverage_lab.capture import AudioCapture, Packet, read_pcap
from coverage_lab.engine_process import EngineProcess
from coverage_lab.phones import PHONE_PORTS as SANDBOX_PHONE_PORTS
from coverage_lab.phones import (
    answers,
    parse_events,
    render_phone_scenario,
    stop_sipp,
)
from coverage_lab.sandbox import HOST, SIP_PORT, Sandbox, project_root

# Path A: config/asterisk/extensions.conf routes this DID by dialplan alone.
DID_A = "+19995550001"
# Path B: Lakeside Family Medicine in config/coverage.yaml; open at CLOCK_START,
# so the plan's first step is the front desk.
DID_B = "+16085550142"
# Path C: Maple Grove Pediatrics, closed for lunch (12:00-13:00) at CLOCK_START:
# the announcement, then the operator queue.
DID_C = "+13125550100"
# A Monday 12:05 in Chicago: both hold for the 55 minutes a full run may take.
CLOCK_START = datetime(2026, 11, 30, 12, 5, tzinfo=ZoneInfo("America/Chicago"))
# Path C's own pace: the three operators each talk to one caller at a time. A
# caller stays 20 s after the engine answers: the 8 s announcement, the queue,
# the operator (who picks up after 2 s), then about 9 s of talk.
QUEUE_RATE = 0.15
QUEUE_HOLD = 20.0
OPERATOR_ANSWERS_AFTER = 2.0
SILENCE_LIMIT_MS = 1000.0  # the most silence a caller may sit through before a person

# The bench phones' SIP ports (config/asterisk/pjsip.conf's static contacts).
PHONE_PORTS = {"bench-direct": 5090, **SANDBOX_PHONE_PORTS}


@dataclass(frozen=True, slots=True)
class PathSpec:
    """One path: the DID the caller dials, the phones that may answer, SIPp ports."""

    name: str
    did: str
    phones: tuple[str, ...]
    caller_port: int
    number_digit: str  # callers' numbers are +1555<digit><step:02><call number>
    journey: str
    # Calls per second and seconds up of a path with a pace of its own (None: the step's).
    rate: float | None = None
    hold: float | None = None
    answer_after: float = 0.0  # the phones ring this long before they answer
    compared: bool = True  # its time to ring is one of the side-by-side pair

    @property
    def media_port(self) -> int:
        """The caller's RTP port (SIPp's -mp), where Asterisk sends what the caller hears."""
        return 34000 + (self.caller_port - 5100) * 10

    def rate_in(self, step: LoadStep) -> float:
        return min(step.rate, self.rate) if self.rate is not None else step.rate

    def hold_in(self, step: LoadStep) -> float:
        return self.hold if self.hold is not None else step.hold

    def calls_in(self, step: LoadStep) -> int:
        return max(1, round(self.rate_in(step) * step.seconds))


# The phones of A and B ring for a second before they answer, as a person's
# would: the caller's ringback (local on A, the engine's on B) is part of what
# they hear before the person.
PHONE_RINGS = 1.0

PATHS: tuple[PathSpec, ...] = (
    PathSpec(
        "A",
        DID_A,
        ("bench-direct",),
        5110,
        "1",
        "dialplan Dial() to a phone",
        answer_after=PHONE_RINGS,
    ),
    PathSpec(
        "B",
        DID_B,
        ("frontdesk-lakeside",),
        5111,
        "2",
        "open: the front desk",
        answer_after=PHONE_RINGS,
    ),
    PathSpec(
        "C",
        DID_C,
        ("operator1", "operator2", "operator3"),
        5112,
        "3",
        "closed: announcement, then the operators",
        rate=QUEUE_RATE,
        hold=QUEUE_HOLD,
        answer_after=OPERATOR_ANSWERS_AFTER,
        compared=False,
    ),
)


@dataclass(frozen=True, slots=True)
class LoadStep:
    """Calls per second on each path, for how long, and how long each call stays up."""

    name: str
    rate: float
    seconds: float
    hold: float = 10.0

    @property
    def calls(self) -> int:
        return max(1, round(self.rate * self.seconds))


SUSTAINED: tuple[LoadStep, ...] = (
    LoadStep("5 cps", 5, 300),  # ~50 calls up at once on each path
    LoadStep("10 cps", 10, 300),  # ~100
)
RAMP_RATES: tuple[float, ...] = (15, 20, 30, 40, 60)
SMOKE: tuple[LoadStep, ...] = (LoadStep("smoke", 1, 3, hold=1),)
RING_LIMIT_MS = 1000.0  # the ramp stops where p99 time to ring passes this


@dataclass
class PathResult:
    """What one path measured in one step."""

    placed: int
    answered: int  # the caller got a 200 OK
    failed: int  # calls that did not both ring a phone of the path and get a 200 OK
    retransmissions: int
    ring_ms: dict[str, float]
    answer_ms: dict[str, float]
    ring_samples_ms: list[float] = field(repr=False)
    # Time to a human voice (None when the audio could not be captured).
    first_audio_ms: dict[str, float] = field(default_factory=dict)
    person_ms: dict[str, float] = field(default_factory=dict)
    silence_ms: dict[str, float] = field(default_factory=dict)
    over_silence_limit: int | None = None  # calls with more silence than SILENCE_LIMIT_MS


@dataclass
class StepResult:
    """One load step: both paths, the comparison, and what each process spent."""

    step: str
    rate: float
    seconds: float
    hold: float
    valid: bool
    invalid_reasons: list[str]
    paths: dict[str, PathResult]
    b_over_a: dict[str, float]
    b_minus_a_ms: dict[str, float]
    wall_seconds: float
    engine_cpu_seconds: float
    engine_cpu_percent_of_core: float
    engine_cpu_ms_per_call: float
    engine_peak_rss_mib: float
    asterisk_cpu_percent_of_core: float
    sipp_cpu_percent_of_core: float
    load_average: float


@dataclass
class BenchResult:
    """A whole run: where it ran, every step, and what the ramp found."""

    machine: dict[str, str]
    started: str
    steps: list[StepResult]
    ramp: list[StepResult]
    ramp_limit: str


# ---------------------------------------------------------------- measurements


def summary_ms(samples: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 (and mean, max) of samples in milliseconds; empty when there are none."""
    if not samples:
        return {}
    if len(samples) == 1:
        only = round(samples[0], 2)
        return {"p50": only, "p95": only, "p99": only, "mean": only, "max": only}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], 2),
        "p95": round(cuts[94], 2),
        "p99": round(cuts[98], 2),
        "mean": round(statistics.fmean(samples), 2),
        "max": round(max(samples), 2),
    }


def compare(a: dict[str, float], b: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """B/A and B-A for each percentile both have."""
    ratio: dict[str, float] = {}
    diff: dict[str, float] = {}
    for key in ("p50", "p95", "p99"):
        if key in a and key in b:
            diff[key] = round(b[key] - a[key], 2)
            ratio[key] = round(b[key] / a[key], 2) if a[key] > 0 else 0.0
    return ratio, diff


_USER = re.compile(r"sips?:(?P<user>[^@;>]*)@")


def number_for(path: PathSpec, step_index: int) -> str:
    """The caller-number prefix of one path in one step (SIPp appends the call number)."""
    return f"+1555{path.number_digit}{step_index:02d}"


@dataclass
class CallerLog:
    """What a path's SIPp caller and its phones said about each call, by call number."""

    invites: dict[str, float] = field(default_factory=dict)
    ringing: dict[str, float] = field(default_factory=dict)  # a 180 Ringing
    answered: dict[str, float] = field(default_factory=dict)  # the caller's 200 OK
    rtp_ports: dict[str, int] = field(default_factory=dict)  # Asterisk's media port
    ended: dict[str, float] = field(default_factory=dict)
    rang: dict[str, float] = field(default_factory=dict)  # a phone got the INVITE
    picked_up: dict[str, float] = field(default_factory=dict)  # that phone answered


def read_logs(caller_log: Path, phone_logs: Sequence[Path], prefix: str) -> CallerLog:
    """A path's caller log and its phones' logs, matched by the caller's number.

    Only the phone call that answered counts for `picked_up` (with ringall,
    several operators ring; one answers, the others are cancelled).
    """
    log = CallerLog()
    for event in parse_events(caller_log):
        n, at = event.call_id, event.at
        if event.event == "invite":
            log.invites.setdefault(n, at)
        elif event.event == "ringing":
            log.ringing.setdefault(n, at)
        elif event.event == "answered":
            log.answered.setdefault(n, at)
            if event.detail.isdigit():
                log.rtp_ports[n] = int(event.detail)
        elif event.event == "end":
            log.ended.setdefault(n, at)
    for phone_log in phone_logs:
        numbers: dict[str, str] = {}  # the phone's SIP Call-ID -> the caller's call number
        for event in parse_events(phone_log):
            if event.event == "invite":
                match = _USER.search(event.detail)
                if match and match["user"].startswith(prefix):
                    numbers[event.call_id] = number = match["user"][len(prefix) :]
                    log.rang.setdefault(number, event.at)
            elif event.event == "answered" and event.call_id in numbers:
                log.picked_up.setdefault(numbers[event.call_id], event.at)
    return log


def path_times(
    caller_log: Path, phone_log: Path, prefix: str
) -> tuple[int, int, list[float], list[float]]:
    """One path in one step: (calls placed, calls that reached the phone, times to ring in ms,
    times to 200 OK in ms).

    A call reached the phone when the caller got its 200 OK *and* the phone got
    the INVITE: on path B the engine answers the caller itself, so a 200 OK
    alone does not mean the front desk rang.
    """
    return times_of(read_logs(caller_log, [phone_log], prefix))


def times_of(log: CallerLog) -> tuple[int, int, list[float], list[float]]:
    """(calls placed, calls that reached a phone, times to ring in ms, times to 200 OK in ms)."""
    invites, rang, answered = log.invites, log.rang, log.answered
    ring = [(rang[n] - t) * 1000 for n, t in invites.items() if n in rang]
    answer = [(answered[n] - t) * 1000 for n, t in invites.items() if n in answered]
    reached = sum(1 for n in invites if n in rang and n in answered)
    return len(invites), reached, ring, answer


def voice_times(
    log: CallerLog, packets: Sequence[Packet]
) -> tuple[list[float], list[float], list[float]]:
    """Per call, in ms: INVITE to the first thing heard, INVITE to the person picking up, and
    the longest silence before that (calls a person answered only)."""
    calls = [
        CallAudio(
            invite=t,
            ringing=log.ringing.get(n),
            rtp_port=log.rtp_ports.get(n),
            answered=log.answered.get(n),
            ended=log.ended.get(n),
            person=log.picked_up.get(n),
        )
        for n, t in log.invites.items()
        if n in log.picked_up
    ]
    first, person, silent = [], [], []
    for call, audio in audio_by_call(calls, packets):
        heard = first_audio(call, audio)
        longest = silences(call, audio)
        if heard is None or longest is None or call.person is None:
            continue
        first.append(heard * 1000)
        person.append((call.person - call.invite) * 1000)
        silent.append(longest * 1000)
    return first, person, silent


def sipp_stat(path: Path, column: str) -> int:
    """The last value of a cumulative column of a SIPp statistics file (0 when absent)."""
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return 0
    if len(lines) < 2:
        return 0
    header = lines[0].split(";")
    if column not in header:
        return 0
    values = lines[-1].split(";")
    index = header.index(column)
    try:
        return int(values[index])
    except (IndexError, ValueError):
        return 0


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process and its threads so far (0 when it is gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime are fields 14 and 15 of /proc/PID/stat (1-based; 2 and
    # 3 are the name and state, which the split above already consumed).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int | None) -> float:
    """The high-water mark of a process's resident memory (VmHWM), in MiB."""
    if pid is None:
        return 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def machine() -> dict[str, str]:
    """What the numbers came from: CPU model, cores, memory, kernel, versions."""
    info: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    info["cores"] = str(os.cpu_count() or 0)
    with contextlib.suppress(OSError):
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["memory_gib"] = f"{int(mem) / 1024 / 1024:.1f}"
    info["kernel"] = os.uname().release
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["sipp", "-v"], capture_output=True, text=True, timeout=5)
        found = re.search(r"SIPp v[\w.\-]+", out.stdout + out.stderr)
        info["sipp"] = found.group(0).rstrip(".") if found else "?"
    return info


# ---------------------------------------------------------------- SIPp processes


def _sipp_files(workdir: Path, name: str) -> list[str]:
    # No -trace_msg: a full message log at 10 calls/s would cost SIPp more
    # than the calls themselves; the EV lines and statistics are enough.
    return [
        "-nostdin",
        "-trace_logs", "-log_file", str(workdir / f"{name}.events.log"),
        "-trace_stat", "-stf", str(workdir / f"{name}.stat.csv"), "-fd", "1",
        "-trace_err", "-error_file", str(workdir / f"{name}.errors.log"),
    ]  # fmt: skip


def start_phone(phone: str, answer_after: float, workdir: Path) -> subprocess.Popen[bytes]:
    """An auto-answering SIPp phone (a server: one scenario instance per call)."""
    port = PHONE_PORTS[phone]
    scenario = workdir / f"phone-{phone}.xml"
    scenario.write_text(render_phone_scenario(phone, answers(answer_after)), encoding="utf-8")
    with (workdir / f"phone-{phone}.out").open("wb") as out:
        return subprocess.Popen(
            ["sipp", "-i", HOST, "-p", str(port), "-bind_local",
             # SIPp binds its media port and the next two: ten apart, phones never meet.
             "-mp", str(32000 + (port - 5000) * 10),
             "-sf", str(scenario), *_sipp_files(workdir, f"phone-{phone}")],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def start_caller(
    path: PathSpec, step: LoadStep, step_index: int, workdir: Path
) -> subprocess.Popen[bytes]:
    """A SIPp caller placing `step.calls` calls at `step.rate` per second, then exiting."""
    template = (project_root() / "tests" / "sipp" / "scenarios" / "bench_caller.xml").read_text(
        encoding="utf-8"
    )
    name = f"caller-{path.name}-{step_index:02d}"
    scenario = workdir / f"{name}.xml"
    hold, rate = path.hold_in(step), path.rate_in(step)
    scenario.write_text(
        template.replace("{{prefix}}", number_for(path, step_index)).replace(
            "{{hold_ms}}", str(max(1, round(hold * 1000)))
        ),
        encoding="utf-8",
    )
    limit = max(10, round(rate * (hold + 5) * 2))
    with (workdir / f"{name}.out").open("wb") as out:
        return subprocess.Popen(
            ["sipp", f"{HOST}:{SIP_PORT}", "-sf", str(scenario), "-s", path.did,
             "-i", HOST, "-p", str(path.caller_port), "-bind_local",
             "-mp", str(path.media_port),
             "-r", f"{rate:g}", "-rp", "1000", "-m", str(path.calls_in(step)),
             "-l", str(limit),
             # A call with no final answer in 30 s is a failed call.
             "-recv_timeout", "30000",
             *_sipp_files(workdir, name)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


@contextlib.contextmanager
def running(procs: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """Stop every process in `procs` on the way out, whatever happened."""
    try:
        yield
    finally:
        for proc in procs:
            stop_sipp(proc, timeout=10.0)


# ---------------------------------------------------------------- one step


def overload_warnings(path: Path, start: int = 0) -> int:
    """How many "Overload warning" lines SIPp wrote to an error file past byte `start`.

    SIPp writes one when its own watchdog finds its main loop starved
    (the CPU it needs went elsewhere): its timings stop meaning anything.
    """
    try:
        with path.open("rb") as handle:
            handle.seek(start)
            return handle.read().count(b"Overload warning")
    except FileNotFoundError:
        return 0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def run_step(
    step: LoadStep,
    index: int,
    workdir: Path,
    *,
    engine_pid: int | None,
    asterisk_pid: int | None,
    phones: dict[str, subprocess.Popen[bytes]],
) -> StepResult:
    """Every path's caller at once for one step; measure, parse, compare."""
    phone_pids = [p.pid for p in phones.values()]
    retrans_before = {
        n: sipp_stat(workdir / f"phone-{n}.stat.csv", "Retransmissions(C)") for n in phones
    }
    errors_before = {n: _size(workdir / f"phone-{n}.errors.log") for n in phones}
    cpu0 = {
        "engine": cpu_seconds(engine_pid),
        "asterisk": cpu_seconds(asterisk_pid),
        "phones": sum(cpu_seconds(p) for p in phone_pids),
    }
    capture = None
    if AudioCapture.available():
        capture = AudioCapture(workdir / f"audio-{index:02d}.pcap", [p.media_port for p in PATHS])
        capture.start()
        time.sleep(0.5)  # tcpdump listening before the first call
    started = time.monotonic()
    callers = {p.name: start_caller(p, step, index, workdir) for p in PATHS}
    caller_cpu: dict[str, float] = dict.fromkeys(callers, 0.0)
    longest = max(p.hold_in(step) + p.answer_after for p in PATHS)
    deadline = started + step.seconds + longest + 60
    try:
        with running(list(callers.values())):
            while any(c.poll() is None for c in callers.values()) and time.monotonic() < deadline:
                for name, proc in callers.items():
                    if proc.poll() is None:
                        caller_cpu[name] = cpu_seconds(proc.pid)
                time.sleep(0.5)
            wall = time.monotonic() - started
        time.sleep(1.5)  # let the phones write their last lines and statistics
    finally:
        if capture is not None:
            capture.stop()
    engine_cpu = cpu_seconds(engine_pid) - cpu0["engine"]
    asterisk_cpu = cpu_seconds(asterisk_pid) - cpu0["asterisk"]
    phones_cpu = sum(cpu_seconds(p) for p in phone_pids) - cpu0["phones"]
    sipp_cpu = phones_cpu + sum(caller_cpu.values())
    packets = read_pcap(capture.path) if capture is not None else []

    reasons: list[str] = []
    results: dict[str, PathResult] = {}
    for path in PATHS:
        name = f"caller-{path.name}-{index:02d}"
        log = read_logs(
            workdir / f"{name}.events.log",
            [workdir / f"phone-{phone}.events.log" for phone in path.phones],
            number_for(path, index),
        )
        placed, reached, ring, answer = times_of(log)
        retrans = sipp_stat(workdir / f"{name}.stat.csv", "Retransmissions(C)")
        for phone in path.phones:
            retrans += sipp_stat(
                workdir / f"phone-{phone}.stat.csv", "Retransmissions(C)"
            ) - retrans_before.get(phone, 0)
        first, person, silent = voice_times(log, packets)
        results[path.name] = PathResult(
            placed=placed,
            answered=len(answer),
            failed=path.calls_in(step) - reached,
            retransmissions=retrans,
            ring_ms=summary_ms(ring),
            answer_ms=summary_ms(answer),
            ring_samples_ms=[round(x, 2) for x in ring],
            first_audio_ms=summary_ms(first) if capture is not None else {},
            person_ms=summary_ms(person),
            silence_ms=summary_ms(silent) if capture is not None else {},
            over_silence_limit=(
                sum(1 for x in silent if x > SILENCE_LIMIT_MS) if capture is not None else None
            ),
        )
        logs = [(f"caller {path.name}", workdir / f"{name}.errors.log", 0)]
        logs += [
            (f"phone {phone}", workdir / f"phone-{phone}.errors.log", errors_before.get(phone, 0))
            for phone in path.phones
        ]
        for who, errors, start in logs:
            warnings = overload_warnings(errors, start)
            if warnings:
                reasons.append(f"SIPp {who}: {warnings} overload warnings (SIPp starved of CPU)")
        calls, rate = path.calls_in(step), path.rate_in(step)
        span = _placing_span(workdir / f"{name}.events.log")
        allowed = (calls - 1) / rate if rate > 0 else 0.0
        if calls > 1 and span > allowed * 1.1 + 0.5:
            reasons.append(
                f"SIPp caller {path.name} took {span:.1f} s to place {calls} calls "
                f"(the rate allows {allowed:.1f} s): SIPp could not keep up"
            )
    ratio, diff = compare(results["A"].ring_ms, results["B"].ring_ms)
    b_calls = sum(max(1, results[p.name].placed) for p in PATHS if p.name != "A")
    return StepResult(
        step=step.name,
        rate=step.rate,
        seconds=step.seconds,
        hold=step.hold,
        valid=not reasons,
        invalid_reasons=reasons,
        paths=results,
        b_over_a=ratio,
        b_minus_a_ms=diff,
        wall_seconds=round(wall, 1),
        engine_cpu_seconds=round(engine_cpu, 2),
        engine_cpu_percent_of_core=round(100 * engine_cpu / wall, 1),
        engine_cpu_ms_per_call=round(1000 * engine_cpu / b_calls, 2),
        engine_peak_rss_mib=peak_rss_mib(engine_pid),
        asterisk_cpu_percent_of_core=round(100 * asterisk_cpu / wall, 1),
        sipp_cpu_percent_of_core=round(100 * sipp_cpu / wall, 1),
        load_average=round(os.getloadavg()[0], 2),
    )


def _placing_span(log: Path) -> float:
    """Seconds from a caller's first INVITE to its last."""
    stamps = [e.at for e in parse_events(log) if e.event == "invite"]
    return max(stamps) - min(stamps) if len(stamps) > 1 else 0.0


def ring_ok(step: StepResult) -> bool:
    """No failed call, and p99 time to ring within the limit on the side-by-side pair."""
    compared = {p.name for p in PATHS if p.compared}
    return all(
        r.failed == 0 and (name not in compared or r.ring_ms.get("p99", inf) <= RING_LIMIT_MS)
        for name, r in step.paths.items()
    )


# ---------------------------------------------------------------- the whole run


def run_benchmark(
    workdir: Path,
    *,
    steps: Sequence[LoadStep] = SUSTAINED,
    ramp_rates: Sequence[float] = RAMP_RATES,
    ramp_seconds: float = 60.0,
    config: Path | None = None,
    say: Callable[[str], None] = print,
) -> BenchResult:
    """Bring up the sandbox, the engine and the phones; run each step, then the ramp."""
    if shutil.which("sipp") is None:
        raise RuntimeError("sipp is not installed (Debian package sip-tester; scripts/bootstrap)")
    workdir.mkdir(parents=True, exist_ok=True)
    sandbox = Sandbox(log=lambda message: say(f"sandbox: {message}"))
    was_running = sandbox.is_running()
    sandbox.start()
    result = BenchResult(machine(), datetime.now().astimezone().isoformat(), [], [], "")
    engine: EngineProcess | None = None
    try:
        creds = sandbox.credentials()
        engine = EngineProcess(
            config or project_root() / "config" / "coverage.yaml",
            ari_url=creds.url,
            ari_user=creds.user,
            ari_password=creds.password,
            log_path=workdir / "engine.log",
        )
        engine.start(CLOCK_START)
        engine_pid = engine.proc.pid if engine.proc is not None else None
        sandbox.reset_operators()  # path C's operators, logged in and unpaused
        phones = {
            phone: start_phone(phone, p.answer_after, workdir) for p in PATHS for phone in p.phones
        }
        with running(list(phones.values())):
            time.sleep(1.0)  # the phones bind their ports
            gone = [name for name, proc in phones.items() if proc.poll() is not None]
            if gone:
                raise RuntimeError(f"SIPp phones exited at start (see phone-*.out): {gone}")
            numbers = iter(range(1, 100))  # step numbers go into the callers' numbers

            def measured(step: LoadStep) -> StepResult:
                say(f"{step.name}: {step.calls} calls per path over {step.seconds:g} s")
                done = run_step(
                    step, next(numbers), workdir,
                    engine_pid=engine_pid, asterisk_pid=sandbox.pid(), phones=phones,
                )  # fmt: skip
                say(_line(done))
                return done

            for step in steps:
                result.steps.append(measured(step))
            for rate in ramp_rates:
                done = measured(LoadStep(f"ramp {rate:g} cps", rate, ramp_seconds))
                result.ramp.append(done)
                if not done.valid:
                    result.ramp_limit = f"{rate:g} cps: invalid ({'; '.join(done.invalid_reasons)})"
                    break
                if not ring_ok(done):
                    result.ramp_limit = f"{rate:g} cps: {_why_not_ok(done)}"
                    break
            else:
                if ramp_rates:
                    result.ramp_limit = f"not reached up to {ramp_rates[-1]:g} cps"
    finally:
        if engine is not None:
            engine.stop()
        if not was_running:
            sandbox.stop()
    return result


def _why_not_ok(step: StepResult) -> str:
    parts = []
    for name, r in step.paths.items():
        if r.failed:
            parts.append(f"path {name}: {r.failed} failed calls")
        p99 = r.ring_ms.get("p99")
        if name in ("A", "B") and (p99 is None or p99 > RING_LIMIT_MS):
            parts.append(f"path {name}: p99 time to ring {p99} ms")
    busiest = max(
        (
            ("the engine", step.engine_cpu_percent_of_core),
            ("Asterisk", step.asterisk_cpu_percent_of_core),
            ("SIPp", step.sipp_cpu_percent_of_core),
        ),
        key=lambda item: item[1],
    )
    parts.append(f"busiest: {busiest[0]} at {busiest[1]:g}% of a core")
    return "; ".join(parts)


def _line(step: StepResult) -> str:
    a, b, c = step.paths["A"], step.paths["B"], step.paths["C"]
    return (
        f"  {step.step}: ring p50/p99 A {a.ring_ms.get('p50')}/{a.ring_ms.get('p99')} ms, "
        f"B {b.ring_ms.get('p50')}/{b.ring_ms.get('p99')} ms; "
        f"failed A {a.failed} B {b.failed} C {c.failed}; "
        f"longest silence p99 B {b.silence_ms.get('p99')} C {c.silence_ms.get('p99')} ms; "
        f"engine {step.engine_cpu_percent_of_core}% Asterisk {step.asterisk_cpu_percent_of_core}%"
        f"{'' if step.valid else ' INVALID'}"
    )


def result_dict(result: BenchResult) -> dict[str, object]:
    return asdict(result)


def write_json(result: BenchResult, path: Path) -> None:
    path.write_text(json.dumps(result_dict(result), indent=2) + "\n", encoding="utf-8")
