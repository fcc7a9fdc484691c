"""The journey recorders (SQLite and in-memory) and the SQLite record file."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from coverage_engine.journey import (
    Bridged,
    Decided,
    Ended,
    EventKind,
    HandoffCheckStarted,
    Journey,
    JourneyKind,
    OncallConfirmed,
    OncallDialing,
    OperatorAnswered,
    Outcome,
    Received,
    Unrecognised,
    Via,
    parse_event,
)
from coverage_engine.journey.sink import JourneySink
from coverage_engine.plan import Plan, StepKind
from coverage_engine.records import (
    Ack,
    JourneyFilter,
    JourneyRecorder,
    MemoryRecorder,
    RecordError,
    acknowledged,
)
from coverage_engine.records import sqlite as sqlite_module
from coverage_engine.records.postgres import connect_records, open_postgres
from coverage_engine.records.recorder import Write, received_key
from coverage_engine.records.sink import RecorderSink
from coverage_engine.records.sql import transaction
from coverage_engine.records.sqlite import (
    SCHEMA_VERSION,
    RecordStore,
    SqliteRecorder,
    StoreError,
    append,
    open_database,
)

T0 = datetime(2026, 3, 1, 2, 14, tzinfo=UTC)
PLAN: dict[str, object] = {
    "practice": "maple",
    "status": "closed",
    "reason": "after hours",
    "steps": [],
}

Reader = Callable[[str], Journey | None]


def start(
    rec: JourneyRecorder,
    call_id: str,
    *,
    at: datetime,
    did: str,
    caller_number: str,
    caller_name: str = "",
) -> Ack:
    """Open a journey: its `received` event."""
    return rec.write(call_id, at, Received(did, caller_number, caller_name))


def event(
    rec: JourneyRecorder,
    call_id: str,
    kind: EventKind,
    *,
    at: datetime,
    details: dict[str, object] | None = None,
) -> Ack:
    """One event, given as a stored row would read."""
    return rec.write(call_id, at, parse_event(kind, details or {}))


def finish(
    rec: JourneyRecorder,
    call_id: str,
    *,
    at: datetime,
    outcome: Outcome,
    answered_by: str | None = None,
) -> Ack:
    """Close a journey: its `ended` event."""
    return rec.write(call_id, at, Ended(outcome, answered_by))


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def recorder(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[JourneyRecorder, Reader]]:
    """Each recorder implementation with a way to read back what it acknowledged.

    PostgreSQL's Acks mean "in the local spool"; its reader flushes first, so
    a test reads what reached the database.
    """
    if request.param == "memory":
        memory = MemoryRecorder()
        yield memory, memory.get
        return
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        pg = open_postgres(url, tmp_path / "spool.db")
        conn = connect_records(url)
        pg_store = RecordStore(conn)

        def read(call_id: str) -> Journey | None:
            pg.flush().result(timeout=10)
            return pg_store.get(call_id)

        yield pg, read
        pg.close()
        conn.close()
        return
    path = tmp_path / "calls.db"
    sqlite_recorder, _ = SqliteRecorder.open(path, now=T0)
    store = RecordStore.open(path)
    yield sqlite_recorder, store.get
    store.close()
    sqlite_recorder.close()


async def _a_full_call(rec: JourneyRecorder) -> None:
    await acknowledged(
        start(rec, "c1", at=T0, did="+15550100", caller_number="+15557654321", caller_name="JONES"),
        event(rec, "c1", EventKind.DECIDED, at=T0 + timedelta(seconds=1), details=PLAN),
        event(
            rec,
            "c1",
            EventKind.QUEUE_ENTERED,
            at=T0 + timedelta(seconds=2),
            details={"target": "ops"},
        ),
        event(rec, "c1", EventKind.OPERATOR_ANSWERED, at=T0 + timedelta(seconds=20)),
        event(rec, "c1", EventKind.CALLER_HUNG_UP, at=T0 + timedelta(seconds=80)),
        finish(
            rec,
            "c1",
            at=T0 + timedelta(seconds=80),
            outcome=Outcome.ANSWERED_BY_OPERATOR,
            answered_by="op1",
        ),
    )


async def test_a_finished_call_reads_back_whole(recorder: tuple[JourneyRecorder, Reader]) -> None:
    """Every acknowledged field and event of a call reads back, in order, with its timestamps."""
    rec, read = recorder
    await _a_full_call(rec)
    journey = read("c1")
    assert journey is not None
    assert (journey.practice, journey.status, journey.reason) == ("maple", "closed", "after hours")
    assert (journey.did, journey.caller_number, journey.caller_name) == (
        "+15550100",
        "+15557654321",
        "JONES",
    )
    assert journey.outcome is Outcome.ANSWERED_BY_OPERATOR
    assert journey.answered_by == "op1"
    assert journey.time_to_person == timedelta(seconds=20)
    assert journey.talk_time == timedelta(seconds=60)
    assert journey.started_at == T0
    assert journey.ended_at == T0 + timedelta(seconds=80)
    assert [e.name for e in journey.events] == [
        EventKind.RECEIVED,
        EventKind.DECIDED,
        EventKind.QUEUE_ENTERED,
        EventKind.OPERATOR_ANSWERED,
        EventKind.CALLER_HUNG_UP,
        EventKind.ENDED,
    ]
    assert journey.events[2].event.details() == {
        "step": 0,
        "target": "ops",
        "max_wait": 0,
        "label": "",
        "after": None,
    }
    assert journey.events[-1].event == Ended(Outcome.ANSWERED_BY_OPERATOR, "op1")
    assert journey.plan == {**PLAN, "via": "ari"}


async def test_an_event_before_its_received_opens_the_journey_and_the_received_fills_it_in(
    recorder: tuple[JourneyRecorder, Reader],
) -> None:
    """Another engine's events can land before the caller's `received` (a replayed buffer):
    nothing is refused; the journey starts at the arrival once the received is in."""
    rec, read = recorder
    await acknowledged(
        rec.write("c1", T0 + timedelta(seconds=40), Bridged(StepKind.ONCALL, "patel"))
    )
    early = read("c1")
    assert early is not None
    assert early.started_at == T0 + timedelta(seconds=40)
    await acknowledged(start(rec, "c1", at=T0, did="+15550100", caller_number="+15550001"))
    await acknowledged(
        rec.write("c1", T0 + timedelta(seconds=60), Ended(Outcome.ANSWERED_BY_ONCALL, "patel"))
    )
    journey = read("c1")
    assert journey is not None
    assert (journey.did, journey.caller_number) == ("+15550100", "+15550001")
    assert journey.started_at == T0
    assert journey.time_to_person == timedelta(seconds=40)
    assert journey.talk_time == timedelta(seconds=20)


async def test_a_second_received_continues_the_same_journey(
    recorder: tuple[JourneyRecorder, Reader],
) -> None:
    """The same call received twice (a new engine did not know another had it): one journey."""
    rec, read = recorder
    await acknowledged(start(rec, "c1", at=T0, did="1", caller_number="+15550001"))
    await acknowledged(
        start(rec, "c1", at=T0 + timedelta(seconds=5), did="1", caller_number="+15550001")
    )
    journey = read("c1")
    assert journey is not None
    assert journey.started_at == T0
    assert [e.name for e in journey.events] == [EventKind.RECEIVED, EventKind.RECEIVED]


async def test_a_replayed_write_with_the_same_key_is_applied_once(
    recorder: tuple[JourneyRecorder, Reader],
) -> None:
    """A buffer replayed after a crash hands in writes already stored: their keys say so."""
    rec, read = recorder
    for _ in range(2):
        await acknowledged(
            rec.write("c1", T0, Received("1", "+15550001"), key="e-1"),
            rec.write("c1", T0, Ended(Outcome.ABANDONED_IN_QUEUE), key="e-2"),
        )
    journey = read("c1")
    assert journey is not None
    assert [e.name for e in journey.events] == [EventKind.RECEIVED, EventKind.ENDED]


async def test_a_write_replayed_within_one_group_commit_is_applied_once(tmp_path: Path) -> None:
    """A replayed buffer can queue a write and its copy together, so one transaction holds both:
    the copy is recognised by its key there too, and the journey gets each event once."""
    rec = SqliteRecorder(open_database(tmp_path / "calls.db"), linger=0.3)  # one batch
    writes = [(Received("1", "+15550001"), "e-1"), (Ended(Outcome.ABANDONED_IN_QUEUE), "e-2")]
    acks = [rec.write("c1", T0, event, key=key) for event, key in writes for _copy in range(2)]
    await acknowledged(*acks)
    rec.close()
    with RecordStore.open(tmp_path / "calls.db") as store:
        journey = store.get("c1")
    assert journey is not None
    assert [e.name for e in journey.events] == [EventKind.RECEIVED, EventKind.ENDED]


def _failing_for(call_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every write of `call_id` fail inside the SQLite writer (a disk error, say)."""
    real = sqlite_module.folded

    def failing(current: Journey | None, write: Write) -> Journey:
        if write.call_id == call_id:
            raise RecordError("disk I/O error")
        return real(current, write)

    monkeypatch.setattr(sqlite_module, "folded", failing)


async def test_a_bad_write_does_not_cost_the_writes_queued_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing write in a group commit fails alone; its neighbours are still durable."""
    _failing_for("bad", monkeypatch)
    rec, _ = SqliteRecorder.open(tmp_path / "calls.db", now=T0)
    good1 = start(rec, "c1", at=T0, did="1", caller_number="+15550001")
    bad = event(rec, "bad", EventKind.BRIDGED, at=T0)
    good2 = event(rec, "c1", EventKind.DECIDED, at=T0, details=PLAN)
    await acknowledged(good1, good2)
    with pytest.raises(RecordError):
        await acknowledged(bad)
    rec.close()
    with RecordStore.open(tmp_path / "calls.db") as store:
        journey = store.get("c1")
    assert journey is not None
    assert [e.name for e in journey.events] == [EventKind.RECEIVED, EventKind.DECIDED]


async def test_the_writer_threads_cpu_time_is_read_while_it_runs(tmp_path: Path) -> None:
    """The benchmark's share of the records: the writer thread's CPU grows with its writes,
    and there is none to read once the recorder is closed."""
    rec, _ = SqliteRecorder.open(tmp_path / "calls.db", now=T0)
    before = rec.writer_cpu_seconds()
    assert before is not None
    acks = [start(rec, f"c{n}", at=T0, did="1", caller_number="+15550001") for n in range(200)]
    await acknowledged(*acks)
    after = rec.writer_cpu_seconds()
    assert after is not None
    assert after > before
    rec.close()
    assert rec.writer_cpu_seconds() is None


def _stored(path: Path, call_id: str) -> tuple[Any, ...]:
    """The call's row and its events, as the file holds them."""
    with closing(sqlite3.connect(path)) as conn:
        row = conn.execute("SELECT * FROM journeys WHERE call_id = ?", (call_id,)).fetchone()
        events = conn.execute(
            "SELECT at, kind, details FROM events WHERE call_id = ? ORDER BY id", (call_id,)
        ).fetchall()
    return row, events


# A call whose times fall between milliseconds, taken over after its end (resumed).
_UNEVEN_CALL: list[tuple[timedelta, Any]] = [
    (timedelta(0), Received("+15550100", "+15557654321", "JONES")),
    (timedelta(microseconds=700), Decided("maple", "closed", "after hours", PLAN)),
    (timedelta(microseconds=1600), Bridged(StepKind.STAFF, "desk")),
    (timedelta(microseconds=10_000_300), Ended(Outcome.ANSWERED_BY_STAFF, "desk")),
    (timedelta(seconds=11), Decided("maple", "closed", "after hours", PLAN, resumed=True)),
    (timedelta(microseconds=12_000_400), Ended(Outcome.FAILED_OVER_TO_DIALPLAN)),
]


async def test_the_writer_stores_what_it_would_if_it_read_each_row_back(tmp_path: Path) -> None:
    """The writer keeps the rows of calls in progress instead of reading them back before each
    write: the file ends up the same as with a writer that reads the row for every write."""
    kept, read = tmp_path / "kept.db", tmp_path / "read.db"
    remembering = SqliteRecorder(open_database(kept))
    after_each: dict[Path, list[tuple[Any, ...]]] = {kept: [], read: []}
    for offset, journey_event in _UNEVEN_CALL:
        await acknowledged(remembering.write("c1", T0 + offset, journey_event))
        after_each[kept].append(_stored(kept, "c1"))
        fresh = SqliteRecorder(open_database(read))
        await acknowledged(fresh.write("c1", T0 + offset, journey_event))
        fresh.close()
        after_each[read].append(_stored(read, "c1"))
    remembering.close()
    assert after_each[kept] == after_each[read]


async def test_a_large_group_commit_stores_what_writes_one_at_a_time_store(
    tmp_path: Path,
) -> None:
    """Hundreds of calls' events interleaved in a few transactions (more rows and events than
    one statement carries, keys and a replayed write among them) end up in the file exactly
    as the same writes applied one per transaction."""
    grouped, single = tmp_path / "grouped.db", tmp_path / "single.db"
    calls = [f"c{n}" for n in range(300)]
    writes = [
        (call_id, T0 + offset, journey_event)
        for offset, journey_event in _UNEVEN_CALL
        for call_id in calls
    ]
    writes.insert(600, writes[0])  # c0's Received once more, by its key

    def key(call_id: str, journey_event: Any) -> str | None:
        return received_key(call_id) if isinstance(journey_event, Received) else None

    batched = SqliteRecorder(open_database(grouped), linger=0.3)
    await acknowledged(*[batched.write(c, at, e, key=key(c, e)) for c, at, e in writes])
    batched.close()
    one_by_one = SqliteRecorder(open_database(single))
    for c, at, e in writes:
        await acknowledged(one_by_one.write(c, at, e, key=key(c, e)))
    one_by_one.close()
    assert [_stored(grouped, c) for c in calls] == [_stored(single, c) for c in calls]
    row, events = _stored(grouped, "c0")
    assert row is not None
    assert [kind for _at, kind, _details in events].count(EventKind.RECEIVED) == 1
    assert len(events) == len(_UNEVEN_CALL)


async def test_the_writer_builds_on_what_another_connection_wrote_to_a_call(
    tmp_path: Path,
) -> None:
    """Another connection writing a call's row (the paging service, another process on the
    file) is not overwritten with what the writer remembered of that row."""
    path = tmp_path / "calls.db"
    rec, _ = SqliteRecorder.open(path, now=T0)
    await acknowledged(start(rec, "c1", at=T0, did="1", caller_number="+15550001"))
    with closing(open_database(path)) as other, transaction(other):
        append(other, "c1", T0 + timedelta(seconds=1), Decided("maple", "closed", "night", PLAN))
    await acknowledged(
        finish(rec, "c1", at=T0 + timedelta(seconds=5), outcome=Outcome.ABANDONED_IN_QUEUE)
    )
    rec.close()
    with RecordStore.open(path) as store:
        journey = store.get("c1")
    assert journey is not None
    assert (journey.practice, journey.reason) == ("maple", "night")
    assert journey.outcome is Outcome.ABANDONED_IN_QUEUE
    assert [e.name for e in journey.events] == [
        EventKind.RECEIVED,
        EventKind.DECIDED,
        EventKind.ENDED,
    ]


def test_the_record_file_is_owner_only_and_in_wal_mode(tmp_path: Path) -> None:
    """The file holding patient numbers, and SQLite's side files, are 0600; the journal is WAL."""
    path = tmp_path / "private" / "calls.db"
    rec, _ = SqliteRecorder.open(path, now=T0)
    start(rec, "c1", at=T0, did="1", caller_number="+15550001").result(timeout=10)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir() if p.is_file()}
    assert modes == {"calls.db": 0o600, "calls.db-wal": 0o600, "calls.db-shm": 0o600}
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    rec.close()


def test_an_existing_world_readable_file_is_tightened(tmp_path: Path) -> None:
    """A record file someone created 0644 is made owner-only before it is used."""
    path = tmp_path / "calls.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    open_database(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_log_file_removed_while_the_files_are_tightened_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The -wal file goes away (a reader's close checkpoints it) between the engine looking at
    it and tightening it: the start goes on, the record file itself still made owner-only."""
    path = tmp_path / "calls.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    log_file = tmp_path / "calls.db-wal"
    log_file.touch(mode=0o644)
    log_file.chmod(0o644)
    chmod = Path.chmod

    def removed_first(self: Path, mode: int) -> None:
        if self == log_file:
            self.unlink()  # gone just before our chmod reaches it
        chmod(self, mode)

    monkeypatch.setattr(Path, "chmod", removed_first)
    open_database(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_new_file_gets_the_current_schema_version(tmp_path: Path) -> None:
    """Migrations run on open and PRAGMA user_version names the schema."""
    conn = open_database(tmp_path / "calls.db")
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"journeys", "events", "audit"} <= tables
    conn.close()


def test_a_file_from_a_newer_version_is_refused_with_advice(tmp_path: Path) -> None:
    """A schema newer than this code knows is never written to; the message says to upgrade."""
    path = tmp_path / "calls.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="upgrade coverage-engine"):
        open_database(path)


def test_reading_a_missing_file_says_where_to_look(tmp_path: Path) -> None:
    """The CLI does not create an empty store by mistake; it names records.path."""
    with pytest.raises(StoreError, match=r"records\.path"):
        RecordStore.open(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()


def test_naive_timestamps_are_refused(tmp_path: Path) -> None:
    """A record with a naive datetime would be ambiguous, so it is refused at the call site."""
    rec, _ = SqliteRecorder.open(tmp_path / "calls.db", now=T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        event(rec, "c1", EventKind.BRIDGED, at=datetime(2026, 3, 1))  # noqa: DTZ001
    rec.close()


async def test_a_closed_recorder_refuses_writes(tmp_path: Path) -> None:
    """After close a write fails its Ack rather than vanishing silently."""
    rec, _ = SqliteRecorder.open(tmp_path / "calls.db", now=T0)
    rec.close()
    with pytest.raises(RecordError, match="closed"):
        await acknowledged(rec.flush())


async def test_restart_closes_cut_off_journeys_with_what_they_reached(tmp_path: Path) -> None:
    """Journeys left open are closed on the next open with their outcome and engine_restarted."""
    path = tmp_path / "calls.db"
    rec, _ = SqliteRecorder.open(path, now=T0)
    await acknowledged(
        start(rec, "queued", at=T0, did="1", caller_number="+15550001"),
        event(rec, "queued", EventKind.QUEUE_ENTERED, at=T0 + timedelta(seconds=1)),
        start(rec, "talking", at=T0, did="1", caller_number="+15550002"),
        event(
            rec,
            "talking",
            EventKind.BRIDGED,
            at=T0 + timedelta(seconds=9),
            details={"kind": "oncall", "target": "patel"},
        ),
        start(rec, "done", at=T0, did="1", caller_number="+15550003"),
        finish(rec, "done", at=T0, outcome=Outcome.ABANDONED_DURING_ANNOUNCEMENT),
    )
    rec.close()  # the process "dies" here without finishing two calls

    restart = T0 + timedelta(minutes=5)
    rec2, recovered = SqliteRecorder.open(path, now=restart)
    rec2.close()
    assert sorted(recovered) == ["queued", "talking"]
    with RecordStore.open(path) as store:
        queued, talking, done = (store.get(c) for c in ("queued", "talking", "done"))
    assert queued is not None
    assert talking is not None
    assert done is not None
    assert queued.outcome is Outcome.FAILED_OVER_TO_DIALPLAN
    assert [e.name for e in queued.events][-2:] == [EventKind.ENGINE_RESTARTED, EventKind.ENDED]
    assert queued.events[-2].at == restart
    assert queued.events[-2].event.details()["last_event"] == "queue_entered"
    assert (talking.outcome, talking.answered_by) == (Outcome.ANSWERED_BY_ONCALL, "patel")
    assert talking.time_to_person == timedelta(seconds=9)
    assert done.outcome is Outcome.ABANDONED_DURING_ANNOUNCEMENT
    assert EventKind.ENGINE_RESTARTED not in [e.name for e in done.events]


async def test_restart_leaves_an_open_handoff_check_to_the_paging_service(tmp_path: Path) -> None:
    """A handoff check in progress is no cut-off call: recovery leaves it open (the paging
    service takes it on), and only the kind asked for is listed."""
    path = tmp_path / "calls.db"
    rec, _ = SqliteRecorder.open(path, now=T0)
    started = HandoffCheckStarted("maple", "okafor", T0, None, "nguyen", "rotation", 3)
    await acknowledged(
        rec.write("handoff-maple-2026-03-01T0814Z", T0, started),
        start(rec, "queued", at=T0, did="1", caller_number="+15550001"),
    )
    rec.close()
    rec2, recovered = SqliteRecorder.open(path, now=T0 + timedelta(minutes=5))
    rec2.close()
    assert recovered == ["queued"]
    with RecordStore.open(path) as store:
        check = store.get("handoff-maple-2026-03-01T0814Z")
        handoffs = store.journeys(JourneyFilter(kind=JourneyKind.HANDOFF_CHECK))
        calls = store.journeys(JourneyFilter(kind=JourneyKind.CALL))
    assert check is not None
    assert (check.kind, check.outcome, check.practice) == (JourneyKind.HANDOFF_CHECK, None, "maple")
    assert [j.call_id for j in handoffs] == ["handoff-maple-2026-03-01T0814Z"]
    assert [j.call_id for j in calls] == ["queued"]


FILTER_CASES: list[tuple[str, JourneyFilter, list[str]]] = [
    ("everything", JourneyFilter(), ["a", "b", "c"]),
    ("since is inclusive", JourneyFilter(since=T0 + timedelta(hours=1)), ["b", "c"]),
    ("until is exclusive", JourneyFilter(until=T0 + timedelta(hours=1)), ["a"]),
    ("practice", JourneyFilter(practice="oak"), ["c"]),
    ("outcome", JourneyFilter(outcome=Outcome.ABANDONED_IN_QUEUE), ["b"]),
    ("caller's last four digits", JourneyFilter(caller="0002"), ["b"]),
    ("no match", JourneyFilter(practice="maple", caller="0003"), []),
]


@pytest.mark.parametrize(
    ("where", "expected"), [c[1:] for c in FILTER_CASES], ids=[c[0] for c in FILTER_CASES]
)
async def test_filters_select_journeys(
    tmp_path: Path, where: JourneyFilter, expected: list[str]
) -> None:
    """The SQL filters and the in-memory filter pick the same journeys."""
    path = tmp_path / "calls.db"
    rec, _ = SqliteRecorder.open(path, now=T0)
    memory = MemoryRecorder()
    rows = [
        ("a", T0, "maple", Outcome.ANSWERED_BY_STAFF),
        ("b", T0 + timedelta(hours=1), "maple", Outcome.ABANDONED_IN_QUEUE),
        ("c", T0 + timedelta(hours=2), "oak", Outcome.ANSWERED_BY_ONCALL),
    ]
    for n, (call_id, at, practice, outcome) in enumerate(rows, start=1):
        for r in (rec, memory):
            await acknowledged(
                start(r, call_id, at=at, did="1", caller_number=f"+1555000{n}"),
                event(r, call_id, EventKind.DECIDED, at=at, details={"practice": practice}),
                finish(r, call_id, at=at, outcome=outcome),
            )
    rec.close()
    with RecordStore.open(path) as store:
        assert [j.call_id for j in store.journeys(where)] == expected
    assert [j.call_id for j in memory.journeys(where)] == expected


async def test_purge_removes_old_journeys_and_records_itself(tmp_path: Path) -> None:
    """`purge --before` deletes older journeys with their events and leaves an audit entry."""
    path = tmp_path / "calls.db"
    rec, _ = SqliteRecorder.open(path, now=T0)
    for n, call_id in enumerate(["old", "new"]):
        at = T0 + timedelta(days=40 * n)
        await acknowledged(
            start(rec, call_id, at=at, did="1", caller_number="+15550001"),
            finish(rec, call_id, at=at, outcome=Outcome.ANSWERED_BY_STAFF),
        )
    rec.close()
    now = T0 + timedelta(days=41)
    with RecordStore.open(path) as store:
        assert store.purge(T0 + timedelta(days=30), now=now, by="admin") == 1
        assert [j.call_id for j in store.journeys()] == ["new"]
        (entry,) = store.audit()
    with closing(sqlite3.connect(path)) as conn:
        orphans = conn.execute("SELECT count(*) FROM events WHERE call_id = 'old'").fetchone()
    assert orphans == (0,)
    assert (entry.at, entry.action) == (now, "purge")
    assert entry.details["journeys"] == 1
    assert entry.details["by"] == "admin"


async def test_a_call_flow_journey_folds_into_one_record() -> None:
    """`received` opens the journey, events follow, `ended` closes it; the fold times it."""
    rec = MemoryRecorder()
    plan = Plan("maple", "Maple Grove", "MGP", "closed", "after hours", ())
    events = [
        (0, Received("+15550100", "+15557654321", "JONES")),
        (0, Decided.of(plan, via=Via.ARI)),
        (1, OncallDialing(0, "patel", "patel", role="primary")),
        (16, OncallConfirmed("patel")),
        (16, Bridged(StepKind.ONCALL, "patel")),
        (76, parse_event(EventKind.CALLEE_HUNG_UP, {})),
        (76, Ended(Outcome.ANSWERED_BY_ONCALL, "patel")),
    ]
    for seconds, e in events:
        await acknowledged(rec.write("c1", T0 + timedelta(seconds=seconds), e))
    journey = rec.get("c1")
    assert journey is not None
    assert journey.caller_number == "+15557654321"
    assert [s.event for s in journey.events] == [e for _, e in events]
    assert (journey.practice, journey.status) == ("maple", "closed")
    assert (journey.outcome, journey.answered_by) == (Outcome.ANSWERED_BY_ONCALL, "patel")
    assert journey.time_to_person == timedelta(seconds=16)
    assert journey.talk_time == timedelta(seconds=60)


async def test_an_event_of_a_newer_version_is_kept_as_it_was_stored(tmp_path: Path) -> None:
    """A stored name this version does not know reads back as Unrecognised, details intact."""
    path = tmp_path / "calls.db"
    rec, _ = SqliteRecorder.open(path, now=T0)
    await acknowledged(
        start(rec, "c1", at=T0, did="1", caller_number="+15550001"),
        rec.write("c1", T0, Unrecognised("shift_swapped", {"to": "patel"})),
    )
    rec.close()
    with RecordStore.open(path) as store:
        journey = store.get("c1")
    assert journey is not None
    assert journey.events[-1].event == Unrecognised("shift_swapped", {"to": "patel"})


async def test_the_engine_sink_writes_and_counts_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's sink queues writes without raising; a refused write is counted, not thrown."""
    _failing_for("bad", monkeypatch)
    failures: list[int] = []
    rec, _ = SqliteRecorder.open(tmp_path / "calls.db", now=T0)
    sink: JourneySink = RecorderSink(rec, on_failure=lambda: failures.append(1))
    sink.record("c1", T0, Received("+15550100", "+15557654321"))
    sink.record("c1", T0, parse_event(EventKind.DECIDED, PLAN))
    sink.record("bad", T0, Bridged(StepKind.STAFF, "frontdesk"))
    sink.record("c1", T0 + timedelta(seconds=5), Ended(Outcome.ABANDONED_IN_QUEUE))
    await acknowledged(rec.flush())
    rec.close()
    assert failures == [1]
    with RecordStore.open(tmp_path / "calls.db") as store:
        journey = store.get("c1")
    assert journey is not None
    assert journey.outcome is Outcome.ABANDONED_IN_QUEUE
    assert [e.name for e in journey.events] == [
        EventKind.RECEIVED,
        EventKind.DECIDED,
        EventKind.ENDED,
    ]


async def test_a_call_received_again_by_an_engine_taking_it_on_is_received_once(
    recorder: tuple[JourneyRecorder, Reader],
) -> None:
    """Engine A received the call and died before the channel said so; engine B, finding no
    sign of it, receives it again: one `received`, the start still the caller's arrival."""
    rec, read = recorder
    sink = RecorderSink(rec)
    sink.record("c1", T0, Received("+15550100", "+15557654321"))
    sink.record("c1", T0, parse_event(EventKind.DECIDED, PLAN))
    sink.record("c1", T0 + timedelta(seconds=6), Received("+15550100", "+15557654321"))
    sink.record("c1", T0 + timedelta(seconds=6), parse_event(EventKind.DECIDED, PLAN))
    sink.record("c1", T0 + timedelta(seconds=9), Bridged(StepKind.STAFF, "frontdesk"))
    await acknowledged(rec.flush())
    journey = read("c1")
    assert journey is not None
    assert [e.name for e in journey.events].count(EventKind.RECEIVED) == 1
    assert journey.started_at == T0
    assert journey.time_to_person == timedelta(seconds=9)


async def test_an_operator_both_engines_saw_take_the_caller_is_recorded_once(
    recorder: tuple[JourneyRecorder, Reader],
) -> None:
    """Engine A followed the queued caller and heard the operator answer, then let go;
    engine B took over and learned it again from MEMBERINTERFACE: one answer, one bridge."""
    rec, read = recorder
    sink = RecorderSink(rec)
    sink.record("q1", T0, Received("+15550100", "+15557654321"))
    for at in (12, 14):
        sink.record("q1", T0 + timedelta(seconds=at), OperatorAnswered("PJSIP/operator3"))
        sink.record(
            "q1", T0 + timedelta(seconds=at), Bridged(StepKind.OPERATORS, "PJSIP/operator3")
        )
    sink.record(
        "q1", T0 + timedelta(seconds=30), Ended(Outcome.ANSWERED_BY_OPERATOR, "PJSIP/operator3")
    )
    await acknowledged(rec.flush())
    journey = read("q1")
    assert journey is not None
    names = [e.name for e in journey.events]
    assert names == ["received", "operator_answered", "bridged", "ended"]
    assert journey.time_to_person == timedelta(seconds=12)


async def test_a_resumed_decision_reopens_a_recovered_journey(
    recorder: tuple[JourneyRecorder, Reader],
) -> None:
    """A restarted engine taking a closed call on again makes it in progress until it ends."""
    rec, read = recorder
    await acknowledged(
        start(rec, "c1", at=T0, did="1", caller_number="+15550001"),
        finish(rec, "c1", at=T0, outcome=Outcome.FAILED_OVER_TO_DIALPLAN),
        event(rec, "c1", EventKind.DECIDED, at=T0, details={**PLAN, "resumed": True}),
    )
    reopened = read("c1")
    assert reopened is not None
    assert (reopened.outcome, reopened.ended_at) == (None, None)
    await acknowledged(finish(rec, "c1", at=T0, outcome=Outcome.ANSWERED_BY_ONCALL))
    final = read("c1")
    assert final is not None
    assert final.outcome is Outcome.ANSWERED_BY_ONCALL


async def test_a_slow_disk_never_blocks_the_caller_of_the_recorder(tmp_path: Path) -> None:
    """While the file is locked (a stalled disk), writes return at once; they land once it frees."""
    path = tmp_path / "calls.db"
    rec, _ = SqliteRecorder.open(path, now=T0)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the writer thread now waits on its busy timeout
    try:
        started = time.perf_counter()
        ack = start(rec, "c1", at=T0, did="1", caller_number="+15550001")
        assert time.perf_counter() - started < 0.5  # the busy timeout is 10 s
        await asyncio.sleep(0.3)
        assert not ack.done()  # not acknowledged: not yet durable
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await acknowledged(ack)
    rec.close()
    with RecordStore.open(path) as store:
        assert store.get("c1") is not None
