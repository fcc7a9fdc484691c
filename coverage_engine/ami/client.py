"""The AMI adapter: panoramisk behind a small typed interface.

    AmiError                 anything the AMI adapter raises
    ├── AmiUnavailable       cannot connect, or the connection broke mid-action
    │   └── AmiTimeout       an action's deadline passed before Asterisk answered
    ├── AmiLoginFailed       Asterisk refused the AMI user or secret (fix manager.conf)
    └── AmiActionFailed      Asterisk answered "Error"; `.message` says why

panoramisk 1.4 is untyped and has sharp edges this module exists to file off:

* a successful `QueueAdd` never completes unless sent with `as_list=False`;
  every single-response action here is sent that way;
* an action sent with `as_list=True` that Asterisk rejects never completes
  either; `QueueStatus` goes with `as_list=None` so an "Error" comes back as
  one message;
* a callback returning a coroutine becomes an untracked task. Our callback is
  synchronous and only puts the event on our own `asyncio.Queue`;
* an action sent while disconnected waits forever: every action has a timeout;
* after a failed login or connect it reconnects forever on its own. On the
  first connect we want a clear error instead, so `close()` also disarms that.

The secret comes from the environment or a file, never from the command line
(where `ps` would show it to every user of the machine).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from panoramisk import Manager

log = logging.getLogger(__name__)

ENV_HOST = "COVERAGE_AMI_HOST"
ENV_PORT = "COVERAGE_AMI_PORT"
ENV_USER = "COVERAGE_AMI_USER"
ENV_SECRET = "COVERAGE_AMI_SECRET"  # noqa: S105 - the variable's name, not a secret
ENV_SECRET_FILE = "COVERAGE_AMI_SECRET_FILE"  # noqa: S105 - the variable's name


class AmiError(Exception):
    """Base of everything the AMI adapter raises."""


class AmiUnavailable(AmiError):
    """Asterisk's manager interface could not be reached or dropped the connection."""


class AmiTimeout(AmiUnavailable):
    """Asterisk did not answer an AMI action within its deadline."""


class AmiLoginFailed(AmiError):
    """Asterisk refused the AMI user name or secret."""


class AmiActionFailed(AmiError):
    """Asterisk answered an action with an error (no such queue, not a member, ...)."""

    def __init__(self, action: str, message: str) -> None:
        self.action = action
        self.message = message
        super().__init__(f"{action}: {message}")


@dataclass(frozen=True, slots=True)
class AmiSettings:
    """Where and as whom to log in to AMI. `secret` never appears in a repr."""

    username: str
    secret: str = field(repr=False)
    host: str = "127.0.0.1"
    port: int = 5038
    timeout: float = 5.0  # seconds, for the login and for every action

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AmiSettings:
        """Settings from COVERAGE_AMI_* variables; the secret inline or in a file."""
        env = os.environ if environ is None else environ
        user = env.get(ENV_USER, "")
        if not user:
            raise AmiError(
                f"AMI is not configured: set {ENV_USER} and {ENV_SECRET_FILE} "
                "(a file holding the manager.conf secret)"
            )
        return cls(
            username=user,
            secret=read_secret(env),
            host=env.get(ENV_HOST, "127.0.0.1"),
            port=int(env.get(ENV_PORT, "5038")),
        )


def read_secret(env: Mapping[str, str]) -> str:
    """The AMI secret from $COVERAGE_AMI_SECRET or the file $COVERAGE_AMI_SECRET_FILE."""
    if env.get(ENV_SECRET):
        return env[ENV_SECRET]
    path = env.get(ENV_SECRET_FILE, "")
    if not path:
        raise AmiError(f"AMI secret missing: set {ENV_SECRET_FILE} to a file holding it")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AmiError(f"cannot read the AMI secret file {path}: {exc.strerror}") from exc
    # Either the bare secret, or the `secret = ...` line Asterisk's manager.conf
    # includes, so one file serves both Asterisk and us.
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().lower() == "secret":
            return value.strip()
    return text.strip()


@dataclass(frozen=True, slots=True)
class AmiConnected:
    """The adapter is logged in (first time or after a reconnect): resync state now."""


@dataclass(frozen=True, slots=True)
class AmiDisconnected:
    """The AMI connection dropped; panoramisk is reconnecting on its own."""


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """One AMI event, as plain text headers."""

    headers: Mapping[str, str]

    @property
    def name(self) -> str:
        return self.headers.get("Event", "")


AmiNotice = AmiConnected | AmiDisconnected | AmiMessage


class Ami(Protocol):
    """What the rest of coverage-engine needs from AMI (fakes implement this too)."""

    notices: asyncio.Queue[AmiNotice]

    async def queue_status(self, queue: str | None = None) -> list[dict[str, str]]: ...

    async def queue_add(
        self, queue: str, interface: str, member_name: str, *, paused: bool = False
    ) -> None: ...

    async def queue_remove(self, queue: str, interface: str) -> None: ...

    async def queue_pause(
        self, queue: str | None, interface: str, *, paused: bool, reason: str = ""
    ) -> None: ...

    async def close(self) -> None: ...


def _plain(message: Any) -> dict[str, str]:
    """A panoramisk Message as a plain dict; repeated headers joined with ','."""
    out: dict[str, str] = {}
    for key, value in message.items():
        if key == "content":
            continue
        out[str(key)] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return out


class PanoramiskAmi:
    """The production `Ami`: one logged-in panoramisk Manager.

    Build it with `await PanoramiskAmi.connect(settings)` inside the running
    loop (panoramisk creates futures on the current loop at construction).
    """

    # Event classes: `system` for FullyBooted (panoramisk resends actions queued
    # during a reconnect on it), `agent` for every queue and member event.
    _EVENTS = "system,agent"

    def __init__(self, settings: AmiSettings, notices: asyncio.Queue[AmiNotice]) -> None:
        self._settings = settings
        self.notices = notices
        self._closed = False
        self._login: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._manager = Manager(
            loop=asyncio.get_running_loop(),
            host=settings.host,
            port=settings.port,
            username=settings.username,
            secret=settings.secret,
            events=self._EVENTS,
            ping_delay=10,
            reconnect_timeout=2,
            on_login=self._on_login,
            on_disconnect=self._on_disconnect,
            log=log,
        )
        # panoramisk looks `login` up on the instance when the Login response
        # arrives; wrapping it is the one place we learn that a login *failed*.
        original_login = self._manager.login

        def login(future: Any) -> bool:
            ok = bool(original_login(future))
            if not ok and not self._login.done():
                self._login.set_result(False)
            return ok

        self._manager.login = login

        # Likewise `connection_made` receives the connect attempt's outcome. A
        # refused first connect is the admin's to fix now ("is Asterisk
        # running?"), not something to retry quietly every two seconds.
        original_connection_made = self._manager.connection_made

        def connection_made(attempt: asyncio.Future[Any]) -> None:
            error = None if attempt.cancelled() else attempt.exception()
            if isinstance(error, OSError) and not self._login.done():
                self._login.set_exception(AmiUnavailable(error.strerror or str(error)))
                return
            original_connection_made(attempt)

        self._manager.connection_made = connection_made
        self._manager.register_event("*", self._on_event)

    @classmethod
    async def connect(
        cls, settings: AmiSettings, notices: asyncio.Queue[AmiNotice] | None = None
    ) -> PanoramiskAmi:
        """Connect and log in, or raise an `AmiError` a clinic admin can act on."""
        ami = cls(settings, notices if notices is not None else asyncio.Queue())
        ami._manager.connect()
        where = f"{settings.host}:{settings.port}"
        try:
            ok = await asyncio.wait_for(asyncio.shield(ami._login), settings.timeout)
        except AmiUnavailable as exc:
            await ami.close()
            raise AmiUnavailable(
                f"cannot connect to Asterisk's manager interface at {where} ({exc}): "
                "is Asterisk running with manager.conf enabled?"
            ) from None
        except TimeoutError:
            await ami.close()
            raise AmiUnavailable(
                f"no answer from Asterisk's manager interface at {where} within "
                f"{settings.timeout:g}s: is Asterisk running and manager.conf enabled?"
            ) from None
        if not ok:
            await ami.close()
            raise AmiLoginFailed(
                f"Asterisk refused AMI user {settings.username!r} at {where}: "
                "check the user and secret in manager.conf and the secret file"
            )
        return ami

    # -- panoramisk callbacks: synchronous, never create tasks ---------------

    def _on_login(self, _manager: Any) -> None:
        if not self._login.done():
            self._login.set_result(True)
        self.notices.put_nowait(AmiConnected())

    def _on_disconnect(self, _manager: Any, _exc: Any) -> None:
        if not self._closed:
            self.notices.put_nowait(AmiDisconnected())

    def _on_event(self, _manager: Any, message: Any) -> None:
        self.notices.put_nowait(AmiMessage(_plain(message)))

    # -- actions -------------------------------------------------------------

    async def _send(self, action: dict[str, str], as_list: bool | None) -> Any:
        if self._closed:
            raise AmiUnavailable("the AMI connection is closed")
        name = action["Action"]
        try:
            future = self._manager.send_action(action, as_list=as_list)
            return await asyncio.wait_for(future, self._settings.timeout)
        except TimeoutError:
            raise AmiTimeout(
                f"{name}: no answer from Asterisk within {self._settings.timeout:g}s"
            ) from None
        except (AttributeError, OSError) as exc:  # no protocol yet / transport gone
            raise AmiUnavailable(f"{name}: AMI connection unavailable ({exc})") from exc

    async def _simple(self, action: dict[str, str]) -> dict[str, str]:
        response = _plain(await self._send(action, as_list=False))
        if response.get("Response", "").lower() != "success":
            raise AmiActionFailed(action["Action"], response.get("Message", "failed"))
        return response

    async def queue_status(self, queue: str | None = None) -> list[dict[str, str]]:
        action = {"Action": "QueueStatus"}
        if queue:
            action["Queue"] = queue
        result = await self._send(action, as_list=None)
        if not isinstance(result, list):  # a single message: Asterisk said no
            response = _plain(result)
            raise AmiActionFailed("QueueStatus", response.get("Message", "failed"))
        return [_plain(m) for m in result if "Event" in m or "event" in m]

    async def queue_add(
        self, queue: str, interface: str, member_name: str, *, paused: bool = False
    ) -> None:
        await self._simple(
            {
                "Action": "QueueAdd",
                "Queue": queue,
                "Interface": interface,
                "MemberName": member_name,
                "Paused": "true" if paused else "false",
            }
        )

    async def queue_remove(self, queue: str, interface: str) -> None:
        await self._simple({"Action": "QueueRemove", "Queue": queue, "Interface": interface})

    async def queue_pause(
        self, queue: str | None, interface: str, *, paused: bool, reason: str = ""
    ) -> None:
        action = {
            "Action": "QueuePause",
            "Interface": interface,
            "Paused": "true" if paused else "false",
        }
        if queue:  # without a queue, app_queue (un)pauses the member everywhere
            action["Queue"] = queue
        if reason:
            action["Reason"] = reason
        await self._simple(action)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Disarm panoramisk's own reconnect loop (`connection_lost` and a failed
        # connect both schedule `connect` again); a closed adapter stays closed.
        self._manager.connect = lambda *_a, **_k: None
        self._manager.close()
        if not self._login.done():
            self._login.cancel()
