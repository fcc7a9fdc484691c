"""The running configuration, reloaded on SIGHUP and when its file changes.

A valid file replaces the current config for *new* calls (calls in progress
keep the plan they already have). An invalid file is rejected: every error is
logged, so the admin can fix them all in one go, and the old config stays in
force. A half-edited YAML must never leave the practice without routing.

Change detection polls the file's mtime and size, and confirms with a
SHA-256 of the content, so an editor that rewrites identical bytes does not
trigger a reload, and a rejected file is not re-rejected (and re-logged)
every poll until it changes again.

The loader is a parameter (the config package's `load` in production, a small
function in tests), so this module knows nothing about YAML.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import structlog

log = structlog.get_logger("coverage_engine.reload")

T = TypeVar("T")

Loader = Callable[[Path], T]
"""Reads and validates the file; raises with the error(s) when it is invalid."""


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What identifies one version of the file's content."""

    mtime_ns: int
    size: int
    sha256: str


def fingerprint(path: Path) -> Fingerprint | None:
    """The file's fingerprint, None when it cannot be read (moved away mid-save, say)."""
    try:
        stat = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
    return Fingerprint(stat.st_mtime_ns, stat.st_size, digest)


def describe_errors(exc: BaseException) -> list[str]:
    """Every error an exception carries, one readable line each.

    Understands the config package's `ConfigError.issues`, an `errors` list,
    pydantic's `errors()` method, and falls back to `str(exc)`.
    """
    issues: Any = getattr(exc, "issues", None)  # coverage_engine.config.ConfigError
    if isinstance(issues, Sequence) and not isinstance(issues, str) and issues:
        return [str(issue) for issue in issues]
    errors: Any = getattr(exc, "errors", None)
    if callable(errors):
        with contextlib.suppress(Exception):
            errors = errors()
    if isinstance(errors, Sequence) and not isinstance(errors, str) and errors:
        lines = []
        for error in errors:
            if isinstance(error, dict) and "msg" in error:
                where = ".".join(str(part) for part in error.get("loc", ()))
                lines.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
            else:
                lines.append(str(error))
        return lines
    text = str(exc).strip()
    return [text or type(exc).__name__]


class ConfigHolder(Generic[T]):
    """Holds the current config and swaps it when a new valid file appears.

    Build it with the path and the loader; `load_initial()` once at start
    (an invalid file at start is an error the caller reports); then run
    `watch()` as a task for SIGHUP and file-change reloads.
    """

    def __init__(
        self,
        path: Path,
        loader: Loader[T],
        *,
        poll_interval: float = 2.0,
        on_change: Callable[[T], None] | None = None,
        on_reload: Callable[[bool], None] | None = None,
    ) -> None:
        self._path = path
        # Told whether each reload (not the initial load) was accepted (metrics).
        self._on_reload = on_reload
        self._loader = loader
        self._poll_interval = poll_interval
        self._on_change = on_change
        self._current: T | None = None
        self._version = 0
        self._seen: Fingerprint | None = None  # last content tried, accepted or not
        self._reload_requested = asyncio.Event()

    @property
    def path(self) -> Path:
        return self._path

    @property
    def current(self) -> T:
        """The config new calls use."""
        if self._current is None:
            raise RuntimeError("no configuration loaded yet: call load_initial() first")
        return self._current

    @property
    def version(self) -> int:
        """1 after the first load, +1 for each accepted reload."""
        return self._version

    def load_initial(self) -> T:
        """Load the file at start; raises the loader's exception when it is invalid."""
        seen = fingerprint(self._path)
        config = self._loader(self._path)
        self._install(config, seen)
        log.info("config.loaded", path=str(self._path), version=self._version)
        return config

    def reload(self, *, why: str = "requested") -> bool:
        """Try the file now; True when a new config was installed."""
        return self._apply(*self._attempt(), why=why)

    def _attempt(self) -> tuple[Fingerprint | None, T | None, Exception | None]:
        # Only reads and validates: safe to run in a worker thread.
        seen = fingerprint(self._path)
        try:
            return seen, self._loader(self._path), None
        except Exception as exc:  # any loader failure means: keep the old config
            return seen, None, exc

    def _apply(
        self, seen: Fingerprint | None, config: T | None, exc: Exception | None, *, why: str
    ) -> bool:
        # Runs on the event loop, so the swap and `on_change` never race a call.
        accepted = self._install_or_reject(seen, config, exc, why=why)
        if self._on_reload is not None:
            self._on_reload(accepted)
        return accepted

    def _install_or_reject(
        self, seen: Fingerprint | None, config: T | None, exc: Exception | None, *, why: str
    ) -> bool:
        if exc is not None or config is None:
            self._seen = seen
            errors = describe_errors(exc) if exc is not None else ["the loader returned nothing"]
            log.error(
                "config.rejected",
                path=str(self._path),
                why=why,
                error_count=len(errors),
                kept_version=self._version,
                message="the new configuration is invalid; the previous one stays in force",
            )
            for error in errors:
                log.error("config.error", path=str(self._path), error=error)
            return False
        self._install(config, seen)
        log.info("config.reloaded", path=str(self._path), why=why, version=self._version)
        return True

    def request_reload(self) -> None:
        """Ask the watcher to reload now (what SIGHUP does)."""
        self._reload_requested.set()

    def changed_on_disk(self) -> bool:
        """True when the file's content differs from the last one tried."""
        current = fingerprint(self._path)
        if current is None:
            return False  # mid-save or removed: wait for the file to come back
        if self._seen is not None and (current.mtime_ns, current.size) == (
            self._seen.mtime_ns,
            self._seen.size,
        ):
            return False
        if self._seen is not None and current.sha256 == self._seen.sha256:
            self._seen = current  # touched, same bytes: remember the new mtime
            return False
        return True

    async def watch(self, *, handle_sighup: bool = True) -> None:
        """Reload on SIGHUP and on file change until cancelled."""
        loop = asyncio.get_running_loop()
        if handle_sighup:
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_interval):
                        await self._reload_requested.wait()
                if self._reload_requested.is_set():
                    self._reload_requested.clear()
                    why = "SIGHUP"
                elif await asyncio.to_thread(self.changed_on_disk):
                    why = "file changed"
                else:
                    continue
                self._apply(*await asyncio.to_thread(self._attempt), why=why)
        finally:
            if handle_sighup:
                loop.remove_signal_handler(signal.SIGHUP)

    def _install(self, config: T, seen: Fingerprint | None) -> None:
        self._current = config
        self._seen = seen
        self._version += 1
        if self._on_change is not None:
            self._on_change(config)
