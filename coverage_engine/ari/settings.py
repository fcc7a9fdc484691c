"""How to reach Asterisk's ARI: URL, credentials, application name, timings.

Pure data. The password is kept out of `repr()` so a logged settings object
never shows it; it travels only in the HTTP Authorization header, never in a
URL (URLs end up in logs and exception messages).

ARI carries that password (HTTP Basic) and every caller's number, so a plain
`http://` URL is accepted for this machine only; across a network it must be
`https://`, and the certificate is always verified (against `ca_file` when
given, else the system's CAs): there is no setting to turn that off.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from coverage_engine.wire import APP

_APP_NAME = re.compile(re.escape(APP) + r"[A-Za-z0-9_.-]{0,40}")


@dataclass(frozen=True, slots=True)
class AriSettings:
    """Connection settings for one ARI application.

    `url` is the ARI base URL, e.g. `http://127.0.0.1:8088/ari` (no
    credentials in it). Timings are in seconds.
    """

    url: str
    username: str
    password: str = field(repr=False)
    app: str = APP
    # Every REST request must finish within this; a hung Asterisk must not hang a call.
    request_timeout: float = 5.0
    # A WebSocket ping goes out after this long without traffic and must be
    # answered within half of it: a silently dead link is noticed in <= 1.5x.
    # Short, because an engine that cannot hear Asterisk stops beating, and
    # another engine takes its calls over (engine/liveness.py).
    heartbeat: float = 2.0
    # Reconnect backoff: first delay, cap, and the +/- jitter fraction that
    # keeps many engines from reconnecting in lock-step after an Asterisk restart.
    # The cap is short on purpose: while we are away, new calls skip the engine
    # (the dialplan's fallback takes them), and retrying a loopback port is cheap.
    backoff_initial: float = 0.5
    backoff_max: float = 5.0
    backoff_jitter: float = 0.2
    # How long a dial may wait for a channel just created to enter the
    # application (Asterisk refuses the dial with 409 until it has).
    stasis_entry_wait: float = 1.0
    # CA certificates (PEM) that vouch for an https:// ARI's certificate;
    # None: the system's. A private CA, or the PBX's own self-signed certificate.
    ca_file: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"ARI URL must be http(s)://host:port/ari, got {self.safe_url!r}")
        if parts.username or parts.password:
            raise ValueError("put the ARI user and password in settings, not in the URL")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ValueError(
                f"ARI at {self.safe_url} would carry the password and callers' numbers in "
                "clear across the network: use https:// (Asterisk's http.conf tlsenable; "
                "docs/security.md), or run the engine on the PBX and use 127.0.0.1"
            )
        if self.ca_file is not None and parts.scheme != "https":
            raise ValueError("a CA file is for an https:// ARI URL")
        if self.request_timeout <= 0 or self.heartbeat <= 0:
            raise ValueError("ARI timeouts must be positive")


    def check_engine_app(self) -> AriSettings:
        """These settings, if `app` may name an engine; ValueError saying what to use instead."""
        if not _APP_NAME.fullmatch(self.app):
            # The name goes into the dialplan (COVERAGE_ENGINE, the queue's
            # broadcast filter) and into global-variable names.
            raise ValueError(
                f"ARI application {self.app!r}: use letters, digits, '-', '_' and '.', "
                f"starting with {APP!r} so the PBX's broadcasts reach it "
                "(coverage-engine, coverage-engine-b, ...)"
            )
        return self

    def authorization_header(self) -> str:
        """The HTTP Basic `Authorization` header value for these credentials."""
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"

    @property
    def base_url(self) -> str:
        """The URL without a trailing slash."""
        return self.url.rstrip("/")

    @property
    def safe_url(self) -> str:
        """The URL with any user info removed, safe to log."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) is this machine: localhost, 127/8, ::1."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
