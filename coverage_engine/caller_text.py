"""Caller-controlled text, made harmless for each place it leaves coverage-engine.

A caller's number and name arrive from the carrier (SIP `From`), and anyone
who can place a call chooses them: `=HYPERLINK(...)`, terminal escape
sequences, right-to-left overrides, a thousand characters. Stored as
received, they are neutralised where they *leave*, because each exit has its
own danger:

* `csv_cell`: a spreadsheet runs a cell starting with `=`, `+`, `-` or `@`
  (and, in some, a tab, a carriage return or their full-width forms) as a
  formula: prefixed with `'` so it stays text.
* `for_terminal`: control characters can move the cursor, retitle the window
  or hide what follows; bidi controls reorder what a person reads. Every
  character that is not printable is shown as a visible escape (`\\x1b`,
  `\\u202e`) instead.
* `display_name`: what an operator's or a doctor's phone shows. Printable
  characters only (controls and bidi overrides dropped, runs of white space
  made one space), at most `DISPLAY_NAME_MAX` characters.
* `caller_digits`: a caller number as a number: only `+`, digits, `*`, `#`.

Pure functions, no I/O: the CLI, the console, the logs and the call flow use
the same ones.
"""

from __future__ import annotations

import re

# Formula triggers of Excel, LibreOffice and Google Sheets at the start of a
# cell (OWASP's list), plus line feed and the full-width forms some locales
# of Excel also read as formula starts.
_FORMULA_START = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")

#: What a phone display shows of a caller's name, at most (the practice tag
#: "MGP: " comes on top). Desk phones show 20-40 characters on a line.
DISPLAY_NAME_MAX = 40

_SPACES = re.compile(r"\s+")
_NOT_DIALABLE = re.compile(r"[^+0-9*#]")


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def for_terminal(text: str) -> str:
    """`text` with every non-printable character shown as an escape (`\\x1b`, `\\u202e`).

    "Printable" is Python's: letters, marks, digits, punctuation, symbols and
    the plain space. Controls (C0, C1, DEL), format characters (bidi
    overrides, zero-width joiners), separators other than space and unassigned
    code points are all escaped, so what a person reads is what is stored.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def csv_cell(text: str) -> str:
    """A CSV cell a spreadsheet shows as text: formula starts prefixed, non-printables escaped.

    The `'` prefix is what spreadsheets themselves use to mark "text, not a
    formula"; it also shows on numbers that start with `+` (`'+13125550100`),
    which is the price of the rule being simple enough to be sure of.
    """
    cell = for_terminal(text)
    if text[:1] in _FORMULA_START:
        return "'" + cell
    return cell


def display_name(name: str, limit: int = DISPLAY_NAME_MAX) -> str:
    """A caller's name as a phone may show it: printable, one line, at most `limit` characters."""
    kept = "".join(ch for ch in name if ch.isprintable() or ch.isspace())
    return _SPACES.sub(" ", kept).strip()[:limit].rstrip()


def caller_digits(number: str) -> str:
    """A caller number reduced to what can be dialed: `+`, digits, `*` and `#`."""
    return _NOT_DIALABLE.sub("", number)
