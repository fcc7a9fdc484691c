"""Keep N signed-in viewers on a running console's live board (load for `bench sipp`).

    .venv/bin/python -m tests.bench.console_viewers --url http://127.0.0.1:8080 \
        --users viewer --count 20 --seconds 120

Waits for the console to come up, signs in `count` users (`viewer0`...), and
follows /api/stream with each until `seconds` have passed; prints how many
board updates they received. Run it beside `coverage-engine bench sipp` (in
the same network namespace) to measure the engine's time to ring with the
console busy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import aiohttp

from tests.bench.console_load import viewer


async def main(args: argparse.Namespace) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(args.url + "/healthz") as response:
                    if response.status == 200:
                        break
            await asyncio.sleep(0.5)
    stop = asyncio.Event()
    lags: list[float] = []
    tasks = [
        asyncio.create_task(viewer(args.url, f"{args.users}{i}", {}, lags, stop))
        for i in range(args.count)
    ]
    await asyncio.sleep(args.seconds)
    stop.set()
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [
        r for r in results if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError)
    ]
    print(f"{args.count} viewers for {args.seconds:.0f} s; {len(failed)} failed: {failed[:3]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--users", default="viewer")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=120.0)
    asyncio.run(main(parser.parse_args()))
