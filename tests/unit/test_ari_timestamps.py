"""Asterisk's event timestamps become timezone-aware instants, or None."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from coverage_engine.ari.models import parse_timestamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T03:01:02.345+0000", datetime(2026, 11, 27, 3, 1, 2, 345000, tzinfo=UTC)),
        (
            "2026-11-27T03:01:02.345-0600",
            datetime(2026, 11, 27, 3, 1, 2, 345000, tzinfo=timezone(timedelta(hours=-6))),
        ),
        ("2026-11-27T03:01:02+00:00", datetime(2026, 11, 27, 3, 1, 2, tzinfo=UTC)),
        ("2026-11-27T03:01:02.345", None),  # no offset: never a naive datetime
        ("yesterday", None),
        ("", None),
    ],
)
def test_timestamps_parse_to_aware_instants_or_none(text: str, expected: datetime | None) -> None:
    """Asterisk's `...345+0000` form and ISO forms parse; offset-less or odd text gives None."""
    assert parse_timestamp(text) == expected
