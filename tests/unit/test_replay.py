"""`replay` and `diff`: a proposed config tried on 1,000 recorded calls, and on the calendar.

The records are made by the real engine (the aiohttp ARI client, the routing
core, the SQLite recorder) against the fake ARI, one call at a time at
chosen instants over two weeks. The proposed config changes two things whose
reach a person can state without the routing core: Maple Grove closed for
training on Tuesday 2026-11-24 08:00-17:30, and Dr. Chen covering Lakeside's
Friday night 2026-11-20 19:00 to Saturday 07:00. Replay must list exactly
the calls those two changes meet.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coverage_engine.bootstrap import EngineParts, load_holder, run_engine
from coverage_engine.cli import main
from coverage_engine.clock import FrozenClock
from coverage_engine.journey import JourneyKind
from coverage_engine.records.model import JourneyFilter
from coverage_engine.records.sqlite import RecordStore
from coverage_lab.fake_ari import FakeAri
from tests.unit.reference import LAKESIDE_DID, MAPLE_DID, REFERENCE_CONFIG

CHICAGO = ZoneInfo("America/Chicago")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
FIRST = datetime(2026, 11, 16, 0, 0, tzinfo=CHICAGO)
CALLS = 1000
UNKNOWN_DID = "+19995550123"

TRAINING = (datetime(2026, 11, 24, 8, 0, tzinfo=CHICAGO), datetime(2026, 11, 24, 17, 30,
                                                                     tzinfo=CHICAGO))
CHEN_NIGHT = (datetime(2026, 11, 20, 19, 0, tzinfo=LOS_ANGELES),
              datetime(2026, 11, 21, 7, 0, tzinfo=LOS_ANGELES))  # fmt: skip


def proposed_text() -> str:
    """The reference file with the two proposed changes."""
    text = REFERENCE_CONFIG.read_text(encoding="utf-8").replace(
        "../var/records.sqlite", "records.sqlite"
    )
    text = text.replace(
        "    overrides: []\n",
        "    overrides:\n"
        "      - {from: 2026-11-24 08:00, until: 2026-11-24 17:30, reason: staff training}\n",
    )
    return text.replace(
        "      primary: ruiz\n      backup: chen\n",
        "      primary: ruiz\n      backup: chen\n      swaps:\n"
        "        - {doctor: chen, from: 2026-11-20 19:00, until: 2026-11-21 07:00,"
        " backup: ruiz, reason: ruiz away}\n",
    )


def instants() -> list[tuple[str, datetime]]:
    """1,000 calls over two weeks: mostly the two practices, some to a number nobody has.

    Every 20th lands inside one of the two changed stretches, so both are
    met often; the rest fall anywhere, to the second.
    """
    rng = random.Random(13)
    calls: list[tuple[str, datetime]] = []
    for i in range(CALLS):
        did = rng.choices([MAPLE_DID, LAKESIDE_DID, UNKNOWN_DID], [6, 4, 1])[0]
        if i % 20 == 0:
            did, (start, end) = ((MAPLE_DID, TRAINING) if i % 40 == 0
                                 else (LAKESIDE_DID, CHEN_NIGHT))  # fmt: skip
            at = start + timedelta(seconds=rng.randrange(int((end - start).total_seconds())))
        else:
            at = FIRST + timedelta(seconds=rng.randrange(14 * 86400))
        calls.append((did, at))
    return calls


def expected_changes(calls: list[tuple[str, datetime, str]]) -> set[str]:
    """The callers the two changes meet, by the plain rules of the file.

    Training: Maple Grove's calls that would have been open (08:00-12:00,
    13:00-17:30 that Tuesday) are closed, meeting the operators first; a call
    at lunch was closed already and meets the operators first either way.
    Chen's night: Lakeside is closed then, and its closed chain rings the
    on-call primary first, chen instead of ruiz.
    """
    changed = set()
    for did, at, caller in calls:
        local = at.astimezone(CHICAGO)
        minute = local.hour * 60 + local.minute
        lunch = 12 * 60 <= minute < 13 * 60
        if did == MAPLE_DID and TRAINING[0] <= at < TRAINING[1] and not lunch:
            changed.add(caller)
        if did == LAKESIDE_DID and CHEN_NIGHT[0] <= at < CHEN_NIGHT[1]:
            changed.add(caller)
    return changed


async def record_calls(config: Path, calls: list[tuple[str, datetime]]) -> list[str]:
    """Each call through the engine at its instant; the caller hangs up once it is decided."""
    clock = FrozenClock(FIRST)
    callers: list[str] = []
    async with FakeAri() as fake:
        parts = EngineParts(config, fake.settings(), clock=clock)
        stop = asyncio.Event()
        runner = asyncio.create_task(run_engine(parts, load_holder(parts), stop))
        await fake.wait_for_websockets()
        reader = RecordStore.open(config.parent / "records.sqlite")
        for n, (did, at) in enumerate(calls):
            clock.set(at)
            caller = f"+1415555{n:04d}"
            channel = await fake.start_call(did, caller)
            # Wait for the decision to be on disk before the clock moves on: the
            # journey's events are stamped with the clock when they are recorded.
            async with asyncio.timeout(10):
                while True:
                    journey = reader.get(channel)
                    if journey is not None and journey.plan is not None:
                        break
                    await asyncio.sleep(0.002)
            await fake.remote_hangup(channel)
            callers.append(caller)
        reader.close()
        stop.set()
        await asyncio.wait_for(runner, 10)
    return callers


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list]:
    """A folder with the current config, the proposed one, and 1,000 recorded calls."""
    folder = tmp_path_factory.mktemp("replay")
    current = folder / "coverage.yaml"
    current.write_text(
        REFERENCE_CONFIG.read_text(encoding="utf-8").replace(
            "../var/records.sqlite", "records.sqlite"
        ),
        encoding="utf-8",
    )
    proposed = folder / "proposed.yaml"
    proposed.write_text(proposed_text(), encoding="utf-8")
    calls = instants()
    callers = asyncio.run(record_calls(current, calls))
    return current, proposed, [(d, at, c) for (d, at), c in zip(calls, callers, strict=True)]


def test_the_records_hold_a_thousand_decided_journeys(records: tuple[Path, Path, list]) -> None:
    """Every call left a journey with its decision and the instant it was decided at."""
    current, _, calls = records
    with RecordStore.open(current.parent / "records.sqlite") as store:
        journeys = store.journeys(JourneyFilter(kind=JourneyKind.CALL))
    assert len(journeys) == CALLS
    assert all(j.plan is not None and j.plan.get("steps") for j in journeys)
    by_caller = {j.caller_number: j for j in journeys}
    assert {c for _, _, c in calls} == set(by_caller)
    assert all(by_caller[c].started_at == at for _, at, c in calls)


def test_replay_lists_exactly_the_calls_the_change_affects(
    records: tuple[Path, Path, list], capsys: pytest.CaptureFixture[str]
) -> None:
    """Against the decisions recorded: the changed calls are those the two changes meet."""
    current, proposed, calls = records
    store = str(current.parent / "records.sqlite")
    code = main(["replay", "--config", str(proposed), "--records", store,
                 "--since", "2026-11-01", "--json"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    expected = expected_changes(calls)
    by_id = {}
    with RecordStore.open(current.parent / "records.sqlite") as store:
        calls = store.journeys(JourneyFilter(kind=JourneyKind.CALL))
        by_id = {j.call_id: j.caller_number for j in calls}
    changed = {by_id[c["call_id"]] for c in report["changed"]}
    assert code == 1
    assert report["calls"] == CALLS
    assert len(expected) > 40
    assert changed == expected
    assert report["unchanged"] == CALLS - len(expected)
    firsts = {(c["was"]["first"], c["now"]["first"]) for c in report["changed"]}
    assert firsts == {("staff frontdesk-maple", "operators answering"),
                      ("oncall ruiz", "oncall chen")}  # fmt: skip


def test_replay_against_the_running_config_gives_the_same_calls(
    records: tuple[Path, Path, list], capsys: pytest.CaptureFixture[str]
) -> None:
    """--against the current file re-decides both sides: same answer, and the text names them."""
    current, proposed, calls = records
    code = main(["replay", "--config", str(proposed), "--against", str(current),
                 "--since", "2026-11-01"])  # fmt: skip
    out = capsys.readouterr().out
    expected = expected_changes(calls)
    assert code == 1
    assert f"{len(expected)} call(s) would change:" in out
    assert f"{len(expected)} would change, {CALLS - len(expected)} unchanged." in out
    assert "was: maple-grove open, first staff frontdesk-maple (office hours)" in out
    assert "now: maple-grove closed, first operators answering (override: staff training)" in out
    assert "+1415555" not in out  # callers are masked to their last four digits


def test_replaying_the_running_config_changes_nothing(
    records: tuple[Path, Path, list], capsys: pytest.CaptureFixture[str]
) -> None:
    """The config the calls were made with, replayed: no change, exit 0 (what CI wants)."""
    current, _, _ = records
    code = main(["replay", "--config", str(current), "--since", "2026-11-01"])
    assert code == 0
    assert f"0 would change, {CALLS} unchanged." in capsys.readouterr().out


def test_diff_shows_where_the_calendar_changes(
    records: tuple[Path, Path, list], capsys: pytest.CaptureFixture[str]
) -> None:
    """Two weeks: the training day's two open stretches and chen's night, nothing else."""
    current, proposed, _ = records
    code = main(["diff", str(current), str(proposed), "--from", "2026-11-16", "--days", "14",
                 "--json"])  # fmt: skip
    result = {p["practice"]: p["differences"] for p in json.loads(capsys.readouterr().out)}
    assert code == 1
    spans = {k: [(d["day"], d["from"][11:16], d["until"][11:16]) for d in v]
             for k, v in result.items()}  # fmt: skip
    assert spans == {
        "maple-grove": [("2026-11-24", "08:00", "12:00"), ("2026-11-24", "13:00", "17:30")],
        "lakeside": [("2026-11-20", "19:00", "00:00"), ("2026-11-21", "00:00", "07:00")],
    }
    assert main(["diff", str(current), str(current), "--days", "90"]) == 0
    assert "maple-grove), times in America/Chicago: no change" in capsys.readouterr().out


def test_replay_and_diff_refuse_bad_input(
    records: tuple[Path, Path, list], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken proposal is an error with its line; missing records and bad dates are usage."""
    current, proposed, _ = records
    broken = tmp_path / "broken.yaml"
    broken.write_text(proposed.read_text().replace("end: 16:00", "end: 26:00"), encoding="utf-8")
    assert main(["replay", "--config", str(broken), "--records", str(tmp_path / "x")]) == 1
    assert '"26:00" is not a time' in capsys.readouterr().err
    assert main(["replay", "--config", str(proposed), "--records", str(tmp_path / "none")]) == 2
    assert "cannot read the call records" in capsys.readouterr().err
    assert main(["replay", "--config", str(proposed), "--since", "last week"]) == 2
    assert main(["diff", str(current), str(broken)]) == 1
    assert main(["diff", str(current), str(proposed), "--from", "9999-01-01"]) == 2
