"""Overrides and swaps from the console: the same change service as the command line.

JSON API under /api (see openapi.yaml): every change is validated, written
atomically and audited by `coverage_engine.changes` exactly as `override`,
`swap` and `changes undo` do, with the signed-in user as who and `console`
as through what. The sessions and CSRF middlewares guard these routes like
every other: a POST needs the session's token in `X-CSRF-Token`.

Who may do what: admins everything; practice staff the overrides and swaps
of their own practices; operators may read (the board already shows who is
on call) but not change. A refusal is written to the access log.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from aiohttp import web

from coverage_engine.changes import Actor, Applied, ChangeRefused, ChangeService
from coverage_engine.changes.files import loaded_status_path
from coverage_engine.changes.pickup import read_pickup
from coverage_engine.changes.when import parse_when
from coverage_engine.config.overlay import EntryKind
from coverage_engine.web.access import Action
from coverage_engine.web.accounts import Role, User

# How long an answer waits for the running engine to confirm it loaded the
# change (it polls twice a second): the console says so, or says it did not.
PICKUP_WAIT = 2.0


def _service(request: web.Request) -> ChangeService:
    from coverage_engine.web.app import _console

    service = _console(request).changes
    if service is None:
        raise web.HTTPNotFound(
            text='{"error": "changes are not served here"}', content_type="application/json"
        )
    return service


def _user(request: web.Request) -> User:
    from coverage_engine.web.app import _session

    return _session(request).user


def may_change(user: User, practice: str) -> bool:
    """Admins anywhere; practice staff in their own practices; operators never."""
    if user.role is Role.ADMIN:
        return True
    return user.role is Role.STAFF and bool(practice) and user.sees_practice(practice)


async def _deny(request: web.Request, practice: str, message: str) -> web.Response:
    from coverage_engine.web.app import _deny as deny

    return await deny(request, Action.CHANGE_ROUTING, message, practice=practice or None)


def _bad(status: int, message: str, details: tuple[str, ...] = ()) -> web.Response:
    return web.json_response({"error": message, "details": list(details)}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(
            text='{"error": "send a JSON object"}', content_type="application/json"
        ) from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text='{"error": "send a JSON object"}', content_type="application/json"
        )
    return data


def _text(data: dict[str, Any], key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"{key}: give it as text"}), content_type="application/json"
        )
    return value


async def _applied(
    request: web.Request, service: ChangeService, applied: Applied
) -> web.Response:
    """The change as the CLI's --json prints it, with whether the engine has it yet."""
    now = datetime.now(applied.audit.at.tzinfo)
    status = loaded_status_path(service.config_path, service.load().config)
    pickup = read_pickup(service.config_path, status, applied.changes_sha)
    for _ in range(int(PICKUP_WAIT / 0.1)):
        if pickup.outcome != "not yet":
            break
        await asyncio.sleep(0.1)
        pickup = await asyncio.to_thread(
            read_pickup, service.config_path, status, applied.changes_sha
        )
    return web.json_response(
        {
            "change": applied.audit.to_json(),
            "entry": applied.entry.to_json(now) if applied.entry else None,
            "warnings": list(applied.warnings),
            "engine": {"outcome": pickup.outcome, "errors": list(pickup.errors)},
        },
        status=201,
    )


async def _run(request: web.Request, practice: str, job: Any) -> web.StreamResponse:
    service = _service(request)
    user = _user(request)
    if not may_change(user, practice):
        return await _deny(request, practice, "You may not change this practice's routing.")
    try:
        applied = await asyncio.to_thread(job, service, Actor(user.username, via="console"))
    except ChangeRefused as exc:
        return _bad(422, exc.message, exc.details)
    except ValueError as exc:
        return _bad(400, str(exc))
    return await _applied(request, service, applied)


async def list_entries(request: web.Request) -> web.StreamResponse:
    """GET /api/overrides or /api/swaps: those running and coming (?all=1: past ones too)."""
    service = _service(request)
    user = _user(request)
    kind: EntryKind = "override" if request.path.endswith("overrides") else "swap"
    practice = request.query.get("practice") or None
    try:
        entries = await asyncio.to_thread(service.entries, kind, practice)
    except ChangeRefused as exc:
        return _bad(422, exc.message, exc.details)
    now = datetime.now().astimezone()
    shown = [
        e.to_json(now)
        for e in entries
        if user.sees_practice(e.practice) or user.role is Role.ADMIN
        if request.query.get("all") or e.state(now) in ("running", "upcoming")
    ]
    return web.json_response({"entries": shown})


async def add_override(request: web.Request) -> web.StreamResponse:
    """POST /api/overrides {practice, mode: closed|open|oncall, from?, until, reason}."""
    data = await _body(request)
    practice = _text(data, "practice")
    mode = _text(data, "mode", "closed")
    if mode not in ("closed", "open", "oncall"):
        return _bad(400, "mode: closed, open or oncall")

    def job(service: ChangeService, actor: Actor) -> Applied:
        zone = _zone(service, practice)
        start, _ = parse_when(_text(data, "from", "now"), zone, datetime.now().astimezone())
        until, _ = parse_when(_text(data, "until"), zone, start)
        return service.add_override(
            actor,
            practice=practice,
            start=start,
            until=until,
            reason=_text(data, "reason", ""),
            status="open" if mode == "open" else "closed",
            route="oncall" if mode == "oncall" else None,
        )

    return await _run(request, practice, job)


async def add_swap(request: web.Request) -> web.StreamResponse:
    """POST /api/swaps {practice, doctor, backup?, from?, until, reason}."""
    data = await _body(request)
    practice = _text(data, "practice")
    backup = data.get("backup")

    def job(service: ChangeService, actor: Actor) -> Applied:
        zone = _zone(service, practice)
        start, _ = parse_when(_text(data, "from", "now"), zone, datetime.now().astimezone())
        until, _ = parse_when(_text(data, "until"), zone, start)
        return service.add_swap(
            actor,
            practice=practice,
            doctor=_text(data, "doctor"),
            backup=backup if isinstance(backup, str) and backup else None,
            start=start,
            until=until,
            reason=_text(data, "reason", ""),
        )

    return await _run(request, practice, job)


async def end_entry(request: web.Request) -> web.StreamResponse:
    """POST /api/overrides/{id}/end or /api/swaps/{id}/remove {reason, at?}."""
    data = await _body(request)
    wanted = request.match_info["entry_id"]
    kind: EntryKind = "override" if "/overrides/" in request.path else "swap"
    service = _service(request)
    try:
        entry = await asyncio.to_thread(service.find, wanted)
    except ChangeRefused as exc:
        return _bad(404, exc.message)

    def job(service: ChangeService, actor: Actor) -> Applied:
        at = None
        if data.get("at"):
            at, _ = parse_when(
                _text(data, "at"),
                entry.start.tzinfo,  # type: ignore[arg-type]
                datetime.now().astimezone(),
            )
        return service.end(actor, wanted, reason=_text(data, "reason", ""), at=at, kind=kind)

    return await _run(request, entry.practice, job)


async def change_log(request: web.Request) -> web.StreamResponse:
    """GET /api/changes: the audit log, newest last (staff: their practices only)."""
    service = _service(request)
    user = _user(request)
    if user.role is Role.OPERATOR:
        return await _deny(request, "", "The change log is for the practice and admins.")
    entries = await asyncio.to_thread(service.log)
    shown = [
        e.to_json() for e in entries if user.role is Role.ADMIN or user.sees_practice(e.practice)
    ]
    return web.json_response({"changes": shown})


async def undo(request: web.Request) -> web.StreamResponse:
    """POST /api/changes/{seq}/undo {reason}: admins only."""
    data = await _body(request)
    try:
        seq = int(request.match_info["seq"])
    except ValueError:
        return _bad(400, "the change number is a whole number")
    user = _user(request)
    if user.role is not Role.ADMIN:
        return await _deny(request, "", "Only an admin may undo a change.")
    return await _run(request, "", lambda s, a: s.undo(a, seq, reason=_text(data, "reason", "")))


def _zone(service: ChangeService, practice: str) -> Any:
    found = service.load().config.practice(practice)
    if found is None:
        raise ChangeRefused(f'no practice "{practice}"')
    return found.zone


def add_routes(app: web.Application) -> None:
    """The change routes, on the console's application."""
    app.router.add_get("/api/overrides", list_entries)
    app.router.add_post("/api/overrides", add_override)
    app.router.add_post("/api/overrides/{entry_id}/end", end_entry)
    app.router.add_get("/api/swaps", list_entries)
    app.router.add_post("/api/swaps", add_swap)
    app.router.add_post("/api/swaps/{entry_id}/remove", end_entry)
    app.router.add_get("/api/changes", change_log)
    app.router.add_post("/api/changes/{seq}/undo", undo)
