"""Load the coverage file: read YAML safely, validate, cross-check, or say what is wrong.

The file is read together with its changes file (`overlay`), when there is
one: what the running engine, `check`, `explain` and `calendar` use is the
two merged, validated as one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from coverage_engine.config.errors import ConfigError, ConfigIssue, issues_from_validation
from coverage_engine.config.feedcache import attach_feeds, feed_warnings
from coverage_engine.config.model import CoverageConfig, Practice, SafeName, ids_from_keys
from coverage_engine.config.overlay import EMPTY, Overlay, merge, overlay_path, validate_overlay
from coverage_engine.config.semantics import (
    Finding,
    coverage_warnings,
    findings_for,
    semantic_findings,
)
from coverage_engine.config.yamlsource import (
    PathKey,
    Source,
    SourceError,
    parse_text,
    read_source,
)

_TRUNKS: TypeAdapter[tuple[str, ...]] = TypeAdapter(tuple[SafeName, ...])


@dataclass(frozen=True, slots=True)
class Loaded:
    """A valid configuration, and what is valid but needs the admin's attention.

    `config` is the YAML with its changes file merged in; `base` is the YAML
    alone and `overlay` the changes file as read (empty when there is none).
    """

    config: CoverageConfig
    warnings: list[ConfigIssue] = field(default_factory=list)
    base: CoverageConfig | None = None
    overlay: Overlay = EMPTY


def load_config(path: Path | str, display_name: str | None = None) -> CoverageConfig:
    """Load and validate a coverage file and its changes; raise `ConfigError` listing every
    problem.

    `OSError` (missing file, no permission) propagates: it is not a problem
    *in* the file, and the command line reports it as such.
    """
    return load_report(path, display_name).config


def load_report(
    path: Path | str,
    display_name: str | None = None,
    *,
    with_changes: bool = True,
    now: datetime | None = None,
) -> Loaded:
    """Like `load_config`, with the warnings `check` shows (each with its line).

    `with_changes=False` reads the YAML alone, ignoring its changes file.
    On-call feeds are read from their local copies; `now` (default: the
    system clock) decides whether a copy is stale.
    """
    path = Path(path)
    name = display_name or str(path)
    source = _read(path, name)
    overlay = EMPTY
    changes = overlay_path(path)
    if with_changes and changes.exists():
        changes_name = str(Path(name).with_name(changes.name))
        overlay = validate_overlay(_read(changes, changes_name))
    loaded = combine(source, overlay)
    if not any(p.oncall and p.oncall.feed for p in loaded.config.practices.values()):
        return loaded
    moment = now or datetime.now(UTC)
    config = attach_feeds(loaded.config, path, moment)
    warnings = loaded.warnings + _located(source, feed_warnings(config, moment))
    return replace(loaded, config=config, warnings=warnings)


def _read(path: Path, name: str) -> Source:
    try:
        return read_source(path, name)
    except SourceError as exc:
        raise _as_config_error(exc, name) from None


def combine(source: Source, overlay: Overlay) -> Loaded:
    """The YAML merged with the changes, validated as one; errors located in either file."""
    base = _model_of(source)
    if overlay.source is None:
        findings = semantic_findings(base)
        if findings:
            raise ConfigError(_located(source, findings))
        return Loaded(base, _located(source, coverage_warnings(base)), base, overlay)
    merged = merge(base, overlay)
    issues = [_in_overlay(overlay, path, message) for path, message in merged.issues]
    for path, message in semantic_findings(merged.config):
        in_overlay, where = merged.locate(path)
        issues.append(
            _in_overlay(overlay, where, message)
            if in_overlay
            else ConfigIssue(source.name, source.lines.line_of(where), where, message)
        )
    if issues:
        raise ConfigError(issues)
    warnings = [_in_overlay(overlay, path, message) for path, message in merged.warnings]
    warnings += _located(source, coverage_warnings(merged.config))
    return Loaded(merged.config, warnings, base, overlay)


def _in_overlay(overlay: Overlay, path: PathKey, message: str) -> ConfigIssue:
    return ConfigIssue(overlay.name, overlay.line_of(path), path, message)


def load_text(text: str, name: str = "<text>") -> CoverageConfig:
    """Validate YAML given as text (tests, tools)."""
    try:
        source = parse_text(text, name)
    except SourceError as exc:
        raise _as_config_error(exc, name) from None
    return validate_source(source)


def _as_config_error(exc: SourceError, name: str) -> ConfigError:
    return ConfigError([ConfigIssue(name, i.line, i.path, i.message) for i in exc.issues])


def validate_source(source: Source) -> CoverageConfig:
    """Field checks first (all at once), then the cross-references on a valid model."""
    config = _model_of(source)
    findings = semantic_findings(config)
    if findings:
        raise ConfigError(_located(source, findings))
    return config


def _model_of(source: Source) -> CoverageConfig:
    """The model of the YAML, with every field-level problem (and the cross-checks that can
    run on the valid parts) raised at once."""
    data: Any = source.data
    if not isinstance(data, dict):
        raise ConfigError(
            [ConfigIssue(source.name, 1, (), "the file must be a mapping of keys at the top")]
        )
    try:
        config = CoverageConfig.model_validate(data)
    except ValidationError as exc:
        issues = issues_from_validation(exc, source.lines, source.name, CoverageConfig)
        findings = _findings_in_valid_parts(data)
        raise ConfigError(issues + _located(source, findings)) from None
    return config


def _located(source: Source, findings: list[Finding]) -> list[ConfigIssue]:
    return [
        ConfigIssue(source.name, source.lines.line_of(path), path, message)
        for path, message in findings
    ]


def _findings_in_valid_parts(data: dict[str, Any]) -> list[Finding]:
    """Cross-checks on the practices that are valid on their own.

    So a typo in one practice does not hide an undefined doctor in another:
    the admin gets every problem in one run.
    """
    raw = data.get("practices")
    if not isinstance(raw, dict):
        return []
    trunks: set[str] | None
    try:
        trunks = set(_TRUNKS.validate_python(data.get("trunks") or ()))
    except ValidationError:
        trunks = None
    valid: dict[str, Practice] = {}
    for key, body in ids_from_keys(raw).items():
        try:
            valid[key] = Practice.model_validate(body)
        except ValidationError:
            continue
    return findings_for(valid, trunks)
