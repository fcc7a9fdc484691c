"""Caller numbers are masked before they reach logs and notes."""

from __future__ import annotations

import pytest

from coverage_engine.routing import mask_number


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+13125550100", "+*********00"),
        ("+1 (312) 555-0100", "+* (***) ***-**00"),
        ("12", "**"),
        ("", ""),
        ("anonymous", "*********"),
    ],
)
def test_only_the_last_two_digits_show(number: str, masked: str) -> None:
    """Enough to tell two calls apart, not enough to call the patient back."""
    assert mask_number(number) == masked
