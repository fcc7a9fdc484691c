"""What phones show of a hostile caller's name on the safety net, with no engine (real PBX)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from coverage_lab.phones import (
    CallerHandle,
    Phones,
    answers,
    invite_display_names,
    never_answers,
)

pytestmark = pytest.mark.integration

# A DCS escape (brackets would not survive the test caller), a right-to-left
# override and a page of text.
HOSTILE_NAME = "Jane\x1bP0;pwned\x07 \u202eeoD " + "A" * 200


def test_the_safety_net_shows_operators_a_printable_short_name(
    phones: Phones, place_call: Callable[..., CallerHandle]
) -> None:
    """No engine: the operator's phone shows the name's plain printable ASCII, 46 at most."""
    # Every phone the queue rings runs, so none is left with a ringing INVITE
    # that Asterisk would retransmit into the next test.
    phones.start("operator1", never_answers())
    phones.start("operator2", answers(after=1, hangup_after=2))
    phones.start("operator3", never_answers())
    call = place_call("+15550100", caller_name=HOSTILE_NAME)
    phones.wait_for("answered", call.caller, timeout=60)
    call.wait(timeout=60)

    (shown,) = invite_display_names(phones["operator2"].events_file)
    assert shown.startswith("JaneP0;pwned eoD AAA")
    assert shown.isprintable()
    assert shown.isascii()
    assert len(shown) <= 46
