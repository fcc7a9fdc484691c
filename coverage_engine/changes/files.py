"""The files beside the coverage YAML that changes touch, written so nothing is ever half-done.

* `coverage.changes.yaml`: the changes (see `config.overlay`), replaced
  atomically: written to a temporary file in the same folder, flushed to
  disk, then renamed over the old one, so a reader (the engine's reload)
  sees the old file or the new one, never a torn one, even after a crash.
* `coverage.audit.jsonl`: one JSON line per change, appended and flushed
  before the change is renamed into place (see `service`).
* `coverage.changes.lock`: held (flock) while a change is read, validated
  and written, so two admins (or the CLI and the console) never lose each
  other's change.
* `coverage.loaded.json`: written by the running engine each time it loads
  the configuration (see `reload`), with its other state in the folder of
  the call records (never the configuration's folder, which may be
  read-only for it); a command reads it to say whether the engine has
  picked its change up.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from coverage_engine.config import CoverageConfig
from coverage_engine.config.feedcache import state_dir
from coverage_engine.config.overlay import overlay_path


def _stem(config_path: Path) -> str:
    return overlay_path(config_path).name.removesuffix(".changes.yaml")


def audit_path(config_path: Path) -> Path:
    """`coverage.yaml` -> `coverage.audit.jsonl`."""
    return config_path.with_name(f"{_stem(config_path)}.audit.jsonl")


def lock_path(config_path: Path) -> Path:
    """`coverage.yaml` -> `coverage.changes.lock`."""
    return config_path.with_name(f"{_stem(config_path)}.changes.lock")


def loaded_status_path(config_path: Path, config: CoverageConfig) -> Path:
    """`coverage.yaml` -> `<state folder>/coverage.loaded.json` (written by the running engine)."""
    return state_dir(config_path, config) / f"{_stem(config_path)}.loaded.json"


def sha256_of(path: Path) -> str | None:
    """The file's SHA-256, None when it does not exist."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _mode_like(config_path: Path) -> int:
    """Files beside the YAML get its permissions (an admin's group may read, nobody else)."""
    try:
        return config_path.stat().st_mode & 0o666
    except OSError:
        return 0o640


@contextlib.contextmanager
def changes_lock(config_path: Path) -> Iterator[None]:
    """Hold the changes lock (blocking) for a read-validate-write of the changes file."""
    fd = os.open(lock_path(config_path), os.O_RDWR | os.O_CREAT, _mode_like(config_path))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@dataclass(frozen=True, slots=True)
class Prepared:
    """A new version of a file, on disk beside it, waiting to be renamed into place."""

    temporary: Path
    target: Path


def prepare(target: Path, text: str, like: Path) -> Prepared:
    """Write `text` to a temporary file beside `target` and flush it to disk."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _mode_like(like))
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return Prepared(temporary, target)


def commit(prepared: Prepared) -> None:
    """Rename the prepared file into place and flush the folder, so the rename survives a crash."""
    prepared.temporary.replace(prepared.target)
    _fsync_dir(prepared.target.parent)


def discard(prepared: Prepared) -> None:
    """Remove a prepared file that will not be used."""
    with contextlib.suppress(FileNotFoundError):
        prepared.temporary.unlink()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append_line(path: Path, line: str, like: Path) -> None:
    """Append one line and flush it to disk (O_APPEND: concurrent appends never interleave)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _mode_like(like))
    try:
        os.write(fd, (line.rstrip("\n") + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
