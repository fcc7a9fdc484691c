"""The running configuration, reloaded on SIGHUP and when its file changes.

A valid file replaces the current config for *new* calls (calls in progress
keep the plan they already have). An invalid file is rejected: every error is
logged, so the admin can fix them all in one go, and the old config stays in
force. A half-edited YAML must never leave the practice without routing.

Change detection polls the files (the YAML, and beside it the changes file
that commands write) with a stat every poll, and confirms a change with a
SHA-256 of the content, so an editor that rewrites identical bytes does not
trigger a reload, and a rejected file is not re-rejected (and re-logged)
every poll until it changes again. A stat is cheap, so the poll is short: a
change made with a command reaches the next call within a second.

With a `status_path`, each load and each rejection is written there (which
process, which file contents by SHA-256, any errors), so a command that made
a change can tell the admin the running engine has it, or why not.

The loader is a parameter (the config package's `load` in production, a small
function in tests), so this module knows nothing about YAML.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import structlog

log = structlog.get_logger("coverage_engine.reload")

T = TypeVar("T")

Loader = Callable[[Path], T]
"""Reads and validates the file; raises with the error(s) when it is invalid."""


@dataclass(frozen=True, slots=True)
class FileState:
    """One file's identity on disk: what a stat sees, and its content hash."""

    inode: int
    mtime_ns: int
    size: int
    sha256: str

    @property
    def stat_key(self) -> tuple[int, int, int]:
        return (self.inode, self.mtime_ns, self.size)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What identifies one version of the watched files' content (None: a file is absent)."""

    files: tuple[tuple[str, FileState | None], ...]

    @property
    def stat_keys(self) -> tuple[tuple[int, int, int] | None, ...]:
        return tuple(state.stat_key if state else None for _, state in self.files)

    @property
    def hashes(self) -> dict[str, str | None]:
        return {name: state.sha256 if state else None for name, state in self.files}


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def _file_state(path: Path) -> FileState | None:
    try:
        info = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
    return FileState(info.st_ino, info.st_mtime_ns, info.st_size, digest)


def fingerprint(path: Path, companions: Sequence[Path] = ()) -> Fingerprint | None:
    """The files' fingerprint; None when the main file cannot be read (moved away mid-save)."""
    main = _file_state(path)
    if main is None:
        return None
    return Fingerprint(((path.name, main), *((p.name, _file_state(p)) for p in companions)))


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
        companions: Sequence[Path] | Callable[[], Sequence[Path]] = (),
        status_path: Path | Callable[[], Path] | None = None,
    ) -> None:
        self._path = path
        # Files read together with `path` (the changes file, the on-call feed
        # copies): a change to any of them is a new version of the
        # configuration. A function when the list depends on the config.
        self._companions = companions
        self._status_path = status_path
        self._loaded_hashes: dict[str, str | None] = {}
        self._loaded_at: str | None = None
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

    def _companion_paths(self) -> tuple[Path, ...]:
        found = self._companions() if callable(self._companions) else self._companions
        return tuple(found)

    def _fingerprint(self) -> Fingerprint | None:
        return fingerprint(self._path, self._companion_paths())

    def _fingerprint_companions(self) -> tuple[tuple[str, FileState | None], ...]:
        return tuple((p.name, _file_state(p)) for p in self._companion_paths())

    def load_initial(self) -> T:
        """Load the file at start; raises the loader's exception when it is invalid."""
        seen = self._fingerprint()
        config = self._loader(self._path)
        self._install(config, seen)
        log.info("config.loaded", path=str(self._path), version=self._version)
        return config

    def reload(self, *, why: str = "requested") -> bool:
        """Try the file now; True when a new config was installed."""
        return self._apply(*self._attempt(), why=why)

    def _attempt(self) -> tuple[Fingerprint | None, T | None, Exception | None]:
        # Only reads and validates: safe to run in a worker thread.
        seen = self._fingerprint()
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
            self._write_status(seen, rejected=errors)
            return False
        self._install(config, seen)
        log.info("config.reloaded", path=str(self._path), why=why, version=self._version)
        return True

    def request_reload(self) -> None:
        """Ask the watcher to reload now (what SIGHUP does)."""
        self._reload_requested.set()

    def changed_on_disk(self) -> bool:
        """True when the files' content differs from the last version tried.

        A stat of each file first; the content is hashed only when a stat
        changed (a rename gives a new inode, so an atomic replace is seen even
        within one mtime tick).
        """
        if self._seen is not None:
            keys = (_stat_key(self._path), *(_stat_key(p) for p in self._companion_paths()))
            if keys == self._seen.stat_keys:
                return False
        current = self._fingerprint()
        if current is None:
            return False  # mid-save or removed: wait for the file to come back
        if self._seen is not None and current.hashes == self._seen.hashes:
            self._seen = current  # touched, same bytes: remember the new stat
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
        if seen is not None and len(seen.files) != 1 + len(self._companion_paths()):
            # The new config watches other files (a feed was added): take
            # their state now, or the next poll would reload for nothing.
            seen = Fingerprint((seen.files[0], *self._fingerprint_companions()))
        self._seen = seen
        self._version += 1
        if self._on_change is not None:
            self._on_change(config)
        self._loaded_hashes = seen.hashes if seen is not None else {}
        self._write_status(seen)

    def _write_status(self, seen: Fingerprint | None, rejected: list[str] | None = None) -> None:
        """Say which contents this process runs (and what it last rejected), for the commands."""
        if self._status_path is None:
            return
        target = self._status_path() if callable(self._status_path) else self._status_path
        now = datetime.now(UTC).isoformat()
        status: dict[str, Any] = {
            "pid": os.getpid(),
            "version": self._version,
            "files": self._loaded_hashes,
            "loaded_at": self._loaded_at,
            "rejected": None,
        }
        if rejected is None:
            self._loaded_at = status["loaded_at"] = now
        else:
            status["rejected"] = {
                "at": now,
                "files": seen.hashes if seen is not None else {},
                "errors": rejected[:20],
            }
        try:
            _write_json(target, status)
        except OSError as exc:
            # Only the commands' confirmation depends on it; calls never do.
            log.warning("config.status_unwritable", path=str(target), error=str(exc))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` with `data` as JSON, atomically (readers never see half of it)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(path)
