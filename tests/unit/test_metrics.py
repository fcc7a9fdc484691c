"""Prometheus metrics, fed by the journey writes and scraped over HTTP."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from coverage_engine.metrics import MeteredRecorder, Metrics, MetricsServerError, serve_metrics
from coverage_engine.records import MemoryRecorder, Outcome, acknowledged, record

T0 = datetime(2026, 3, 1, 2, 14, tzinfo=UTC)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def _call(
    rec: MeteredRecorder, call_id: str, answer_after: float | None, outcome: str
) -> None:
    at = T0
    acks = [
        record(rec, call_id, "received", {"did": "+15550100", "caller": "+15557654321"}, at=at),
        record(rec, call_id, "decided", {"practice": "maple", "status": "closed"}, at=at),
    ]
    if answer_after is not None:
        acks.append(
            record(
                rec,
                call_id,
                "bridged",
                {"kind": "oncall", "target": "patel"},
                at=at + timedelta(seconds=answer_after),
            )
        )
    end = {"outcome": outcome, "answered_by": None}
    acks.append(record(rec, call_id, "ended", end, at=at + timedelta(seconds=100)))
    await acknowledged(*acks)


async def test_metrics_are_scraped_over_http() -> None:
    """The endpoint on 127.0.0.1 serves calls by outcome, time to a person and engine state."""
    metrics = Metrics()
    memory = MemoryRecorder()
    rec = MeteredRecorder(memory, metrics)
    await _call(rec, "c1", 12, "answered_by_oncall")
    await _call(rec, "c2", 40, "answered_by_oncall")
    await _call(rec, "c3", None, "abandoned_while_ringing")
    await acknowledged(
        rec.start("c4", at=T0, did="+15550100", caller_number="+15557654321")
    )  # still ringing
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
    # The wrapped recorder got every write.
    journey = memory.get("c1")
    assert journey is not None
    assert journey.outcome is Outcome.ANSWERED_BY_ONCALL


async def test_a_call_picked_up_after_a_restart_is_counted_without_a_practice() -> None:
    """Finishing a call this process never started still counts its outcome."""
    metrics = Metrics()
    memory = MemoryRecorder()
    await acknowledged(memory.start("old", at=T0, did="1", caller_number="+15550001"))
    rec = MeteredRecorder(memory, metrics)
    await acknowledged(rec.finish("old", at=T0, outcome=Outcome.ANSWERED_BY_OPERATOR))
    got = samples(metrics.exposition().decode())
    assert got[("coverage_calls_in_progress", ())] == 0
    assert (
        got[("coverage_calls_total", (("outcome", "answered_by_operator"), ("practice", "")))] == 1
    )


async def test_a_busy_port_is_a_clear_error() -> None:
    """When the port is taken the error names it and says what to change."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(MetricsServerError, match=r"metrics\.port"):
            await serve_metrics(Metrics(), port=port)
