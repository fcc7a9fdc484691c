"""The local copy of each practice's on-call feed, read with the configuration.

The engine fetches feeds on a schedule (`coverage_engine.feeds`) and keeps
the last good copy with its other state, in the folder of the call records
(`records.path`: /var/lib/..., never the configuration's folder, which may
be read-only), in `coverage.feeds/`: `<practice>.ics`
(only ever replaced by a copy that parsed) and `<practice>.json` (when it
was fetched, the last attempt and its error). Reading the configuration
reads these copies, never the network, so `check`, `explain`, `calendar` and
the engine's reload all see the same shifts, and a feed that is down never
slows them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from coverage_engine.config.model import CoverageConfig, OnCallFeed, OnCallRoster, Practice
from coverage_engine.config.overlay import overlay_path
from coverage_engine.config.yamlsource import PathKey

# How far ahead `check` looks for stretches the feed leaves uncovered.
LOOKAHEAD = timedelta(days=14)


def state_dir(config_path: Path, config: CoverageConfig) -> Path:
    """Where the engine keeps what it writes: the folder of the call records.

    `records.path` is relative to the configuration's folder, as for the
    records themselves; without it, the configuration's folder.
    """
    if config.records is None or config.records.path is None:
        return config_path.parent  # no records file (none, or PostgreSQL): the config's folder
    path = Path(config.records.path)
    return (path if path.is_absolute() else config_path.parent / path).parent


def feeds_dir(config_path: Path, config: CoverageConfig) -> Path:
    """`coverage.yaml` -> `<state folder>/coverage.feeds/`."""
    stem = overlay_path(config_path).name.removesuffix(".changes.yaml")
    return state_dir(config_path, config) / f"{stem}.feeds"


def cache_paths(config_path: Path, config: CoverageConfig, practice: str) -> tuple[Path, Path]:
    """The copy of a practice's feed and its status file."""
    folder = feeds_dir(config_path, config)
    return folder / f"{practice}.ics", folder / f"{practice}.json"


def watched_files(config_path: Path, config: CoverageConfig) -> list[Path]:
    """The feed copies and status files a reload must watch, for the practices with a feed."""
    return [
        path
        for key, practice in config.practices.items()
        if practice.oncall is not None and practice.oncall.feed is not None
        for path in cache_paths(config_path, config, key)
    ]


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """What the status file says about the last fetches."""

    fetched_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = None

    @classmethod
    def read(cls, path: Path) -> FeedStatus:
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()

        def when(key: str) -> datetime | None:
            value = data.get(key)
            try:
                return datetime.fromisoformat(value) if isinstance(value, str) else None
            except ValueError:
                return None

        error = data.get("last_error")
        return cls(when("fetched_at"), when("last_attempt_at"), str(error) if error else None)


def attach_feeds(config: CoverageConfig, config_path: Path, now: datetime) -> CoverageConfig:
    """`config` with each practice's feed shifts, read from the local copy, on its roster."""
    practices = dict(config.practices)
    for key, practice in config.practices.items():
        roster = practice.oncall
        if roster is None or roster.feed is None:
            continue
        copy = roster.model_copy()
        # The loader's own attribute, by design (never read from the file).
        copy._feed_state = read_state(
            cache_paths(config_path, config, key), practice, roster, roster.feed, now
        )
        practices[key] = practice.model_copy(update={"oncall": copy})
    return config.model_copy(update={"practices": practices})


def read_state(
    paths: tuple[Path, Path],
    practice: Practice,
    roster: OnCallRoster,
    feed: OnCallFeed,
    now: datetime,
) -> Any:
    """The feed state of one practice from its local copy (see `schedule.feed.FeedState`)."""
    from coverage_engine.schedule.feed import FeedError, FeedState, parse_feed, roster_of

    ics, status_file = paths
    status = FeedStatus.read(status_file)
    try:
        text = ics.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        why = "the on-call feed was never fetched"
        if status.last_error:
            why = f"the on-call feed cannot be fetched ({status.last_error})"
        return FeedState(why_not=why, last_error=status.last_error)
    fetched = status.fetched_at or datetime.fromtimestamp(ics.stat().st_mtime, UTC)
    doctors = {
        ident: (doctor.name, doctor.aliases, doctor.email)
        for ident, doctor in roster.doctors.items()
    }
    try:
        parsed = parse_feed(text, roster_of(doctors), practice.zone, fetched)
    except FeedError as exc:
        return FeedState(why_not=f"the copy of the on-call feed is unreadable ({exc})")
    age = now - fetched
    fresh = age <= timedelta(hours=feed.stale_after_hours)
    why = (
        ""
        if fresh
        else f"the on-call feed is stale (last fetched {fetched:%Y-%m-%d %H:%M} UTC, "
        f"{age.total_seconds() / 3600:.0f} hours ago)"
    )
    return FeedState(
        shifts=parsed.shifts,
        fetched_at=fetched,
        usable=fresh,
        why_not=why,
        problems=parsed.problems,
        last_error=status.last_error,
    )


def feed_warnings(config: CoverageConfig, now: datetime) -> list[tuple[PathKey, str]]:
    """What `check` says about each practice's feed: fetch trouble, stale, gaps, unknown names."""
    from coverage_engine.schedule.feed import state_of

    found: list[tuple[PathKey, str]] = []
    for key, practice in config.practices.items():
        roster = practice.oncall
        if roster is None or roster.feed is None:
            continue
        path: PathKey = ("practices", key, "oncall", "feed")
        state = state_of(roster)
        if state is None or not state.usable:
            why = state.why_not if state is not None else "the on-call feed was never read"
            found.append(
                (
                    path,
                    f"warning: {why}: the YAML rotation answers until it is "
                    "fetched (coverage-engine feeds refresh)",
                )
            )
            continue
        if state.last_error:
            found.append(
                (
                    path,
                    f"warning: the last fetch of the on-call feed failed "
                    f"({state.last_error}); the copy fetched "
                    f"{state.fetched_at:%Y-%m-%d %H:%M} UTC is used",
                )
            )
        for problem in state.problems[:5]:
            found.append((path, f"warning: the on-call feed: {problem}"))
        if len(state.problems) > 5:
            found.append(
                (
                    path,
                    f"warning: the on-call feed: {len(state.problems) - 5} more events like these",
                )
            )
        holes = uncovered(state.shifts, now, now + LOOKAHEAD)
        if holes:
            shown = ", ".join(
                f"{a.astimezone(practice.zone):%a %m-%d %H:%M}-"
                f"{b.astimezone(practice.zone):%a %m-%d %H:%M}"
                for a, b in holes[:5]
            )
            more = f" and {len(holes) - 5} more" if len(holes) > 5 else ""
            found.append(
                (
                    path,
                    f"warning: the on-call feed names nobody {shown}{more} "
                    "(next 14 days): the YAML rotation answers then",
                )
            )
    return found


def uncovered(shifts: Any, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The stretches of [start, end) no shift covers."""
    holes: list[tuple[datetime, datetime]] = []
    cursor = start
    for shift in sorted(shifts, key=lambda s: s.start):
        if shift.end <= cursor:
            continue
        if shift.start >= end:
            break
        if shift.start > cursor:
            holes.append((cursor, shift.start))
        cursor = max(cursor, shift.end)
    if cursor < end:
        holes.append((cursor, end))
    return holes
