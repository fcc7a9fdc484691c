"""Changes made with commands, kept in a file beside the coverage YAML and merged on load.

`coverage-engine override ...`, `swap ...` and the console never rewrite the
admin's `coverage.yaml`: its comments, anchors and layout stay theirs, and a
hand edit can never race a command. A command writes `coverage.changes.yaml`
beside it (same folder, the YAML's name with `.changes.yaml`), a small YAML
file of its own, validated by the same model; every reader (the engine's
reload, `check`, `explain`, `calendar`) reads the two together.

How they merge, per practice:

* overrides and swaps added by a command come first, newest first, so the
  latest change wins where two overlap ("closed all day" then "open after
  all from noon");
* an override or swap written in the YAML can be ended early by a command:
  an `ended_early` entry names it by its id (a hash of what it says) and from when
  it no longer applies. Edit that entry in the YAML and the `ended_early` entry no
  longer matches; `check` warns about it.

Pure apart from reading: writing, locking and the audit log live in
`coverage_engine.changes`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, ConfigDict, Field, ValidationError, model_validator

from coverage_engine.config.errors import ConfigIssue, issues_from_validation
from coverage_engine.config.model import (
    CoverageConfig,
    Frozen,
    Ident,
    LocalDateTime,
    Override,
    Swap,
    Text,
    localize,
)
from coverage_engine.config.yamlsource import PathKey, Source

OVERLAY_SUFFIX = ".changes.yaml"

EntryKind = Literal["override", "swap"]
_Entry = TypeVar("_Entry", Override, Swap)


def overlay_path(config_path: Path) -> Path:
    """`coverage.yaml` -> `coverage.changes.yaml`, in the same folder."""
    return config_path.with_name(f"{_stem(config_path)}{OVERLAY_SUFFIX}")


def _stem(config_path: Path) -> str:
    name = config_path.name
    for suffix in (".yaml", ".yml"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _check_entry_id(value: str) -> str:
    if not (len(value) == 8 and value[:2] in ("o-", "s-", "y-") and value[2:].isalnum()):
        raise ValueError(f'"{value}" is not a change id (like o-k2m9xq)')
    return value


EntryId = Annotated[str, AfterValidator(_check_entry_id)]


class _Stamped(Frozen):
    """Who made a change and when: kept with the change itself."""

    id: EntryId
    practice: Ident
    by: Text
    added: LocalDateTime


class OverlayOverride(Override, _Stamped):
    """An override added by a command: the YAML's override, stamped with who and when."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def as_override(self) -> Override:
        """The override as the practice model holds it."""
        return Override(**{name: getattr(self, name) for name in Override.model_fields})


class OverlaySwap(Swap, _Stamped):
    """A swap added by a command: the YAML's swap, stamped with who and when."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def as_swap(self) -> Swap:
        """The swap as the roster holds it."""
        return Swap(**{name: getattr(self, name) for name in Swap.model_fields})


class Ended(_Stamped):
    """An override or swap of the YAML file that no longer applies from `at` on."""

    kind: EntryKind
    at: LocalDateTime
    reason: Text

    @model_validator(mode="after")
    def _names_a_yaml_entry(self) -> Ended:
        if not self.id.startswith("y-"):
            raise ValueError("only an entry of the YAML file (id y-...) is ended this way")
        return self


def _check_version(value: int) -> int:
    if value != 1:
        raise ValueError(f"version {value} of the changes file is not supported (write 1)")
    return value


class OverlayFile(Frozen):
    """The whole changes file."""

    version: Annotated[int, AfterValidator(_check_version)] = 1
    # +1 per change written; the audit log names the revision each change made.
    revision: Annotated[int, Field(ge=0)] = 0
    overrides: tuple[OverlayOverride, ...] = ()
    swaps: tuple[OverlaySwap, ...] = ()
    ended_early: tuple[Ended, ...] = ()


def entry_id(practice: str, kind: EntryKind, entry: Override | Swap) -> str:
    """A stable id for an override or swap written in the YAML: a hash of what it says."""
    if isinstance(entry, Override):
        what = f"{entry.status}|{entry.route}|{entry.reason}"
    else:
        what = f"{entry.doctor}|{entry.backup}|{entry.reason}"
    text = f"{practice}|{kind}|{entry.start.isoformat()}|{entry.until.isoformat()}|{what}"
    digest = hashlib.sha256(text.encode()).digest()
    return "y-" + base64.b32encode(digest).decode()[:6].lower()


# --- reading ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Overlay:
    """The changes file as read: the model and where each entry is written."""

    changes: OverlayFile
    source: Source | None = None  # None for a file that does not exist yet

    def line_of(self, path: PathKey) -> int | None:
        """Line of a key path in the changes file."""
        return self.source.lines.line_of(path) if self.source is not None else None

    @property
    def name(self) -> str:
        return self.source.name if self.source is not None else ""


EMPTY = Overlay(OverlayFile())


def validate_overlay(source: Source) -> Overlay:
    """The changes file's own checks (field values), located in it; raises ConfigError."""
    from coverage_engine.config.errors import ConfigError

    data: Any = source.data
    if not isinstance(data, dict):
        raise ConfigError(
            [ConfigIssue(source.name, 1, (), "the changes file must be a mapping of keys")]
        )
    try:
        changes = OverlayFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            issues_from_validation(exc, source.lines, source.name, OverlayFile)
        ) from None
    return Overlay(changes, source)


# --- merging ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an entry of the merged practice comes from, to blame the right line."""

    in_overlay: bool
    index: int  # in the overlay's list, or in the YAML practice's list


@dataclass(slots=True)
class Merged:
    """The merged configuration, and where each merged entry was written."""

    config: CoverageConfig
    origins: dict[tuple[str, str, int], Origin] = field(default_factory=dict)
    issues: list[tuple[PathKey, str]] = field(default_factory=list)  # in the overlay
    warnings: list[tuple[PathKey, str]] = field(default_factory=list)  # in the overlay

    def locate(self, path: PathKey) -> tuple[bool, PathKey]:
        """(in the overlay?, the path there) for a finding about the merged config."""
        if len(path) >= 4 and path[0] == "practices" and isinstance(path[1], str):
            practice = path[1]
            if path[2] == "overrides" and isinstance(path[3], int):
                origin = self.origins.get((practice, "override", path[3]))
                if origin is not None and origin.in_overlay:
                    return True, ("overrides", origin.index, *path[4:])
                if origin is not None:
                    return False, (*path[:3], origin.index, *path[4:])
            if len(path) >= 5 and path[2:4] == ("oncall", "swaps") and isinstance(path[4], int):
                origin = self.origins.get((practice, "swap", path[4]))
                if origin is not None and origin.in_overlay:
                    return True, ("swaps", origin.index, *path[5:])
                if origin is not None:
                    return False, (*path[:4], origin.index, *path[5:])
        return False, path


def merge(base: CoverageConfig, overlay: Overlay) -> Merged:
    """`base` with the overlay's changes applied (see the module docstring for the rules)."""
    changes = overlay.changes
    merged = Merged(base)
    ended = _ended_by_id(changes)
    practices = dict(base.practices)
    for key, practice in base.practices.items():
        zone = practice.zone
        overrides: list[Override] = []
        for index in reversed(range(len(changes.overrides))):
            entry = changes.overrides[index]
            if entry.practice == key:
                merged.origins[(key, "override", len(overrides))] = Origin(True, index)
                overrides.append(entry.as_override())
        for index, override in enumerate(practice.overrides):
            cut = ended.pop(entry_id(key, "override", override), None)
            kept = _cut(override, cut, zone) if cut is not None else override
            if kept is not None:
                merged.origins[(key, "override", len(overrides))] = Origin(False, index)
                overrides.append(kept)
        update: dict[str, Any] = {"overrides": tuple(overrides)}
        roster = practice.oncall
        if roster is not None:
            swaps: list[Swap] = []
            for index in reversed(range(len(changes.swaps))):
                entry_swap = changes.swaps[index]
                if entry_swap.practice == key:
                    merged.origins[(key, "swap", len(swaps))] = Origin(True, index)
                    swaps.append(entry_swap.as_swap())
            for index, swap in enumerate(roster.swaps):
                cut = ended.pop(entry_id(key, "swap", swap), None)
                kept_swap = _cut(swap, cut, zone) if cut is not None else swap
                if kept_swap is not None:
                    merged.origins[(key, "swap", len(swaps))] = Origin(False, index)
                    swaps.append(kept_swap)
            update["oncall"] = roster.model_copy(update={"swaps": tuple(swaps)})
        practices[key] = practice.model_copy(update=update)
    for index, entry in enumerate(changes.overrides):
        _known_practice(base, merged, ("overrides", index, "practice"), entry.practice)
    for index, entry_swap in enumerate(changes.swaps):
        _known_practice(base, merged, ("swaps", index, "practice"), entry_swap.practice)
        practice_of = base.practices.get(entry_swap.practice)
        if practice_of is not None and practice_of.oncall is None:
            merged.issues.append(
                (
                    ("swaps", index, "practice"),
                    f'practice "{entry_swap.practice}" has no oncall: to swap in',
                )
            )
    for entry_id_, (index, _) in ended.items():
        merged.warnings.append(
            (
                ("ended_early", index, "id"),
                f"warning: {entry_id_} matches no override or swap in the YAML file any more "
                "(it was edited or removed there); this entry has no effect",
            )
        )
    merged.config = base.model_copy(update={"practices": practices})
    return merged


def _ended_by_id(changes: OverlayFile) -> dict[str, tuple[int, datetime]]:
    """Each ended YAML entry's id -> (its index in `ended_early`, when it stops applying)."""
    found: dict[str, tuple[int, datetime]] = {}
    for index, entry in enumerate(changes.ended_early):
        found[entry.id] = (index, entry.at)
    return found


def _cut(entry: _Entry, cut: tuple[int, datetime], zone: Any) -> _Entry | None:
    """The entry ended at the cut's instant; None when that is before it starts."""
    _, at = cut
    start, until, end = localize(entry.start, zone), localize(entry.until, zone), localize(at, zone)
    if end <= start:
        return None
    if end >= until:
        return entry
    return entry.model_copy(update={"until": end})


def _known_practice(base: CoverageConfig, merged: Merged, path: PathKey, practice: str) -> None:
    if practice not in base.practices:
        known = ", ".join(base.practices)
        merged.issues.append((path, f'no practice "{practice}" in the coverage file ({known})'))


# --- writing (the text; the file is written by coverage_engine.changes) ---------

_HEADER = """\
# Changes made with `coverage-engine override` and `coverage-engine swap` (and
# the console), read together with {config}: check, explain, calendar and the
# running engine all see them. Each change is in the audit log {audit}
# (`coverage-engine changes log`). Change this file with those commands, not
# by hand: they validate every change first and record who made it and why.
"""


def render_overlay(changes: OverlayFile, config_name: str, audit_name: str) -> str:
    """The changes file's text: a header, then plain YAML the text-only reader reads back."""
    data = _plain(changes.model_dump(by_alias=True, exclude_none=True))
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return _HEADER.format(config=config_name, audit=audit_name) + body


def _plain(value: object) -> Any:
    """Model data as YAML-able text: datetimes in ISO 8601 with their offset."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
