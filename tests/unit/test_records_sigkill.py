"""SIGKILL during writing: nothing acknowledged is lost, and the restart closes the journey."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from coverage_engine.journey import EventKind, Outcome
from coverage_engine.records.sqlite import RecordStore, SqliteRecorder

# The child starts calls and puts each in the operator queue as fast as it can,
# without waiting for Acks (as the engine does), and prints the number of every
# call whose `queue_entered` Ack completed. The parent kills it mid-stream.
CHILD = r"""
import sys, threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from coverage_engine.journey import QueueEntered, Received
from coverage_engine.records.sqlite import SqliteRecorder

t0 = datetime(2026, 3, 1, 2, 14, tzinfo=UTC)
rec, _ = SqliteRecorder.open(Path(sys.argv[1]), now=t0)
lock = threading.Lock()

def acked(n):
    def done(ack):
        if ack.exception() is None:
            with lock:
                sys.stdout.write(f"{n}\n")
                sys.stdout.flush()
    return done

print("ready", flush=True)
n = 0
while True:
    n += 1
    at = t0 + timedelta(milliseconds=n)
    rec.write(f"call-{n}", at, Received("+15550100", "+15557654321"))
    ack = rec.write(f"call-{n}", at, QueueEntered(0, "ops", 90))
    ack.add_done_callback(acked(n))
"""


def test_sigkill_loses_no_acknowledged_event_and_restart_closes_the_call(tmp_path: Path) -> None:
    """Every event acknowledged before SIGKILL is in the file after it; recovery closes the call."""
    path = tmp_path / "calls.db"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-c", CHILD, str(path)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env) as child:
        assert child.stdout is not None
        try:
            assert child.stdout.readline().strip() == "ready"
            acked: list[int] = []
            while len(acked) < 100:
                line = child.stdout.readline()
                assert line, "the writer child exited early"
                acked.append(int(line))
            child.send_signal(signal.SIGKILL)
            # Lines already in the pipe were acknowledged before the kill too.
            acked.extend(int(line) for line in child.stdout.read().split())
        finally:
            child.kill()
            child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL

    recorder, recovered = SqliteRecorder.open(path, now=datetime(2026, 3, 1, 3, tzinfo=UTC))
    recorder.close()
    with RecordStore.open(path) as store:
        journeys = {j.call_id: j for j in store.journeys(events=True)}
    # Every call whose event was acknowledged is there, and none is left open.
    assert {f"call-{n}" for n in acked} <= set(journeys)
    assert set(recovered) == set(journeys)
    for n in acked:
        journey = journeys[f"call-{n}"]
        assert [e.name for e in journey.events] == [
            EventKind.RECEIVED,
            EventKind.QUEUE_ENTERED,
            EventKind.ENGINE_RESTARTED,
            EventKind.ENDED,
        ]
        assert journey.outcome is Outcome.FAILED_OVER_TO_DIALPLAN
