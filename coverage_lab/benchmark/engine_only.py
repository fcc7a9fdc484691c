"""Engine-only throughput: the real engine against a fake ARI server on loopback.

Two processes, so the engine's CPU time is its own: a child runs the fake ARI
server (`CountingFakeAri`, which answers every REST request at once and emits
the events Asterisk would) and drives calls into it as fast as the engine
takes them, `concurrency` at a time; the parent runs the engine exactly as
`coverage-engine run` wires it (the aiohttp ARI client, the routing core on
the shipped config, INFO-level JSON logging, here written to /dev/null).

What it reports: completed calls per wall second, the engine's CPU
microseconds per call (user + system, from getrusage), and the one-core
capacity that implies (1 s / CPU per call). On a shared, noisy machine the
wall rate moves with the neighbours; CPU per call is the stable figure.
A "call" is a whole journey: arrival, routing, the phone or operator
answering, bridging, the caller's hang-up and the teardown.

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
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog

from coverage_engine.ari import AriSettings
from coverage_lab.benchmark.journeys import INSTANT, JOURNEYS, CountingFakeAri

# The example practices the repository ships (a source checkout's config/).
SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config" / "coverage.yaml"
FAKE_USER = "bench"
FAKE_PASSWORD = "bench-fake-ari"  # noqa: S105 - the password of a fake server on loopback


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
    events_per_call: dict[str, float] = field(default_factory=dict)
    requests_per_call: dict[str, float] = field(default_factory=dict)


def _percentiles(samples: list[float]) -> dict[str, float]:
    if len(samples) < 2:
        return {}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50": round(cuts[49] * 1000, 3),
        "p95": round(cuts[94] * 1000, 3),
        "p99": round(cuts[98] * 1000, 3),
    }


# ---------------------------------------------------------------- the fake side


async def _fake_side(calls: int, warmup: int, concurrency: int, journeys: list[str]) -> None:
    fake = CountingFakeAri(
        app="coverage-engine", username=FAKE_USER, password=FAKE_PASSWORD, playback_seconds=0.0
    )
    fake.keep_requests = False
    async with fake:
        print(f"port {fake.port}", flush=True)
        await fake.wait_reconciled(timeout=30)
        kinds = itertools.cycle([JOURNEYS[name] for name in journeys])
        ids = itertools.count(1)
        setups: list[float] = []
        failures = 0

        async def run(total: int, record: bool) -> None:
            nonlocal failures
            gate = asyncio.Semaphore(concurrency)

            async def one() -> None:
                nonlocal failures
                try:
                    setup = await fake.drive(next(kinds), f"b{next(ids)}")
                    if record:
                        setups.append(setup)
                except TimeoutError:
                    failures += 1
                finally:
                    gate.release()

            tasks = []
            for _ in range(total):
                await gate.acquire()
                tasks.append(asyncio.create_task(one()))
            await asyncio.gather(*tasks)

        await run(warmup, record=False)
        fake.costs.clear()
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
            "setup_ms": _percentiles(setups),
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


async def measure(
    *,
    calls: int = 5000,
    warmup: int = 500,
    concurrency: int = 50,
    journeys: tuple[str, ...] = tuple(JOURNEYS),
    config: Path | None = None,
) -> EngineOnlyResult:
    """Run the engine against the fake in a child process; return what it cost."""
    from coverage_engine.ari.client import AriClient
    from coverage_engine.bootstrap import EngineParts, build_engine, load_holder
    from coverage_engine.clock import FrozenClock

    unknown = [name for name in journeys if name not in JOURNEYS]
    if unknown:
        raise ValueError(f"unknown journeys {unknown}; known: {sorted(JOURNEYS)}")
    config = config or SHIPPED_CONFIG
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coverage_lab.benchmark.engine_only",
        "--fake-side",
        f"--calls={calls}",
        f"--warmup={warmup}",
        f"--concurrency={concurrency}",
        f"--journeys={','.join(journeys)}",
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    try:
        with _production_logging_to_nowhere():
            port = int((await child.stdout.readline()).split()[1])
            settings = AriSettings(
                url=f"http://127.0.0.1:{port}/ari", username=FAKE_USER, password=FAKE_PASSWORD
            )
            parts = EngineParts(config, settings, clock=FrozenClock(INSTANT))
            holder = load_holder(parts)
            async with AriClient(settings) as ari:
                engine = build_engine(ari, holder, parts)
                runner = asyncio.create_task(engine.run())
                line = await child.stdout.readline()
                if line.strip() != b"start":
                    raise RuntimeError(f"the fake side failed to start: {line!r}")
                cpu0 = _cpu_seconds()
                line = await child.stdout.readline()
                cpu = _cpu_seconds() - cpu0
                runner.cancel()
                await asyncio.gather(runner, return_exceptions=True)
        await child.wait()
    finally:
        if child.returncode is None:
            child.terminate()
            await child.wait()
    if not line.startswith(b"done "):
        raise RuntimeError(f"the fake side failed: {line!r}")
    report: dict[str, Any] = json.loads(line[5:])
    wall = float(report["wall_seconds"])
    per_call = cpu / calls
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
    args = parser.parse_args(argv)
    asyncio.run(_fake_side(args.calls, args.warmup, args.concurrency, args.journeys.split(",")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
