"""`coverage-engine bench`: measure what the engine costs (see docs/performance.md).

* `bench engine-only`: the engine against a fake ARI server on loopback, as
  fast as it goes: call setups per second and CPU microseconds per call.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from coverage_engine.benchmark.journeys import JOURNEYS


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
        "--journeys",
        default=",".join(JOURNEYS),
        help=f"comma-separated, alternated (default and choices: {','.join(JOURNEYS)})",
    )
    only.add_argument("--config", type=Path, help="coverage YAML (default: the shipped one)")
    only.add_argument("--json", type=Path, help="also write the result to this file")
    only.set_defaults(func=engine_only)


def engine_only(args: argparse.Namespace) -> int:
    """Run the engine-only benchmark and print its result as JSON."""
    from coverage_engine.benchmark.engine_only import measure, result_json

    if args.calls < 1 or args.warmup < 0 or args.concurrency < 1:
        print(
            "coverage-engine bench: --calls and --concurrency must be at least 1", file=sys.stderr
        )
        return 2
    try:
        result = asyncio.run(
            measure(
                calls=args.calls,
                warmup=args.warmup,
                concurrency=args.concurrency,
                journeys=tuple(args.journeys.split(",")),
                config=args.config,
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
