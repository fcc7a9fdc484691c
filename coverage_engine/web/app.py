"""The operators' console: aiohttp handlers, sessions, CSRF and access checks.

Server-rendered pages (jinja2, autoescaped: caller-controlled text is
hostile) and a JSON API under /api that the pages' small script uses too
(`openapi.yaml` documents it). Every view of a call or message, and every
refusal, goes to the access log before the response leaves.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
import structlog
from aiohttp import web

from coverage_engine.ami.presence import DeviceState, Member, Presence
from coverage_engine.changes import ChangeService
from coverage_engine.config.model import CoverageConfig, Practice
from coverage_engine.journey import EventKind, Journey, JourneyKind
from coverage_engine.logs import mask_caller
from coverage_engine.message import (
    CORRECTION_WINDOW,
    Disposition,
    Message,
    MessageInvalid,
    Urgency,
    parse_fields,
)
from coverage_engine.paging.policy import pages
from coverage_engine.records.handoffs import HandoffCheck
from coverage_engine.records.messages import (
    CorrectionClosed,
    MessageConflict,
    MessageError,
    MessageFilter,
    NoSuchCall,
)
from coverage_engine.records.model import JourneyFilter
from coverage_engine.web import changes_api
from coverage_engine.web.access import AccessEntry, Action
from coverage_engine.web.accounts import LoginThrottle, Role, Session, User, verify_password
from coverage_engine.web.alerts import alerts_json
from coverage_engine.web.board import LiveCall
from coverage_engine.web.db import ConsoleDb
from coverage_engine.web.live import LiveSource
from coverage_engine.web.practices import ConfigDirectory, PracticeNow, practice_now

log = structlog.get_logger("coverage_engine.web")

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "ce_session"
LOGIN_COOKIE = "ce_login"
HISTORY_DAYS = 30
MAX_BODY = 64 * 1024  # a message form is a few kB; anything bigger is refused (413)
_PHONE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,39}")
_CALL_ID = re.compile(r"[A-Za-z0-9._-]{1,80}")
_LOGIN_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
_PUBLIC = ("/login", "/static/", "/healthz", "/favicon.ico")
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)


@dataclass
class Console:
    """Everything the console needs, handed in by the composition root."""

    db: ConsoleDb
    live: LiveSource
    config: Callable[[], CoverageConfig]
    now: Callable[[], datetime]
    # Operator presence from AMI; None when the engine does not follow it.
    presence: Callable[[], Presence | None] = lambda: None
    secure_cookies: bool = False  # set when served over HTTPS (behind a TLS proxy)
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    # Overrides and swaps (coverage_engine.changes); None: not served (no config file).
    changes: ChangeService | None = None
    # A board is sent at least this often, so proxies keep the stream open.
    stream_keepalive_seconds: float = 15.0
    # Caches shared by every viewer (see `_practices`, `_signed_in_phones`).
    panels: dict[str, tuple[CoverageConfig, datetime, datetime, PracticeNow]] = field(
        default_factory=dict
    )
    phones_cache: tuple[float, dict[str, str]] = (float("-inf"), {})
    boards: dict[tuple[Any, ...], SharedBoard] = field(default_factory=dict)


CONSOLE = web.AppKey("console", Console)
SESSION: web.RequestKey[Session | None] = web.RequestKey("session")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- helpers ---------------------------------------------------------------------------


def _console(request: web.Request) -> Console:
    return request.app[CONSOLE]


def _session(request: web.Request) -> Session:
    session = request[SESSION]
    assert session is not None  # the sessions middleware lets no other request through
    return session


def _remote(request: web.Request) -> str:
    return request.remote or ""


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def _zone(config: CoverageConfig, practice: str) -> ZoneInfo:
    found = config.practice(practice)
    return found.zone if found is not None else ZoneInfo("UTC")


def _local(moment: datetime | None, zone: ZoneInfo, fmt: str = "%a %b %d %H:%M") -> str:
    if moment is None:
        return ""
    return moment.astimezone(zone).strftime(fmt)


def _duration(seconds: float) -> str:
    total = int(seconds)
    if total < 3600:
        return f"{total // 60}:{total % 60:02d}"
    return f"{total // 3600}h{(total % 3600) // 60:02d}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template: caller names and reasons are hostile text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = _local
    env.filters["duration"] = _duration
    env.filters["masked"] = mask_caller
    return env


_ENV = _environment()


def _render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    session: Session | None = request.get(SESSION)
    console = _console(request)
    body = _ENV.get_template(template).render(
        session=session,
        user=session.user if session else None,
        csrf=session.csrf if session else "",
        now=console.now(),
        urgencies=list(Urgency),
        dispositions=list(Disposition),
        **context,
    )
    return web.Response(text=body, status=status, content_type="text/html")


def _refuse(request: web.Request, status: int, message: str) -> web.Response:
    if _wants_json(request):
        return web.json_response({"error": message}, status=status)
    return _render(request, "error.html", status=status, status_code=status, message=message)


async def _deny(
    request: web.Request,
    action: Action,
    message: str,
    *,
    call_id: str | None = None,
    practice: str | None = None,
) -> web.Response:
    """Refuse with 403, and write the refusal to the access log first."""
    console = _console(request)
    session: Session | None = request.get(SESSION)
    await console.db.audit(
        AccessEntry(
            console.now(),
            session.user.username if session else "-",
            action,
            allowed=False,
            call_id=call_id,
            practice=practice,
            remote=_remote(request),
            details={"path": request.path, "reason": message},
        )
    )
    return _refuse(request, 403, message)


def may_see(user: User, practice: str) -> bool:
    """Whether `user` may see calls and messages of `practice`.

    A call to a number no practice claims is for users who cover every practice.
    """
    return user.all_practices if not practice else user.sees_practice(practice)


# Journey events whose details are the message itself (hidden from operators who
# may not read it, like the message).
MESSAGE_DETAIL_EVENTS = frozenset(
    {EventKind.MESSAGE_TAKEN.value, EventKind.MESSAGE_CORRECTED.value, EventKind.DISPOSITION.value}
)


def alerting(console: Console, call_id: str) -> bool:
    """Whether the call's urgent message went unacknowledged and was handed to the operators."""
    paging = console.live.paging.get(call_id)
    return paging is not None and paging.alerting


def may_read_message(console: Console, user: User, message: Message | None) -> bool:
    """On a call `user` may see: operators read the messages they took, and any message
    whose paging came back to them (nobody acknowledged it); the practice reads all."""
    if message is None:
        return False
    return (
        user.role is not Role.OPERATOR
        or message.taken_by == user.username
        or alerting(console, message.call_id)
    )


def may_open_message(user: User, message: Message) -> bool:
    """Operators see the messages they took; staff their practices'; admins all."""
    if not may_see(user, message.practice):
        return False
    return user.role is not Role.OPERATOR or message.taken_by == user.username


# -- middlewares -------------------------------------------------------------------------


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    if not request.path.startswith("/static/"):
        # Pages and API answers hold patient data: never cached on a shared desk.
        headers.setdefault("Cache-Control", "no-store")
    if isinstance(response, web.HTTPException):
        raise response
    return response


@web.middleware
async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the signed-in session; send everyone else to the sign-in page (or 401)."""
    console = _console(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    session = (
        await console.db.run(lambda db: db.accounts.session(token, at=console.now()))
        if token
        else None
    )
    request[SESSION] = session
    if session is None and not request.path.startswith(_PUBLIC):
        if _wants_json(request):
            return web.json_response({"error": "sign in first"}, status=401)
        if request.method in _UNSAFE:
            return _refuse(request, 401, "Your session has ended. Sign in again.")
        target = request.path_qs if request.path != "/" else "/"
        raise web.HTTPSeeOther(f"/login?next={quote(target, safe='/')}")
    return await handler(request)


@web.middleware
async def csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every state-changing request carries the session's CSRF token (form field or header)."""
    if request.method not in _UNSAFE or request.path == "/login":
        return await handler(request)
    session = _session(request)
    sent = request.headers.get("X-CSRF-Token", "")
    if not sent and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        value = form.get("csrf", "")
        sent = value if isinstance(value, str) else ""
    if not sent or not hmac.compare_digest(sent, session.csrf):
        return await _deny(
            request,
            Action.CSRF_REFUSED,
            "This form is missing its security token (or it expired). "
            "Reload the page and submit again; nothing was changed.",
        )
    return await handler(request)


# -- sign in and out ---------------------------------------------------------------------


def _safe_next(value: str) -> str:
    return value if value.startswith("/") and not value.startswith("//") else "/"


async def login_page(request: web.Request) -> web.Response:
    # Reuse the browser's token: a second sign-in tab (or a stray request the
    # browser makes on its own) must not invalidate the form already shown.
    token = request.cookies.get(LOGIN_COOKIE, "")
    if not _LOGIN_TOKEN.fullmatch(token):
        token = secrets.token_urlsafe(24)
    response = _render(
        request,
        "login.html",
        login_token=token,
        next=_safe_next(request.query.get("next", "/")),
        error="",
        username="",
    )
    _set_cookie(request, response, LOGIN_COOKIE, token, max_age=3600)
    return response


def _set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=_console(request).secure_cookies,
    )


async def login(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    form = await request.post()
    username = str(form.get("username", "")).strip().lower()[:100]
    password = str(form.get("password", ""))
    next_url = _safe_next(str(form.get("next", "/")))
    now = console.now()
    remote = _remote(request)
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    sent = str(form.get("login_token", ""))
    if not cookie or not hmac.compare_digest(cookie, sent):
        return await _deny(
            request,
            Action.CSRF_REFUSED,
            "The sign-in form expired or came from elsewhere. Open the sign-in page again.",
        )

    def again(status: int, error: str) -> web.Response:
        token = secrets.token_urlsafe(24)
        response = _render(
            request,
            "login.html",
            status=status,
            login_token=token,
            next=next_url,
            error=error,
            username=username,
        )
        _set_cookie(request, response, LOGIN_COOKIE, token, max_age=3600)
        return response

    wait = console.throttle.blocked(username, remote, now)
    if wait is not None:
        await console.db.audit(
            AccessEntry(now, username or "-", Action.SIGN_IN_THROTTLED, False, remote=remote)
        )
        minutes = max(1, round(wait.total_seconds() / 60))
        return again(429, f"Too many failed sign-ins. Try again in {minutes} minute(s).")
    stored = await console.db.run(lambda db: db.accounts.login_record(username))
    ok = await asyncio.to_thread(
        verify_password, stored.password_hash if stored else None, password
    )
    user = stored.user if stored is not None and ok and not stored.user.disabled else None
    if user is None:
        console.throttle.failed(username, remote, now)
        await console.db.audit(
            AccessEntry(now, username or "-", Action.SIGN_IN_FAILED, False, remote=remote)
        )
        return again(401, "Wrong username or password.")
    console.throttle.succeeded(username)
    if stored is not None and stored.needs_rehash:
        await console.db.run(lambda db: db.accounts.rehash(username, password))
    token, _ = await console.db.run(lambda db: db.accounts.open_session(user, at=now))
    await console.db.audit(AccessEntry(now, user.username, Action.SIGN_IN, True, remote=remote))
    response = web.HTTPSeeOther(next_url)
    _set_cookie(request, response, SESSION_COOKIE, token, max_age=13 * 3600)
    response.del_cookie(LOGIN_COOKIE, path="/")
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    session = _session(request)
    await console.db.run(lambda db: db.accounts.close_session(session.token_hash))
    await console.db.audit(
        AccessEntry(
            console.now(), session.user.username, Action.SIGN_OUT, True, remote=_remote(request)
        )
    )
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


# -- the desk: board, practices, operators, screen pop -----------------------------------


PANEL_REFRESH = timedelta(seconds=30)


def _practices(console: Console, user: User) -> list[PracticeNow]:
    """The practices' panels, each worked out again at most every 30 s (sooner when its
    status or on-call doctor changes): every viewer's board asks for them on every update,
    and the coverage calendar behind them is not free."""
    config = console.config()
    now = console.now()
    panels = []
    for practice_id in user.scope(config.practices):
        cached = console.panels.get(practice_id)
        if cached is None or cached[0] is not config or now >= cached[1] or now < cached[2]:
            panel = practice_now(config.practices[practice_id], now)
            changes = [c.at for c in (panel.next_status, panel.next_handoff) if c is not None]
            valid_until = min([now + PANEL_REFRESH, *changes])
            cached = (config, valid_until, now, panel)
            console.panels[practice_id] = cached
        panels.append(cached[3])
    return panels


def _member_state(member: Member) -> str:
    if member.paused:
        return f"paused ({member.paused_reason})" if member.paused_reason else "paused"
    if not member.reachable:
        return "phone offline"
    if member.device in (DeviceState.RINGING, DeviceState.RINGINUSE):
        return "ringing"
    if member.in_call or member.device in (DeviceState.INUSE, DeviceState.BUSY):
        return "on a call"
    return "available"


def _operators(console: Console, phones: Mapping[str, str]) -> dict[str, Any]:
    presence = console.presence()
    if presence is None or not presence.synced:
        return {"known": False, "members": []}
    members = []
    seen: set[str] = set()
    for member in presence.all_members():
        if member.interface in seen:
            continue
        seen.add(member.interface)
        phone = member.interface.rsplit("/", 1)[-1]
        members.append(
            {
                "phone": phone,
                "name": member.name,
                "queue": member.queue,
                "state": _member_state(member),
                "signed_in": phones.get(phone, ""),
            }
        )
    return {"known": True, "members": members}


def board_json(console: Console, user: User, phones: Mapping[str, str]) -> dict[str, Any]:
    """The board as one viewer may see it (their practices, numbers masked if they must)."""
    config = console.config()
    directory = ConfigDirectory(config)
    now = console.now()
    calls = [
        c.to_json(directory, now=now, mask=None if user.sees_numbers else mask_caller)
        for c in sorted(console.live.calls.values(), key=lambda c: c.started_at)
        if (c.practice and may_see(user, c.practice)) or (not c.practice and user.all_practices)
    ]
    for call in calls:
        practice = config.practice(call["practice"])
        call["short_name"] = practice.short_name if practice else ""
        call["started_local"] = _local(
            datetime.fromisoformat(call["started_at"]), _zone(config, call["practice"]), "%H:%M:%S"
        )
    return {
        "now": now.isoformat(),
        "alerts": alerts_json(
            list(console.live.paging.values()),
            console.live.handoffs,
            config,
            directory,
            now=now,
            visible=lambda practice: may_see(user, practice),
            message_links=user.role is not Role.OPERATOR,
        ),
        "calls": calls,
        "operators": _operators(console, phones),
        "practices": [_practice_json(p, now) for p in _practices(console, user)],
    }


@dataclass(frozen=True, slots=True)
class SharedBoard:
    """One board, rendered once for every viewer who sees the same thing."""

    board: dict[str, Any]
    # The board without the clock: the page counts waiting time itself, so a board
    # differing only there is not sent again (except as the keepalive).
    signature: str
    event: bytes  # the server-sent event carrying it


def shared_board(
    console: Console, user: User, phones: Mapping[str, str], loop_time: float
) -> SharedBoard:
    """The board for `user`, rendered at most once per change, second and kind of viewer.

    Twenty viewers woken by the same change would otherwise each render and
    serialise the same board in turn, holding up the event loop the calls run on.
    """
    config = console.config()
    key = (console.live.version, int(loop_time), id(config), tuple(user.scope(config.practices)),
           user.all_practices, user.sees_numbers, tuple(sorted(phones.items())))  # fmt: skip
    found = console.boards.get(key)
    if found is None:
        board = board_json(console, user, phones)
        signature = json.dumps(
            {**board, "now": "", "calls": [{**c, "waiting_seconds": 0} for c in board["calls"]]},
            sort_keys=True,
        )
        found = SharedBoard(
            board, signature, f"event: board\ndata: {json.dumps(board)}\n\n".encode()
        )
        if len(console.boards) > 64:
            console.boards.clear()
        console.boards[key] = found
    return found


def _practice_json(p: PracticeNow, now: datetime) -> dict[str, Any]:
    zone = ZoneInfo(p.timezone)

    def doctor(d: Any) -> dict[str, str] | None:
        return None if d is None else {"name": d.name, "reach": d.reach, "contact": d.contact}

    def change(c: Any) -> dict[str, str] | None:
        return None if c is None else {"at": _local(c.at, zone), "what": c.description}

    return {
        "id": p.id,
        "name": p.name,
        "short_name": p.short_name,
        "status": p.status,
        "reason": p.reason,
        "local_time": _local(now, zone, "%H:%M"),
        "primary": doctor(p.primary),
        "backup": doctor(p.backup),
        "next_handoff": change(p.next_handoff),
        "next_status": change(p.next_status),
    }


async def _signed_in_phones(console: Console) -> dict[str, str]:
    """Which user is signed in at which phone (read at most once a second for all viewers)."""
    loop_time = asyncio.get_running_loop().time()
    at, phones = console.phones_cache
    if loop_time - at > 1.0:
        phones = await console.db.run(lambda db: db.accounts.phones(at=console.now()))
        console.phones_cache = (loop_time, phones)
    return phones


async def desk(request: web.Request) -> web.Response:
    console = _console(request)
    session = _session(request)
    phones = await _signed_in_phones(console)
    board = board_json(console, session.user, phones)
    await _audit_board(request, board, set())
    return _render(request, "desk.html", board=board, phone=session.phone)


async def set_phone(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    session = _session(request)
    form = await request.post()
    phone = str(form.get("phone", "")).strip()
    if phone and not _PHONE_NAME.fullmatch(phone):
        return _refuse(request, 400, "A phone name is its extension, e.g. operator1.")
    await console.db.run(lambda db: db.accounts.set_phone(session, phone))
    raise web.HTTPSeeOther("/")


async def api_board(request: web.Request) -> web.Response:
    console = _console(request)
    session = _session(request)
    board = board_json(console, session.user, await _signed_in_phones(console))
    await _audit_board(request, board, set())
    return web.json_response(board)


async def _audit_board(request: web.Request, board: Mapping[str, Any], seen: set[str]) -> None:
    """Unmasked calls shown on a board count as views of those calls (once per page)."""
    session = _session(request)
    if not session.user.sees_numbers:
        return
    console = _console(request)
    now = console.now()
    entries = [
        AccessEntry(
            now,
            session.user.username,
            Action.VIEW_BOARD_CALL,
            True,
            c["call_id"],
            c["practice"],
            _remote(request),
        )
        for c in board["calls"]
        if c["call_id"] not in seen
    ]
    seen.update(c["call_id"] for c in board["calls"])
    await console.db.audit(*entries)


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the board when it changes; `pop` when this phone takes a call."""
    console = _console(request)
    session = _session(request)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    version = -1
    last = ""
    seen: set[str] = set()
    # A call this phone already has pops up too: a reloaded page finds its call again.
    popped: set[str] = set()
    token = request.cookies.get(SESSION_COOKIE, "")
    last_check = last_sent = asyncio.get_running_loop().time()
    try:
        while True:
            version = await console.live.wait_newer(version, within=1.0)
            loop_time = asyncio.get_running_loop().time()
            if loop_time - last_check > 60:
                last_check = loop_time
                alive = await console.db.run(
                    lambda db: db.accounts.session(token, at=console.now(), touch=True)
                )
                if alive is None:
                    await response.write(b"event: signed_out\ndata: {}\n\n")
                    return response
                session = alive
            phones = await _signed_in_phones(console)
            shared = shared_board(console, session.user, phones, loop_time)
            if shared.signature != last or loop_time - last_sent > console.stream_keepalive_seconds:
                last, last_sent = shared.signature, loop_time
                await _audit_board(request, shared.board, seen)
                await response.write(shared.event)
            if session.phone:
                for call in list(console.live.calls.values()):
                    if call.operator_phone == session.phone and call.call_id not in popped:
                        popped.add(call.call_id)
                        data = json.dumps({"call_id": call.call_id})
                        await response.write(f"event: pop\ndata: {data}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response


# -- calls -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallView:
    journey: Journey
    practice: Practice | None
    history: list[Journey]
    message: Message | None
    versions: list[Any]
    live: LiveCall | None
    check: HandoffCheck | None = None  # the journey is a handoff check's


async def _load_call(request: web.Request, action: Action) -> CallView | web.Response:
    console = _console(request)
    session = _session(request)
    call_id = request.match_info["call_id"]
    if not _CALL_ID.fullmatch(call_id):
        return _refuse(request, 404, "There is no such call.")
    journey = await console.db.run(lambda db: db.records.get(call_id))
    if journey is None:
        return _refuse(request, 404, f"There is no call {call_id} in the records.")
    on_my_phone = bool(session.phone) and any(
        c.call_id == call_id and c.operator_phone == session.phone
        for c in console.live.calls.values()
    )
    # The operator whose phone has the call sees it, whatever the number dialed
    # (a call to a number no practice claims still needs its message taken).
    if not may_see(session.user, journey.practice) and not on_my_phone:
        return await _deny(
            request,
            action,
            "This call belongs to a practice you do not cover.",
            call_id=call_id,
            practice=journey.practice,
        )
    if session.user.role is Role.STAFF and action is Action.SCREEN_POP:
        return await _deny(request, action, "Screen pops are for operators.", call_id=call_id)
    now = console.now()
    since = now - timedelta(days=HISTORY_DAYS)

    def load(db: ConsoleDb) -> tuple[list[Journey], Message | None, list[Any]]:
        earlier = [
            j
            for j in db.records.journeys(
                JourneyFilter(
                    since=since,
                    practice=journey.practice or None,
                    caller=journey.caller_number or None,
                    kind=JourneyKind.CALL,
                )
            )
            if j.caller_number == journey.caller_number and j.call_id != call_id
        ]
        if journey.kind is not JourneyKind.CALL:
            earlier = []
        earlier.sort(key=lambda j: j.started_at, reverse=True)
        message = db.messages.get(call_id)
        versions = db.messages.history(call_id) if message is not None else []
        if message is not None:
            db.access.write(
                AccessEntry(
                    now,
                    session.user.username,
                    Action.VIEW_MESSAGE,
                    True,
                    call_id,
                    journey.practice,
                    _remote(request),
                )
            )
        db.access.write(
            AccessEntry(
                now,
                session.user.username,
                action,
                True,
                call_id,
                journey.practice,
                _remote(request),
            )
        )
        return earlier[:20], message, versions

    earlier, message, versions = await console.db.run(load)
    check = None
    if journey.kind is JourneyKind.HANDOFF_CHECK:
        check = await console.db.run(lambda db: db.handoffs.get(call_id))
    config = console.config()
    return CallView(
        journey,
        config.practice(journey.practice),
        earlier,
        message,
        versions,
        console.live.calls.get(call_id),
        check,
    )


def _call_context(console: Console, view: CallView, user: User) -> dict[str, Any]:
    config = console.config()
    zone = _zone(config, view.journey.practice)
    practice = view.practice
    now_panel = practice_now(practice, console.now()) if practice else None
    message = view.message
    return {
        "journey": view.journey,
        "practice": practice,
        "panel": now_panel,
        "earlier": view.history,
        "message": message,
        "versions": view.versions,
        "zone": zone,
        "live_label": view.live.label(ConfigDirectory(config)) if view.live else "",
        "check": view.check,
        "alert_open": view.check is not None and view.check.alert_open(console.now()),
        "can_take": user.role is not Role.STAFF and view.check is None,
        "can_correct": message is not None
        and user.role is not Role.STAFF
        and (
            user.role is Role.ADMIN
            or (message.taken_by == user.username and message.correctable(console.now()))
        ),
        "correct_until": message.correctable_until() if message else None,
        "message_events": MESSAGE_DETAIL_EVENTS,
        # Operators read the messages they took, and any message of their practices
        # whose paging came back to them (nobody acknowledged it).
        "show_message": may_read_message(console, user, message),
        "window_minutes": int(CORRECTION_WINDOW.total_seconds() // 60),
    }


def _prefill(journey: Journey) -> dict[str, str]:
    return {
        "caller_name": journey.caller_name,
        "callback": journey.caller_number,
        "patient_name": "",
        "patient_dob": "",
        "reason": "",
        "urgency": "",
        "disposition": "",
        "disposition_note": "",
    }


async def _show_call(request: web.Request, action: Action, template: str) -> web.Response:
    view = await _load_call(request, action)
    if isinstance(view, web.Response):
        return view
    console = _console(request)
    user = _session(request).user
    form = view.message.fields.to_json() if view.message else _prefill(view.journey)
    saved = template == "call.html" and request.query.get("saved", "") == "1"
    return _render(
        request,
        template,
        **_call_context(console, view, user),
        form=form,
        problems={},
        notice=saved_notice(view.message, view.practice) if saved else "",
        conflict=None,
    )


def saved_notice(message: Message | None, practice: Practice | None) -> str:
    """What the operator reads after saving: and what paging will make of it, when it matters."""
    if message is None or not pages(message.fields.urgency):
        return "Message saved."
    if practice is None:
        return (
            "Message saved. No doctor can be paged: this call reached no practice in the "
            "configuration, so the operators are alerted instead (see the board)."
        )
    if not message.fields.callback:
        return (
            "Message saved and paged to the doctor on call without a callback number: "
            "they will hear that there is none and read the message here."
        )
    return "Message saved and paged to the doctor on call."


async def call_page(request: web.Request) -> web.Response:
    """A call's page: the card, the caller, the message form and the whole journey."""
    return await _show_call(request, Action.VIEW_CALL, "call.html")


async def pop_fragment(request: web.Request) -> web.Response:
    """The screen pop, as a fragment the board's script puts above the board."""
    return await _show_call(request, Action.SCREEN_POP, "pop.html")


async def api_call(request: web.Request) -> web.Response:
    view = await _load_call(request, Action.VIEW_CALL)
    if isinstance(view, web.Response):
        return view
    j = view.journey
    console = _console(request)
    readable = may_read_message(console, _session(request).user, view.message)
    return web.json_response(
        {
            "call_id": j.call_id,
            "practice": j.practice,
            "caller_number": j.caller_number,
            "caller_name": j.caller_name,
            "did": j.did,
            "started_at": j.started_at.isoformat(),
            "outcome": j.outcome.value if j.outcome else None,
            "answered_by": j.answered_by,
            "events": [
                {
                    "at": e.at.isoformat(),
                    "kind": e.name,
                    "details": e.event.details()
                    if readable or e.name not in MESSAGE_DETAIL_EVENTS
                    else {},
                }
                for e in j.events
            ],
            "earlier_calls": [
                {
                    "call_id": e.call_id,
                    "started_at": e.started_at.isoformat(),
                    "outcome": e.outcome.value if e.outcome else None,
                }
                for e in view.history
            ],
            "message": _message_json(view.message) if view.message and readable else None,
        }
    )


def _message_json(m: Message) -> dict[str, Any]:
    return {
        "call_id": m.call_id,
        "practice": m.practice,
        "version": m.version,
        "taken_at": m.taken_at.isoformat(),
        "taken_by": m.taken_by,
        "updated_at": m.updated_at.isoformat(),
        "updated_by": m.updated_by,
        "state": m.state,
        "fields": m.fields.to_json(),
        "read_at": m.read_at.isoformat() if m.read_at else None,
        "read_by": m.read_by,
        "acknowledged_at": m.acknowledged_at.isoformat() if m.acknowledged_at else None,
        "acknowledged_by": m.acknowledged_by,
    }


async def _form_data(request: web.Request) -> dict[str, str]:
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(
                text='{"error": "send a JSON object"}', content_type="application/json"
            )
        return {str(k): str(v) for k, v in body.items() if v is not None}
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def save_message(request: web.Request) -> web.StreamResponse:
    """Take or correct a call's message (form post, or JSON under /api)."""
    console = _console(request)
    session = _session(request)
    user = session.user
    call_id = request.match_info["call_id"]
    data = await _form_data(request)
    if user.role is Role.STAFF:
        return await _deny(
            request, Action.SAVE_MESSAGE, "Practice staff cannot take messages.", call_id=call_id
        )
    now = console.now()
    config = console.config()
    journey = (
        await console.db.run(lambda db: db.records.get(call_id))
        if _CALL_ID.fullmatch(call_id)
        else None
    )
    if journey is None:
        message = (
            f"There is no call {call_id[:80]} in the records, so the message was not saved. "
            "Your text is below: copy it, and take it on the right call."
        )
        if _wants_json(request):
            return web.json_response({"error": message}, status=404)
        return _render(request, "lost.html", status=404, message=message, form=data)
    if not may_see(user, journey.practice):
        return await _deny(
            request,
            Action.SAVE_MESSAGE,
            "This call belongs to a practice you do not cover.",
            call_id=call_id,
            practice=journey.practice,
        )
    try:
        expected = int(data.get("version", "0") or "0")
    except ValueError:
        expected = -1
    today = now.astimezone(_zone(config, journey.practice)).date()
    problems: dict[str, str] = {}
    conflict: Message | None = None
    status = 200
    try:
        fields = parse_fields(data, today=today)
        saved = await console.db.run(
            lambda db: db.messages.save(
                call_id,
                fields,
                by=user.username,
                at=now,
                expected_version=expected,
                may_correct_others=user.role is Role.ADMIN,
            )
        )
    except MessageInvalid as exc:
        problems, status = exc.problems, 400
    except MessageConflict as exc:
        conflict, status = exc.current, 409
        problems = {"_": str(exc) + ". What you typed is kept below; compare and save again."}
    except CorrectionClosed as exc:
        problems, status = {"_": str(exc)}, 403
    except NoSuchCall as exc:
        problems, status = {"_": str(exc)}, 404
    except MessageError as exc:
        problems, status = {"_": str(exc)}, 409
    else:
        await console.db.audit(
            AccessEntry(
                now,
                user.username,
                Action.SAVE_MESSAGE,
                True,
                call_id,
                journey.practice,
                _remote(request),
                {"version": saved.version},
            )
        )
        if _wants_json(request):
            return web.json_response(_message_json(saved), status=200)
        raise web.HTTPSeeOther(f"/calls/{call_id}?saved=1")
    log.info("console.message_refused", call_id=call_id, status=status, fields=sorted(problems))
    if _wants_json(request):
        body: dict[str, Any] = {"error": problems.get("_", "fix the fields"), "fields": problems}
        if conflict is not None:
            body["current"] = _message_json(conflict)
        return web.json_response(body, status=status)
    view = await _load_call(request, Action.VIEW_CALL)
    if isinstance(view, web.Response):
        return view
    return _render(
        request,
        "call.html",
        status=status,
        **_call_context(console, view, user),
        form=data,
        problems=problems,
        notice="",
        conflict=conflict,
    )


# -- messages ----------------------------------------------------------------------------


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _inbox_filter(console: Console, user: User, query: Mapping[str, str]) -> MessageFilter:
    config = console.config()
    scope = user.scope(config.practices)
    practice = query.get("practice", "")
    practices: list[str] | None = [practice] if practice in scope else scope
    if user.all_practices and not practice:
        practices = None
    zone = _zone(config, practice or (scope[0] if scope else ""))
    since, until = _date(query.get("from", "")), _date(query.get("to", ""))
    urgency = query.get("urgency", "")
    state = query.get("state", "")
    return MessageFilter(
        practices=practices,
        urgency=Urgency(urgency) if urgency in set(Urgency) else None,
        state=state if state in ("unread", "read", "acknowledged") else None,
        since=datetime.combine(since, time(0), zone) if since else None,
        until=datetime.combine(until + timedelta(days=1), time(0), zone) if until else None,
        taken_by=user.username if user.role is Role.OPERATOR else None,
    )


async def inbox(request: web.Request) -> web.Response:
    console = _console(request)
    user = _session(request).user
    where = _inbox_filter(console, user, request.query)
    messages = await console.db.run(lambda db: db.messages.list(where))
    await console.db.audit(
        AccessEntry(
            console.now(),
            user.username,
            Action.LIST_MESSAGES,
            True,
            remote=_remote(request),
            details={"shown": len(messages)},
        )
    )
    if _wants_json(request):
        return web.json_response({"messages": [_message_json(m) for m in messages]})
    config = console.config()
    return _render(
        request,
        "messages.html",
        messages=messages,
        query=dict(request.query),
        zones={p: _zone(config, p) for p in config.practices},
        practices=[config.practices[p] for p in user.scope(config.practices)],
    )


async def _load_message(request: web.Request) -> Message | web.Response:
    console = _console(request)
    user = _session(request).user
    call_id = request.match_info["call_id"]
    message = (
        await console.db.run(lambda db: db.messages.get(call_id))
        if _CALL_ID.fullmatch(call_id)
        else None
    )
    if message is None:
        return _refuse(request, 404, "There is no such message.")
    if not may_open_message(user, message):
        return await _deny(
            request,
            Action.VIEW_MESSAGE,
            "This message belongs to a practice you do not cover."
            if not may_see(user, message.practice)
            else "Operators see the messages they took.",
            call_id=call_id,
            practice=message.practice,
        )
    return message


async def message_page(request: web.Request) -> web.Response:
    found = await _load_message(request)
    if isinstance(found, web.Response):
        return found
    console = _console(request)
    user = _session(request).user
    now = console.now()

    def view(db: ConsoleDb) -> tuple[Message | None, list[Any], Journey | None]:
        if user.role is Role.STAFF:
            db.messages.mark_read(found.call_id, by=user.username, at=now)
        db.access.write(
            AccessEntry(
                now,
                user.username,
                Action.VIEW_MESSAGE,
                True,
                found.call_id,
                found.practice,
                _remote(request),
            )
        )
        return (
            db.messages.get(found.call_id),
            db.messages.history(found.call_id),
            db.records.get(found.call_id),
        )

    message, versions, journey = await console.db.run(view)
    assert message is not None
    if _wants_json(request):
        return web.json_response(
            {
                **_message_json(message),
                "history": [
                    {"at": e.at.isoformat(), "kind": e.name, "details": e.event.details()}
                    for e in versions
                ],
            }
        )
    config = console.config()
    return _render(
        request,
        "message.html",
        message=message,
        versions=versions,
        journey=journey,
        zone=_zone(config, message.practice),
        practice=config.practice(message.practice),
        can_ack=user.role is not Role.OPERATOR,
    )


async def acknowledge(request: web.Request) -> web.StreamResponse:
    found = await _load_message(request)
    if isinstance(found, web.Response):
        return found
    console = _console(request)
    user = _session(request).user
    if user.role is Role.OPERATOR:
        return await _deny(
            request,
            Action.ACKNOWLEDGE_MESSAGE,
            "Messages are acknowledged by the practice.",
            call_id=found.call_id,
            practice=found.practice,
        )
    now = console.now()

    def ack(db: ConsoleDb) -> Message:
        saved = db.messages.acknowledge(found.call_id, by=user.username, at=now)
        db.access.write(
            AccessEntry(
                now,
                user.username,
                Action.ACKNOWLEDGE_MESSAGE,
                True,
                found.call_id,
                found.practice,
                _remote(request),
            )
        )
        return saved

    saved = await console.db.run(ack)
    if _wants_json(request):
        return web.json_response(_message_json(saved))
    raise web.HTTPSeeOther(f"/messages/{found.call_id}")


async def resolve_handoff(request: web.Request) -> web.StreamResponse:
    """Mark an unconfirmed handoff dealt with (the doctor, or the backup, reached another way)."""
    console = _console(request)
    user = _session(request).user
    check_id = request.match_info["check_id"]
    check = (
        await console.db.run(lambda db: db.handoffs.get(check_id))
        if _CALL_ID.fullmatch(check_id)
        else None
    )
    if check is None or not check.alert_open(console.now()):
        return _refuse(request, 404, "There is no open alert for that handoff.")
    if not may_see(user, check.practice):
        return await _deny(
            request,
            Action.RESOLVE_HANDOFF_ALERT,
            "This handoff belongs to a practice you do not cover.",
            call_id=check_id,
            practice=check.practice,
        )
    data = await _form_data(request)
    note = data.get("note", "").strip()[:200]
    now = console.now()

    def resolve(db: ConsoleDb) -> None:
        db.handoffs.resolve(check_id, by=user.username, at=now, note=note)
        db.access.write(
            AccessEntry(
                now,
                user.username,
                Action.RESOLVE_HANDOFF_ALERT,
                True,
                check_id,
                check.practice,
                _remote(request),
            )
        )

    await console.db.run(resolve)
    log.info("console.handoff_alert_resolved", check=check_id, by=user.username)
    if _wants_json(request):
        return web.json_response({"id": check_id, "resolved_by": user.username})
    raise web.HTTPSeeOther("/")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def favicon(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def openapi(request: web.Request) -> web.FileResponse:
    return web.FileResponse(HERE / "openapi.yaml", headers={"Content-Type": "text/yaml"})


# -- the application ---------------------------------------------------------------------


def build_app(console: Console) -> web.Application:
    """The console's aiohttp application (routes, middlewares, static files)."""
    app = web.Application(middlewares=[security_headers, sessions, csrf], client_max_size=MAX_BODY)
    app[CONSOLE] = console
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", desk)
    app.router.add_post("/phone", set_phone)
    app.router.add_get("/calls/{call_id}", call_page)
    app.router.add_get("/calls/{call_id}/pop", pop_fragment)
    app.router.add_post("/calls/{call_id}/message", save_message)
    app.router.add_get("/messages", inbox)
    app.router.add_get("/messages/{call_id}", message_page)
    app.router.add_post("/messages/{call_id}/ack", acknowledge)
    app.router.add_post("/handoffs/{check_id}/resolve", resolve_handoff)
    app.router.add_post("/api/handoffs/{check_id}/resolve", resolve_handoff)
    app.router.add_get("/api/board", api_board)
    app.router.add_get("/api/stream", stream)
    app.router.add_get("/api/calls/{call_id}", api_call)
    app.router.add_post("/api/calls/{call_id}/message", save_message)
    app.router.add_get("/api/messages", inbox)
    app.router.add_get("/api/messages/{call_id}", message_page)
    app.router.add_post("/api/messages/{call_id}/ack", acknowledge)
    app.router.add_get("/api/openapi.yaml", openapi)
    changes_api.add_routes(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_static("/static/", HERE / "static", append_version=True)
    return app


class ConsoleUnavailable(Exception):
    """The console's address cannot be used (taken, not allowed)."""


async def serve_console(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve `app` on host:port; raises `ConsoleUnavailable` when the port is taken."""
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ConsoleUnavailable(f"cannot serve the console on {host}:{port}: {exc}") from exc
    return runner


def utc_now() -> datetime:
    return datetime.now(UTC)
