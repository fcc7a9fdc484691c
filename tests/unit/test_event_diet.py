"""The event diet: what one call costs on the ARI link, per journey, kept as a regression test.

The real engine and ARI client run against the fake ARI server
(`CountingFakeAri`), one call of each journey, and the ARI events it
receives and the REST requests it sends for that call are compared with the
lists below. A change that adds a request or subscribes to more events fails
here and has to update the list on purpose (and say why in its commit).
`coverage-engine bench engine-only` reports the same counts under load.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from coverage_engine.ari.client import AriClient
from coverage_engine.bootstrap import EngineParts, build_engine, load_holder
from coverage_engine.clock import FrozenClock
from coverage_lab.benchmark.journeys import INSTANT, JOURNEYS, CountingFakeAri

CONFIG = Path(__file__).resolve().parents[2] / "config" / "coverage.yaml"

EXPECTED_REQUESTS: dict[str, Counter[str]] = {
    "open-frontdesk": Counter(
        {
            "POST /channels/{id}/answer": 1,
            "POST /channels/{id}/variable": 3,  # COVERAGE_DID, _PRACTICE, _TRIED: restart memory
            "POST /channels/{id}/ring": 1,
            "POST /channels/create": 1,
            "POST /channels/{id}/dial": 1,
            "DELETE /channels/{id}/ring": 1,
            "POST /bridges/{id}": 1,
            "POST /bridges/{id}/addChannel": 1,
            "DELETE /channels/{id}": 1,  # the caller hung up: the front desk's leg goes too
            "DELETE /bridges/{id}": 1,
        }
    ),
    "closed-queue": Counter(
        {
            "POST /channels/{id}/answer": 1,
            # DID, practice, step, queue, queue wait, the operator's caller-name prefix,
            # and this engine's name (the queue offers the caller back to it first).
            "POST /channels/{id}/variable": 7,
            "POST /channels/{id}/play/{playback}": 1,  # the emergency announcement
            "POST /applications/{app}/subscription": 1,  # keep hearing about the queued caller
            "POST /channels/{id}/continue": 1,  # into app_queue
        }
    ),
}

EXPECTED_EVENTS: dict[str, Counter[str]] = {
    "open-frontdesk": Counter(
        {
            # Counts as Asterisk 22 sends them (the fake mirrors the sandbox):
            "StasisStart": 2,  # the caller, then the leg as soon as it is created
            "ChannelStateChange": 3,  # caller answered; leg Ringing, leg Up
            "Dial": 3,  # "", RINGING, ANSWER
            "ChannelEnteredBridge": 2,
            "ChannelHangupRequest": 2,  # the caller's, then the leg's
            "StasisEnd": 2,
            "ChannelDestroyed": 1,  # the leg only: the caller's subscription ended at StasisEnd
            "ChannelLeftBridge": 2,
            "BridgeDestroyed": 1,
        }
    ),
    "closed-queue": Counter(
        {
            "StasisStart": 1,
            "ChannelStateChange": 1,
            "PlaybackStarted": 1,
            "PlaybackFinished": 1,
            "StasisEnd": 1,
            "ChannelVarset": 1,  # MEMBERINTERFACE: app_queue connected an operator
            "ChannelHangupRequest": 1,
            "ChannelDestroyed": 1,
        }
    ),
}


async def _one_call_of_each() -> tuple[CountingFakeAri, dict[str, str]]:
    fake = CountingFakeAri(playback_seconds=0.0)
    async with fake:
        parts = EngineParts(CONFIG, fake.settings(), clock=FrozenClock(INSTANT))
        holder = load_holder(parts)
        async with AriClient(parts.ari_settings) as ari:
            engine = build_engine(ari, holder, parts)
            runner = asyncio.create_task(engine.run())
            await fake.wait_reconciled()
            ids = {}
            for n, journey in enumerate(JOURNEYS.values(), start=1):
                ids[journey.name] = call_id = f"diet{n}"
                await fake.drive(journey, call_id, timeout=5)
                async with asyncio.timeout(5):
                    while engine.calls_in_progress:  # noqa: ASYNC110 - waiting for the engine's teardown
                        await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # late events of the teardown, if any
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
    return fake, ids


@pytest.fixture(scope="module")
def diet() -> tuple[CountingFakeAri, dict[str, str]]:
    return asyncio.run(_one_call_of_each())


@pytest.mark.parametrize("journey", sorted(JOURNEYS))
def test_rest_requests_per_call_are_exactly_these(
    diet: tuple[CountingFakeAri, dict[str, str]], journey: str
) -> None:
    """Each journey sends exactly the listed REST requests, no more."""
    fake, ids = diet
    assert fake.costs[ids[journey]].requests == EXPECTED_REQUESTS[journey]


@pytest.mark.parametrize("journey", sorted(JOURNEYS))
def test_ari_events_per_call_are_exactly_these(
    diet: tuple[CountingFakeAri, dict[str, str]], journey: str
) -> None:
    """Each journey brings exactly the listed ARI events to the engine, no more."""
    fake, ids = diet
    assert fake.costs[ids[journey]].events == EXPECTED_EVENTS[journey]


def test_the_event_link_asks_for_the_application_only(
    diet: tuple[CountingFakeAri, dict[str, str]],
) -> None:
    """The WebSocket subscribes to our application alone: no subscribeAll, no channelvars."""
    fake, _ = diet
    assert fake.ws_queries == [{"app": "coverage-engine"}]


def test_nothing_is_requested_that_belongs_to_no_call(
    diet: tuple[CountingFakeAri, dict[str, str]],
) -> None:
    """Besides the calls' own requests the engine only reconciles once after connecting."""
    fake, ids = diet
    strays = {k: v for k, v in fake.costs.items() if k not in ids.values()}
    assert strays == {}
    assert [(r.method, r.path) for r in fake.requests if r.path in ("/channels", "/bridges")] == [
        ("GET", "/channels"),
        ("GET", "/bridges"),
    ]
