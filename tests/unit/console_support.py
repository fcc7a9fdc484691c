"""Shared set-up of the console's tests: a record file with users, journeys, a served console.

Users are created once per session in a template record file (argon2 hashing
is slow on purpose) and each test gets a copy of it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from coverage_engine.journey import EventKind, Received, parse_event
from coverage_engine.records.sqlite import SqliteRecorder
from coverage_engine.web.accounts import Role
from coverage_engine.web.db import ConsoleDb

ROOT = Path(__file__).resolve().parents[2]
CHICAGO = ZoneInfo("America/Chicago")
NIGHT = datetime(2026, 12, 1, 3, 0, tzinfo=CHICAGO)
PASSWORD = "correct horse battery staple"
MAPLE = "+13125550100"
LAKESIDE = "+16085550142"

USERS: Mapping[str, tuple[Role, tuple[str, ...]]] = {
    "olivia": (Role.OPERATOR, ("maple-grove",)),
    "oscar": (Role.OPERATOR, ("maple-grove",)),
    "lena": (Role.OPERATOR, ("lakeside",)),
    "sam": (Role.STAFF, ("maple-grove",)),
    "ada": (Role.ADMIN, ()),
}


def write_config(folder: Path) -> Path:
    """config/coverage.yaml with its records next to the copy."""
    text = (ROOT / "config" / "coverage.yaml").read_text(encoding="utf-8")
    path = folder / "coverage.yaml"
    path.write_text(text.replace("../var/records.sqlite", "records.sqlite"), encoding="utf-8")
    return path


CARD_MARKER = "    # What the operators' console shows when a call for Maple Grove comes in."


def with_paging(text: str, paging: str) -> str:
    """config/coverage.yaml's text with Maple Grove's `paging:` block replaced by `paging`."""
    start = text.index("    paging:\n")
    end = text.index(CARD_MARKER)
    assert start < end, "Maple Grove's paging block sits right before its card"
    return text[:start] + paging.strip("\n") + "\n\n" + text[end:]


def make_template(path: Path) -> Path:
    db = ConsoleDb.open(path)
    for name, (role, practices) in USERS.items():
        db.accounts.add(
            name,
            password=PASSWORD,
            role=role,
            practices=practices,
            display_name=name.capitalize(),
            at=NIGHT,
        )
    db.close()
    return path


def copy_template(template: Path, folder: Path) -> Path:
    target = folder / "records.sqlite"
    shutil.copy(template, target)
    return target


def place_call(
    records: Path,
    call_id: str,
    *,
    at: datetime,
    did: str = MAPLE,
    caller: str = "+15557654321",
    name: str = "JONES MARY",
    practice: str = "maple-grove",
    events: list[tuple[str, dict[str, Any]]] | None = None,
) -> None:
    """Write a call's journey as the engine would: received, decided, then `events`."""
    recorder, _ = SqliteRecorder.open(records, now=at)
    try:
        recorder.write(call_id, at, Received(did, caller, name))
        decided = {"practice": practice, "status": "closed", "reason": "after hours", "steps": []}
        recorder.write(call_id, at, parse_event(EventKind.DECIDED, decided))
        for offset, (kind, details) in enumerate(events or [], start=1):
            recorder.write(call_id, at + timedelta(seconds=offset), parse_event(kind, details))
        recorder.flush().result(timeout=10)
    finally:
        recorder.close()


async def sign_in(client: aiohttp.ClientSession, username: str, password: str = PASSWORD) -> int:
    """Sign in through the form; returns the status of the form post (303 on success)."""
    page = await client.get("/login")
    token = re.search(r'name="login_token" value="([^"]+)"', await page.text())
    assert token is not None
    response = await client.post(
        "/login",
        data={"login_token": token[1], "username": username, "password": password, "next": "/"},
        allow_redirects=False,
    )
    return response.status


async def csrf_token(client: aiohttp.ClientSession) -> str:
    page = await client.get("/")
    found = re.search(r'data-csrf="([^"]+)"', await page.text())
    assert found is not None
    return found[1]


MESSAGE: Mapping[str, str] = {
    "caller_name": "Mary Jones",
    "callback": "+1 555 765 4321",
    "patient_name": "Tom Jones",
    "patient_dob": "2019-04-02",
    "reason": "Fever of 104 since the evening.\nNo rash.",
    "urgency": "urgent",
    "disposition": "message_for_office",
    "disposition_note": "",
}
