"""YAML -> validated, immutable coverage model: the only package that knows YAML."""

from __future__ import annotations

from coverage_engine.config.errors import ConfigError, ConfigIssue
from coverage_engine.config.loader import Loaded, load_config, load_report, load_text
from coverage_engine.config.model import (
    ChainStep,
    CoverageConfig,
    Doctor,
    OnCallRoster,
    Practice,
)

__all__ = [
    "ChainStep",
    "ConfigError",
    "ConfigIssue",
    "CoverageConfig",
    "Doctor",
    "Loaded",
    "OnCallRoster",
    "Practice",
    "load_config",
    "load_report",
    "load_text",
]
