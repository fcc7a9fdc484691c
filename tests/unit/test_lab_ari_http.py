"""The lab's one blocking way to look at ARI, against the fake ARI server."""

from __future__ import annotations

import asyncio
import dataclasses
import socket

from coverage_lab.ari_http import AriCredentials, ari_answers, ari_delete_quietly, ari_get
from coverage_lab.fake_ari import FakeAri


def credentials_for(fake: FakeAri) -> AriCredentials:
    settings = fake.settings()
    return AriCredentials(settings.url, settings.username, settings.password, settings.app)


def test_the_credentials_make_the_auth_header_and_the_event_url() -> None:
    """Basic auth of user:password, and the WebSocket URL of the application's events."""
    ari = AriCredentials("http://127.0.0.1:8088/ari", "coverage-engine", "s3cret")
    assert ari.basic_auth_header() == "Basic Y292ZXJhZ2UtZW5naW5lOnMzY3JldA=="
    assert ari.websocket_url == "ws://127.0.0.1:8088/ari/events?app=coverage-engine"
    assert "s3cret" not in repr(ari)


async def test_get_and_delete_reach_the_resources_with_the_credentials() -> None:
    """A GET returns the decoded JSON; a DELETE removes the channel; both carry the password."""
    async with FakeAri() as fake:
        caller = await fake.start_call("+13125550100")
        ari = credentials_for(fake)

        listed = await asyncio.to_thread(ari_get, ari, "/channels")
        assert isinstance(listed, list)
        assert [c["id"] for c in listed] == [caller]

        await asyncio.to_thread(ari_delete_quietly, ari, f"/channels/{caller}")
        await asyncio.to_thread(ari_delete_quietly, ari, f"/channels/{caller}")  # gone: fine
        assert await asyncio.to_thread(ari_get, ari, "/channels") == []


async def test_answers_says_yes_or_why_not() -> None:
    """200 is a yes; a wrong password is "HTTP 401"; nobody listening is the socket's error."""
    async with FakeAri() as fake:
        ari = credentials_for(fake)
        assert await asyncio.to_thread(ari_answers, ari, f"/applications/{fake.app}") == (
            True,
            "HTTP 200",
        )
        wrong = dataclasses.replace(ari, password="not-the-password")
        assert await asyncio.to_thread(ari_answers, wrong, f"/applications/{fake.app}") == (
            False,
            "HTTP 401",
        )
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    nobody = AriCredentials(f"http://127.0.0.1:{port}/ari", "u", "p")
    ok, why = ari_answers(nobody, "/asterisk/info")
    assert not ok
    assert "refused" in why.lower()
