"""Load the coverage file: read YAML safely, validate, cross-check, or say what is wrong."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from coverage_engine.config.errors import ConfigError, ConfigIssue, issues_from_validation
from coverage_engine.config.model import CoverageConfig, Practice, SafeName, ids_from_keys
from coverage_engine.config.semantics import (
    Finding,
    coverage_warnings,
    findings_for,
    semantic_findings,
)
from coverage_engine.config.yamlsource import Source, SourceError, parse_text, read_source

_TRUNKS: TypeAdapter[tuple[str, ...]] = TypeAdapter(tuple[SafeName, ...])


@dataclass(frozen=True, slots=True)
class Loaded:
    """A valid configuration, and what is valid but needs the admin's attention."""

    config: CoverageConfig
    warnings: list[ConfigIssue] = field(default_factory=list)


def load_config(path: Path | str, display_name: str | None = None) -> CoverageConfig:
    """Load and validate a coverage file; raise `ConfigError` listing every problem.

    `OSError` (missing file, no permission) propagates: it is not a problem
    *in* the file, and the command line reports it as such.
    """
    return load_report(path, display_name).config


def load_report(path: Path | str, display_name: str | None = None) -> Loaded:
    """Like `load_config`, with the warnings `check` shows (each with its line)."""
    path = Path(path)
    name = display_name or str(path)
    try:
        source = read_source(path, name)
    except SourceError as exc:
        raise _as_config_error(exc, name) from None
    config = validate_source(source)
    return Loaded(config, _located(source, coverage_warnings(config)))


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
    findings = semantic_findings(config)
    if findings:
        raise ConfigError(_located(source, findings))
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
