"""The console over HTTP: sign-in, CSRF, scopes, the access log, messages, the live stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from coverage_engine.clock import FrozenClock
from coverage_engine.config import load_config
from coverage_engine.journey import (
    EventKind,
    HandoffCheckStarted,
    HandoffDialing,
    PageSent,
    parse_event,
)
from coverage_engine.records.pages import write_event
from coverage_engine.records.sqlite import RecordStore, SqliteRecorder, _transaction, open_database
from coverage_engine.web.access import Action
from coverage_engine.web.app import Console, build_app
from coverage_engine.web.db import ConsoleDb
from coverage_engine.web.live import LiveSource
from tests.unit.console_support import (
    LAKESIDE,
    MESSAGE,
    NIGHT,
    copy_template,
    csrf_token,
    make_template,
    place_call,
    sign_in,
    write_config,
)
from tests.unit.paging.support import CHECK, alert_on_a_handoff, alert_on_a_page

Client = aiohttp.ClientSession


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template(tmp_path_factory.mktemp("console") / "template.sqlite")


@dataclass
class Desk:
    records: Path
    clock: FrozenClock
    console: Console
    server: TestServer

    def client(self) -> Client:
        """A browser of its own (cookie jar), on the one console server."""
        return aiohttp.ClientSession(
            base_url=str(self.server.make_url("/")), cookie_jar=aiohttp.CookieJar(unsafe=True)
        )

    def kinds(self, call_id: str) -> list[EventKind]:
        """The event kinds of a call's journey, in order."""
        with RecordStore.open(self.records) as store:
            journey = store.get(call_id)
        assert journey is not None
        return [EventKind(e.name) for e in journey.events]

    def access(self) -> list[Any]:
        db = ConsoleDb.open(self.records)
        try:
            return db.access.read()
        finally:
            db.close()


@pytest.fixture
async def desk(template: Path, tmp_path: Path) -> AsyncIterator[Desk]:
    config_path = write_config(tmp_path)
    records = copy_template(template, tmp_path)
    config = load_config(config_path)
    clock = FrozenClock(NIGHT)
    db = ConsoleDb.open(records)
    live = LiveSource(records, clock.now, poll_seconds=0.02)
    console = Console(db=db, live=live, config=lambda: config, now=clock.now)
    task = asyncio.create_task(live.run())
    server = TestServer(build_app(console))
    await server.start_server()
    yield Desk(records, clock, console, server)
    await server.close()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    db.close()


@pytest.fixture
async def client(desk: Desk) -> AsyncIterator[Client]:
    async with desk.client() as c:
        yield c


async def test_a_wrong_password_is_refused_and_the_attempt_is_in_the_access_log(
    desk: Desk, client: Client
) -> None:
    """A wrong password gets 401 and "Wrong username or password"; the log names the attempt."""
    assert await sign_in(client, "olivia", "not the password!") == 401
    page = await client.get("/")
    assert page.url.path == "/login"
    failed = [e for e in desk.access() if e.action is Action.SIGN_IN_FAILED]
    assert [(e.username, e.allowed) for e in failed] == [("olivia", False)]


async def test_sign_in_is_throttled_after_five_failures_even_with_the_right_password(
    client: Client,
) -> None:
    """Five wrong passwords in a row lock the username for a while: the sixth try gets 429."""
    for _ in range(5):
        assert await sign_in(client, "olivia", "guess guess guess") == 401
    assert await sign_in(client, "olivia") == 429


async def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    desk: Desk, client: Client
) -> None:
    """Saving a message without the CSRF token: 403, no message, and the refusal is audited."""
    place_call(desk.records, "c1", at=NIGHT)
    assert await sign_in(client, "olivia") == 303
    response = await client.post("/calls/c1/message", data=dict(MESSAGE), allow_redirects=False)
    assert response.status == 403
    assert "security token" in await response.text()
    assert EventKind.MESSAGE_TAKEN not in desk.kinds("c1")
    assert [e.action for e in desk.access() if not e.allowed] == [Action.CSRF_REFUSED]


async def test_a_sign_in_form_from_elsewhere_is_refused(client: Client) -> None:
    """A sign-in post without the form's own token (login CSRF) is refused."""
    response = await client.post(
        "/login", data={"username": "olivia", "password": "x" * 12}, allow_redirects=False
    )
    assert response.status == 403


async def test_the_session_cookie_is_httponly_and_samesite_strict(client: Client) -> None:
    """The session cookie cannot be read by scripts nor sent by other sites."""
    page = await client.get("/login")
    token = re.search(r'name="login_token" value="([^"]+)"', await page.text())
    assert token is not None
    response = await client.post(
        "/login",
        data={
            "login_token": token[1],
            "username": "olivia",
            "password": "correct horse battery staple",
        },
        allow_redirects=False,
    )
    cookie = next(v for k, v in response.headers.items() if k == "Set-Cookie" and "ce_session" in v)
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie


async def test_operators_see_callers_masked_on_the_board_and_staff_see_them_whole(
    desk: Desk,
) -> None:
    """Operators' boards mask the caller; practice staff see the number (and that is audited)."""
    place_call(desk.records, "c1", at=NIGHT, events=[("queue_entered", {"queue": "answering"})])
    await asyncio.sleep(0.1)
    async with desk.client() as operator, desk.client() as staff:
        await sign_in(operator, "olivia")
        await sign_in(staff, "sam")
        seen_by_operator = await (await operator.get("/api/board")).json()
        seen_by_staff = await (await staff.get("/api/board")).json()
    (row,) = seen_by_operator["calls"]
    assert row["caller"].endswith("4321")
    assert "7654321" not in row["caller"]
    assert row["caller_name"] == "J. M."
    assert row["label"] == "in queue"
    assert seen_by_staff["calls"][0]["caller"] == "+15557654321"
    viewed = [e for e in desk.access() if e.action is Action.VIEW_BOARD_CALL]
    assert [(e.username, e.call_id) for e in viewed] == [("sam", "c1")]


async def test_the_board_shows_only_the_practices_a_user_covers(desk: Desk) -> None:
    """A Lakeside operator does not see Maple Grove's calls or panel."""
    place_call(desk.records, "c1", at=NIGHT)
    await asyncio.sleep(0.1)
    async with desk.client() as lena:
        await sign_in(lena, "lena")
        board = await (await lena.get("/api/board")).json()
    assert board["calls"] == []
    assert [p["id"] for p in board["practices"]] == ["lakeside"]


async def test_a_message_paged_after_its_call_ended_does_not_bring_the_call_back(
    desk: Desk,
) -> None:
    """The call ended; its urgent message is paged minutes later: the board stays empty."""
    place_call(desk.records, "c1", at=NIGHT, events=[("caller_hung_up", {}),
               ("ended", {"outcome": "abandoned_in_queue"})])  # fmt: skip
    conn = open_database(desk.records)
    try:
        with _transaction(conn):
            sent = PageSent(1, "voice", "primary", "nguyen")
            write_event(conn, "c1", NIGHT + timedelta(minutes=2), sent)
    finally:
        conn.close()
    await asyncio.sleep(0.2)
    async with desk.client() as sam:
        await sign_in(sam, "sam")
        board = await (await sam.get("/api/board")).json()
    assert board["calls"] == []


async def test_a_handoff_check_in_progress_is_no_call_on_the_board(desk: Desk) -> None:
    """The engine is calling the doctor coming on call: that is not a caller waiting."""
    recorder, _ = SqliteRecorder.open(desk.records, now=NIGHT)
    started = HandoffCheckStarted("maple-grove", "okafor", NIGHT, None, "nguyen", "rotation", 3)
    recorder.write("handoff-maple-grove-2026-12-01T0900Z", NIGHT, started)
    recorder.write("handoff-maple-grove-2026-12-01T0900Z", NIGHT, HandoffDialing(1, "okafor"))
    recorder.flush().result(timeout=10)
    recorder.close()
    await asyncio.sleep(0.2)
    async with desk.client() as sam:
        await sign_in(sam, "sam")
        board = await (await sam.get("/api/board")).json()
    assert board["calls"] == []


async def test_a_message_is_saved_on_the_journey_and_appears_in_the_practice_inbox(
    desk: Desk,
) -> None:
    """Olivia saves a message on the call; `message_taken` and `disposition` are on its journey;
    Sam (staff) finds it unread in the inbox, opens it (read) and acknowledges it."""
    place_call(desk.records, "c1", at=NIGHT)
    async with desk.client() as olivia:
        await sign_in(olivia, "olivia")
        csrf = await csrf_token(olivia)
        saved = await olivia.post(
            "/calls/c1/message",
            data={**MESSAGE, "csrf": csrf, "version": "0"},
            allow_redirects=False,
        )
        assert saved.status == 303
    with RecordStore.open(desk.records) as store:
        journey = store.get("c1")
    assert journey is not None
    taken = [e for e in journey.events if e.name == EventKind.MESSAGE_TAKEN]
    assert taken[0].event.details()["reason"] == MESSAGE["reason"]
    assert taken[0].event.details()["by"] == "olivia"
    assert [
        e.event.details()["disposition"] for e in journey.events if e.name == EventKind.DISPOSITION
    ] == ["message_for_office"]
    async with desk.client() as sam:
        await sign_in(sam, "sam")
        inbox = await (await sam.get("/api/messages")).json()
        assert [(m["call_id"], m["state"]) for m in inbox["messages"]] == [("c1", "unread")]
        page = await sam.get("/messages/c1")
        assert "Fever of 104" in await page.text()
        csrf = await csrf_token(sam)
        acked = await sam.post("/api/messages/c1/ack", headers={"X-CSRF-Token": csrf})
        assert acked.status == 200
        body = await acked.json()
    assert body["state"] == "acknowledged"
    assert body["acknowledged_by"] == "sam"
    with RecordStore.open(desk.records) as store:
        journey = store.get("c1")
    assert journey is not None
    (ack,) = [e for e in journey.events if e.name == EventKind.MESSAGE_ACKNOWLEDGED]
    assert ack.event.details() == {"by": "sam", "via": "console"}


@pytest.mark.parametrize(
    ("practice", "callback", "notice"),
    [
        ("maple-grove", "+1 555 765 4321", "Message saved and paged to the doctor on call."),
        ("maple-grove", "", "paged to the doctor on call without a callback number"),
        ("", "+1 555 765 4321", "No doctor can be paged: this call reached no practice"),
    ],
)
async def test_saving_an_urgent_message_says_what_paging_will_do_with_it(
    desk: Desk, practice: str, callback: str, notice: str
) -> None:
    """After saving, the operator reads whether the message is paged, and how: without a
    callback number it still is; on a call that reached no practice the operators are alerted."""
    place_call(desk.records, "c1", at=NIGHT, practice=practice)
    async with desk.client() as ada:
        await sign_in(ada, "ada")
        csrf = await csrf_token(ada)
        form = {**MESSAGE, "callback": callback, "csrf": csrf, "version": "0"}
        page = await ada.post("/calls/c1/message", data=form)
        text = await page.text()
    assert page.status == 200
    assert notice in text
    db = ConsoleDb.open(desk.records)
    try:
        assert db.messages.get("c1") is not None
    finally:
        db.close()


@pytest.mark.parametrize(
    ("field", "value", "complaint"),
    [
        ("reason", "x" * 2001, "too long"),
        ("caller_name", "Mary\x1b[31mJones", "control"),
        ("patient_name", "Tom\u202eJones", "control"),
        ("callback", "call me maybe", "not a phone number"),
        ("patient_dob", "2099-01-01", "in the past"),
        ("urgency", "whenever", "choose one of"),
    ],
)
async def test_bad_fields_are_refused_clearly_with_what_was_typed_kept(
    desk: Desk, field: str, value: str, complaint: str
) -> None:
    """A bad field gets 400, a message next to it, the other input kept, and nothing saved."""
    place_call(desk.records, "c1", at=NIGHT)
    async with desk.client() as olivia:
        await sign_in(olivia, "olivia")
        csrf = await csrf_token(olivia)
        response = await olivia.post(
            "/calls/c1/message", data={**MESSAGE, field: value, "csrf": csrf, "version": "0"}
        )
        text = await response.text()
    assert response.status == 400
    assert complaint in text
    assert "Tom Jones" in text or field == "patient_name"
    assert EventKind.MESSAGE_TAKEN not in desk.kinds("c1")


async def test_a_message_for_a_call_that_does_not_exist_is_refused_and_the_text_shown_back(
    desk: Desk,
) -> None:
    """No such call: 404, "was not saved", and the typed reason is on the page to copy."""
    async with desk.client() as olivia:
        await sign_in(olivia, "olivia")
        csrf = await csrf_token(olivia)
        response = await olivia.post(
            "/calls/nope.1/message", data={**MESSAGE, "csrf": csrf, "version": "0"}
        )
        text = await response.text()
    assert response.status == 404
    assert "was not saved" in text
    assert "Fever of 104" in text


async def test_two_operators_saving_the_same_call_the_second_is_told_and_keeps_their_text(
    desk: Desk,
) -> None:
    """Both opened the empty form; Olivia saves first; Oscar gets 409 with his text and hers."""
    place_call(desk.records, "c1", at=NIGHT)
    async with desk.client() as olivia, desk.client() as oscar:
        await sign_in(olivia, "olivia")
        await sign_in(oscar, "oscar")
        csrf_olivia, csrf_oscar = await csrf_token(olivia), await csrf_token(oscar)
        first, second = await asyncio.gather(
            olivia.post(
                "/api/calls/c1/message",
                json={**MESSAGE, "version": "0"},
                headers={"X-CSRF-Token": csrf_olivia},
            ),
            oscar.post(
                "/api/calls/c1/message",
                json={**MESSAGE, "reason": "Oscar's version", "version": "0"},
                headers={"X-CSRF-Token": csrf_oscar},
            ),
        )
        statuses = sorted([first.status, second.status])
        loser = second if second.status == 409 else first
        body = await loser.json()
    assert statuses == [200, 409]
    assert "after you opened it" in body["error"]
    assert body["current"]["version"] == 1
    assert desk.kinds("c1").count(EventKind.MESSAGE_TAKEN) == 1


async def test_an_operator_opening_another_practices_message_is_refused_and_audited(
    desk: Desk,
) -> None:
    """Lena covers Lakeside; Maple Grove's message is 403 for her, and the log says so."""
    place_call(desk.records, "c1", at=NIGHT)
    async with desk.client() as olivia:
        await sign_in(olivia, "olivia")
        csrf = await csrf_token(olivia)
        await olivia.post("/calls/c1/message", data={**MESSAGE, "csrf": csrf, "version": "0"})
    async with desk.client() as lena:
        await sign_in(lena, "lena")
        page = await lena.get("/messages/c1")
        call = await lena.get("/calls/c1")
        text = await page.text()
    assert page.status == 403
    assert call.status == 403
    assert "Fever" not in text
    refused = [(e.username, e.action, e.call_id) for e in desk.access() if not e.allowed]
    assert ("lena", Action.VIEW_MESSAGE, "c1") in refused
    assert ("lena", Action.VIEW_CALL, "c1") in refused


async def test_a_correction_within_15_minutes_keeps_every_version_and_later_ones_are_refused(
    desk: Desk,
) -> None:
    """Olivia corrects the urgency after 5 minutes (kept as a change); after 16 she cannot."""
    place_call(desk.records, "c1", at=NIGHT)
    async with desk.client() as olivia:
        await sign_in(olivia, "olivia")
        csrf = await csrf_token(olivia)
        headers = {"X-CSRF-Token": csrf}
        first = await olivia.post(
            "/api/calls/c1/message", json={**MESSAGE, "version": "0"}, headers=headers
        )
        assert first.status == 200
        desk.clock.advance(300)
        corrected = await olivia.post(
            "/api/calls/c1/message",
            json={**MESSAGE, "urgency": "emergency", "version": "1"},
            headers=headers,
        )
        assert corrected.status == 200
        assert (await corrected.json())["version"] == 2
        desk.clock.advance(660)
        late = await olivia.post(
            "/api/calls/c1/message",
            json={**MESSAGE, "urgency": "routine", "version": "2"},
            headers=headers,
        )
        assert late.status == 403
        assert "15 minutes" in (await late.json())["error"]
    with RecordStore.open(desk.records) as store:
        journey = store.get("c1")
    assert journey is not None
    (change,) = [e for e in journey.events if e.name == EventKind.MESSAGE_CORRECTED]
    assert change.event.details()["changes"] == {"urgency": ["urgent", "emergency"]}
    assert change.event.details()["version"] == 2


async def test_the_stream_pops_a_call_up_for_the_operator_whose_phone_took_it(
    desk: Desk,
) -> None:
    """Olivia names phone operator1; when operator1 answers a call, her stream sends `pop`."""
    async with desk.client() as olivia:
        await sign_in(olivia, "olivia")
        csrf = await csrf_token(olivia)
        await olivia.post("/phone", data={"csrf": csrf, "phone": "operator1"})
        stream = await olivia.get("/api/stream")
        place_call(
            desk.records,
            "c9",
            at=NIGHT,
            events=[
                ("queue_entered", {"queue": "answering"}),
                ("operator_answered", {"member": "PJSIP/operator1"}),
            ],
        )
        events: list[tuple[str, Any]] = []
        async with asyncio.timeout(5):
            while not any(kind == "pop" for kind, _ in events):
                line = (await stream.content.readline()).decode().strip()
                if line.startswith("event: "):
                    kind = line[7:]
                    data = (await stream.content.readline()).decode().strip()
                    events.append((kind, json.loads(data[6:])))
        stream.close()
        pop = await olivia.get("/calls/c9/pop")
        text = await pop.text()
    assert ("pop", {"call_id": "c9"}) in events
    assert "Maple Grove Pediatrics answering service" in text
    assert "+15557654321" in text
    assert any(e.action is Action.SCREEN_POP and e.call_id == "c9" for e in desk.access())


async def test_the_pop_lists_the_callers_earlier_calls_to_this_practice(desk: Desk) -> None:
    """Two earlier calls from the same number in the last 30 days show; an older one does not."""
    place_call(desk.records, "old", at=NIGHT - timedelta(days=40))
    place_call(desk.records, "week", at=NIGHT - timedelta(days=7))
    place_call(desk.records, "yday", at=NIGHT - timedelta(days=1))
    place_call(
        desk.records, "other", at=NIGHT - timedelta(days=1), did=LAKESIDE, practice="lakeside"
    )
    place_call(desk.records, "now", at=NIGHT)
    async with desk.client() as olivia:
        await sign_in(olivia, "olivia")
        api = await (await olivia.get("/api/calls/now")).json()
    assert [c["call_id"] for c in api["earlier_calls"]] == ["yday", "week"]


async def test_pages_carry_a_strict_content_security_policy(client: Client) -> None:
    """No inline script can run, nothing is framed, nothing is cached."""
    page = await client.get("/login")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY"


async def test_caller_text_is_escaped_in_pages(desk: Desk) -> None:
    """A caller name carrying HTML is shown as text, never as markup."""
    place_call(desk.records, "c1", at=NIGHT, name="<script>alert(1)</script>")
    async with desk.client() as ada:
        await sign_in(ada, "ada")
        text = await (await ada.get("/calls/c1")).text()
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


async def test_the_board_shows_each_viewer_the_alerts_of_their_practices(desk: Desk) -> None:
    """An unacknowledged urgent message and an unconfirmed handoff at Maple Grove: Olivia
    (operator) sees both, the message's link opening its call; Sam (staff) opens the message
    itself; Lena (Lakeside) sees neither. No patient data in an alert."""
    alert_on_a_page(desk.records, "c1")
    alert_on_a_handoff(desk.records)
    await asyncio.sleep(0.3)
    seen = {}
    for user in ("olivia", "sam", "lena"):
        async with desk.client() as client:
            await sign_in(client, user)
            seen[user] = (await (await client.get("/api/board")).json())["alerts"]
    assert [(a["kind"], a["id"], a["link"]) for a in seen["olivia"]] == [
        ("handoff", CHECK, f"/calls/{CHECK}"),
        ("page", "c1", "/calls/c1"),
    ]
    assert seen["olivia"][0]["headline"] == (
        "Dr. Adaeze Okafor did not confirm being on call for Maple Grove Pediatrics from "
        "Tue 02:00 (1 call without a press of 1)"
    )
    assert seen["olivia"][1]["headline"] == (
        "URGENT message for Maple Grove Pediatrics not acknowledged since 03:00 (0 min)"
    )
    assert [a["link"] for a in seen["sam"]] == [f"/calls/{CHECK}", "/messages/c1"]
    assert seen["lena"] == []
    shown = json.dumps(seen["olivia"])
    assert not any(item in shown for item in ("Mary Jones", "Tom Jones", "765 4321", "Fever"))


async def test_an_operator_marks_a_handoff_alert_done_and_it_leaves_every_board(desk: Desk) -> None:
    """Olivia reached Dr. Okafor on her cell: with the form's token the alert is resolved (on
    the record and in the access log) and gone; without the token nothing changes."""
    alert_on_a_handoff(desk.records)
    await asyncio.sleep(0.3)
    async with desk.client() as olivia:
        await sign_in(olivia, "olivia")
        refused = await olivia.post(f"/handoffs/{CHECK}/resolve", data={"note": "x"},
                                    allow_redirects=False)  # fmt: skip
        assert refused.status == 403
        csrf = await csrf_token(olivia)
        done = await olivia.post(f"/handoffs/{CHECK}/resolve",
                                 data={"csrf": csrf, "note": "reached on her cell"},
                                 allow_redirects=False)  # fmt: skip
        assert done.status == 303
        await asyncio.sleep(0.3)
        board = await (await olivia.get("/api/board")).json()
        page = await (await olivia.get(f"/calls/{CHECK}")).text()
    assert board["alerts"] == []
    assert "dealt with by olivia" in page
    kinds = desk.kinds(CHECK)
    assert kinds[-1] == EventKind.HANDOFF_ALERT_RESOLVED
    resolved = [e for e in desk.access() if e.action is Action.RESOLVE_HANDOFF_ALERT]
    assert [(e.username, e.call_id, e.allowed) for e in resolved] == [("olivia", CHECK, True)]


async def test_the_practice_panel_turns_open_the_moment_the_office_opens(desk: Desk) -> None:
    """Panels are cached between updates, but not past the change they announce."""
    desk.clock.advance(5 * 3600 - 5)  # 07:59:55
    async with desk.client() as sam:
        await sign_in(sam, "sam")
        before = await (await sam.get("/api/board")).json()
        desk.clock.advance(6)  # 08:00:01
        after = await (await sam.get("/api/board")).json()
    assert [p["status"] for p in before["practices"]] == ["closed"]
    assert [p["status"] for p in after["practices"]] == ["open"]


async def test_a_session_idle_for_more_than_two_hours_is_signed_out(desk: Desk) -> None:
    """An unattended desk signs itself out: after 2 h without a request, 401."""
    async with desk.client() as sam:
        await sign_in(sam, "sam")
        assert (await sam.get("/api/board")).status == 200
        desk.clock.advance(2 * 3600 + 1)
        assert (await sam.get("/api/board")).status == 401


def write_events(records: Path, call_id: str, *events: tuple[str, dict[str, Any]]) -> None:
    """Append events to a call's journey, as paging does after the call."""
    recorder, _ = SqliteRecorder.open(records, now=NIGHT)
    try:
        for i, (kind, details) in enumerate(events, start=1):
            recorder.write(call_id, NIGHT + timedelta(minutes=i), parse_event(kind, details))
        recorder.flush().result(timeout=10)
    finally:
        recorder.close()


async def test_an_urgent_message_nobody_acknowledged_is_a_banner_and_its_call_stays_off(
    desk: Desk,
) -> None:
    """Paging ran up to the operators after the call ended: Maple Grove's board shows the
    alert (not the call again); Lakeside's does not; Oscar, who did not take the message,
    may read it; Sam's acknowledgement takes the banner down."""
    place_call(desk.records, "c1", at=NIGHT, events=[
        ("operator_answered", {"member": "PJSIP/operator1"}),
        ("ended", {"outcome": "answered_by_operator", "answered_by": "PJSIP/operator1"}),
    ])  # fmt: skip
    async with desk.client() as olivia:
        await sign_in(olivia, "olivia")
        headers = {"X-CSRF-Token": await csrf_token(olivia)}
        saved = await olivia.post("/api/calls/c1/message", json={**MESSAGE, "version": "0"},
                                  headers=headers)  # fmt: skip
        assert saved.status == 200
    write_events(
        desk.records, "c1",
        ("page_requested", {"urgency": "urgent", "by": "olivia", "why": "taken urgent"}),
        ("page_sent", {"attempt": 1, "channel": "voice", "target": "primary", "doctor": "nguyen"}),
        ("page_escalated", {"attempt": 2, "target": "operators", "reason": "no acknowledgement"}),
    )  # fmt: skip
    await asyncio.sleep(0.2)
    async with desk.client() as oscar, desk.client() as lena, desk.client() as sam:
        await sign_in(oscar, "oscar")
        await sign_in(lena, "lena")
        await sign_in(sam, "sam")
        board = await (await oscar.get("/api/board")).json()
        assert board["calls"] == []
        (alert,) = board["alerts"]
        assert (alert["call_id"], alert["doctors"]) == ("c1", ["Dr. Minh Nguyen"])
        assert (await (await lena.get("/api/board")).json())["alerts"] == []
        call_page = await (await oscar.get("/calls/c1")).text()
        assert "Fever of 104" in call_page
        acked = await sam.post("/api/messages/c1/ack",
                               headers={"X-CSRF-Token": await csrf_token(sam)})  # fmt: skip
        assert acked.status == 200
        await asyncio.sleep(0.2)
        assert (await (await oscar.get("/api/board")).json())["alerts"] == []
        assert "Fever of 104" not in await (await oscar.get("/calls/c1")).text()


async def test_another_operator_cannot_read_a_message_through_the_call(desk: Desk) -> None:
    """Oscar did not take Olivia's message: the call's page and API leave its text out."""
    place_call(desk.records, "c1", at=NIGHT)
    async with desk.client() as olivia, desk.client() as oscar:
        await sign_in(olivia, "olivia")
        headers = {"X-CSRF-Token": await csrf_token(olivia)}
        await olivia.post("/api/calls/c1/message", json={**MESSAGE, "version": "0"},
                          headers=headers)  # fmt: skip
        await sign_in(oscar, "oscar")
        page = await (await oscar.get("/calls/c1")).text()
        api = await (await oscar.get("/api/calls/c1")).json()
    assert "Fever of 104" not in page
    assert "Fever of 104" not in json.dumps(api)
    assert api["message"] is None
