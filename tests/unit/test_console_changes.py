"""Overrides and swaps from the console's API: the same service, signed-in users, CSRF, scopes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from coverage_engine.changes import ChangeService
from coverage_engine.clock import FrozenClock
from coverage_engine.config import load_config
from coverage_engine.config.overlay import overlay_path
from coverage_engine.routing import decide
from coverage_engine.web.access import Action
from coverage_engine.web.app import Console, build_app
from coverage_engine.web.db import ConsoleDb
from coverage_engine.web.live import LiveSource
from tests.unit.console_support import (
    MAPLE,
    NIGHT,
    copy_template,
    csrf_token,
    make_template,
    sign_in,
    write_config,
)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template(tmp_path_factory.mktemp("console-changes") / "template.sqlite")


@dataclass
class Site:
    config: Path
    records: Path
    server: TestServer

    def browser(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            base_url=str(self.server.make_url("/")), cookie_jar=aiohttp.CookieJar(unsafe=True)
        )

    def refusals(self) -> list[object]:
        db = ConsoleDb.open(self.records)
        try:
            return [e for e in db.access.read() if e.action is Action.CHANGE_ROUTING]
        finally:
            db.close()


@pytest.fixture
async def site(template: Path, tmp_path: Path) -> AsyncIterator[Site]:
    config = write_config(tmp_path)
    records = copy_template(template, tmp_path)
    clock = FrozenClock(NIGHT)
    db = ConsoleDb.open(records)
    live = LiveSource(records, clock.now, poll_seconds=0.05)
    console = Console(db=db, live=live, config=lambda: load_config(config), now=clock.now,
                      changes=ChangeService(config))  # fmt: skip
    task = asyncio.create_task(live.run())
    server = TestServer(build_app(console))
    await server.start_server()
    yield Site(config, records, server)
    await server.close()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    db.close()


async def signed_in(site: Site, user: str) -> tuple[aiohttp.ClientSession, dict[str, str]]:
    browser = site.browser()
    assert await sign_in(browser, user) == 303
    return browser, {"X-CSRF-Token": await csrf_token(browser)}


SNOW = {"practice": "maple-grove", "mode": "closed", "from": "now", "until": "+6h",
        "reason": "snow day"}  # fmt: skip


async def test_an_admin_closes_a_practice_from_the_console(site: Site) -> None:
    """201 with the entry and the audit record; the change log says who and through what."""
    browser, csrf = await signed_in(site, "ada")
    async with browser:
        added = await browser.post("/api/overrides", json=SNOW, headers=csrf)
        body = await added.json()
        assert added.status == 201
        assert (body["change"]["by"], body["change"]["via"]) == ("ada", "console")
        assert body["entry"]["state"] == "running"
        assert body["engine"]["outcome"] == "no engine"
        listed = await (await browser.get("/api/overrides")).json()
        assert [e["id"] for e in listed["entries"]] == [body["entry"]["id"]]
        log = await (await browser.get("/api/changes")).json()
        assert [c["action"] for c in log["changes"]] == ["override.add"]
    soon = datetime.now(UTC) + timedelta(minutes=1)
    assert decide(load_config(site.config), soon, MAPLE).reason == "override: snow day"


async def test_staff_change_their_own_practice_only_and_operators_none(site: Site) -> None:
    """Sam (Maple Grove staff) may close Maple Grove, not Lakeside; Olivia (operator) neither."""
    browser, csrf = await signed_in(site, "sam")
    async with browser:
        assert (await browser.post("/api/overrides", json=SNOW, headers=csrf)).status == 201
        lakeside = dict(SNOW, practice="lakeside")
        refused = await browser.post("/api/overrides", json=lakeside, headers=csrf)
        assert refused.status == 403
    browser, csrf = await signed_in(site, "olivia")
    async with browser:
        assert (await browser.post("/api/overrides", json=SNOW, headers=csrf)).status == 403
        assert (await browser.get("/api/changes")).status == 403
        assert (await browser.get("/api/overrides")).status == 200
    assert len(site.refusals()) == 3
    assert len(ChangeService(site.config).log()) == 1


async def test_without_the_csrf_token_nothing_changes(site: Site) -> None:
    """A cross-site form cannot add an override: 403 and no changes file."""
    browser, _ = await signed_in(site, "ada")
    async with browser:
        assert (await browser.post("/api/overrides", json=SNOW)).status == 403
    assert not overlay_path(site.config).exists()


async def test_bad_changes_are_refused_with_reasons_and_nothing_is_written(site: Site) -> None:
    """An unknown doctor (422), a time that is no time (400), no reason (422): no file."""
    browser, csrf = await signed_in(site, "ada")
    async with browser:
        swap = {"practice": "maple-grove", "doctor": "house", "until": "+1d", "reason": "x"}
        refused = await browser.post("/api/swaps", json=swap, headers=csrf)
        assert refused.status == 422
        assert 'no doctor "house" in maple-grove' in (await refused.json())["error"]
        bad_time = dict(SNOW, until="at dawn")
        assert (await browser.post("/api/overrides", json=bad_time, headers=csrf)).status == 400
        no_reason = dict(SNOW, reason="")
        assert (await browser.post("/api/overrides", json=no_reason, headers=csrf)).status == 422
        not_json = await browser.post("/api/overrides", data="practice=x", headers=csrf)
        assert not_json.status == 400
    assert not overlay_path(site.config).exists()


async def test_end_a_swap_and_undo_from_the_console(site: Site) -> None:
    """Add, remove and undo the removal; only the admin may undo."""
    browser, csrf = await signed_in(site, "sam")
    async with browser:
        swap = {"practice": "maple-grove", "doctor": "patel", "from": "+1h", "until": "+1d",
                "reason": "cover"}  # fmt: skip
        added = await (await browser.post("/api/swaps", json=swap, headers=csrf)).json()
        ident = added["entry"]["id"]
        removed = await browser.post(f"/api/swaps/{ident}/remove", json={"reason": "no need"},
                                     headers=csrf)  # fmt: skip
        assert removed.status == 201
        assert (await browser.post("/api/changes/2/undo", json={"reason": "x"},
                                   headers=csrf)).status == 403  # fmt: skip
    browser, csrf = await signed_in(site, "ada")
    async with browser:
        undone = await browser.post("/api/changes/2/undo", json={"reason": "needed after all"},
                                    headers=csrf)  # fmt: skip
        assert undone.status == 201
        listed = await (await browser.get("/api/swaps")).json()
        assert ident in [e["id"] for e in listed["entries"] if e["origin"] == "command"]
