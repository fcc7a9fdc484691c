"""The console in a real headless Chromium: what an operator and a practice manager do and see.

The console runs as its own process over a record file; the calls are
written into that file as the engine writes them (the end-to-end test with
the sandbox PBX is tests/integration/test_console_e2e.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from selenium.webdriver.common.keys import Keys

from coverage_engine.journey import EventKind
from coverage_engine.records.sqlite import RecordStore
from coverage_lab.browser import Browser, ConsoleProcess
from tests.unit.console_support import NIGHT, PASSWORD, place_call
from tests.unit.paging.support import CHECK, alert_on_a_handoff, alert_on_a_page

Open = Callable[[], Browser]


def records(console: ConsoleProcess) -> Path:
    return console.log_path.parent / "records.sqlite"


def signed_in(browser: Open, username: str) -> Browser:
    """A new browser, signed in as `username`, on the board."""
    chrome = browser()
    chrome.sign_in(username, PASSWORD)
    chrome.wait(lambda: chrome.all("#board"), what=f"the board of {username}")
    return chrome


def take_message(
    chrome: Browser, call_id: str, reason: str, urgency: str, disposition: str
) -> None:
    """Open the call's page and save a message with these values (the others prefilled)."""
    chrome.open(f"/calls/{call_id}")
    chrome.find("#f-reason").send_keys(reason)
    chrome.find("#f-urgency").send_keys(urgency)
    chrome.find("#f-disposition").send_keys(disposition)
    chrome.find("#save-message").click()


def journey_kinds(console: ConsoleProcess, call_id: str) -> list[EventKind]:
    with RecordStore.open(records(console)) as store:
        journey = store.get(call_id)
    assert journey is not None
    return [EventKind(e.name) for e in journey.events]


def test_a_wrong_password_shows_an_error_and_the_right_one_opens_the_board(
    console: ConsoleProcess, browser: Open
) -> None:
    """A wrong password stays on the sign-in page with the error; the right one shows the board."""
    chrome = browser()
    chrome.sign_in("olivia", "this is not it!")
    assert chrome.wait(lambda: chrome.text("#login-error")) == "Wrong username or password."
    chrome.sign_in("olivia", PASSWORD)
    chrome.wait(lambda: chrome.all("#board"), what="the board")
    assert "Maple Grove Pediatrics" in chrome.text("#practices")
    assert "CLOSED" in chrome.text("#practices")  # uppercase by the stylesheet


def test_a_call_appears_live_and_the_screen_pop_takes_a_message_by_keyboard_alone(
    console: ConsoleProcess, browser: Open
) -> None:
    """A call in the queue shows up without a reload; when operator1 answers, the pop shows
    the card and the caller; the message is typed and saved with the keyboard only."""
    chrome = browser()
    chrome.sign_in("olivia", PASSWORD)
    chrome.wait(lambda: chrome.all("#phone"))
    chrome.find("#phone").send_keys("operator1", Keys.ENTER)
    chrome.wait(lambda: "operator1" in chrome.text("header"), what="the phone named")
    place_call(records(console), "c1", at=NIGHT, events=[("queue_entered", {"queue": "answering"})])
    chrome.wait(lambda: "in queue" in chrome.text("#board-rows"), what="the call on the board")
    assert "***4321" in chrome.text("#board-rows") or "4321" in chrome.text("#board-rows")
    place_call(
        records(console), "c2", at=NIGHT + timedelta(seconds=5), caller="+15550001111",
        name="DOE JANE",
        events=[("queue_entered", {"queue": "answering"}),
                ("operator_answered", {"member": "PJSIP/operator1"})],
    )  # fmt: skip
    chrome.wait(lambda: chrome.all("#pop-number"), what="the screen pop")
    assert chrome.text("#pop-number") == "+15550001111"
    assert "answering service" in chrome.text("#card-greeting")
    assert "Dr. Minh Nguyen" in chrome.text("#card-oncall")
    # Keyboard only: the pop puts the cursor in the first field; Tab moves on.
    active = chrome.driver.switch_to.active_element
    assert active.get_attribute("id") == "f-caller_name"
    active.send_keys(
        Keys.TAB,  # the callback number, prefilled with the caller's number
        Keys.TAB, "Jane Junior",
        Keys.TAB, "05/04/2018",  # the date of birth, as US operators write it
        Keys.TAB, "Ear pain since dinner.",
        Keys.TAB, "r",  # urgency: Routine
        Keys.TAB, "m",  # disposition: Message for the office
        Keys.TAB, Keys.ENTER,  # from the note field, Enter submits
    )  # fmt: skip
    chrome.wait(lambda: chrome.all("#notice"), what="saved")
    with RecordStore.open(records(console)) as store:
        journey = store.get("c2")
    assert journey is not None
    (taken,) = [e for e in journey.events if e.name == EventKind.MESSAGE_TAKEN]
    assert taken.event.details()["patient_name"] == "Jane Junior"
    assert taken.event.details()["reason"] == "Ear pain since dinner."
    assert taken.event.details()["patient_dob"] == "2018-05-04"
    assert taken.event.details()["callback"] == "+15550001111"
    assert taken.event.details()["urgency"] == "routine"


def test_staff_find_the_message_unread_and_acknowledge_it(
    console: ConsoleProcess, browser: Open
) -> None:
    """Sam (Maple Grove staff) opens the inbox, opens the message, acknowledges it."""
    place_call(records(console), "c1", at=NIGHT)
    olivia = signed_in(browser, "olivia")
    take_message(olivia, "c1", "Needs a refill of amoxicillin.", "Urgent", "Message")
    olivia.wait(lambda: olivia.all("#notice"))
    sam = signed_in(browser, "sam")
    sam.open("/messages")
    row = sam.wait(lambda: sam.all("#inbox tr.unread"), what="an unread message")[0]
    assert "amoxicillin" in row.text
    row.find_element("css selector", "a").click()
    sam.wait(lambda: sam.all("#acknowledge")).pop().click()
    sam.wait(lambda: "acknowledged by sam" in sam.text("#m-state"), what="acknowledged")


def test_a_form_whose_csrf_token_was_removed_is_refused(
    console: ConsoleProcess, browser: Open
) -> None:
    """Without its security token the save is refused and nothing is written."""
    place_call(records(console), "c1", at=NIGHT)
    chrome = signed_in(browser, "olivia")
    chrome.open("/calls/c1")
    chrome.script("document.querySelector('#message-form input[name=csrf]').remove()")
    chrome.find("#f-reason").send_keys("x")
    chrome.find("#f-urgency").send_keys("Routine")
    chrome.find("#f-disposition").send_keys("Wrong")
    chrome.find("#save-message").click()
    assert "security token" in chrome.wait(lambda: chrome.text("#refusal"))
    assert EventKind.MESSAGE_TAKEN not in journey_kinds(console, "c1")


def test_an_operator_of_another_practice_is_refused_the_message(
    console: ConsoleProcess, browser: Open
) -> None:
    """Lena (Lakeside) opening Maple Grove's message link gets "Not allowed"."""
    place_call(records(console), "c1", at=NIGHT)
    olivia = signed_in(browser, "olivia")
    take_message(olivia, "c1", "Private reason", "Routine", "Message")
    olivia.wait(lambda: olivia.all("#notice"))
    lena = signed_in(browser, "lena")
    lena.open("/messages/c1")
    assert "practice you do not cover" in lena.wait(lambda: lena.text("#refusal"))
    assert "Private reason" not in lena.find("body").text


def test_alerts_appear_above_the_board_live_and_leave_once_dealt_with(
    console: ConsoleProcess, browser: Open
) -> None:
    """Olivia's board has no alert; an urgent message reaches the operators' rung and a doctor
    coming on call does not confirm: both appear above the board without a reload. Olivia marks
    the handoff done from the keyboard; Sam acknowledges the message in his inbox: the banner
    empties and hides, live."""
    olivia = signed_in(browser, "olivia")
    assert not olivia.find("#alerts").is_displayed()
    alert_on_a_page(records(console), "c1")
    alert_on_a_handoff(records(console))
    olivia.wait(lambda: len(olivia.all("#alert-list li")) == 2, timeout=10, what="two alerts")
    assert olivia.find("#alerts").is_displayed()
    text = olivia.text("#alerts")
    assert "Dr. Adaeze Okafor did not confirm being on call" in text
    assert "URGENT message for Maple Grove Pediatrics not acknowledged since 03:00" in text
    assert "Mary Jones" not in text
    olivia.find(f"li[data-alert='{CHECK}'] button").send_keys(Keys.ENTER)
    olivia.wait(lambda: len(olivia.all("#alert-list li")) == 1, timeout=10, what="one alert left")
    assert "Okafor" not in olivia.text("#alerts")
    sam = signed_in(browser, "sam")
    sam.open("/messages/c1")
    sam.wait(lambda: sam.all("#acknowledge")).pop().click()
    olivia.wait(lambda: not olivia.find("#alerts").is_displayed(), timeout=10, what="no alert")
    assert journey_kinds(console, CHECK)[-1] == EventKind.HANDOFF_ALERT_RESOLVED
