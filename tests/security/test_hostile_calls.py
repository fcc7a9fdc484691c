"""A thousand hostile calls through the real PBX and engine: a person still answers each one.

Caller numbers, names and dialed numbers come from `corpus.py` (dialplan, AGI,
CSV, terminal, SQL and Unicode injection, overlong text), sent by SIPp on the
carrier trunk of the sandbox Asterisk, with `coverage-engine run` deciding at
an instant both practices are open. What a person would check, afterwards:

* every call reached a person: the engine's record says who answered, the
  phones say they answered, the caller was released by their hang-up;
* every channel Asterisk created (seen on an ARI event stream subscribed to
  all of Asterisk, i.e. Asterisk's own account) went to the carrier trunk the
  calls came in on or to a phone the configuration names;
* the CSV export, `calls list`, `calls show` and the engine's log hold
  nothing that a spreadsheet would run or a terminal would obey.

`COVERAGE_HOSTILE_CALLS` sets how many calls (default 1000) and
`COVERAGE_HOSTILE_PARALLEL` how many at once (default 10). The figures of the
run are written to `$COVERAGE_HOSTILE_FIGURES` when set (docs/security.md
quotes them).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import csv
import io
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from coverage_engine.caller_text import DISPLAY_NAME_MAX
from coverage_engine.cli import main
from coverage_engine.config import load_config
from coverage_engine.journey import Outcome
from coverage_engine.records.sqlite import RecordStore
from coverage_lab.engine_process import EngineProcess
from coverage_lab.phones import CALLER_PORTS, Phones, answers, parse_events
from coverage_lab.sandbox import HOST, SIP_PORT, AriCredentials, Sandbox
from tests.security.corpus import HostileCall, calls, sip_display, sip_user

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "tests" / "sipp" / "scenarios" / "hostile_caller.xml"
# Monday 10:00 in Chicago (08:00 in Los Angeles): both practices are open,
# so a call to a practice rings its front desk and an unknown number goes to
# the operators: a person answers within seconds, whichever it is.
OPEN = datetime(2026, 11, 30, 10, 0, tzinfo=ZoneInfo("America/Chicago"))
OPERATORS = ("operator1", "operator2", "operator3")  # the sandbox's queue members
PEOPLE = ("frontdesk-maple", "frontdesk-lakeside", *OPERATORS)
TALK = 1.5  # each person hangs up this long after answering (ringall losers go sooner)
COUNT = int(os.environ.get("COVERAGE_HOSTILE_CALLS", "1000"))
PARALLEL = int(os.environ.get("COVERAGE_HOSTILE_PARALLEL", "10"))
ANSWERED = {Outcome.ANSWERED_BY_STAFF, Outcome.ANSWERED_BY_OPERATOR, Outcome.ANSWERED_BY_ONCALL}


@dataclass(frozen=True, slots=True)
class Placed:
    """One hostile call as its caller experienced it."""

    call: HostileCall
    answered: bool
    released_by_far_end: bool
    rejected_with: str | None


# -- Asterisk's own account of every channel -------------------------------------------


class ChannelWatch:
    """Every channel Asterisk creates, from an ARI event stream subscribed to everything.

    A second ARI application (`subscribeAll=true`) receives the events of
    every channel on the PBX without owning any: the engine's, the
    dialplan's, and anything a hostile value might have made Asterisk dial.
    """

    def __init__(self, ari: AriCredentials) -> None:
        self.names: list[str] = []
        self._ari = ari
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(),))
        self._thread.start()
        assert self._ready.wait(10), "could not subscribe to Asterisk's channel events"

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        url = self._ari.url.replace("http://", "ws://", 1) + "/events"
        headers = {"Authorization": self._ari.basic_auth_header()}
        params = {"app": "hostile-watch", "subscribeAll": "true"}
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            http.ws_connect(url, params=params) as ws,
        ):
            self._ready.set()
            reader = asyncio.ensure_future(self._read(ws))
            await self._stop.wait()
            await asyncio.sleep(1)  # the last hang-ups
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            event = json.loads(message.data)
            if event.get("type") == "ChannelCreated":
                self.names.append(event["channel"]["name"])

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        self._loop.close()

    def endpoints(self) -> collections.Counter[str]:
        """How many channels went to each endpoint (`PJSIP/operator2-0000001f` -> operator2)."""
        return collections.Counter(
            name.split("/", 1)[-1].rsplit("-", 1)[0] if name.startswith("PJSIP/") else name
            for name in self.names
        )


# -- the calls -----------------------------------------------------------------------


def render(call: HostileCall, workdir: Path) -> tuple[Path, list[str]]:
    """The call's scenario file and the extra SIPp arguments it needs."""
    display = sip_display(call.name)
    user = sip_user(call.number)
    extra: list[str] = []
    if "[" in display:
        # SIPp reads [anything] in a scenario as its own keyword: such a name
        # travels in an injection file, which SIPp inserts without parsing.
        assert ";" not in display, "an injection field cannot hold ';'"
        inject = workdir / "name.csv"
        inject.write_bytes(b"SEQUENTIAL\n" + display.encode() + b";\n")
        extra = ["-inf", str(inject)]
        display = "[field0]"
    text = SCENARIO.read_text(encoding="utf-8")
    # A caller waits up to three minutes for the person to hang up: longer
    # than the operators' queue holds anyone on a loaded machine.
    for key, value in {"display": display, "user": user, "wait_ms": "180000"}.items():
        assert "]]>" not in value
        text = text.replace("{{" + key + "}}", value)
    scenario = workdir / "caller.xml"
    scenario.write_bytes(text.encode())
    return scenario, extra


def place(call: HostileCall, workdir: Path, port: int) -> Placed:
    """Place one call and wait for it to end; what the caller experienced."""
    workdir.mkdir(parents=True)
    scenario, extra = render(call, workdir)
    events = workdir / "events.log"
    with (workdir / "sipp.out").open("wb") as out:
        proc = subprocess.run(
            ["sipp", "-i", HOST, "-p", str(port), "-bind_local", "-mp", str(40000 + port * 4),
             "-nostdin", "-sf", str(scenario), *extra, "-s", sip_user(call.did), "-m", "1",
             "-timeout", "240s", "-trace_logs", "-log_file", str(events),
             "-trace_err", "-error_file", str(workdir / "errors.log"), f"{HOST}:{SIP_PORT}"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=300,
            check=False,
        )
    kinds = {e.event: e.detail for e in parse_events(events)}
    del proc
    return Placed(
        call=call,
        answered="answered" in kinds,
        released_by_far_end="remote_bye" in kinds,
        rejected_with=kinds.get("rejected"),
    )


def place_all(hostile: list[HostileCall], workdir: Path) -> list[Placed]:
    """Every call, `PARALLEL` at a time, each from its own local port."""
    ports = collections.deque(CALLER_PORTS)
    lock = threading.Lock()

    def one(numbered: tuple[int, HostileCall]) -> Placed:
        n, call = numbered
        with lock:
            port = ports.popleft()
        try:
            return place(call, workdir / f"{n:05d}", port)
        finally:
            with lock:
                ports.append(port)

    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(one, enumerate(hostile)))


# -- what leaves the engine ----------------------------------------------------------


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def printable_lines(text: str) -> list[str]:
    """The lines of `text` that hold a character a terminal would obey rather than show."""
    return [line for line in text.splitlines() if not line.isprintable()]


def unmasked_numbers(log: str, hostile: list[HostileCall]) -> list[str]:
    """Callers' numbers (7 digits or more) that appear whole in the log, however punctuated.

    "555-123-4567" counts when the log holds it with any separators between
    its digits, as people (and the masker) read numbers.
    """
    numbers = {c.number for c in hostile if sum(ch.isdigit() for ch in c.number) >= 7}
    found = []
    for number in sorted(numbers):
        digits = re.sub(r"\D", "", number)
        spread = r"[\s().\-]*".join(digits)
        if re.search(rf"(?<!\d){spread}(?!\d)", log):
            found.append(number)
    return found


@pytest.fixture
def fresh_pbx(sandbox: Sandbox) -> Iterator[None]:
    """Operators logged in before, and every call hung up after."""
    sandbox.reset_operators()
    yield
    sandbox.hang_up_all_calls()
    sandbox.reset_operators()


@pytest.fixture
def engine(ari: AriCredentials, tmp_path: Path) -> Iterator[EngineProcess]:
    """`coverage-engine run` on the reference config, records in tmp_path, clock at OPEN."""
    config = tmp_path / "coverage.yaml"
    text = (ROOT / "config" / "coverage.yaml").read_text(encoding="utf-8")
    config.write_text(text.replace("../var/records.sqlite", "records.sqlite"), encoding="utf-8")
    proc = EngineProcess(
        config,
        ari_url=ari.url,
        ari_user=ari.user,
        ari_password=ari.password,
        log_path=tmp_path / "engine.log",
    )
    proc.start(OPEN)
    yield proc
    proc.stop()


@pytest.mark.usefixtures("fresh_pbx")
@pytest.mark.timeout(1800)
def test_a_thousand_hostile_calls_each_reach_a_person_and_leave_nothing_unescaped(
    engine: EngineProcess,
    phones: Phones,
    ari: AriCredentials,
    sandbox: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every call answered by a person; no channel outside the config; CSV/terminal/log clean."""
    for person in PEOPLE:
        phones.start(person, answers(after=0, hangup_after=TALK))
    phones.start("carrier-out", answers(after=0, hangup_after=TALK))  # toll fraud would ring here
    hostile = calls(COUNT)
    watch = ChannelWatch(ari)
    started = time.monotonic()
    try:
        placed = place_all(hostile, tmp_path / "calls")
    finally:
        watch.stop()
    seconds = time.monotonic() - started
    engine.stop()  # every record written

    records = engine.config.parent / "records.sqlite"
    with RecordStore.open(records) as store:
        journeys = store.journeys(events=True)
    # Who may ring: the phones the configuration names, and the operator
    # queue's members; carrier-in is the trunk the calls themselves came in on.
    allowed = {"carrier-in", *configured_endpoints(engine.config), *OPERATORS}
    dialed = watch.endpoints()
    outside = {name: n for name, n in dialed.items() if name not in allowed}
    # A person talked when their phone answered and hung up itself after TALK
    # seconds (a phone that lost a ringall race is hung up by the PBX instead).
    answered_by_phones = sum(
        1 for c in phones.calls() if c.answered and c.ended_by == "phone" and c.phone in PEOPLE
    )
    reached = [j for j in journeys if j.outcome in ANSWERED]

    # What leaves: the CSV export, the terminal, the engine's log.
    capsys.readouterr()
    assert main(["calls", "export", "--db", str(records)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    formula_cells = [
        (r["call_id"], k, v) for r in rows for k, v in r.items() if v.startswith(FORMULA_START)
    ]
    unprintable_cells = [
        (r["call_id"], k) for r in rows for k, v in r.items() if not v.isprintable()
    ]
    assert main(["calls", "list", "--db", str(records)]) == 0
    terminal = capsys.readouterr().out
    for journey in journeys:
        assert main(["calls", "show", journey.call_id, "--db", str(records)]) == 0
    terminal += capsys.readouterr().out
    log = engine.log_path.read_text(encoding="utf-8", errors="strict")
    log_lines = [line for line in log.splitlines() if line.strip()]
    not_json = [line for line in log_lines if not _is_json(line)]
    shown = [name for p in PEOPLE for name in _display_names(phones, p)]

    figures = {
        "calls_placed": len(placed),
        "answered_by_the_pbx": sum(p.answered for p in placed),
        "reached_a_person_records": len(reached),
        "reached_a_person_phones": answered_by_phones,
        "released_by_the_person": sum(p.released_by_far_end for p in placed),
        "refused_by_asterisk": dict(
            collections.Counter(p.rejected_with for p in placed if p.rejected_with)
        ),
        "journeys": len(journeys),
        "outcomes": collections.Counter(str(j.outcome) for j in journeys),
        "channels_created": sum(dialed.values()),
        "channels_per_endpoint": dict(dialed),
        "dials_outside_the_allowlist": sum(outside.values()),
        "csv_formula_cells": len(formula_cells),
        "csv_unprintable_cells": len(unprintable_cells),
        "terminal_unprintable_lines": len(printable_lines(terminal)),
        "log_lines_not_json": len(not_json),
        "log_non_ascii_lines": sum(1 for line in log_lines if not line.isascii()),
        "log_unmasked_numbers": unmasked_numbers(log, hostile),
        "display_names_unprintable": sum(1 for n in shown if not n.isprintable()),
        # "COVERAGE: " (a number no practice has) is the longest tag before the name.
        "display_names_too_long": sum(1 for n in shown if len(n) > DISPLAY_NAME_MAX + 10),
        "display_names_shown": len(shown),
        "seconds": round(seconds, 1),
        "parallel": PARALLEL,
    }
    _publish(figures)

    assert len(placed) == COUNT
    assert figures["dials_outside_the_allowlist"] == 0, outside
    assert dialed.get("carrier-out", 0) == 0
    assert figures["refused_by_asterisk"] == {}, _failed(placed)
    assert all(p.answered and p.released_by_far_end for p in placed), _failed(placed)
    assert len(journeys) == COUNT
    assert len(reached) == COUNT, figures["outcomes"]
    assert answered_by_phones == COUNT
    assert formula_cells == []
    assert unprintable_cells == []
    assert printable_lines(terminal) == []
    assert not_json == []
    assert figures["log_non_ascii_lines"] == 0
    assert figures["log_unmasked_numbers"] == []
    assert figures["display_names_unprintable"] == 0
    assert figures["display_names_too_long"] == 0


def configured_endpoints(config_file: Path) -> set[str]:
    """Every PJSIP endpoint the configuration can ring: front desks and doctors."""
    config = load_config(config_file)
    found: set[str] = set()
    for practice in config.practices.values():
        if practice.staff and practice.staff.endpoint:
            found.add(practice.staff.endpoint)
        if practice.oncall:
            found |= {d.endpoint for d in practice.oncall.doctors.values() if d.endpoint}
    return found


def _is_json(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _display_names(phones: Phones, phone: str) -> list[str]:
    """The display names of the INVITEs `phone` received, as its screen shows them.

    The From header's display name is a SIP quoted string: the quotes go and
    each `\\x` pair stands for `x`.
    """
    names = []
    text = phones[phone].events_file.read_text(encoding="utf-8", errors="replace")
    for line in text.splitlines():
        if "|invite|" in line:
            display = line.split("|", 4)[4].partition("<")[0].strip()
            if len(display) >= 2 and display[0] == display[-1] == '"':
                display = display[1:-1]
            names.append(re.sub(r"\\(.)", r"\1", display))
    return names


def _failed(placed: list[Placed]) -> str:
    bad = [p for p in placed if not (p.answered and p.released_by_far_end)]
    kinds = collections.Counter(
        (p.call.number_kind, p.call.name_kind, p.call.did_kind, p.rejected_with) for p in bad
    )
    return f"{len(bad)} calls did not reach a person: {kinds.most_common(20)}"


def _publish(figures: dict[str, object]) -> None:
    """Print the figures (visible with -s or on failure) and write them where asked."""
    text = json.dumps(figures, indent=1, sort_keys=True, default=str)
    print(text)
    target = os.environ.get("COVERAGE_HOSTILE_FIGURES")
    if target:
        Path(target).write_text(text + "\n", encoding="utf-8")
