"""The console end to end: the real engine and sandbox Asterisk, SIPp phones, headless Chromium.

A patient calls Maple Grove at night; the operator signed in at the console
with phone operator1 sees the call on the board, answers it on the SIPp
phone, gets the screen pop with the practice card and the caller's number,
types the message and saves it; `calls show` lists it; practice staff find
it in the inbox and acknowledge it.

With COVERAGE_SCREENSHOTS=docs/console the board, the pop and the inbox are
saved there (the pictures of docs/console.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.keys import Keys

from coverage_engine.journey import EventKind
from coverage_engine.web.accounts import Role
from coverage_engine.web.db import ConsoleDb
from coverage_lab.browser import Browser, free_port, unavailable, wait_http
from coverage_lab.engine_process import EngineProcess
from coverage_lab.phones import CallerHandle, Phones, answers
from coverage_lab.sandbox import AmiCredentials, AriCredentials
from tests.integration.test_journeys import MAPLE, MAPLE_NIGHT, clean_up, fast_config

pytestmark = pytest.mark.integration

PASSWORD = "night shift passphrase"
CALLER_NAME = "Jane Doe"


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the pictures go: docs/console when asked, else the test's folder."""
    chosen = os.environ.get("COVERAGE_SCREENSHOTS")
    return Path(chosen).resolve() if chosen else tmp_path / "screenshots"


@pytest.fixture
def console_engine(
    ari: AriCredentials,
    ami_env: AmiCredentials,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[EngineProcess, str]]:
    """The engine on the shortened config, with presence (AMI) and its console on a free port."""
    reason = unavailable()
    if reason is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"the console test cannot run under CI: {reason}", pytrace=False)
        pytest.skip(reason)
    config = fast_config(tmp_path / "coverage.yaml")
    db = ConsoleDb.open(tmp_path / "records.sqlite")
    db.accounts.add(
        "olivia",
        password=PASSWORD,
        role=Role.OPERATOR,
        practices=["maple-grove"],
        display_name="Olivia Park",
        at=MAPLE_NIGHT,
    )
    db.accounts.add("sam", password=PASSWORD, role=Role.STAFF, practices=["maple-grove"],
                    display_name="Sam Reyes (Maple Grove)", at=MAPLE_NIGHT)  # fmt: skip
    db.close()
    port = free_port()
    monkeypatch.setenv("COVERAGE_CONSOLE_PORT", str(port))
    engine = EngineProcess(
        config, ari_url=ari.url, ari_user=ari.user, ari_password=ari.password,
        log_path=tmp_path / "engine.log",
    )  # fmt: skip
    engine.start(MAPLE_NIGHT)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz", engine.proc, engine.log_path)
    yield engine, url
    engine.stop()
    clean_up(ari)


@pytest.fixture
def browsers() -> Iterator[Callable[[str], Browser]]:
    opened: list[Browser] = []

    def open_one(url: str) -> Browser:
        opened.append(Browser(url))
        return opened[-1]

    yield open_one
    for one in opened:
        one.close()


def test_a_night_call_reaches_the_board_the_pop_the_record_and_the_practice_inbox(
    console_engine: tuple[EngineProcess, str],
    browsers: Callable[[str], Browser],
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    logged_in: Callable[..., None],
    screenshots: Path,
) -> None:
    """Board (in queue, masked), pop (card, number) on operator1's answer, message saved and in
    `calls show`, then acknowledged by the practice from its inbox."""
    engine, url = console_engine
    logged_in("operator1")
    olivia = browsers(url)
    olivia.sign_in("olivia", PASSWORD)
    olivia.wait(lambda: olivia.all("#phone"), what="the board")
    olivia.find("#phone").send_keys("operator1", Keys.ENTER)
    olivia.wait(lambda: "operator1 available" in olivia.text("#operators"), what="presence")

    # operator1 lets it ring a while (the board shows the caller waiting), then talks.
    phones.start("operator1", answers(after=6, hangup_after=60))
    call = place_call(MAPLE, caller_name=CALLER_NAME)
    last4 = call.caller[-4:]
    olivia.wait(
        lambda: "in queue" in olivia.text("#board-rows"), timeout=30, what="the call in queue"
    )
    row = olivia.text("#board-rows")
    assert f"***{last4}" in row or f"*{last4}" in row
    assert call.caller not in row  # operators see the caller masked on the board
    olivia.screenshot(screenshots / "board.png")

    number = olivia.wait(lambda: olivia.text("#pop-number"), timeout=20, what="the screen pop")
    assert number == call.caller
    assert olivia.text("#pop-name") == CALLER_NAME
    assert "Maple Grove Pediatrics answering service" in olivia.text("#card-greeting")
    assert "Dr. Minh Nguyen" in olivia.text("#card-oncall")  # on call Tuesday 03:00
    assert "with operator1" in olivia.text("#board-rows")
    olivia.find("#f-caller_name").click()
    olivia.driver.switch_to.active_element.send_keys(
        Keys.TAB, Keys.TAB, "Lily Doe", Keys.TAB, "03/14/2021",
        Keys.TAB, "Fever 103.5 since 9 pm, drinking well, no rash.\nAsks for a callback.",
        Keys.TAB, "u", Keys.TAB, "m",
    )  # fmt: skip
    olivia.script("window.scrollTo(0, 0)")  # the picture shows the card and the caller
    olivia.screenshot(screenshots / "pop.png")
    olivia.find("#save-message").send_keys(Keys.ENTER)
    olivia.wait(lambda: olivia.text("#notice").startswith("Message saved"), what="saved")

    journey_id = re.search(r"/calls/([^/?#]+)", olivia.driver.current_url)
    assert journey_id is not None
    call_id = journey_id[1]
    shown = subprocess.run(
        [sys.executable, "-m", "coverage_engine", "calls", "show", call_id,
         "--db", str(engine.config.parent / "records.sqlite")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert EventKind.MESSAGE_TAKEN.value in shown
    assert "patient_name=Lily Doe" in shown
    assert "urgency=urgent" in shown
    assert "disposition=message_for_office" in shown

    sam = browsers(url)
    sam.sign_in("sam", PASSWORD)
    sam.wait(lambda: sam.all("#board"), what="sam's board")
    sam.open("/messages")
    (row_el,) = sam.wait(lambda: sam.all("#inbox tr.unread"), what="the unread message")
    assert "Fever 103.5" in row_el.text
    assert "Lily Doe" in row_el.text
    sam.screenshot(screenshots / "inbox.png")
    row_el.find_element("css selector", "a").click()
    sam.wait(lambda: sam.all("#acknowledge")).pop().click()
    sam.wait(lambda: "acknowledged by sam" in sam.text("#m-state"), what="acknowledged")
    shown = subprocess.run(
        [sys.executable, "-m", "coverage_engine", "calls", "show", call_id,
         "--db", str(engine.config.parent / "records.sqlite")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "message_acknowledged" in shown
    assert "by=sam" in shown
