"""A callback number becomes a dialable number, or nothing: never caller text in a dial string."""

from __future__ import annotations

import pytest

from coverage_engine.paging.callback import dialable


@pytest.mark.parametrize(
    ("typed", "dialed"),
    [
        ("+1 555 765 4321", "+15557654321"),
        ("(312) 555-0199", "+13125550199"),
        ("312.555.0199", "+13125550199"),
        ("1-312-555-0199", "+13125550199"),
        ("+1 312 555 0199", "+13125550199"),
        ("+44 20 7946 0958", "+442079460958"),
        ("312-555-0199 ext. 42", "+13125550199"),
        ("312 555 0199 x7", "+13125550199"),
        ("911", None),
        ("555-0199", None),
        ("", None),
        ("0123456789", None),
        ("312-055-0199", None),
        ("3125550199&PJSIP/evil", None),
        ("312555019@carrier", None),
        ("+1 312 555 0199,1", None),
        ("12+3125550199", None),
        ("+0 312 555 0199", None),
    ],
)
def test_only_a_real_phone_number_is_ever_dialed(typed: str, dialed: str | None) -> None:
    """Digits of a plausible number come out as E.164; anything else is refused."""
    assert dialable(typed) == dialed
