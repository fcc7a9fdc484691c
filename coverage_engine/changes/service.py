"""Overrides and swaps as changes: validated, atomic, audited, reversible.

The one service the command line and the console both call. Every change:

1. takes the changes lock, reads the coverage YAML and the changes file as
   they are now (a YAML with errors refuses every change: fix it first; the
   running engine keeps its last good configuration meanwhile);
2. builds the new changes file and validates the YAML merged with it by the
   same model and cross-checks as `check` (an unknown doctor, a swap whose
   backup is its doctor, an override that ends before it starts are refused
   with the reason, and nothing is written);
3. writes the new file beside the old one and flushes it, appends the audit
   entry (who, when, why, before and after) and flushes that, then renames
   the new file into place. The running engine polls the files and loads
   the change for the next call; a rejected change never reaches it.

Undo puts an entry back as it was before a change, through the same steps.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from coverage_engine.changes.audit import AuditEntry, encode, read_audit
from coverage_engine.changes.files import (
    append_line,
    audit_path,
    changes_lock,
    commit,
    discard,
    prepare,
    sha256_of,
)
from coverage_engine.config import ConfigError, CoverageConfig
from coverage_engine.config.errors import ConfigIssue
from coverage_engine.config.loader import Loaded, combine, load_report
from coverage_engine.config.model import Override, Practice, Swap, localize
from coverage_engine.config.overlay import (
    EMPTY,
    Ended,
    EntryKind,
    Overlay,
    OverlayFile,
    OverlayOverride,
    OverlaySwap,
    entry_id,
    overlay_path,
    render_overlay,
    validate_overlay,
)
from coverage_engine.config.text import show
from coverage_engine.config.yamlsource import SourceError, parse_text, read_source

Section = Literal["overrides", "swaps", "ended_early"]
State = Literal["upcoming", "running", "over", "cancelled"]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change, and through what (the command line or the console)."""

    by: str
    via: str = "cli"


class ChangeRefused(Exception):
    """The change was not made; `details` says why, one line each. Nothing was written."""

    def __init__(self, message: str, details: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


@dataclass(frozen=True, slots=True)
class Entry:
    """An override or swap as a practice manager sees it, wherever it is written."""

    id: str
    kind: EntryKind
    practice: str
    start: datetime  # in the practice's time zone
    until: datetime  # when it stops applying (after any early end)
    planned_until: datetime  # as first written
    reason: str
    origin: Literal["file", "command"]
    by: str | None = None
    added: datetime | None = None
    status: str | None = None  # overrides: open / closed
    route: str | None = None  # overrides: oncall
    doctor: str | None = None  # swaps
    backup: str | None = None  # swaps

    def state(self, now: datetime) -> State:
        """Upcoming, running, over, or cancelled (ended before it began)."""
        if self.until <= self.start:
            return "cancelled"
        if now < self.start:
            return "upcoming"
        return "running" if now < self.until else "over"

    @property
    def what(self) -> str:
        """`closed`, `open`, `closed, straight to on-call`, or `okafor (backup patel)`."""
        if self.kind == "override":
            if self.route == "oncall":
                return "closed, straight to the doctor on call"
            return str(self.status)
        backup = f" (backup {self.backup})" if self.backup else ""
        return f"{self.doctor}{backup}"

    def to_json(self, now: datetime) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "practice": self.practice,
            "from": self.start.isoformat(),
            "until": self.until.isoformat(),
            "planned_until": self.planned_until.isoformat(),
            "state": self.state(now),
            "reason": self.reason,
            "origin": self.origin,
            "by": self.by,
            "added": self.added.isoformat() if self.added else None,
        }
        if self.kind == "override":
            data.update(status=self.status, route=self.route)
        else:
            data.update(doctor=self.doctor, backup=self.backup)
        return data


@dataclass(frozen=True, slots=True)
class Applied:
    """A change that was made: its audit entry, the entry as it is now, new warnings."""

    audit: AuditEntry
    entry: Entry | None
    warnings: tuple[str, ...]
    changes_sha: str  # of the changes file written, to tell when the engine has it


Mutation = tuple[OverlayFile, Mapping[str, Any] | None, Mapping[str, Any] | None, Section]


class ChangeService:
    """Overrides and swaps for the coverage YAML at `config_path`."""

    def __init__(
        self, config_path: Path, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.config_path = config_path
        self._now = now

    # ------------------------------------------------------------------ reading

    def load(self) -> Loaded:
        """The configuration as it is now, merged; raises ChangeRefused when it is invalid."""
        try:
            return load_report(self.config_path)
        except ConfigError as exc:
            raise _invalid(self.config_path, exc) from None
        except OSError as exc:
            raise ChangeRefused(f"cannot read {self.config_path}: {exc.strerror or exc}") from None

    def entries(self, kind: EntryKind, practice: str | None = None) -> list[Entry]:
        """Every override (or swap), from the YAML and from commands, in start order."""
        loaded = self.load()
        base = loaded.base or loaded.config
        if practice is not None:
            _practice(base, practice)
        found = _entries(base, loaded.overlay, kind)
        return sorted(
            (e for e in found if practice is None or e.practice == practice),
            key=lambda e: (e.start, e.id),
        )

    def find(self, wanted: str) -> Entry:
        """The override or swap with this id."""
        for kind in ("override", "swap"):
            for entry in self.entries(kind):
                if entry.id == wanted:
                    return entry
        raise ChangeRefused(
            f"no override or swap has the id {show(wanted)} "
            "(see coverage-engine override list / swap list)"
        )

    def log(self) -> list[AuditEntry]:
        """The audit log, oldest first."""
        return read_audit(audit_path(self.config_path))

    def applied_revision(self) -> int:
        """The revision of the changes file on disk (0: no change made yet)."""
        return self.load().overlay.changes.revision

    # ------------------------------------------------------------------ changes

    def add_override(
        self,
        actor: Actor,
        *,
        practice: str,
        start: datetime,
        until: datetime,
        reason: str,
        status: Literal["open", "closed"] = "closed",
        route: Literal["oncall"] | None = None,
    ) -> Applied:
        """Close (or open, or route straight to on-call) a practice from `start` until `until`."""

        def mutate(loaded: Loaded) -> Mutation:
            base = loaded.base or loaded.config
            where = _practice(base, practice)
            self._check_span(start, until)
            entry = OverlayOverride(
                id=_new_id("o", loaded),
                practice=practice,
                by=actor.by,
                added=_local(self._now(), where),
                start=_local(start, where),
                until=_local(until, where),
                status=status,
                reason=reason,
                route=route,
            )
            changes = loaded.overlay.changes
            new = changes.model_copy(update={"overrides": (*changes.overrides, entry)})
            return new, None, _dump(entry), "overrides"

        return self._change(actor, "override.add", practice, reason, mutate)

    def add_swap(
        self,
        actor: Actor,
        *,
        practice: str,
        doctor: str,
        start: datetime,
        until: datetime,
        reason: str,
        backup: str | None = None,
    ) -> Applied:
        """`doctor` covers `practice` from `start` until `until`, whoever the rotation says."""

        def mutate(loaded: Loaded) -> Mutation:
            base = loaded.base or loaded.config
            where = _practice(base, practice)
            roster = where.oncall
            if roster is None:
                raise ChangeRefused(f"practice {show(practice)} has no doctors on call to swap")
            for who in (doctor, backup):
                if who is not None and who not in roster.doctors:
                    raise ChangeRefused(
                        f"no doctor {show(who)} in {practice} "
                        f"(doctors: {', '.join(sorted(roster.doctors))})"
                    )
            self._check_span(start, until)
            entry = OverlaySwap(
                id=_new_id("s", loaded),
                practice=practice,
                by=actor.by,
                added=_local(self._now(), where),
                doctor=doctor,
                start=_local(start, where),
                until=_local(until, where),
                backup=backup,
                reason=reason,
            )
            changes = loaded.overlay.changes
            new = changes.model_copy(update={"swaps": (*changes.swaps, entry)})
            return new, None, _dump(entry), "swaps"

        return self._change(actor, "swap.add", practice, reason, mutate)

    def end(
        self,
        actor: Actor,
        wanted: str,
        *,
        reason: str,
        at: datetime | None = None,
        kind: EntryKind | None = None,
    ) -> Applied:
        """End an override or swap at `at` (now by default); one not begun yet is cancelled."""
        action = {"override": "override.end", "swap": "swap.remove", None: "end"}[kind]

        def mutate(loaded: Loaded) -> Mutation:
            base = loaded.base or loaded.config
            entry = _find(_entries(base, loaded.overlay, kind), wanted, kind)
            now = self._now()
            stop = at or now
            if entry.state(now) in ("over", "cancelled"):
                raise ChangeRefused(
                    f"{entry.kind} {entry.id} is already {entry.state(now)}; nothing to end"
                )
            if stop >= entry.until:
                raise ChangeRefused(
                    f"{entry.kind} {entry.id} ends at {entry.until:%Y-%m-%d %H:%M %Z} anyway; "
                    "give a time before that"
                )
            if stop < now:
                raise ChangeRefused("an end in the past would rewrite what already happened")
            changes = loaded.overlay.changes
            if entry.origin == "command":
                return _end_command_entry(changes, entry, stop)
            where = _practice(base, entry.practice)
            ended = Ended(
                id=entry.id,
                practice=entry.practice,
                by=actor.by,
                added=_local(now, where),
                kind=entry.kind,
                at=_local(stop, where),
                reason=reason,
            )
            old = next((e for e in changes.ended_early if e.id == entry.id), None)
            kept = tuple(e for e in changes.ended_early if e.id != entry.id)
            new = changes.model_copy(update={"ended_early": (*kept, ended)})
            return new, _dump(old) if old else None, _dump(ended), "ended_early"

        entry = self.find(wanted)
        return self._change(
            actor,
            action if kind else f"{entry.kind}.end",
            entry.practice,
            reason,
            mutate,
            entry_id_=entry.id,
        )

    def undo(self, actor: Actor, seq: int, *, reason: str) -> Applied:
        """Put back what change `seq` changed, as it was before it."""
        target = next((e for e in self.log() if e.seq == seq), None)
        if target is None:
            raise ChangeRefused(f"no change number {seq} in the audit log")
        section: Section
        if target.section not in ("overrides", "swaps", "ended_early"):
            raise ChangeRefused(f"change {seq} ({target.action}) cannot be undone")
        section = target.section  # type: ignore[assignment]  # checked just above

        def mutate(loaded: Loaded) -> Mutation:
            changes = loaded.overlay.changes
            if changes.revision < target.revision:
                raise ChangeRefused(
                    f"change {seq} never took effect (it was interrupted); nothing to undo"
                )
            items = list(getattr(changes, section))
            current = next((i for i in items if i.id == target.entry), None)
            if (_dump(current) if current else None) != target.after:
                raise ChangeRefused(
                    f"{target.entry} was changed again after change {seq}; undo the later "
                    "change first (coverage-engine changes log)"
                )
            items = [i for i in items if i.id != target.entry]
            if target.before is not None:
                items.append(_restored(section, target.before))
            new = changes.model_copy(update={section: tuple(items)})
            return new, target.after, target.before, section

        return self._change(
            actor, "undo", target.practice, reason, mutate, entry_id_=target.entry, undoes=seq
        )

    # ------------------------------------------------------------------ the write

    def _check_span(self, start: datetime, until: datetime) -> None:
        if until <= start:
            raise ChangeRefused("until must be after from")
        if until <= self._now():
            raise ChangeRefused("it would be over before it starts: until is in the past")

    def _change(
        self,
        actor: Actor,
        action: str,
        practice: str,
        why: str,
        mutate: Callable[[Loaded], Mutation],
        *,
        entry_id_: str | None = None,
        undoes: int | None = None,
    ) -> Applied:
        if not why.strip():
            raise ChangeRefused("give a reason: the audit log keeps why every change was made")
        target = overlay_path(self.config_path)
        with changes_lock(self.config_path):
            before_loaded = self.load()
            new, before, after, section = mutate(before_loaded)
            new = new.model_copy(update={"revision": before_loaded.overlay.changes.revision + 1})
            text = render_overlay(new, self.config_path.name, audit_path(self.config_path).name)
            loaded = self._validated(text)
            warnings = tuple(
                _plain_issue(w)
                for w in loaded.warnings
                if str(w.message) not in {str(o.message) for o in before_loaded.warnings}
            )
            log = self.log()
            wrote_id = entry_id_ or str((after or before or {}).get("id", ""))
            entry = AuditEntry(
                seq=(log[-1].seq + 1) if log else 1,
                at=self._now(),
                by=actor.by,
                via=actor.via,
                action=action,
                practice=practice,
                entry=wrote_id,
                why=why,
                before=before,
                after=after,
                revision=new.revision,
                section=section,
                undoes=undoes,
            )
            prepared = prepare(target, text, like=self.config_path)
            try:
                # The audit entry is on disk before the change is: a change is
                # never in effect without its record. A crash in between leaves
                # an entry whose revision the file never reached; the log shows it.
                append_line(audit_path(self.config_path), encode(entry), like=self.config_path)
                commit(prepared)
            except OSError as exc:
                discard(prepared)
                raise ChangeRefused(f"could not write the change: {exc.strerror or exc}") from None
        base = loaded.base or loaded.config
        found = [e for e in _entries(base, loaded.overlay, None) if e.id == wrote_id]
        return Applied(entry, found[0] if found else None, warnings, sha256_of(target) or "")

    def _validated(self, text: str) -> Loaded:
        """The YAML merged with the proposed changes text, as `check` would see it."""
        target = overlay_path(self.config_path)
        try:
            source = read_source(self.config_path, str(self.config_path))
            proposed = parse_text(text, str(target))
        except SourceError as exc:  # the YAML broke since load(): refuse, write nothing
            raise ChangeRefused(f"{self.config_path} cannot be read: {exc}") from None
        try:
            return combine(source, validate_overlay(proposed))
        except ConfigError as exc:
            raise ChangeRefused(
                "the change was not made:",
                tuple(_plain_issue(i) if i.source == str(target) else str(i) for i in exc.issues),
            ) from None


# ---------------------------------------------------------------------- helpers


def _local(moment: datetime, practice: Practice) -> datetime:
    """An instant as the practice's wall clock with its offset, to the second (readable)."""
    return moment.astimezone(practice.zone).replace(microsecond=0)


def _invalid(config_path: Path, exc: ConfigError) -> ChangeRefused:
    return ChangeRefused(
        f"{config_path} (with its changes) has errors, so no change can be checked against it; "
        "fix them first (a running engine keeps its last good configuration meanwhile):",
        tuple(str(i) for i in exc.issues),
    )


def _plain_issue(issue: ConfigIssue) -> str:
    """An issue about the proposed changes, named by its key (the file is not written)."""
    key = next((p for p in reversed(issue.path) if isinstance(p, str)), "")
    return f"{key}: {issue.message}" if key else issue.message


def _practice(config: CoverageConfig, practice: str) -> Practice:
    found = config.practice(practice)
    if found is None:
        raise ChangeRefused(
            f"no practice {show(practice)} (practices: {', '.join(config.practices)})"
        )
    return found


def _new_id(prefix: str, loaded: Loaded) -> str:
    taken = {
        e.id
        for section in (loaded.overlay.changes.overrides, loaded.overlay.changes.swaps)
        for e in section
    }
    while True:
        candidate = f"{prefix}-" + base64.b32encode(secrets.token_bytes(5)).decode()[:6].lower()
        if candidate not in taken:
            return candidate


def _dump(item: OverlayOverride | OverlaySwap | Ended) -> dict[str, Any]:
    from coverage_engine.config.overlay import _plain

    data: dict[str, Any] = _plain(item.model_dump(by_alias=True, exclude_none=True))
    return data


def _restored(section: Section, data: Mapping[str, Any]) -> OverlayOverride | OverlaySwap | Ended:
    """An item of the changes file as an audit entry recorded it."""
    if section == "overrides":
        return OverlayOverride.model_validate(dict(data))
    if section == "swaps":
        return OverlaySwap.model_validate(dict(data))
    return Ended.model_validate(dict(data))


def _find(entries: list[Entry], wanted: str, kind: EntryKind | None) -> Entry:
    for entry in entries:
        if entry.id == wanted and (kind is None or entry.kind == kind):
            return entry
    what = kind or "override or swap"
    raise ChangeRefused(f"no {what} has the id {show(wanted)}")


def _end_command_entry(changes: OverlayFile, entry: Entry, stop: datetime) -> Mutation:
    """A command's own override or swap ends: its `until` moves; one not begun is removed."""
    section: Section = "overrides" if entry.kind == "override" else "swaps"
    items = list(getattr(changes, section))
    index = next(i for i, item in enumerate(items) if item.id == entry.id)
    old = items.pop(index)
    after: dict[str, Any] | None = None
    end = stop.astimezone(entry.start.tzinfo).replace(microsecond=0)
    if end > entry.start:
        items.insert(index, old.model_copy(update={"until": end}))
        after = _dump(items[index])
    new = changes.model_copy(update={section: tuple(items)})
    return new, _dump(old), after, section


def _entries(base: CoverageConfig, overlay: Overlay, kind: EntryKind | None) -> list[Entry]:
    """Every override and swap of the YAML (with early ends applied) and of the changes."""
    overlay = overlay or EMPTY
    changes = overlay.changes
    ended = {e.id: e for e in changes.ended_early}
    found: list[Entry] = []
    for key, practice in base.practices.items():
        zone = practice.zone
        if kind in (None, "override"):
            for override in practice.overrides:
                found.append(_from_file(key, "override", override, ended, zone))
        if kind in (None, "swap") and practice.oncall is not None:
            for swap in practice.oncall.swaps:
                found.append(_from_file(key, "swap", swap, ended, zone))
    commands: tuple[OverlayOverride | OverlaySwap, ...] = (*changes.overrides, *changes.swaps)
    for command in commands:
        practice_of = base.practices.get(command.practice)
        if practice_of is None:
            continue
        is_override = isinstance(command, OverlayOverride)
        if kind is not None and kind != ("override" if is_override else "swap"):
            continue
        zone = practice_of.zone
        start = localize(command.start, zone).astimezone(zone)
        until = localize(command.until, zone).astimezone(zone)
        found.append(
            Entry(
                id=command.id,
                kind="override" if is_override else "swap",
                practice=command.practice,
                start=start,
                until=until,
                planned_until=until,
                reason=command.reason,
                origin="command",
                by=command.by,
                added=localize(command.added, zone).astimezone(zone),
                status=command.status if isinstance(command, OverlayOverride) else None,
                route=command.route if isinstance(command, OverlayOverride) else None,
                doctor=command.doctor if isinstance(command, OverlaySwap) else None,
                backup=command.backup if isinstance(command, OverlaySwap) else None,
            )
        )
    return found


def _from_file(
    practice: str, kind: EntryKind, item: Override | Swap, ended: Mapping[str, Ended], zone: Any
) -> Entry:
    ident = entry_id(practice, kind, item)
    start = localize(item.start, zone).astimezone(zone)
    planned = localize(item.until, zone).astimezone(zone)
    until = planned
    stop = ended.get(ident)
    by = added = None
    if stop is not None:
        until = max(start, min(planned, localize(stop.at, zone).astimezone(zone)))
        by, added = stop.by, localize(stop.added, zone).astimezone(zone)
    return Entry(
        id=ident,
        kind=kind,
        practice=practice,
        start=start,
        until=until,
        planned_until=planned,
        reason=item.reason,
        origin="file",
        by=by,
        added=added,
        status=item.status if isinstance(item, Override) else None,
        route=item.route if isinstance(item, Override) else None,
        doctor=item.doctor if isinstance(item, Swap) else None,
        backup=item.backup if isinstance(item, Swap) else None,
    )
