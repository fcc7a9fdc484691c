"""The reference coverage file, shared by the routing tests (not a conftest, to avoid clashes)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from coverage_engine.config import CoverageConfig, load_config
from coverage_engine.plan import Plan

REFERENCE_CONFIG = Path(__file__).resolve().parents[2] / "config" / "coverage.yaml"
MAPLE_DID = "+13125550100"
LAKESIDE_DID = "+16085550142"


@cache
def reference_config() -> CoverageConfig:
    """The two reference practices shipped in config/coverage.yaml, loaded once."""
    return load_config(REFERENCE_CONFIG)


def answer(plan: Plan) -> tuple[object, ...]:
    """What a caller would experience from a plan: status, reason, steps, doctors on call."""
    return (plan.status, plan.reason, plan.steps, plan.oncall)
