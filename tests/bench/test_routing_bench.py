"""Microbenchmarks of the routing decision (pytest-benchmark).

The default test run calls each once, untimed, so they keep working; measure
with `pytest tests/bench --benchmark-enable`. Each also checks the plan it
times, so a benchmark can never quietly time the wrong path.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

pytest.importorskip("pytest_benchmark")

from pytest_benchmark.fixture import BenchmarkFixture

from coverage_engine.config import CoverageConfig, load_config
from coverage_engine.routing import decide

CONFIG = Path(__file__).resolve().parents[2] / "config" / "coverage.yaml"
CHICAGO = ZoneInfo("America/Chicago")
MAPLE = "+13125550100"
LAKESIDE = "+16085550142"


@pytest.fixture(scope="module")
def config() -> CoverageConfig:
    return load_config(CONFIG)


CASES = [
    # (name, did, local instant in Chicago, expected status, expected first step kind)
    ("open_front_desk", MAPLE, datetime(2026, 11, 30, 10, 0, tzinfo=CHICAGO), "open", "staff"),
    ("lunch_closed", MAPLE, datetime(2026, 11, 30, 12, 30, tzinfo=CHICAGO), "closed", "operators"),
    ("night_rotation", MAPLE, datetime(2026, 12, 1, 3, 0, tzinfo=CHICAGO), "closed", "operators"),
    ("christmas_swap", MAPLE, datetime(2026, 12, 25, 3, 0, tzinfo=CHICAGO), "closed", "operators"),
    (
        "federal_holiday",
        LAKESIDE,
        datetime(2026, 11, 26, 12, 0, tzinfo=CHICAGO),
        "closed",
        "oncall",
    ),
    (
        "unknown_number",
        "+19995550000",
        datetime(2026, 11, 30, 10, 0, tzinfo=CHICAGO),
        "closed",
        "operators",
    ),
]


@pytest.mark.parametrize(
    ("did", "instant", "status", "first"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decide(
    benchmark: BenchmarkFixture,
    config: CoverageConfig,
    did: str,
    instant: datetime,
    status: str,
    first: str,
) -> None:
    """One routing decision: the plan for a call at that instant, timed."""
    plan = benchmark(decide, config, instant, did, "+13125559876")
    assert plan.status == status
    assert plan.steps[0].kind.value == first


def test_load_config(benchmark: BenchmarkFixture) -> None:
    """Loading and validating the shipped coverage file (what a reload costs), timed."""
    config = benchmark(load_config, CONFIG)
    assert set(config.practices) == {"maple-grove", "lakeside"}
