"""The chaos suite, short form (CI): callers through faults, judged as patients would judge.

Two engines and PostgreSQL; three SIGKILLs, a SIGSTOP of 15 s, a stalled
WebSocket, a PostgreSQL restart and an Asterisk restart while 24 callers
dial. `scripts/chaos` runs the full form and writes docs/reliability.md's
figures. A full disk under SQLite records has its own test, on a real small
tmpfs: tests/unit/test_records_disk_full.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coverage_lab.chaos import SHORT, ChaosRun, markdown
from coverage_lab.sandbox import Sandbox

pytestmark = pytest.mark.integration


@pytest.mark.timeout(1200)
def test_through_kills_freezes_stalls_and_restarts_every_caller_reaches_a_person(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Every caller reaches a person, none is dropped, no doctor is rung twice at once, no
    engine falls over, each call has exactly one journey (never lost, never doubled), and
    what every caller heard is captured and measured.

    Whether every journey's outcome and person match what the caller saw,
    and whether a conversation was cut, are measured and reported here and in
    the full run (docs/reliability.md: 0 wrong journeys, 1 cut in the last
    one) but not held by this short run: the one remaining race (a restarted
    engine and a survivor both taking a caller back from the queue) is
    analysed there and open. Nor is "no silence over 1 s with nobody on the
    line": it is missed when an engine dies just as its caller needs its
    next action, until the take-over (docs/reliability.md)."""
    try:
        report = ChaosRun(sandbox, tmp_path, SHORT).run()
    finally:
        # Two engines, their applications, heartbeats and AstDB mailboxes stay
        # in a running Asterisk: the suites after this one get a fresh PBX, as
        # this one did (the ARI live tests fail on the one chaos leaves).
        sandbox.stop()
        sandbox.start()
    figures = report.figures()
    (tmp_path / "chaos.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    summary = markdown(report, machine="CI")
    assert figures["calls_placed"] == SHORT.calls, summary
    assert figures["engine_crashes"] == 0, summary
    assert figures["dead_ended"] == 0, summary
    assert figures["dropped_by_the_system"] == 0, summary
    assert figures["two_phones_ringing_for_one_step"] == 0, summary
    assert figures["journeys_lost"] == 0, summary
    assert figures["journeys_duplicated"] == 0, summary
    assert figures["silences_measured"] == SHORT.calls, summary
