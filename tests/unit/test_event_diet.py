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
from coverage_engine.engine.translate import EVENTS
from coverage_lab.benchmark.journeys import INSTANT, JOURNEYS, CountingFakeAri

CONFIG = Path(__file__).resolve().parents[2] / "config" / "coverage.yaml"

EXPECTED_REQUESTS: dict[str, Counter[str]] = {
    "open-frontdesk": Counter(
        {
            "POST /channels": 1,  # the front desk's leg, created and dialed in one (first)
            "POST /channels/{id}/answer": 1,
            "POST /channels/{id}/ring": 1,
            # COVERAGE_PRACTICE and COVERAGE_TRIED in one ARRAY() write: restart
            # memory (the dialplan set COVERAGE_DID before Stasis); then, on the
            # front desk's leg as it is bridged, the hang-up handler that
            # releases the caller when the front desk hangs up, engine or not.
            "POST /channels/{id}/variable": 2,
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
            "POST /channels/{id}/play/{playback}": 1,  # the emergency announcement
            # Music asked for with it, started by Asterisk as it ends (an engine
            # dying then leaves no silence); the queue's own music replaces it.
            "POST /channels/{id}/moh": 1,
            # The practice with the announcement; then, in one write, the step
            # tried, the queue and its wait, and the operator's caller-name prefix.
            "POST /channels/{id}/variable": 2,
            "POST /applications/{app}/subscription": 1,  # keep hearing about the queued caller
            "POST /channels/{id}/continue": 1,  # into app_queue
        }
    ),
}

# What a real PBX sends for the same calls without the engine's event filter
# (the fake mirrors the sandbox): 47 and 56 events, ChannelVarsets the most.
UNFILTERED = {"open-frontdesk": 47, "closed-queue": 56}

EXPECTED_EVENTS: dict[str, Counter[str]] = {
    "open-frontdesk": Counter(
        {
            "StasisStart": 2,  # the caller; the leg as it is answered (originated: Up)
            "Dial": 3,  # the leg's "", RINGING, ANSWER
            "ChannelHangupRequest": 2,  # the caller's, then the leg's
            "ChannelDestroyed": 1,  # the leg only: the caller's subscription ended at StasisEnd
        }
    ),
    "closed-queue": Counter(
        {
            "StasisStart": 1,
            "PlaybackFinished": 1,
            # app_queue rings three operators: "", RINGING each, ANSWER (who
            # took the call), CANCEL x2.
            "Dial": 9,
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


def test_the_engine_asks_for_the_events_it_acts_on_only(
    diet: tuple[CountingFakeAri, dict[str, str]],
) -> None:
    """After connecting, the engine sets the application's event filter to `translate.EVENTS`,
    which keeps most of what a real PBX would send away from it."""
    fake, ids = diet
    [request] = fake.requests_to("PUT", "/applications/coverage-engine/eventFilter")
    assert request.body == {"allowed": [{"type": t} for t in sorted(EVENTS)], "disallowed": []}
    for journey, call_id in ids.items():
        sent = sum(fake.costs[call_id].events.values())
        assert sent < UNFILTERED[journey] / 3, (journey, sent)


def test_the_event_link_asks_for_the_application_only(
    diet: tuple[CountingFakeAri, dict[str, str]],
) -> None:
    """The WebSocket subscribes to our application alone: no subscribeAll, no channelvars."""
    fake, _ = diet
    assert fake.ws_queries == [{"app": "coverage-engine"}]


def test_nothing_is_requested_that_belongs_to_no_call(
    diet: tuple[CountingFakeAri, dict[str, str]],
) -> None:
    """Besides the calls' own requests the engine only reconciles once after connecting
    (the channels, the bridges, and which callers its application won)."""
    fake, ids = diet
    strays = {k: v for k, v in fake.costs.items() if k not in ids.values()}
    assert strays == {}
    listed = [(r.method, r.path) for r in fake.requests if r.method == "GET"]
    assert listed == [
        ("GET", "/channels"),
        ("GET", "/bridges"),
        ("GET", "/applications/coverage-engine"),
    ]
