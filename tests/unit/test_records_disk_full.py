"""The SQLite records on a disk that fills up: a real small tmpfs, not a mocked error.

What the reliability promise says (docs/reliability.md): the write that
does not fit fails, is logged and counted, and the calls go on; every write
acknowledged before it is still there, and once space is back the journeys
carry on in the same file. The filesystem is mounted in a private mount
namespace (`unshare --mount`, root), so nothing outside the test sees it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="mounting a tmpfs needs root and unshare (CI and scripts/test run as root)",
)

# Runs inside the namespace: fills the disk through the engine's own sink.
_SCRIPT = r"""
import json, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from structlog.testing import capture_logs

from coverage_engine.journey import Decided, Received
from coverage_engine.records.sink import RecorderSink
from coverage_engine.records.recorder import RecordError
from coverage_engine.records.sqlite import RecordStore, SqliteRecorder

folder = Path(sys.argv[1])
ballast = folder / "ballast"
ballast.write_bytes(b"\0" * 96 * 1024)  # freed later: the admin makes room
T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
plan = {"practice": "maple-grove", "steps": [], "note": "x" * 2000}
failures = []
rec, _ = SqliteRecorder.open(folder / "records" / "calls.db", now=T0)
sink = RecorderSink(rec, on_failure=lambda: failures.append(1))
stored, refused = [], []
with capture_logs() as logs:
    for n in range(400):
        call = f"c{n}"
        at = T0 + timedelta(seconds=n)
        ack = rec.write(call, at, Received("+13125550100", "+15550001", "Pat"))
        try:
            ack.result(timeout=10)
        except RecordError:
            refused.append(call)
            # The engine's path: the sink logs and counts, never raises.
            sink.record(call, at, Decided("maple-grove", "closed", "night", plan))
            sink.flush().exception(timeout=10)
            break
        sink.record(call, at, Decided("maple-grove", "closed", "night", plan))
        if sink.flush().exception(timeout=10) is None:
            stored.append(call)
    ballast.unlink()
    after = rec.write("after", T0 + timedelta(hours=1), Received("+13125550100", "+15550002"))
    after_error = after.exception(timeout=10)
rec.close()
with RecordStore.open(folder / "records" / "calls.db") as store:
    readable = [c for c in stored + ["after"] if store.get(c) is not None]
print(json.dumps({
    "stored": len(stored), "refused": refused, "failures": len(failures),
    "logged": sum(1 for e in logs if e["event"] == "journey_write_failed"),
    "after_error": None if after_error is None else str(after_error),
    "readable": len(readable),
}))
"""


def test_a_full_disk_refuses_the_write_that_does_not_fit_and_loses_nothing_before_it(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "small"
    folder.mkdir()
    script = tmp_path / "fill.py"
    script.write_text(_SCRIPT, encoding="utf-8")
    mount_and_run = (
        'mount -t tmpfs -o size=512k,mode=0700 coverage-full "$1" && exec "$2" "$3" "$1"'
    )
    done = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            mount_and_run,
            "sh",
            str(folder),
            sys.executable,
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # The disk did fill: some calls were stored first, then one was refused.
    assert result["stored"] > 0
    assert len(result["refused"]) == 1
    # The sink's write failed too, and was logged and counted, not raised.
    assert result["failures"] >= 1
    assert result["logged"] == result["failures"]
    # Room made: the same recorder writes again, and every acknowledged call is readable.
    assert result["after_error"] is None
    assert result["readable"] == result["stored"] + 1
