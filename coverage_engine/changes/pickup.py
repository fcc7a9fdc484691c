"""Has the running engine picked a change up? Read from the status file it writes on each load."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from coverage_engine.config.overlay import overlay_path


@dataclass(frozen=True, slots=True)
class Pickup:
    """What the running engine did with the changes file of a given content."""

    outcome: Literal["loaded", "rejected", "no engine", "not yet"]
    pid: int | None = None
    errors: tuple[str, ...] = ()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def read_pickup(config_path: Path, status_file: Path, changes_sha: str) -> Pickup:
    """Whether the engine that wrote the status file runs the changes file with this hash."""
    try:
        status: dict[str, Any] = json.loads(status_file.read_text(encoding="utf-8"))
        pid = int(status["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return Pickup("no engine")
    if not _alive(pid):
        return Pickup("no engine")
    name = overlay_path(config_path).name
    if (status.get("files") or {}).get(name) == changes_sha:
        return Pickup("loaded", pid)
    rejected = status.get("rejected") or {}
    if (rejected.get("files") or {}).get(name) == changes_sha:
        return Pickup("rejected", pid, tuple(str(e) for e in rejected.get("errors") or ()))
    return Pickup("not yet", pid)


def wait_for_pickup(
    config_path: Path,
    status_file: Path,
    changes_sha: str,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Pickup:
    """Poll the status file until the engine loads or rejects this content, or `timeout`."""
    deadline = clock() + timeout
    while True:
        pickup = read_pickup(config_path, status_file, changes_sha)
        if pickup.outcome in ("loaded", "rejected", "no engine") or clock() >= deadline:
            return pickup
        sleep(0.05)
