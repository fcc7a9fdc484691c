"""How far behind is the console's board with 100 calls in progress and 20 browsers watching?

    .venv/bin/python -m tests.bench.console_load [--calls 100] [--viewers 20] [--seconds 60]

Runs the real `coverage-engine console` process over a fresh record file and
writes calls into that file through the engine's own journey recorder
(SqliteRecorder, as `coverage-engine run` does): `calls` calls stay in
progress, each moving to its next phase every few seconds (queue, ringing a
doctor, confirming, with an operator...). `viewers` signed-in clients follow
/api/stream, as the board's script does. For every phase change each viewer
sees, the lag is the time from the write being durable to the viewer
receiving the board that shows it. Prints the percentiles; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from coverage_engine.journey import EventKind, Received, parse_event
from coverage_engine.records.sqlite import SqliteRecorder
from coverage_engine.web.accounts import Role
from coverage_engine.web.db import ConsoleDb
from coverage_lab.browser import ConsoleProcess
from tests.unit.console_support import write_config

PASSWORD = "benchmark passphrase"
# The phases a call moves through, as journey events.
STEPS: list[tuple[str, dict[str, Any], str]] = [
    ("queue_entered", {"target": "answering", "max_wait": 90}, "in queue"),
    ("queue_timeout", {"status": "TIMEOUT"}, "escalating"),
    ("oncall_dialing", {"doctor": "nguyen", "role": "primary"}, "ringing"),
    ("oncall_not_confirmed", {"doctor": "nguyen"}, "escalating"),
    ("oncall_dialing", {"doctor": "okafor", "role": "backup"}, "ringing"),
    ("operator_answered", {"member": "PJSIP/operator1"}, "with operator"),
]


async def viewer(
    url: str,
    username: str,
    written: dict[tuple[str, str], float],
    lags: list[float],
    stop: asyncio.Event,
) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=url, cookie_jar=jar) as http:
        page = await (await http.get("/login")).text()
        token = re.search(r'name="login_token" value="([^"]+)"', page)
        assert token is not None
        await http.post(
            "/login",
            data={"login_token": token[1], "username": username, "password": PASSWORD, "next": "/"},
        )
        seen: dict[str, str] = {}
        async with http.get("/api/stream", timeout=aiohttp.ClientTimeout(total=None)) as stream:
            kind = ""
            while not stop.is_set():
                line = (await stream.content.readline()).decode().strip()
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "board":
                    now = time.monotonic()
                    for call in json.loads(line[6:])["calls"]:
                        phase = call["phase"]
                        if seen.get(call["call_id"]) != phase:
                            seen[call["call_id"]] = phase
                            at = written.get((call["call_id"], phase))
                            if at is not None:
                                lags.append(now - at)


async def calls(
    records: Path, count: int, seconds: float, written: dict[tuple[str, str], float]
) -> int:
    recorder, _ = SqliteRecorder.open(records, now=datetime.now(UTC))
    rng = random.Random(11)
    events = 0
    try:
        ids = [f"bench.{i}" for i in range(count)]
        for i, call_id in enumerate(ids):
            now = datetime.now(UTC)
            caller = f"+1555{i:07d}"
            recorder.write(call_id, now, Received("+13125550100", caller, "BENCH CALLER"))
            decided = {"practice": "maple-grove", "status": "closed", "reason": "after hours"}
            recorder.write(call_id, now, parse_event(EventKind.DECIDED, decided))
        await asyncio.wrap_future(recorder.flush())
        step = dict.fromkeys(ids, 0)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            # Each call changes phase every ~3 s on average: ~33 events/s for 100 calls.
            call_id = rng.choice(ids)
            kind, details, phase = STEPS[step[call_id] % len(STEPS)]
            step[call_id] += 1
            ack = recorder.write(call_id, datetime.now(UTC), parse_event(kind, details))
            await asyncio.wrap_future(ack)
            written[(call_id, phase)] = time.monotonic()
            events += 1
            await asyncio.sleep(3.0 / count)
    finally:
        recorder.close()
    return events


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="console-bench-"))
    config = write_config(folder)
    db = ConsoleDb.open(folder / "records.sqlite")
    for i in range(args.viewers):
        role = Role.STAFF if i % 2 else Role.OPERATOR
        db.accounts.add(
            f"viewer{i}",
            password=PASSWORD,
            role=role,
            practices=["maple-grove"],
            display_name=f"Viewer {i}",
            at=datetime.now(UTC),
        )
    db.close()
    console = ConsoleProcess(config, folder / "console.log", clock_start=None)
    written: dict[tuple[str, str], float] = {}
    lags: list[float] = []
    stop = asyncio.Event()
    try:
        viewers = [
            asyncio.create_task(viewer(console.url, f"viewer{i}", written, lags, stop))
            for i in range(args.viewers)
        ]
        await asyncio.sleep(3)
        events = await calls(folder / "records.sqlite", args.calls, args.seconds, written)
        await asyncio.sleep(2)
        stop.set()
        for task in viewers:
            task.cancel()
        await asyncio.gather(*viewers, return_exceptions=True)
    finally:
        console.stop()
    if not lags:
        print("no phase change was seen by any viewer", file=sys.stderr)
        raise SystemExit(1)
    lags.sort()
    q = statistics.quantiles(lags, n=100)
    print(
        f"{args.calls} calls in progress, {args.viewers} viewers, {args.seconds:.0f} s, "
        f"{events} journey events written ({events / args.seconds:.0f}/s)"
    )
    print(
        f"board lag over {len(lags)} phase changes seen: p50 {q[49] * 1000:.0f} ms, "
        f"p95 {q[94] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms, "
        f"over 1 s: {sum(1 for x in lags if x > 1.0)}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    asyncio.run(main(parser.parse_args()))
