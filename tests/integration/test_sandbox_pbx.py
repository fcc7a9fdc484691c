"""The sandbox PBX itself: loopback only, generated credentials, the DID reaches the app safely."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import urllib.error
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from coverage_lab.ari_http import AriCredentials, ari_get
from coverage_lab.phones import CallerHandle, Phones, answers, never_answers
from coverage_lab.sandbox import AMI_PORT, HTTP_PORT, SIP_PORT

pytestmark = pytest.mark.integration


def _listening(proc_file: str, port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net) bound to `port`."""
    rows = Path(proc_file).read_text().splitlines()[1:]
    return {
        row.split()[1].split(":")[0]
        for row in rows
        if int(row.split()[1].split(":")[1], 16) == port
    }


@pytest.mark.usefixtures("sandbox")
def test_sip_ari_and_ami_listen_on_the_loopback_only() -> None:
    """Nothing of the PBX is reachable from a network: every socket is bound to 127.0.0.1."""
    loopback = "0100007F"  # 127.0.0.1, little-endian hex
    assert _listening("/proc/net/udp", SIP_PORT) == {loopback}
    assert _listening("/proc/net/tcp", HTTP_PORT) == {loopback}
    assert _listening("/proc/net/tcp", AMI_PORT) == {loopback}


def test_ari_accepts_the_generated_password_and_refuses_another(ari: AriCredentials) -> None:
    """ARI answers with the sandbox's random password and says 401 to a wrong one."""
    info = ari_get(ari, "/asterisk/info")
    assert isinstance(info, dict)
    assert "system" in info
    with pytest.raises(urllib.error.HTTPError) as refused:
        ari_get(dataclasses.replace(ari, password="not-the-password"), "/asterisk/info")
    refused.value.close()  # the error response holds the socket open
    assert refused.value.code == 401


@contextlib.asynccontextmanager
async def _application(
    ari: AriCredentials,
) -> AsyncIterator[tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]]:
    """Connect as the coverage-engine application: an HTTP session and the event socket."""
    headers = {"Authorization": ari.basic_auth_header()}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.ws_connect(ari.websocket_url) as ws,
    ):
        yield http, ws


async def _next_event(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    async for message in ws:
        event: dict[str, Any] = json.loads(message.data)
        if event.get("type") == kind:
            return event
    raise AssertionError(f"the ARI websocket closed before a {kind}")


async def _claimed(
    ari: AriCredentials, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse
) -> dict[str, Any]:
    """Claim the next caller StasisBroadcast offers us, as an engine does; its StasisStart."""
    offer = await asyncio.wait_for(_next_event(ws, "CallBroadcast"), timeout=15)
    async with http.post(
        f"{ari.url}/events/claim",
        params={"channelId": offer["channel"]["id"], "application": ari.app},
    ) as response:
        assert response.status == 204
    return await asyncio.wait_for(_next_event(ws, "StasisStart"), timeout=5)


async def test_the_did_reaches_the_application_as_one_filtered_argument(
    ari: AriCredentials, phones: Phones, place_call: Callable[..., CallerHandle]
) -> None:
    """Parentheses, commas and a dial string in the dialed number never become Stasis arguments."""
    phones.start("operator1", answers(after=0.5, hangup_after=1))
    async with _application(ari) as (http, ws):
        call = place_call("+1(555)010-0199,x,PJSIP/patel")
        start = await _claimed(ari, http, ws)
        assert start["args"] == ["inbound", "+15550100199"]
        # The engine hands the call back: the dialplan's safety net takes it on.
        channel = start["channel"]["id"]
        async with http.post(f"{ari.url}/channels/{channel}/continue") as response:
            assert response.status == 204

    calls = await asyncio.to_thread(phones.wait_for, "answered", call.caller, 45)
    assert [c.phone for c in calls if c.answered] == ["operator1"]
    result = await asyncio.to_thread(call.wait, 60)
    assert result.answered


async def test_an_operators_step_comes_back_to_the_engine_with_the_queue_result(
    ari: AriCredentials, phones: Phones, place_call: Callable[..., CallerHandle]
) -> None:
    """In coverage-queue a caller waits COVERAGE_QUEUE_WAIT s, then is back in Stasis: TIMEOUT."""
    for operator in ("operator1", "operator2", "operator3"):
        phones.start(operator, never_answers())
    async with _application(ari) as (http, ws):
        call = place_call("+15550100")
        start = await _claimed(ari, http, ws)
        channel = start["channel"]["id"]
        # As the engine does: answer the caller, set the step's variables, continue.
        async with http.post(f"{ari.url}/channels/{channel}/answer") as response:
            assert response.status == 204
        for name, value in (("COVERAGE_QUEUE", "answering"), ("COVERAGE_QUEUE_WAIT", "3")):
            async with http.post(
                f"{ari.url}/channels/{channel}/variable",
                params={"variable": name, "value": value},
            ) as response:
                assert response.status == 204
        async with http.post(
            f"{ari.url}/channels/{channel}/continue",
            params={"context": "coverage-queue", "extension": "s", "priority": "1"},
        ) as response:
            assert response.status == 204
        back = await _claimed(ari, http, ws)
        assert back["channel"]["id"] == channel
        assert back["args"] == ["queue-result", "TIMEOUT"]
        async with http.delete(f"{ari.url}/channels/{channel}") as response:
            assert response.status == 204

    result = await asyncio.to_thread(call.wait, 30)
    assert result.ended_by == "remote"
    assert {c.phone for c in phones.calls() if c.caller == call.caller} == {
        "operator1", "operator2", "operator3"
    }
