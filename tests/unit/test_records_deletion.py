"""Deleted patient data is gone from every file; the records' folder stays private; retention runs.

The byte scans read the record file and SQLite's -wal and -shm companions
as raw bytes, the way anyone holding a copy of the disk could.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from coverage_engine.cli import agi_cmd, calls_cmds, main
from coverage_engine.config import ConfigError, load_config
from coverage_engine.journey import Ended, Outcome, Received
from coverage_engine.message import Disposition, MessageFields, Urgency
from coverage_engine.records import acknowledged
from coverage_engine.records.location import SqliteRecords
from coverage_engine.records.messages import MessageStore
from coverage_engine.records.retention import keep_records, purge_expired
from coverage_engine.records.sqlite import RecordStore, SqliteRecorder, StoreError, open_database

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
OLD_NUMBER, OLD_NAME = "+15557770123", "Wilhelmina Zzyzx"
NEW_NUMBER, NEW_NAME = "+15558880456", "Bartholomew Qwerty"
PATIENT, REASON = "Ottoline Quaxley", "wheezing since the zygomatic fall"
MESSAGE = MessageFields(
    caller_name=OLD_NAME,
    callback=OLD_NUMBER,
    patient_name=PATIENT,
    patient_dob="2019-04-02",
    reason=REASON,
    urgency=Urgency.URGENT,
    disposition=Disposition.OTHER,
    disposition_note="call back",
)
ROOT = Path(__file__).resolve().parents[2]


def traces(path: Path, text: str) -> int:
    """How many times `text` appears in the record file and its -wal/-shm companions."""
    needle = text.encode()
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return sum(f.read_bytes().count(needle) for f in files if f.exists())


async def two_calls(path: Path) -> SqliteRecorder:
    """An open recorder (the running engine) with an old call and a recent one."""
    rec, _ = SqliteRecorder.open(path, now=T0)
    for call_id, at, number, name in (
        ("old", T0, OLD_NUMBER, OLD_NAME),
        ("new", T0 + timedelta(days=60), NEW_NUMBER, NEW_NAME),
    ):
        await acknowledged(
            rec.write(call_id, at, Received("+15550100", number, name)),
            rec.write(call_id, at + timedelta(minutes=1), Ended(Outcome.ABANDONED_IN_QUEUE)),
        )
    return rec


async def test_a_purged_callers_number_and_name_are_in_no_file_afterwards(tmp_path: Path) -> None:
    """While the engine keeps writing, a purge leaves no byte of the old call's number or name.

    Nor of the message an operator took for it (a patient's name and why
    they called), which goes with its call.
    """
    path = tmp_path / "calls.db"
    rec = await two_calls(path)
    with closing(open_database(path)) as conn:
        MessageStore(conn).save(
            "old", MESSAGE, by="olivia", at=T0 + timedelta(minutes=2), expected_version=0
        )
    for text in (OLD_NUMBER, OLD_NAME, PATIENT, REASON):
        assert traces(path, text) > 0, text

    with RecordStore.open(path) as store:
        removed = store.purge(T0 + timedelta(days=30), now=T0 + timedelta(days=61), by="admin")

    assert removed == 1
    for text in (OLD_NUMBER, OLD_NAME, PATIENT, REASON):
        assert traces(path, text) == 0, text
    assert traces(path, NEW_NUMBER) > 0  # the kept call is intact
    assert path.with_name("calls.db-wal").stat().st_size == 0
    rec.close()


async def test_calls_purge_also_clears_what_an_older_version_left_in_free_space(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows deleted without secure_delete linger in free space; `calls purge` rewrites them away."""
    path = tmp_path / "calls.db"
    (await two_calls(path)).close()
    with closing(sqlite3.connect(path)) as old_version:
        old_version.execute("PRAGMA secure_delete=OFF")
        old_version.execute("PRAGMA foreign_keys=ON")
        old_version.execute("DELETE FROM journeys WHERE call_id = 'old'")
        old_version.commit()
        old_version.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert traces(path, OLD_NUMBER) > 0  # deleted, yet still on disk

    monkeypatch.setattr(calls_cmds, "clock", lambda: T0 + timedelta(days=61))
    assert main(["calls", "purge", "--db", str(path), "--before", "2026-01-01"]) == 0

    assert "deleted 0 calls" in capsys.readouterr().out
    assert traces(path, OLD_NUMBER) == 0
    assert traces(path, OLD_NAME) == 0
    assert traces(path, NEW_NAME) > 0
    with RecordStore.open(path) as store:
        (entry,) = store.audit()
    assert entry.details["vacuum"] is True


def test_every_connection_overwrites_what_it_deletes(tmp_path: Path) -> None:
    """secure_delete is on whatever the SQLite build's default (python.org's is off)."""
    with closing(open_database(tmp_path / "calls.db")) as conn:
        assert conn.execute("PRAGMA secure_delete").fetchone() == (1,)


# -- the records' folder ------------------------------------------------------------------


def fastagi_config(tmp_path: Path, records: str) -> Path:
    """The reference config with records.path set to `records` (relative to tmp_path)."""
    text = (ROOT / "config" / "coverage.yaml").read_text(encoding="utf-8")
    config = tmp_path / "coverage.yaml"
    config.write_text(text.replace("../var/records.sqlite", records), encoding="utf-8")
    return config


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_fastagi_service_makes_the_records_folder_owner_only(tmp_path: Path) -> None:
    """`coverage-engine agi` creates the folder 0700 (it made it 0755) and the file 0600."""
    config_file = fastagi_config(tmp_path, "var/deep/records.sqlite")
    recorder = agi_cmd._recorder(load_config(config_file), config_file)
    recorder.close()
    assert mode(tmp_path / "var" / "deep") == 0o700
    assert mode(tmp_path / "var" / "deep" / "records.sqlite") == 0o600


def test_an_open_records_folder_of_ours_is_made_owner_only(tmp_path: Path) -> None:
    """A 0777 folder (left by an older version or a careless copy) is tightened to 0700."""
    folder = tmp_path / "var"
    folder.mkdir()
    folder.chmod(0o777)
    with capture_logs() as logs:
        open_database(folder / "calls.db").close()
    assert mode(folder) == 0o700
    assert {
        "event": "records.directory_tightened",
        "directory": str(folder),
        "was": "0777",
        "log_level": "warning",
    } in logs


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a folder someone else's")
def test_someone_elses_writable_folder_is_refused_not_changed(tmp_path: Path) -> None:
    """We cannot own it, others may write there: refuse, with what to do, and touch nothing."""
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o777)
    os.chown(folder, 65534, 65534)
    with pytest.raises(StoreError, match="can be written by other users"):
        open_database(folder / "calls.db")
    assert mode(folder) == 0o777
    assert not (folder / "calls.db").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own a sticky shared folder")
def test_a_shared_sticky_folder_like_tmp_is_refused_not_changed(tmp_path: Path) -> None:
    """A sticky world-writable folder is for everyone: never made ours, never used."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    folder.chmod(0o1777)
    with pytest.raises(StoreError, match="directory of its own"):
        open_database(folder / "calls.db")
    assert mode(folder) == 0o1777


# -- retention ----------------------------------------------------------------------------


async def test_retention_deletes_what_is_older_than_keep_days_and_audits_it(
    tmp_path: Path,
) -> None:
    """keep_days = 30, sixty days on: the old call goes, the recent one stays, the audit says so."""
    path = tmp_path / "calls.db"
    (await two_calls(path)).close()

    assert purge_expired(SqliteRecords(path), 30, T0 + timedelta(days=61)) == 1

    with RecordStore.open(path) as store:
        assert [j.call_id for j in store.journeys()] == ["new"]
        (entry,) = store.audit()
    assert entry.action == "purge"
    assert entry.details["by"] == "retention: records.keep_days = 30"
    assert entry.details["journeys"] == 1
    assert traces(path, OLD_NUMBER) == 0


async def test_the_retention_task_runs_at_start_and_again_and_survives_a_failure(
    tmp_path: Path,
) -> None:
    """A missing file is logged and retried; once the file is there the next run purges it."""
    path = tmp_path / "calls.db"
    now = [T0 + timedelta(days=61)]
    with capture_logs() as logs:
        task = asyncio.create_task(
            keep_records(
                SqliteRecords(path), lambda: 30, lambda: now[0], every=timedelta(seconds=0.05)
            )
        )
        await asyncio.sleep(0.02)
        (await two_calls(path)).close()
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    events = [e["event"] for e in logs]
    assert events[0] == "records.retention_failed"
    assert "records.retention" in events
    assert any(e.get("removed_journeys") == 1 for e in logs)


def test_keep_days_must_be_a_sensible_number_of_days(tmp_path: Path) -> None:
    """0 or a billion days is a typo the config check reports, not a policy."""
    for days in (0, 10**9):
        config = fastagi_config(tmp_path, f"x.sqlite\n  keep_days: {days}")
        with pytest.raises(ConfigError, match="keep_days"):
            load_config(config)
    config = fastagi_config(tmp_path, "x.sqlite\n  keep_days: 2557")
    records = load_config(config).records
    assert records is not None
    assert records.keep_days == 2557
