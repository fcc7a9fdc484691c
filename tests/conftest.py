"""Settings for the whole test run."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from typing import NoReturn

import pytest

from coverage_lab.postgres import ClusterUnavailable, TempCluster
from coverage_lab.sandbox import Sandbox, SandboxError


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


# The session's sandbox, for the failure report hook (hooks cannot request fixtures).
_SESSION_SANDBOX: dict[str, Sandbox] = {}


def _cannot_run(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"integration tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(f"sandbox PBX unavailable: {reason}")


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """The sandbox Asterisk, started for the session and stopped after it.

    Defined here, once for the whole run, rather than in each suite's
    conftest: a session fixture imported into several conftests is several
    fixtures, each with its own `Sandbox`, and one torn down early dropped a
    `Sandbox` whose Asterisk (started by a restart in another suite) still ran.
    """
    if os.geteuid() != 0:
        _cannot_run("needs root (debootstrap, chroot, unshare)")
    if shutil.which("sipp") is None:
        _cannot_run("sipp is not installed (Debian package sip-tester; scripts/bootstrap)")
    box = Sandbox(log=lambda message: None)
    _SESSION_SANDBOX["box"] = box
    was_running = box.is_running()
    try:
        box.start()
    except SandboxError as exc:
        _cannot_run(str(exc))
    yield box
    if not was_running:
        box.stop()
