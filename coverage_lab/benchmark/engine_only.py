"""Engine-only benchmarks: the real engine against a fake ARI server on loopback.

Two processes, so the engine's CPU time is its own: a child runs the fake ARI
server (`CountingFakeAri`, which answers every REST request at once and emits
the events Asterisk 22 would, its chatter included) and drives calls into it;
the parent runs the engine as `coverage-engine run` does (`run_engine`: the
aiohttp ARI client, the routing core on the shipped config, the SQLite call
records in a temporary folder, INFO-level JSON logging written to /dev/null).

Two shapes of load:

* throughput (the default): calls as fast as the engine takes them,
  `concurrency` at a time, every phone answering at once and every caller
  hanging up as soon as the call is set up;
* scale (`hold` > 0): `concurrency` calls up at once, the way a busy
  answering service holds them: callers arrive at a steady rate, the phone
  (or an operator) answers `answer_after` seconds after it starts ringing,
  the conversation lasts `hold` seconds.

What it reports: calls per wall second, the engine's CPU microseconds per
call (user + system of all its threads, from getrusage: a whole journey,
arrival to teardown, its record written), the part of it the record
writer's thread used, and the one-core capacity that implies (1 s / CPU per
call); the most calls in progress at once; the
engine's resident memory at its peak; the event loop's lag (a probe that
sleeps 10 ms and notes how late it wakes: what every call waiting for its
turn would feel); and, per call, how soon the engine's first request for the
caller came (the leg that rings the phone, or the announcement), and how
soon it reacted to the phone answering (the bridge) or the announcement's
end (the queue). A call that does not get where its journey goes (a timer
fired because the engine was late, say) counts as failed. On a shared,
noisy machine the wall rate moves with the neighbours; CPU per call is the
steady figure.

The child speaks to the parent in lines on its stdout: `port N`, then `start`
when the warm-up calls are done, then `done {json}`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog

from coverage_engine.ari import AriSettings
from coverage_lab.benchmark.journeys import INSTANT, JOURNEYS, CountingFakeAri, Drive

# The example practices the repository ships (a source checkout's config/).
SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config" / "coverage.yaml"
FAKE_USER = "bench"
FAKE_PASSWORD = "bench-fake-ari"  # noqa: S105 - the password of a fake server on loopback
LAG_PROBE_SECONDS = 0.01
# The announcement's length in the scale shape (the throughput shape plays none).
ANNOUNCEMENT_SECONDS = 3.0


@dataclass
class EngineOnlyResult:
    """The outcome of one engine-only run."""

    calls: int
    failures: int
    concurrency: int
    journeys: list[str]
    wall_seconds: float
    calls_per_second: float
    cpu_seconds: float
    cpu_us_per_call: float
    one_core_capacity_cps: float
    peak_rss_mib: float
    setup_ms: dict[str, float]
    records: bool = True
    # Of cpu_us_per_call, what the SQLite record writer's thread used (None without records).
    writer_cpu_us_per_call: float | None = None
    hold_seconds: float = 0.0
    answer_after_seconds: float = 0.0
    max_in_progress: int = 0
    first_request_ms: dict[str, float] = field(default_factory=dict)
    reaction_ms: dict[str, float] = field(default_factory=dict)
    loop_lag_ms: dict[str, float] = field(default_factory=dict)
    events_per_call: dict[str, float] = field(default_factory=dict)
    requests_per_call: dict[str, float] = field(default_factory=dict)


def _percentiles(samples: list[float], scale: float = 1000.0) -> dict[str, float]:
    """p50/p95/p99 and max of samples (seconds) in milliseconds."""
    if len(samples) < 2:
        return {}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50": round(cuts[49] * scale, 3),
        "p95": round(cuts[94] * scale, 3),
        "p99": round(cuts[98] * scale, 3),
        "max": round(max(samples) * scale, 3),
    }


# ---------------------------------------------------------------- the fake side


async def _fake_side(
    calls: int,
    warmup: int,
    concurrency: int,
    journeys: list[str],
    hold: float,
    answer_after: float,
) -> None:
    scale = hold > 0
    fake = CountingFakeAri(
        app="coverage-engine",
        username=FAKE_USER,
        password=FAKE_PASSWORD,
        playback_seconds=ANNOUNCEMENT_SECONDS if scale else 0.0,
    )
    fake.keep_requests = False
    # Each step may wait for a person (or the announcement) before the engine's turn.
    timeout = 10.0 + answer_after + (ANNOUNCEMENT_SECONDS if scale else 0.0)
    # Steady arrivals that keep `concurrency` calls up (each lasts about
    # answer_after + hold seconds, plus the announcement on half of them).
    span = answer_after + hold + (ANNOUNCEMENT_SECONDS / 2 if scale else 0.0)
    gap = span / concurrency if scale else 0.0
    async with fake:
        print(f"port {fake.port}", flush=True)
        await fake.wait_reconciled(timeout=30)
        kinds = itertools.cycle([JOURNEYS[name] for name in journeys])
        ids = itertools.count(1)
        drives: list[Drive] = []
        failures = 0
        in_progress = 0
        most = 0

        async def run(total: int, record: bool) -> None:
            nonlocal failures, in_progress, most
            gate = asyncio.Semaphore(concurrency)

            async def one() -> None:
                nonlocal failures, in_progress, most
                in_progress += 1
                most = max(most, in_progress)
                try:
                    drive = await fake.drive(
                        next(kinds),
                        f"b{next(ids)}",
                        timeout,
                        answer_after=answer_after,
                        hold=hold,
                    )
                    if record:
                        drives.append(drive)
                except TimeoutError:
                    failures += 1
                finally:
                    in_progress -= 1
                    gate.release()

            tasks = []
            for _ in range(total):
                await gate.acquire()
                tasks.append(asyncio.create_task(one()))
                if gap:
                    await asyncio.sleep(gap)
            await asyncio.gather(*tasks)

        await run(warmup, record=False)
        fake.costs.clear()
        most = 0
        print("start", flush=True)
        started = time.perf_counter()
        await run(calls, record=True)
        wall = time.perf_counter() - started
        events: Counter[str] = Counter()
        requests: Counter[str] = Counter()
        for cost in fake.costs.values():
            events["total"] += sum(cost.events.values())
            requests["total"] += sum(cost.requests.values())
        report = {
            "wall_seconds": wall,
            "failures": failures,
            "max_in_progress": most,
            "setup_ms": _percentiles([d.setup for d in drives]),
            "first_request_ms": _percentiles([d.first_request for d in drives]),
            "reaction_ms": _percentiles([d.reaction for d in drives]),
            "events_per_call": {k: v / calls for k, v in events.items()},
            "requests_per_call": {k: v / calls for k, v in requests.items()},
        }
        print("done " + json.dumps(report), flush=True)


# ---------------------------------------------------------------- the engine side


@contextlib.contextmanager
def _production_logging_to_nowhere() -> Iterator[None]:
    """What `run` does (INFO-level JSON lines), written to /dev/null; restored afterwards.

    The lines cost what they cost (rendering, masking) without being read;
    restoring keeps an in-process caller (the smoke test) unaffected.
    """
    from coverage_engine.logs import configure_logging

    root = logging.getLogger()
    saved = (structlog.get_config(), list(root.handlers), root.level)
    with Path(os.devnull).open("w", encoding="utf-8") as devnull:
        configure_logging(json=True, level="info", stream=devnull)
        try:
            yield
        finally:
            config, handlers, level = saved
            structlog.configure(**config)
            for handler in list(root.handlers):
                root.removeHandler(handler)
            for handler in handlers:
                root.addHandler(handler)
            root.setLevel(level)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _LoopProbe:
    """How late the event loop wakes a task that sleeps `LAG_PROBE_SECONDS`, over and over."""

    def __init__(self) -> None:
        self.lags: list[float] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_PROBE_SECONDS)
            self.lags.append(max(0.0, loop.time() - before - LAG_PROBE_SECONDS))


@contextlib.asynccontextmanager
async def _fake_process(
    calls: int,
    warmup: int,
    concurrency: int,
    journeys: tuple[str, ...],
    hold: float,
    answer_after: float,
) -> AsyncIterator[asyncio.subprocess.Process]:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coverage_lab.benchmark.engine_only",
        "--fake-side",
        f"--calls={calls}",
        f"--warmup={warmup}",
        f"--concurrency={concurrency}",
        f"--journeys={','.join(journeys)}",
        f"--hold={hold}",
        f"--answer-after={answer_after}",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield child
        await child.wait()
    finally:
        if child.returncode is None:
            child.terminate()
            await child.wait()


async def measure(
    *,
    calls: int = 5000,
    warmup: int = 500,
    concurrency: int = 50,
    journeys: tuple[str, ...] = tuple(JOURNEYS),
    config: Path | None = None,
    hold: float = 0.0,
    answer_after: float = 0.0,
    records: bool = True,
) -> EngineOnlyResult:
    """Run the engine against the fake in a child process; return what it cost.

    `records=False` leaves the SQLite call records out (the journeys still go
    to the live view and the metrics): the engine's own share of a call.
    """
    from coverage_engine.bootstrap import EngineParts, load_holder, run_engine, sink_for
    from coverage_engine.clock import FrozenClock
    from coverage_engine.records.sqlite import SqliteRecorder

    unknown = [name for name in journeys if name not in JOURNEYS]
    if unknown:
        raise ValueError(f"unknown journeys {unknown}; known: {sorted(JOURNEYS)}")
    config = config or SHIPPED_CONFIG
    probe = _LoopProbe()
    async with _fake_process(calls, warmup, concurrency, journeys, hold, answer_after) as child:
        assert child.stdout is not None
        with _production_logging_to_nowhere(), tempfile.TemporaryDirectory() as folder:
            port = int((await child.stdout.readline()).split()[1])
            settings = AriSettings(
                url=f"http://127.0.0.1:{port}/ari", username=FAKE_USER, password=FAKE_PASSWORD
            )
            parts = EngineParts(config, settings, clock=FrozenClock(INSTANT))
            recorder, _ = SqliteRecorder.open(Path(folder) / "records.sqlite", now=INSTANT)
            if records:
                parts.sink = sink_for(recorder, parts.metrics, parts.live)
            else:
                parts.metrics.watch(parts.live)
                parts.sink = parts.live
            stop = asyncio.Event()
            engine = asyncio.create_task(run_engine(parts, load_holder(parts), stop))
            try:
                line = await child.stdout.readline()
                if line.strip() != b"start":
                    raise RuntimeError(f"the fake side failed to start: {line!r}")
                prober = asyncio.create_task(probe.run())
                cpu0, writer0 = _cpu_seconds(), recorder.writer_cpu_seconds()
                line = await child.stdout.readline()
                cpu, writer1 = _cpu_seconds() - cpu0, recorder.writer_cpu_seconds()
                prober.cancel()
            finally:
                stop.set()
                await asyncio.gather(engine, return_exceptions=True)
                await asyncio.to_thread(recorder.close)
    if not line.startswith(b"done "):
        raise RuntimeError(f"the fake side failed: {line!r}")
    report: dict[str, Any] = json.loads(line[5:])
    wall = float(report["wall_seconds"])
    per_call = cpu / calls
    writer = None
    if records and writer0 is not None and writer1 is not None:
        writer = round((writer1 - writer0) / calls * 1e6, 1)
    return EngineOnlyResult(
        calls=calls,
        failures=int(report["failures"]),
        concurrency=concurrency,
        journeys=list(journeys),
        wall_seconds=round(wall, 3),
        calls_per_second=round(calls / wall, 1),
        cpu_seconds=round(cpu, 3),
        cpu_us_per_call=round(per_call * 1e6, 1),
        one_core_capacity_cps=round(1 / per_call, 1) if per_call else 0.0,
        # ru_maxrss is in KiB on Linux.
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        setup_ms=report["setup_ms"],
        records=records,
        writer_cpu_us_per_call=writer,
        hold_seconds=hold,
        answer_after_seconds=answer_after,
        max_in_progress=int(report["max_in_progress"]),
        first_request_ms=report["first_request_ms"],
        reaction_ms=report["reaction_ms"],
        loop_lag_ms=_percentiles(probe.lags),
        events_per_call=report["events_per_call"],
        requests_per_call=report["requests_per_call"],
    )


def result_json(result: EngineOnlyResult) -> str:
    return json.dumps(asdict(result), indent=2)


def main(argv: list[str] | None = None) -> int:
    """The child process's entry point (`--fake-side`)."""
    parser = argparse.ArgumentParser(prog="coverage_lab.benchmark.engine_only")
    parser.add_argument("--fake-side", action="store_true", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--warmup", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--journeys", required=True)
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--answer-after", type=float, default=0.0)
    args = parser.parse_args(argv)
    asyncio.run(
        _fake_side(
            args.calls,
            args.warmup,
            args.concurrency,
            args.journeys.split(","),
            args.hold,
            args.answer_after,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
