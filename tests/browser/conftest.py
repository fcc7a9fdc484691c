"""Fixtures of the browser tests: a console process over a fresh record file, and browsers.

    def test_something(console, browser): browser().sign_in(...)

When Chromium cannot run here the tests skip with the reason; with CI=true
they fail instead, because a CI run that tested nothing must not pass.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from coverage_lab.browser import Browser, ConsoleProcess, unavailable
from tests.unit.console_support import NIGHT, copy_template, make_template, write_config

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def chromium_available() -> None:
    reason = unavailable()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"browser tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def user_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template(tmp_path_factory.mktemp("browser") / "template.sqlite")


@pytest.fixture
def console(
    chromium_available: None, user_template: Path, tmp_path: Path
) -> Iterator[ConsoleProcess]:
    """`coverage-engine console` on config/coverage.yaml, its clock at Tuesday 03:00 Chicago."""
    config = write_config(tmp_path)
    copy_template(user_template, tmp_path)
    proc = ConsoleProcess(config, tmp_path / "console.log", clock_start=NIGHT)
    yield proc
    proc.stop()


@pytest.fixture
def browser(console: ConsoleProcess) -> Iterator[Callable[[], Browser]]:
    """`browser()` opens one more headless Chromium on the console; all closed at the end."""
    opened: list[Browser] = []

    def open_one() -> Browser:
        one = Browser(console.url)
        opened.append(one)
        return one

    yield open_one
    for one in opened:
        one.close()
