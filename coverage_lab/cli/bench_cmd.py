"""`coverage-engine bench`: measure what the engine costs (see docs/performance.md).

* `bench engine-only`: the engine against a fake ARI server on loopback, as
  fast as it goes: call setups per second and CPU microseconds per call; with
  `--hold`, many calls up at once (`--concurrency 1000 --hold 30`): memory,
  event-loop lag and how soon the engine acts for each call.
* `bench sipp`: the sandbox PBX, SIPp callers and auto-answering phones; the
  same call by dialplan alone (A) and through the engine (B), interleaved, at
  sustained rates and on a ramp; JSON, a Markdown report and a plot. Run it
  inside `scripts/netns-run` (or `scripts/bench`, which does).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverage_lab.benchmark.journeys import JOURNEYS

if TYPE_CHECKING:
    from coverage_lab.benchmark.sipp import LoadStep


def register(subparsers: Any) -> None:
    """Add the `bench` command group."""
    parser = subparsers.add_parser(
        "bench", help="measure the engine's cost (engine-only throughput, SIPp side by side)"
    )
    sub = parser.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)
    only = sub.add_parser(
        "engine-only",
        help="the engine against a fake ARI on loopback: call setups/s and CPU per call",
    )
    only.add_argument("--calls", type=int, default=5000, help="measured calls (default 5000)")
    only.add_argument("--warmup", type=int, default=500, help="calls before measuring")
    only.add_argument("--concurrency", type=int, default=50, help="calls in flight at once")
    only.add_argument(
        "--hold",
        type=float,
        default=0.0,
        help="seconds each call stays up once connected (0: hang up at once, as fast as it goes)",
    )
    only.add_argument(
        "--answer-after",
        type=float,
        default=0.0,
        help="seconds the phone rings (or the caller waits in the queue) before a person answers",
    )
    only.add_argument(
        "--journeys",
        default=",".join(JOURNEYS),
        help=f"comma-separated, alternated (default and choices: {','.join(JOURNEYS)})",
    )
    only.add_argument(
        "--no-records",
        action="store_true",
        help="leave the SQLite call records out: the engine's own share of a call",
    )
    only.add_argument("--config", type=Path, help="coverage YAML (default: the shipped one)")
    only.add_argument("--json", type=Path, help="also write the result to this file")
    only.set_defaults(func=engine_only)

    sipp = sub.add_parser(
        "sipp",
        help="dialplan alone vs the engine through the sandbox PBX with SIPp (root, netns)",
    )
    sipp.add_argument("--out", type=Path, default=Path("bench-results"), help="results folder")
    sipp.add_argument(
        "--smoke", action="store_true", help="a few calls per path only (what the tests run)"
    )
    sipp.add_argument(
        "--steps",
        default="5x300,10x300",
        help="sustained steps as RATExSECONDS, comma-separated (default 5x300,10x300)",
    )
    sipp.add_argument(
        "--ramp", default="15,20,30,40,60", help="ramp rates in calls/s per path ('' for none)"
    )
    sipp.add_argument("--ramp-seconds", type=float, default=60.0, help="length of a ramp step")
    sipp.add_argument("--hold", type=float, default=10.0, help="seconds each call stays up")
    sipp.set_defaults(func=sipp_bench)


def engine_only(args: argparse.Namespace) -> int:
    """Run the engine-only benchmark and print its result as JSON."""
    from coverage_engine.bootstrap import tune_garbage_collector
    from coverage_lab.benchmark.engine_only import measure, result_json

    if args.calls < 1 or args.warmup < 0 or args.concurrency < 1:
        print(
            "coverage-engine bench: --calls and --concurrency must be at least 1", file=sys.stderr
        )
        return 2
    if args.hold < 0 or args.answer_after < 0:
        print("coverage-engine bench: --hold and --answer-after must be >= 0", file=sys.stderr)
        return 2
    tune_garbage_collector()  # as `run` does: the engine runs in this process
    try:
        result = asyncio.run(
            measure(
                calls=args.calls,
                warmup=args.warmup,
                concurrency=args.concurrency,
                journeys=tuple(args.journeys.split(",")),
                config=args.config,
                hold=args.hold,
                answer_after=args.answer_after,
                records=not args.no_records,
            )
        )
    except ValueError as exc:
        print(f"coverage-engine bench: {exc}", file=sys.stderr)
        return 2
    text = result_json(result)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 1 if result.failures else 0


def parse_steps(text: str, hold: float) -> list[LoadStep]:
    """`5x300,10x300` -> load steps of 5 calls/s for 300 s and 10 calls/s for 300 s."""
    from coverage_lab.benchmark.sipp import LoadStep

    steps = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        rate, sep, seconds = part.partition("x")
        if not sep:
            raise ValueError(f"a step is RATExSECONDS (e.g. 5x300), not {part!r}")
        steps.append(LoadStep(f"{float(rate):g} cps", float(rate), float(seconds), hold))
    return steps


def sipp_bench(args: argparse.Namespace) -> int:
    """Run the side-by-side SIPp benchmark; write results.json, report.md and the plot."""
    from coverage_lab.benchmark.report import write_report
    from coverage_lab.benchmark.sipp import SMOKE, run_benchmark
    from coverage_lab.sandbox import SandboxError

    try:
        if args.smoke:
            steps, ramp = list(SMOKE), []
        else:
            steps = parse_steps(args.steps, args.hold)
            ramp = [float(r) for r in args.ramp.split(",") if r.strip()]
    except ValueError as exc:
        print(f"coverage-engine bench: {exc}", file=sys.stderr)
        return 2
    try:
        result = run_benchmark(
            args.out, steps=steps, ramp_rates=ramp, ramp_seconds=args.ramp_seconds
        )
    except (SandboxError, RuntimeError, TimeoutError) as exc:
        print(f"coverage-engine bench: {exc}", file=sys.stderr)
        return 1
    report = write_report(result, args.out)
    print(f"report: {report}")
    failed = sum(p.failed for s in result.steps for p in s.paths.values())
    return 1 if failed else 0
