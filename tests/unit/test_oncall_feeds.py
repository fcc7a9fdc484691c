"""On-call schedules from iCalendar feeds, served by a local HTTP server that can be slow or down.

The feeds are shaped like real exports: Amion-like (weekly RRULE shifts of
24 and 48 hours across midnight, an EXDATE, an event for a doctor the
practice does not have), Google-like (VTIMEZONE, all-day events, doctors by
ATTENDEE e-mail), Outlook-like (a Windows time-zone name, a 48-hour weekend
shift across the spring DST change). Dates are set from today, so the tests
mean the same next year.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from coverage_engine.cli import main
from coverage_engine.config import load_config, load_report
from coverage_engine.config.feedcache import cache_paths
from coverage_engine.feeds import FeedGauges, refresh
from coverage_engine.routing import decide
from coverage_engine.schedule.feed import parse_feed, roster_of, state_of
from tests.unit.reference import MAPLE_DID, REFERENCE_CONFIG

CHICAGO = ZoneInfo("America/Chicago")
TODAY = datetime.now(UTC).astimezone(CHICAGO).date()
# A Monday at least a week ahead: the first week the feeds publish.
MON = TODAY + timedelta(days=7 + (7 - TODAY.weekday()) % 7)


def day(offset: int) -> str:
    return (MON + timedelta(days=offset)).strftime("%Y%m%d")


def at(offset: int, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(MON + timedelta(days=offset), time(hour, minute), tzinfo=CHICAGO)


def dst_start_after(start: date) -> date:
    """The second Sunday of March (US DST begins) after `start`."""
    year = start.year if start < date(start.year, 3, 1) else start.year + 1
    first = date(year, 3, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7)


DST = dst_start_after(MON)


def ics(*events: str, head: str = "PRODID:-//Amion//Call Schedule//EN\r\n") -> str:
    return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" + head + "".join(events) + "END:VCALENDAR\r\n"


def event(uid: str, summary: str, start: str, end: str, extra: str = "") -> str:
    return (f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:{summary}\r\n"
            f"{start}\r\n{end}\r\n{extra}END:VEVENT\r\n")  # fmt: skip


# Mon/Wed/Fri Patel 08:00-08:00 (24 h across midnight), except Friday of week 2
# (EXDATE); Tue/Thu Nguyen (named "Nguyen, M": by surname); Sat-Mon Okafor 48 h;
# Friday of week 2: a doctor this practice does not have.
AMION = ics(
    event("a1", "Peds Call - Patel\\, Priya", f"DTSTART;TZID=America/Chicago:{day(0)}T080000",
          f"DTEND;TZID=America/Chicago:{day(1)}T080000",
          f"RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=12\r\n"
          f"EXDATE;TZID=America/Chicago:{day(11)}T080000\r\n"),
    event("a2", "Peds Call - Nguyen\\, M", f"DTSTART;TZID=America/Chicago:{day(1)}T080000",
          f"DTEND;TZID=America/Chicago:{day(2)}T080000",
          "RRULE:FREQ=WEEKLY;BYDAY=TU,TH;COUNT=8\r\n"),
    event("a3", "Weekend Call - Okafor\\, Adaeze", f"DTSTART;TZID=America/Chicago:{day(5)}T080000",
          f"DTEND;TZID=America/Chicago:{day(7)}T080000", "RRULE:FREQ=WEEKLY;COUNT=4\r\n"),
    event("a4", "Peds Call - Smith\\, John", f"DTSTART;TZID=America/Chicago:{day(11)}T080000",
          f"DTEND;TZID=America/Chicago:{day(12)}T080000"),
)  # fmt: skip

GOOGLE = ics(
    "BEGIN:VTIMEZONE\r\nTZID:America/Chicago\r\nBEGIN:STANDARD\r\nDTSTART:19701101T020000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0600\r\n"
    "END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700308T020000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nTZOFFSETFROM:-0600\r\nTZOFFSETTO:-0500\r\n"
    "END:DAYLIGHT\r\nEND:VTIMEZONE\r\n",
    event("g1", "On call", f"DTSTART;VALUE=DATE:{day(0)}", f"DTEND;VALUE=DATE:{day(1)}",
          "ATTENDEE;CN=Adaeze;ROLE=REQ-PARTICIPANT:mailto:Adaeze.Okafor@MapleGrove.example\r\n"
          "RRULE:FREQ=DAILY;COUNT=30\r\n"),
    head="PRODID:-//Google Inc//Google Calendar 70.9054//EN\r\nX-WR-TIMEZONE:America/Chicago\r\n",
)  # fmt: skip

OUTLOOK = ics(
    "BEGIN:VTIMEZONE\r\nTZID:Central Standard Time\r\nBEGIN:STANDARD\r\nDTSTART:16011104T020000\r\n"
    "RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0600\r\n"
    "END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:16010311T020000\r\n"
    "RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3\r\nTZOFFSETFROM:-0600\r\nTZOFFSETTO:-0500\r\n"
    "END:DAYLIGHT\r\nEND:VTIMEZONE\r\n",
    event("o1", "On-call: Dr. Priya Patel",
          f"DTSTART;TZID=Central Standard Time:{(DST - timedelta(days=1)):%Y%m%d}T080000",
          f"DTEND;TZID=Central Standard Time:{(DST + timedelta(days=1)):%Y%m%d}T080000"),
    head="PRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN\r\n",
)  # fmt: skip


class FeedServer:
    """A local HTTP server for the feed; `body`, `status` and `delay` change what it does."""

    def __init__(self) -> None:
        self.body = AMION
        self.status = 200
        self.delay = 0.0
        self.hits = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.port = 0
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self._thread.start()
        started.wait(10)

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)

        async def handler(request: web.Request) -> web.Response:
            self.hits += 1
            await asyncio.sleep(self.delay)
            return web.Response(text=self.body, status=self.status, content_type="text/calendar")

        async def start() -> None:
            app = web.Application()
            app.router.add_get("/oncall.ics", handler)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            started.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/oncall.ics"

    def stop(self) -> None:
        """Down: nothing listens on the port any more."""
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._runner = None

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    box = FeedServer()
    yield box
    box.close()


def with_feed(tmp_path: Path, source: str, stale_hours: int = 24) -> Path:
    """The reference file with Maple Grove's on-call schedule from `source` (url or path)."""
    key = "url" if source.startswith("http") else "path"
    text = REFERENCE_CONFIG.read_text(encoding="utf-8").replace(
        "../var/records.sqlite", "records.sqlite"
    )
    old = "      backup: next_in_rotation     # after okafor comes patel\n"
    assert old in text
    text = text.replace(old, old + f"      feed: {{{key}: \"{source}\", refresh_minutes: 15, "
                                   f"stale_after_hours: {stale_hours}}}\n")  # fmt: skip
    mail = "okafor: {name: Dr. Adaeze Okafor, endpoint: okafor"
    assert text.count(mail) == 1
    text = text.replace(mail, mail + ", email: adaeze.okafor@maplegrove.example")
    # The reference Christmas swap would beat the feed on some dates: out.
    swap = ("        - {doctor: okafor, from: 2026-12-24 12:00, until: 2026-12-26 08:00, "
            "reason: Christmas}\n")
    assert swap in text
    text = text.replace(swap, "").replace("      swaps:\n", "")
    path = tmp_path / "coverage.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def fetch_now(config: Path, now: datetime | None = None) -> object:
    loaded = load_config(config)
    return asyncio.run(refresh(config, loaded, "maple-grove", now or datetime.now(UTC), 1.0))


def oncall(config: Path, instant: datetime, now: datetime | None = None) -> tuple[str, tuple]:
    plan = decide(load_report(config, now=now).config, instant, MAPLE_DID)
    assert plan.oncall is not None
    return plan.oncall.primary, plan.notes


# ---------------------------------------------------------------- parsing shapes


def test_an_amion_like_feed_gives_recurring_cross_midnight_shifts(
    tmp_path: Path, server: FeedServer
) -> None:
    """Weekly shifts expand; 24 h and 48 h shifts run across midnight; an EXDATE is honoured."""
    config = with_feed(tmp_path, server.url)
    result = fetch_now(config)
    assert result.ok  # type: ignore[attr-defined]
    assert oncall(config, at(0, 23))[0] == "patel"  # Monday night, Patel's 24 h shift
    assert oncall(config, at(2, 3))[0] == "nguyen"  # Wed 03:00: Tuesday's shift runs on
    assert oncall(config, at(6, 12))[0] == "okafor"  # Sunday noon, the 48 h weekend
    _primary, notes = oncall(config, at(0, 23))
    assert "on call: patel (feed: Peds Call - Patel, Priya)" in notes


def test_an_exception_date_and_an_unknown_doctor_leave_a_gap_the_rotation_fills(
    tmp_path: Path, server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Friday of week 2: Patel's shift is excluded and Dr. Smith is nobody here."""
    config = with_feed(tmp_path, server.url)
    fetch_now(config)
    plan = decide(load_config(config), at(11, 20), MAPLE_DID)
    assert plan.feed_gap == "the on-call feed names nobody then"
    assert "the on-call feed names nobody then: on call by the YAML rotation instead" in plan.notes
    assert main(["check", str(config)]) == 0
    out = capsys.readouterr().out
    assert 'the on-call feed: event "Peds Call - Smith, John"' in out
    assert "names no doctor of this practice; it covers nobody" in out
    code = main(["calendar", str(config), "--practice", "maple-grove",
                 "--from", str(MON + timedelta(days=11)), "--days", "1"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    assert "!! GAP: the on-call feed names nobody then (the YAML rotation answers instead)" in out


def test_a_google_like_feed_names_doctors_by_attendee_email_all_day(
    tmp_path: Path, server: FeedServer
) -> None:
    """All-day events from local midnight; the attendee's address (any case) picks Okafor."""
    server.body = GOOGLE
    config = with_feed(tmp_path, server.url)
    assert fetch_now(config).ok  # type: ignore[attr-defined]
    assert oncall(config, at(3, 0, 1))[0] == "okafor"
    assert oncall(config, at(3, 23, 59))[0] == "okafor"


def test_an_outlook_like_feed_with_a_windows_zone_spans_the_dst_weekend(tmp_path: Path) -> None:
    """Saturday 08:00 to Monday 08:00 across the jump: 47 hours of Patel, by the file's zone."""
    feed = tmp_path / "oncall.ics"
    feed.write_text(OUTLOOK, encoding="utf-8")
    config = with_feed(tmp_path, str(feed))
    assert fetch_now(config).ok  # type: ignore[attr-defined]
    state = state_of(load_config(config).practices["maple-grove"].oncall)
    assert state is not None
    (shift,) = state.shifts
    assert shift.end - shift.start == timedelta(hours=47)
    sunday = datetime.combine(DST, time(12), tzinfo=CHICAGO)
    assert oncall(config, sunday)[0] == "patel"
    monday_early = datetime.combine(DST + timedelta(days=1), time(7, 30), tzinfo=CHICAGO)
    assert oncall(config, monday_early)[0] == "patel"


# ---------------------------------------------------------------- down, slow, malformed, stale


def test_a_malformed_feed_keeps_the_last_good_copy(
    tmp_path: Path, server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """An error page instead of a calendar: refused, the copy stays, check says so."""
    config = with_feed(tmp_path, server.url)
    fetch_now(config)
    ics_copy, status = cache_paths(config, load_config(config), "maple-grove")
    good = ics_copy.read_bytes()
    server.body = "<html>Service temporarily unavailable</html>"
    result = fetch_now(config)
    assert not result.ok  # type: ignore[attr-defined]
    assert "not an iCalendar feed" in result.error  # type: ignore[attr-defined]
    assert ics_copy.read_bytes() == good
    assert oncall(config, at(0, 23))[0] == "patel"
    assert main(["check", str(config)]) == 0
    assert "the last fetch of the on-call feed failed (not an iCalendar feed" in (
        capsys.readouterr().out
    )
    assert json.loads(status.read_text())["last_error"].startswith("not an iCalendar feed")


@pytest.mark.parametrize("trouble", ["slow", "down", "http-500"])
def test_a_slow_or_down_server_keeps_the_last_good_copy(
    tmp_path: Path, server: FeedServer, trouble: str
) -> None:
    """No answer within the time limit, nothing listening, or an HTTP error: copy kept."""
    config = with_feed(tmp_path, server.url)
    fetch_now(config)
    ics_copy, _ = cache_paths(config, load_config(config), "maple-grove")
    good = ics_copy.read_bytes()
    if trouble == "slow":
        server.delay = 3.0
    elif trouble == "down":
        server.stop()
    else:
        server.status = 500
    result = fetch_now(config)
    assert not result.ok  # type: ignore[attr-defined]
    expected = {"slow": "no answer within 1 s", "down": "cannot reach the feed",
                "http-500": "HTTP 500"}[trouble]  # fmt: skip
    assert expected in result.error  # type: ignore[attr-defined]
    assert ics_copy.read_bytes() == good
    assert oncall(config, at(0, 23))[0] == "patel"


def test_a_feed_never_fetched_is_a_warning_and_a_gap_and_the_rotation_answers(
    tmp_path: Path, server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Down from the start: check warns, feeds status exits 1, the calendar shows gaps."""
    server.stop()
    config = with_feed(tmp_path, server.url)
    assert main(["feeds", "refresh", "--config", str(config), "--timeout", "1"]) == 1
    assert "!! not fetched: cannot reach the feed" in capsys.readouterr().out
    assert main(["check", str(config)]) == 0
    assert "warning: the on-call feed cannot be fetched" in capsys.readouterr().out
    assert main(["feeds", "status", "--config", str(config)]) == 1
    capsys.readouterr()
    rotation = decide(load_config(REFERENCE_CONFIG), at(0, 23), MAPLE_DID).oncall
    assert rotation is not None
    assert oncall(config, at(0, 23))[0] == rotation.primary
    assert main(["calendar", str(config), "--practice", "maple-grove",
                 "--from", str(MON), "--days", "1"]) == 1  # fmt: skip


def test_a_stale_copy_is_not_used(tmp_path: Path, server: FeedServer) -> None:
    """Fetched 30 hours before `now`, with stale_after_hours 24: the rotation answers."""
    config = with_feed(tmp_path, server.url)
    fetched = datetime.now(UTC) - timedelta(hours=30)
    fetch_now(config, now=fetched)
    rotation = decide(load_config(REFERENCE_CONFIG), at(0, 23), MAPLE_DID).oncall
    assert rotation is not None
    primary, notes = oncall(config, at(0, 23))
    assert primary == rotation.primary
    assert any(n.startswith("the on-call feed is stale (last fetched") for n in notes)
    fresh_primary, _ = oncall(config, at(0, 23), now=fetched + timedelta(hours=1))
    assert fresh_primary == "patel"


def test_a_manual_swap_beats_the_feed(tmp_path: Path, server: FeedServer) -> None:
    """A swap made for a deliberate exception wins over the published schedule."""
    from coverage_engine.changes import Actor, ChangeService

    config = with_feed(tmp_path, server.url)
    fetch_now(config)
    ChangeService(config).add_swap(Actor("jdoe"), practice="maple-grove", doctor="okafor",
                                   start=at(0, 18), until=at(1, 6), reason="patel ill")  # fmt: skip
    assert oncall(config, at(0, 23))[0] == "okafor"
    assert oncall(config, at(0, 17))[0] == "patel"


def test_feed_metrics_say_up_failures_and_uncovered_hours(
    tmp_path: Path, server: FeedServer
) -> None:
    """What a Prometheus alert needs: up 1/0, failures counted, uncovered seconds ahead."""
    config = with_feed(tmp_path, server.url)
    registry = CollectorRegistry()
    gauges = FeedGauges(registry)
    gauges.update(fetch_now(config))  # type: ignore[arg-type]
    labels = {"practice": "maple-grove"}
    assert registry.get_sample_value("coverage_oncall_feed_up", labels) == 1
    assert registry.get_sample_value("coverage_oncall_feed_uncovered_seconds", labels) > 0
    server.status = 503
    gauges.update(fetch_now(config))  # type: ignore[arg-type]
    assert registry.get_sample_value("coverage_oncall_feed_up", labels) == 0
    assert registry.get_sample_value("coverage_oncall_feed_fetch_failures_total", labels) == 1


def test_the_engine_holder_picks_up_a_refreshed_copy(tmp_path: Path, server: FeedServer) -> None:
    """The running engine's reload watches the copy: a fetch reaches the next call."""
    from coverage_engine.ari import AriSettings
    from coverage_engine.bootstrap import EngineParts, load_holder

    config = with_feed(tmp_path, server.url)
    holder = load_holder(EngineParts(config, AriSettings("http://127.0.0.1:1/ari", "u", "p")))
    before = decide(holder.current, at(0, 23), MAPLE_DID)
    assert before.feed_gap is not None
    fetch_now(config)
    assert holder.changed_on_disk()
    assert holder.reload(why="file changed")
    after = decide(holder.current, at(0, 23), MAPLE_DID)
    assert (after.feed_gap, after.oncall.primary if after.oncall else None) == (None, "patel")


def test_parsing_is_pure_and_names_several_doctors_as_a_problem() -> None:
    """An event naming two doctors covers nobody, and says whom it named."""
    text = ics(event("x", "Patel / Nguyen swap", f"DTSTART;TZID=America/Chicago:{day(0)}T080000",
                     f"DTEND;TZID=America/Chicago:{day(1)}T080000"))  # fmt: skip
    roster = roster_of({"patel": ("Dr. Priya Patel", (), None),
                        "nguyen": ("Dr. Minh Nguyen", (), None)})  # fmt: skip
    parsed = parse_feed(text, roster, CHICAGO, datetime.now(UTC))
    assert parsed.shifts == ()
    assert parsed.problems[0].endswith("names several doctors (nguyen, patel); it covers nobody")
