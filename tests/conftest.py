"""Settings for the whole test run."""

from __future__ import annotations

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Microbenchmarks run once, untimed, unless timing is asked for.

    The default test run only checks that each benchmark still works (a smoke
    run); `pytest tests/bench --benchmark-enable` measures. Speed is never
    asserted. Done here rather than in `addopts` so a checkout whose
    environment lacks pytest-benchmark still parses its command line.
    """
    option = config.option
    if hasattr(option, "benchmark_disable") and not (
        option.benchmark_enable or option.benchmark_only
    ):
        option.benchmark_disable = True
