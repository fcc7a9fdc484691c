"""Caller-controlled text at each exit: spreadsheet cells, terminals, phone displays, numbers."""

from __future__ import annotations

import pytest

from coverage_engine.caller_text import (
    DISPLAY_NAME_MAX,
    caller_digits,
    csv_cell,
    display_name,
    for_terminal,
)

ESC = "\x1b"
RLO = "\u202e"  # right-to-left override


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ('=HYPERLINK("http://x","click")', '\'=HYPERLINK("http://x","click")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\\x09=1+1"),
        ("\r=1+1", "'\\x0d=1+1"),
        ("\uff1d1+1", "'\uff1d1+1"),  # a full-width equals sign
        ("+13125550100", "'+13125550100"),
        ("Jane Doe", "Jane Doe"),
        ("O'Brien = ok", "O'Brien = ok"),  # a trigger later in the cell is harmless
        ("", ""),
    ],
)
def test_a_csv_cell_starting_like_a_formula_stays_text(cell: str, shown: str) -> None:
    """Cells a spreadsheet would run as a formula get the `'` text prefix; others are untouched."""
    assert csv_cell(cell) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"{ESC}]0;pwned\a", "\\x1b]0;pwned\\x07"),  # retitles the terminal window
        (f"{ESC}[2J{ESC}[H", "\\x1b[2J\\x1b[H"),  # clears the screen
        (f"Jane{RLO}eoD", "Jane\\u202eeoD"),
        ("line\nforged line", "line\\x0aforged line"),
        ("\x9b31m", "\\x9b31m"),  # C1 control sequence introducer
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("Zoë Ñúñez 李", "Zoë Ñúñez 李"),
        ("", ""),
    ],
)
def test_a_terminal_sees_every_non_printable_as_a_visible_escape(text: str, shown: str) -> None:
    """Escape sequences, bidi overrides and line breaks are shown, never obeyed."""
    assert for_terminal(text) == shown
    assert for_terminal(text).isprintable()


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Jane Doe", "Jane Doe"),
        (f"Jane {RLO}eoD", "Jane eoD"),
        ("Jane\u2066 Doe\u2069", "Jane Doe"),
        (f"{ESC}[5mJane", "[5mJane"),
        ("Jane\r\nDoe", "Jane Doe"),
        ("  Jane   \t Doe  ", "Jane Doe"),
        ("Zoë 李", "Zoë 李"),
        ("A" * 500, "A" * DISPLAY_NAME_MAX),
        ("\u200b\u200d", ""),
    ],
)
def test_a_display_name_is_printable_one_line_and_short(name: str, shown: str) -> None:
    """What a phone shows: no controls or bidi overrides, one space between words, 40 at most."""
    assert display_name(name) == shown
    assert len(display_name(name)) <= DISPLAY_NAME_MAX


@pytest.mark.parametrize(
    ("number", "digits"),
    [
        ("+13125550100", "+13125550100"),
        ("(312) 555-0100", "3125550100"),
        ("*22#", "*22#"),
        ("555,1,U(evil)", "5551"),
        (f"{ESC}]0;x\a+1555", "0+1555"),
        ("anonymous", ""),
    ],
)
def test_a_caller_number_keeps_only_what_can_be_dialed(number: str, digits: str) -> None:
    """`+`, digits, `*` and `#` stay; separators, letters and controls go."""
    assert caller_digits(number) == digits
