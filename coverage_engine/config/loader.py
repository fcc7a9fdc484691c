"""Load the coverage file: read YAML safely, validate, cross-check, or say what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from coverage_engine.config.errors import ConfigError, ConfigIssue, issues_from_validation
from coverage_engine.config.model import CoverageConfig
from coverage_engine.config.semantics import semantic_findings
from coverage_engine.config.yamlsource import Source, SourceError, parse_text, read_source


def load_config(path: Path | str, display_name: str | None = None) -> CoverageConfig:
    """Load and validate a coverage file; raise `ConfigError` listing every problem.

    `OSError` (missing file, no permission) propagates: it is not a problem
    *in* the file, and the command line reports it as such.
    """
    path = Path(path)
    name = display_name or str(path)
    try:
        source = read_source(path, name)
    except SourceError as exc:
        raise _as_config_error(exc, name) from None
    return validate_source(source)


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
        raise ConfigError(
            issues_from_validation(exc, source.lines, source.name, CoverageConfig)
        ) from None
    findings = semantic_findings(config)
    if findings:
        raise ConfigError(
            [
                ConfigIssue(source.name, source.lines.line_of(path), path, message)
                for path, message in findings
            ]
        )
    return config
