"""Side by side against the sandbox PBX: a call by dialplan alone (A) and through the engine (B).

    path A (baseline)  caller -> Asterisk: Dial(PJSIP/bench-direct)          -> phone A
    path B (engine)    caller -> Asterisk: Stasis -> engine -> create + dial -> phone B

Both phones are SIPp processes that answer at once; both callers are SIPp
processes placing calls at the same rate at the same time, so whatever the
machine's neighbours do hits both paths alike. Path B dials Maple Grove's
number with the engine's clock at a Monday 10:00 in Chicago (office hours,
the front desk is the first step); path A dials a bench-only DID that
config/asterisk/extensions.conf sends straight to a phone.

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
from pathlib import Path
from zoneinfo import ZoneInfo

from coverage_lab.engine_process import EngineProcess
from coverage_lab.phones import (
    answers,
    parse_events,
    render_phone_scenario,
    stop_sipp,
)
from coverage_lab.sandbox import HOST, SIP_PORT, Sandbox, project_root

# Path A: config/asterisk/extensions.conf routes this DID by dialplan alone.
DID_A = "+19995550001"
# Path B: Maple Grove Pediatrics in config/coverage.yaml; open at CLOCK_START,
# so the plan's first step is the front desk.
DID_B = "+13125550100"
CLOCK_START = datetime(2026, 11, 30, 10, 0, tzinfo=ZoneInfo("America/Chicago"))


@dataclass(frozen=True, slots=True)
class PathSpec:
    """One path: the DID the caller dials, the phone that should ring, SIPp ports."""

    name: str
    did: str
    phone: str
    phone_port: int
    caller_port: int
    number_digit: str  # callers' numbers are +1555<digit><step:02><call number>


PATHS: tuple[PathSpec, ...] = (
    PathSpec("A", DID_A, "bench-direct", 5090, 5110, "1"),
    PathSpec("B", DID_B, "frontdesk-maple", 5071, 5111, "2"),
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
    failed: int  # calls that did not both ring the phone and get a 200 OK
    retransmissions: int
    ring_ms: dict[str, float]
    answer_ms: dict[str, float]
    ring_samples_ms: list[float] = field(repr=False)


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


def path_times(
    caller_log: Path, phone_log: Path, prefix: str
) -> tuple[int, int, list[float], list[float]]:
    """One path in one step: (calls placed, calls that reached the phone, times to ring in ms,
    times to 200 OK in ms).

    A call reached the phone when the caller got its 200 OK *and* the phone got
    the INVITE: on path B the engine answers the caller itself, so a 200 OK
    alone does not mean the front desk rang.
    """
    invites: dict[str, float] = {}
    answered: dict[str, float] = {}
    for event in parse_events(caller_log):
        if event.event == "invite":
            invites.setdefault(event.call_id, event.at)
        elif event.event == "answered":
            answered.setdefault(event.call_id, event.at)
    rang: dict[str, float] = {}
    for event in parse_events(phone_log):
        match = _USER.search(event.detail) if event.event == "invite" else None
        if match and match["user"].startswith(prefix):
            rang.setdefault(match["user"][len(prefix) :], event.at)
    ring = [(rang[n] - t) * 1000 for n, t in invites.items() if n in rang]
    answer = [(answered[n] - t) * 1000 for n, t in invites.items() if n in answered]
    reached = sum(1 for n in invites if n in rang and n in answered)
    return len(invites), reached, ring, answer


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


def start_phone(path: PathSpec, workdir: Path) -> subprocess.Popen[bytes]:
    """The auto-answering SIPp phone of a path (a server: one scenario instance per call)."""
    scenario = workdir / f"phone-{path.name}.xml"
    scenario.write_text(render_phone_scenario(path.phone, answers()), encoding="utf-8")
    with (workdir / f"phone-{path.name}.out").open("wb") as out:
        return subprocess.Popen(
            ["sipp", "-i", HOST, "-p", str(path.phone_port), "-bind_local",
             "-mp", str(32000 + path.phone_port - 5000),
             "-sf", str(scenario), *_sipp_files(workdir, f"phone-{path.name}")],
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
    scenario.write_text(
        template.replace("{{prefix}}", number_for(path, step_index)).replace(
            "{{hold_ms}}", str(max(1, round(step.hold * 1000)))
        ),
        encoding="utf-8",
    )
    limit = max(10, round(step.rate * (step.hold + 5) * 2))
    with (workdir / f"{name}.out").open("wb") as out:
        return subprocess.Popen(
            ["sipp", f"{HOST}:{SIP_PORT}", "-sf", str(scenario), "-s", path.did,
             "-i", HOST, "-p", str(path.caller_port), "-bind_local",
             "-mp", str(34000 + (path.caller_port - 5100) * 10),
             "-r", f"{step.rate:g}", "-rp", "1000", "-m", str(step.calls), "-l", str(limit),
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
    """Both callers at once for one step; measure, parse, compare."""
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
    started = time.monotonic()
    callers = {p.name: start_caller(p, step, index, workdir) for p in PATHS}
    caller_cpu: dict[str, float] = dict.fromkeys(callers, 0.0)
    deadline = started + step.seconds + step.hold + 60
    with running(list(callers.values())):
        while any(c.poll() is None for c in callers.values()) and time.monotonic() < deadline:
            for name, proc in callers.items():
                if proc.poll() is None:
                    caller_cpu[name] = cpu_seconds(proc.pid)
            time.sleep(0.5)
        wall = time.monotonic() - started
    time.sleep(1.5)  # let the phones write their last lines and statistics
    engine_cpu = cpu_seconds(engine_pid) - cpu0["engine"]
    asterisk_cpu = cpu_seconds(asterisk_pid) - cpu0["asterisk"]
    phones_cpu = sum(cpu_seconds(p) for p in phone_pids) - cpu0["phones"]
    sipp_cpu = phones_cpu + sum(caller_cpu.values())

    reasons: list[str] = []
    results: dict[str, PathResult] = {}
    for path in PATHS:
        name = f"caller-{path.name}-{index:02d}"
        placed, reached, ring, answer = path_times(
            workdir / f"{name}.events.log",
            workdir / f"phone-{path.name}.events.log",
            number_for(path, index),
        )
        retrans = sipp_stat(workdir / f"{name}.stat.csv", "Retransmissions(C)")
        retrans += sipp_stat(
            workdir / f"phone-{path.name}.stat.csv", "Retransmissions(C)"
        ) - retrans_before.get(path.name, 0)
        results[path.name] = PathResult(
            placed=placed,
            answered=len(answer),
            failed=step.calls - reached,
            retransmissions=retrans,
            ring_ms=summary_ms(ring),
            answer_ms=summary_ms(answer),
            ring_samples_ms=[round(x, 2) for x in ring],
        )
        for who, log, start in (
            (f"caller {path.name}", workdir / f"{name}.errors.log", 0),
            (f"phone {path.name}", workdir / f"phone-{path.name}.errors.log",
             errors_before.get(path.name, 0)),
        ):  # fmt: skip
            warnings = overload_warnings(log, start)
            if warnings:
                reasons.append(f"SIPp {who}: {warnings} overload warnings (SIPp starved of CPU)")
        span = _placing_span(workdir / f"{name}.events.log")
        allowed = (step.calls - 1) / step.rate if step.rate > 0 else 0.0
        if step.calls > 1 and span > allowed * 1.1 + 0.5:
            reasons.append(
                f"SIPp caller {path.name} took {span:.1f} s to place {step.calls} calls "
                f"(the rate allows {allowed:.1f} s): SIPp could not keep up"
            )
    ratio, diff = compare(results["A"].ring_ms, results["B"].ring_ms)
    b_calls = max(1, results["B"].placed)
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
    """No failed call and p99 time to ring within the limit, on both paths."""
    return all(
        r.failed == 0 and r.ring_ms.get("p99", float("inf")) <= RING_LIMIT_MS
        for r in step.paths.values()
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
        phones = {p.name: start_phone(p, workdir) for p in PATHS}
        with running(list(phones.values())):
            time.sleep(1.0)  # the phones bind their ports
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
        if p99 is None or p99 > RING_LIMIT_MS:
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
    a, b = step.paths["A"], step.paths["B"]
    return (
        f"  {step.step}: ring p50/p99 A {a.ring_ms.get('p50')}/{a.ring_ms.get('p99')} ms, "
        f"B {b.ring_ms.get('p50')}/{b.ring_ms.get('p99')} ms; failed A {a.failed} B {b.failed}; "
        f"engine {step.engine_cpu_percent_of_core}% Asterisk {step.asterisk_cpu_percent_of_core}%"
        f"{'' if step.valid else ' INVALID'}"
    )


def result_dict(result: BenchResult) -> dict[str, object]:
    return asdict(result)


def write_json(result: BenchResult, path: Path) -> None:
    path.write_text(json.dumps(result_dict(result), indent=2) + "\n", encoding="utf-8")
