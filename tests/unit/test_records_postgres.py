"""PostgreSQL records on a real throwaway cluster: restarts, two engines, the CLI and the console.

The record-store contract itself (every event read back, the fold, keys
applied once) runs on PostgreSQL in test_records_store.py; these are what
only a shared database adds.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coverage_engine.config import load_text
from coverage_engine.journey import (
    Bridged,
    Decided,
    Ended,
    OncallDialing,
    Outcome,
    Received,
    Via,
)
from coverage_engine.plan import StepKind
from coverage_engine.records.location import (
    PostgresRecords,
    location_of,
    open_recorder,
    open_store,
    records_location,
)
from coverage_engine.records.postgres import (
    SCHEMA_VERSION,
    PostgresRecorder,
    check_url,
    connect_records,
)
from coverage_engine.records.retention import purge_expired
from coverage_engine.records.sqlite import StoreError
from coverage_engine.web.live import LiveSource
from coverage_lab.postgres import TempCluster

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PLAN = {"practice": "maple-grove", "status": "closed", "reason": "night", "steps": []}


def decided(resumed: bool = False) -> Decided:
    """The routing decision as a stored row would read (resumed: taken on again)."""
    return Decided("maple-grove", "closed", "night", PLAN, resumed=resumed)


async def test_writes_made_while_the_database_is_down_arrive_once_it_is_back(
    pg_cluster: TempCluster, pg_url: str, tmp_path: Path
) -> None:
    """PostgreSQL stopped mid-call: the writes are acknowledged from the local spool, replayed
    when it is back, in order, none lost and none doubled."""
    recorder = PostgresRecorder(pg_url, tmp_path / "spool.db", retry_max=0.5)
    recorder.write("c1", T0, Received("+13125550100", "+15550001"))
    recorder.flush().result(timeout=10)

    pg_cluster.stop("immediate")
    try:
        later = [
            (1, decided()),
            (40, Bridged(StepKind.ONCALL, "patel")),
            (90, Ended(Outcome.ANSWERED_BY_ONCALL, "patel")),
        ]
        acks = [recorder.write("c1", T0 + timedelta(seconds=s), e) for s, e in later]
        for ack in acks:
            ack.result(timeout=10)  # durable in the spool, the database still down
        assert recorder.waiting == 3
    finally:
        pg_cluster.start()
    recorder.flush().result(timeout=30)
    recorder.close()

    with open_store(location_of(pg_url)) as store:
        journey = store.get("c1")
    assert journey is not None
    assert [e.name for e in journey.events] == ["received", "decided", "bridged", "ended"]
    assert journey.outcome is Outcome.ANSWERED_BY_ONCALL
    assert journey.time_to_person == timedelta(seconds=40)


async def test_a_spool_left_by_a_killed_engine_is_replayed_by_the_next_start(
    pg_cluster: TempCluster, pg_url: str, tmp_path: Path
) -> None:
    """The engine died with writes still spooled (the database was away): its next start
    ships them; those that had reached the database already are not written twice."""
    spool = tmp_path / "spool.db"
    first = PostgresRecorder(pg_url, spool, retry_max=0.5)
    first.write("c1", T0, Received("+13125550100", "+15550001"), key="k1")
    first.flush().result(timeout=10)
    pg_cluster.stop("immediate")
    first.write("c1", T0 + timedelta(seconds=1), decided(), key="k2").result(timeout=10)
    first.close(timeout=0.5)  # as good as killed: k2 stays in the spool
    pg_cluster.start()
    # k1 again, as if the kill came between the database's commit and the spool's delete.
    with sqlite3.connect(spool) as raw:
        raw.execute(
            "INSERT INTO pending (call_id, at, kind, details, key) VALUES (?, ?, ?, ?, ?)",
            ("c1", T0.isoformat(), "received", '{"did": "+13125550100"}', "k1"),
        )

    second = PostgresRecorder(pg_url, spool)
    second.flush().result(timeout=30)
    second.close()

    with open_store(location_of(pg_url)) as store:
        journey = store.get("c1")
    assert journey is not None
    assert [e.name for e in journey.events] == ["received", "decided"]


async def test_two_engines_writing_one_call_make_one_journey_timed_from_the_arrival(
    pg_url: str, tmp_path: Path
) -> None:
    """Engine A received and decided the call and rang Dr. Patel; it died; engine B took the call
    on and bridged Dr. Okafor. One journey, its outcome what finally happened, its time to a
    person from the caller's arrival."""
    a = PostgresRecorder(pg_url, tmp_path / "a.db")
    b = PostgresRecorder(pg_url, tmp_path / "b.db")
    a.write("c1", T0, Received("+13125550100", "+15550001"))
    a.write("c1", T0 + timedelta(seconds=1), decided())
    a.write("c1", T0 + timedelta(seconds=2), OncallDialing(1, "patel", "patel"))
    a.flush().result(timeout=10)
    b.write("c1", T0 + timedelta(seconds=12), decided(resumed=True))
    b.write("c1", T0 + timedelta(seconds=42), Bridged(StepKind.ONCALL, "okafor"))
    b.write("c1", T0 + timedelta(seconds=100), Ended(Outcome.ANSWERED_BY_ONCALL, "okafor"))
    b.flush().result(timeout=10)
    a.close()
    b.close()

    with open_store(location_of(pg_url)) as store:
        journeys = store.journeys(events=True)
    assert [j.call_id for j in journeys] == ["c1"]
    (journey,) = journeys
    assert [e.name for e in journey.events].count("received") == 1
    assert journey.outcome is Outcome.ANSWERED_BY_ONCALL
    assert journey.answered_by == "okafor"
    assert journey.time_to_person == timedelta(seconds=42)


def test_a_fresh_database_is_migrated_and_a_newer_one_refused(pg_url: str) -> None:
    """The schema version is kept in the database; one from a newer release is not touched."""
    conn = connect_records(pg_url)
    (version,) = conn.execute("SELECT version FROM schema_version").fetchone()
    assert version == SCHEMA_VERSION
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(StoreError, match="newer coverage-engine"):
        connect_records(pg_url)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql://coverage:secret@db/coverage", "password"),
        ("postgresql://coverage@db/coverage?password=secret", "password"),
        ("mysql://coverage@db/coverage", "not a postgresql"),
    ],
)
def test_a_password_in_the_url_or_another_database_is_refused(url: str, problem: str) -> None:
    """Passwords belong in ~/.pgpass (libpq reads it), never in the config or a command line."""
    with pytest.raises(StoreError, match=problem):
        check_url(url)


def test_the_configuration_names_a_database_instead_of_a_file(tmp_path: Path) -> None:
    """records.url (with its spool beside the config file) or records.path, not both."""
    base = (Path(__file__).parents[2] / "config" / "coverage.yaml").read_text(encoding="utf-8")
    text = base.replace("  path: ../var/records.sqlite", "  url: postgresql://coverage@db/coverage")
    config = load_text(text, "coverage.yaml")
    location = records_location(config.records, tmp_path / "coverage.yaml")
    assert location == PostgresRecords(
        "postgresql://coverage@db/coverage", tmp_path / "records-spool.db"
    )
    both = base.replace(
        "  path: ../var/records.sqlite",
        "  path: x.db\n  url: postgresql://coverage@db/coverage",
    )
    with pytest.raises(Exception, match="either path"):
        load_text(both, "coverage.yaml")
    with pytest.raises(Exception, match="password"):
        load_text(text.replace("coverage@db", "coverage:pw@db"), "coverage.yaml")


async def test_the_console_board_sees_calls_any_engine_writes(pg_url: str, tmp_path: Path) -> None:
    """The console's live board reads the shared database: a call carried by another engine
    shows, and leaves the board when it ends."""
    live = LiveSource(location_of(pg_url), lambda: T0, poll_seconds=0.05)
    board = asyncio.create_task(live.run())
    other_engine = open_recorder(location_of(pg_url), now=T0)
    try:
        other_engine.write("c9", T0, Received("+13125550100", "+15550009"))
        other_engine.write("c9", T0 + timedelta(seconds=1), decided())
        other_engine.flush().result(timeout=10)
        await live.wait_newer(0, within=5)
        async with asyncio.timeout(5):
            while "c9" not in live.calls:
                await live.wait_newer(live.version, within=1)
        assert live.calls["c9"].practice == "maple-grove"
        other_engine.write("c9", T0 + timedelta(seconds=9), Ended(Outcome.ABANDONED_IN_QUEUE))
        other_engine.flush().result(timeout=10)
        async with asyncio.timeout(5):
            while "c9" in live.calls:
                await live.wait_newer(live.version, within=1)
    finally:
        board.cancel()
        with pytest.raises(asyncio.CancelledError):
            await board
        other_engine.close()


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_sweep_closes_journeys_whose_caller_is_gone_with_what_they_reached(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The call bridged to Dr. Patel whose engine died, caller since gone: closed as answered
    by Patel. The caller still on the line, the FastAGI call and the young call: left open."""
    target = request.getfixturevalue("pg_url") if store == "postgres" else str(tmp_path / "c.db")
    location = location_of(target, tmp_path / "coverage.yaml")
    recorder = open_recorder(location, now=T0, recover=False)
    for call in ("gone", "here", "agi"):
        recorder.write(call, T0, Received("+13125550100", "+15550001"))
    recorder.write("gone", T0 + timedelta(seconds=30), Bridged(StepKind.ONCALL, "patel"))
    recorder.write("agi", T0, Decided("maple-grove", "closed", "night", PLAN, via=Via.FASTAGI))
    recorder.write("young", T0 + timedelta(seconds=100), Received("+13125550100", "+15550002"))
    recorder.flush().result(timeout=10)
    recorder.close()

    with open_store(location) as records:
        closed = records.close_gone(
            {"here"}, now=T0 + timedelta(seconds=120), older_than=timedelta(seconds=30)
        )
        again = records.close_gone(
            {"here"}, now=T0 + timedelta(seconds=130), older_than=timedelta(seconds=30)
        )
        gone = records.get("gone")
    assert closed == ["gone"]
    assert again == []
    assert gone is not None
    assert gone.outcome is Outcome.ANSWERED_BY_ONCALL
    assert gone.answered_by == "patel"
    assert gone.time_to_person == timedelta(seconds=30)


@pytest.mark.parametrize("vacuum", [False, True])
def test_retention_deletes_old_calls_from_the_shared_database_and_audits_it(
    vacuum: bool, pg_url: str, tmp_path: Path
) -> None:
    """records.keep_days on PostgreSQL: the old call goes with its events, the young one stays,
    the purge is in the audit; the SQLite-only log truncation is not tried on the server."""
    location = location_of(pg_url, tmp_path / "coverage.yaml")
    recorder = open_recorder(location, now=T0, recover=False)
    old, young = f"old-{vacuum}", f"young-{vacuum}"
    recorder.write(old, T0 - timedelta(days=400), Received("+13125550100", "+15550001"))
    recorder.write(young, T0 - timedelta(days=2), Received("+13125550100", "+15550001"))
    recorder.flush().result(timeout=10)
    recorder.close()

    if vacuum:
        with open_store(location) as records:
            records.purge(T0 - timedelta(days=300), now=T0, by="admin", vacuum=True)
    else:
        purge_expired(location, 300, T0)
    with open_store(location) as records:
        assert records.get(old) is None
        assert records.get(young) is not None
        purges = [e for e in records.audit() if e.action == "purge"]
    assert purges
    assert purges[-1].details["vacuum"] is vacuum
