"""Prometheus metrics, counted from the live journeys and scraped over HTTP."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from coverage_engine.journey import Bridged, Decided, Ended, Outcome, Received, Via
from coverage_engine.journey.live import LiveJourneys
from coverage_engine.metrics import Metrics, MetricsServerError, serve_metrics
from coverage_engine.plan import Plan, StepKind

T0 = datetime(2026, 3, 1, 2, 14, tzinfo=UTC)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


PLAN = Plan("maple", "Maple Grove", "MGP", "closed", "after hours", ())


def _call(live: LiveJourneys, call_id: str, answer_after: float | None, outcome: Outcome) -> None:
    live.record(call_id, T0, Received("+15550100", "+15557654321"))
    live.record(call_id, T0, Decided.of(PLAN, via=Via.ARI))
    if answer_after is not None:
        answered = T0 + timedelta(seconds=answer_after)
        live.record(call_id, answered, Bridged(StepKind.ONCALL, "patel"))
    live.record(call_id, T0 + timedelta(seconds=100), Ended(outcome))


async def test_metrics_are_scraped_over_http() -> None:
    """The endpoint on 127.0.0.1 serves calls by outcome, time to a person and engine state."""
    metrics = Metrics()
    live = LiveJourneys()
    metrics.watch(live)
    _call(live, "c1", 12, Outcome.ANSWERED_BY_ONCALL)
    _call(live, "c2", 40, Outcome.ANSWERED_BY_ONCALL)
    _call(live, "c3", None, Outcome.ABANDONED_WHILE_RINGING)
    live.record("c4", T0, Received("+15550100", "+15557654321"))  # still ringing
    metrics.count_calls_in_progress(lambda: 1)
    metrics.set_ari_connected(True)
    metrics.config_reloaded(ok=True)
    metrics.config_reloaded(ok=False)
    assert metrics.timed(lambda did: did.upper())(did="x") == "X"

    runner = await serve_metrics(metrics, port=0)
    try:
        host, port = runner.addresses[0][:2]
        assert host == "127.0.0.1"
        url = f"http://127.0.0.1:{port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
            text = await response.text()
    finally:
        await runner.cleanup()

    got = samples(text)
    maple = (("practice", "maple"),)
    assert got[("coverage_calls_total", (("outcome", "answered_by_oncall"), *maple))] == 2
    assert got[("coverage_calls_total", (("outcome", "abandoned_while_ringing"), *maple))] == 1
    assert got[("coverage_time_to_person_seconds_count", maple)] == 2
    assert got[("coverage_time_to_person_seconds_bucket", (("le", "30.0"), *maple))] == 1
    assert got[("coverage_time_to_person_seconds_sum", maple)] == 52
    assert got[("coverage_calls_in_progress", ())] == 1
    assert got[("coverage_ari_connected", ())] == 1
    assert got[("coverage_config_reloads_total", (("result", "success"),))] == 1
    assert got[("coverage_config_reloads_total", (("result", "failure"),))] == 1
    assert got[("coverage_routing_decision_seconds_count", ())] == 1
    assert "5557654321" not in text
    assert [j.call_id for j in live.calls()] == ["c4"]


def test_a_call_taken_on_after_a_restart_is_counted_without_its_time_to_person() -> None:
    """A call this process did not see arrive counts its outcome; its start is not ours."""
    metrics = Metrics()
    live = LiveJourneys()
    metrics.watch(live)
    resumed_at = T0 + timedelta(seconds=50)
    live.record("old", resumed_at, Decided.of(PLAN, via=Via.ARI, resumed=True))
    live.record("old", resumed_at + timedelta(seconds=5), Bridged(StepKind.ONCALL, "patel"))
    live.record("old", resumed_at + timedelta(seconds=60), Ended(Outcome.ANSWERED_BY_ONCALL))
    got = samples(metrics.exposition().decode())
    maple = (("practice", "maple"),)
    assert got[("coverage_calls_total", (("outcome", "answered_by_oncall"), *maple))] == 1
    assert ("coverage_time_to_person_seconds_count", maple) not in got
    assert live.calls() == []


async def test_a_busy_port_is_a_clear_error() -> None:
    """When the port is taken the error names it and says what to change."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(MetricsServerError, match=r"metrics\.port"):
            await serve_metrics(Metrics(), port=port)
