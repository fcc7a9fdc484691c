"""ARI across a network only over verified TLS: https and wss, certificate and host name checked.

The server side is a small aiohttp ARI (REST and the event WebSocket) with a
certificate made for this test by `openssl`; the client is the production
`AriClient`.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from coverage_engine.ari import AriSettings
from coverage_engine.ari.client import AriClient


def certificate(folder: Path, names: str) -> tuple[Path, Path]:
    """A self-signed certificate (and its key) valid for `names` (subjectAltName syntax)."""
    cert, key = folder / "pbx.crt", folder / "pbx.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=coverage-test-pbx", "-addext", f"subjectAltName={names}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


async def _events(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for _message in ws:
        pass
    return ws


async def _channels(_request: web.Request) -> web.Response:
    return web.json_response([])


Serve = Callable[[str], Awaitable[tuple[int, Path]]]


@pytest.fixture
async def tls_ari(tmp_path: Path) -> AsyncIterator[Serve]:
    """`await serve(names)` -> (port, certificate) of an ARI over TLS on 127.0.0.1."""
    runners: list[web.AppRunner] = []

    async def serve(names: str) -> tuple[int, Path]:
        cert, key = certificate(tmp_path, names)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        app = web.Application()
        app.router.add_get("/ari/events", _events)
        app.router.add_get("/ari/channels", _channels)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        return runner.addresses[0][1], cert

    yield serve
    for runner in runners:
        await runner.cleanup()


def settings(port: int, ca_file: Path | None, host: str = "127.0.0.1") -> AriSettings:
    return AriSettings(
        url=f"https://{host}:{port}/ari",
        username="coverage-engine",
        password="pw",
        ca_file=str(ca_file) if ca_file else None,
        backoff_initial=0.05,
        backoff_max=0.1,
    )


async def test_with_the_pbx_certificate_rest_and_events_go_over_tls(tls_ari: Serve) -> None:
    """https for REST and wss for events, the certificate verified against the CA file."""
    port, cert = await tls_ari("IP:127.0.0.1")
    async with AriClient(settings(port, cert)) as client:
        assert await client.wait_connected(5)
        assert await client.list_channels() == []


async def test_an_unknown_certificate_is_refused_never_ignored(tls_ari: Serve) -> None:
    """Without the CA file the self-signed certificate is not trusted: no link, a clear log line."""
    port, _ = await tls_ari("IP:127.0.0.1")
    with capture_logs() as logs:
        async with AriClient(settings(port, None)) as client:
            assert not await client.wait_connected(1)
    failures = [e for e in logs if e["event"] == "ari.connect_failed"]
    assert failures
    assert "certificate verify failed" in str(failures[0]["reason"]).lower()


async def test_a_certificate_for_another_host_is_refused(tls_ari: Serve) -> None:
    """A certificate for `pbx.example` does not vouch for 127.0.0.1: host names are checked."""
    port, cert = await tls_ari("DNS:pbx.example")
    with capture_logs() as logs:
        async with AriClient(settings(port, cert)) as client:
            assert not await client.wait_connected(1)
    reasons = " ".join(str(e.get("reason")) for e in logs if e["event"] == "ari.connect_failed")
    assert "hostname" in reasons.lower() or "ip address mismatch" in reasons.lower()


@pytest.mark.parametrize(
    "url",
    ["http://pbx.clinic.example:8088/ari", "http://10.0.0.2:8088/ari", "http://[fe80::1]:8088/ari"],
)
def test_plain_http_to_another_host_is_refused_with_what_to_do(url: str) -> None:
    """The password and callers' numbers never cross a network in clear."""
    with pytest.raises(ValueError, match=r"https://"):
        AriSettings(url=url, username="u", password="p")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8088/ari", "http://localhost:8088/ari", "http://[::1]:8088/ari"]
)
def test_plain_http_on_this_machine_is_fine(url: str) -> None:
    """The reference setup: engine and Asterisk on one host, ARI on the loopback."""
    assert AriSettings(url=url, username="u", password="p").url == url


def test_a_ca_file_without_https_is_a_mistake_said_so() -> None:
    """A CA file with an http:// URL would verify nothing: refused, not ignored."""
    with pytest.raises(ValueError, match="https"):
        AriSettings(
            url="http://127.0.0.1:8088/ari", username="u", password="p", ca_file="/x.pem"
        )


async def test_an_unreadable_ca_file_is_a_message(tmp_path: Path) -> None:
    """A CA file that is not a certificate stops the client with the file named."""
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ValueError, match=str(bad)):
        async with AriClient(settings(1, bad)):
            await asyncio.sleep(0)
