"""Settings for the whole test run."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from coverage_lab.postgres import ClusterUnavailable, TempCluster


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


_DATABASES = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[TempCluster]:
    """A throwaway PostgreSQL cluster for the session (initdb + pg_ctl, a socket in /tmp).

    Skips when PostgreSQL's server programs are not installed here; under
    CI=true it fails instead: CI must test the PostgreSQL store.
    """
    cluster = TempCluster()
    try:
        cluster.create()
        cluster.start()
    except ClusterUnavailable as exc:
        cluster.destroy()
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL tests cannot run under CI: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    yield cluster
    cluster.destroy()


@pytest.fixture
def pg_url(pg_cluster: TempCluster) -> str:
    """The URL of a new, empty database on the session's cluster (one per test)."""
    return pg_cluster.create_database(f"test_{next(_DATABASES)}")
