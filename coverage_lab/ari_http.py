"""Plain blocking HTTP to ARI with basic auth: how the lab looks at Asterisk.

The engine speaks ARI through `coverage_engine.ari.client` (asynchronous, on
aiohttp). The lab only needs to look and tidy up from plain blocking code: is
the sandbox's ARI up, has the engine's application registered, what is
bridged now, hang up what a failed test left. This module is its one way to
do that, so the credentials and the auth header are built in one place.
"""

from __future__ import annotations

import base64
import contextlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from coverage_engine.wire import APP as DEFAULT_APP


@dataclass(frozen=True, slots=True)
class AriCredentials:
    """How the engine and the tests reach ARI: base URL (…/ari), user, password."""

    url: str
    user: str
    # Kept out of repr(): pytest prints fixture values in failure reports.
    password: str = field(repr=False)
    app: str = DEFAULT_APP

    @property
    def websocket_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + f"/events?app={self.app}"

    def basic_auth_header(self) -> str:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return f"Basic {token}"


def _request(ari: AriCredentials, path: str, method: str = "GET") -> urllib.request.Request:
    return urllib.request.Request(  # noqa: S310 - an http URL on the loopback, from our settings
        ari.url.rstrip("/") + path,
        method=method,
        headers={"Authorization": ari.basic_auth_header()},
    )


def ari_get(ari: AriCredentials, path: str, *, timeout: float = 5.0) -> object:
    """GET an ARI resource (e.g. "/bridges") and return the decoded JSON.

    An HTTP error raises `urllib.error.HTTPError` (close it: it holds the socket).
    """
    with urllib.request.urlopen(_request(ari, path), timeout=timeout) as response:  # noqa: S310
        result: object = json.load(response)
        return result


def ari_answers(ari: AriCredentials, path: str, *, timeout: float = 2.0) -> tuple[bool, str]:
    """Whether ARI answers GET `path` with 200, and if not, why ("HTTP 401", the socket error)."""
    try:
        with urllib.request.urlopen(_request(ari, path), timeout=timeout) as response:  # noqa: S310
            return response.status == 200, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the response's socket
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return False, str(exc)


def ari_delete_quietly(ari: AriCredentials, path: str, *, timeout: float = 5.0) -> None:
    """DELETE a resource, best effort: a 404 for something already gone is fine."""
    with contextlib.suppress(urllib.error.URLError, OSError):
        urllib.request.urlopen(_request(ari, path, "DELETE"), timeout=timeout).close()  # noqa: S310
