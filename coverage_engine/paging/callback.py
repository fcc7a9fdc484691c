"""The callback number an operator typed, as a number the PBX may dial (pure).

The callback is caller-controlled text: whatever the caller said, typed by an
operator. Before it goes near a dial string it is reduced to digits and
checked: an E.164 number (`+` and 8 to 15 digits), or a North American
number of 10 digits (11 with the leading 1). Anything else (a short code, 911,
letters, an extension alone) is not dialed; the doctor hears that the
number cannot be dialed and reads it in the console instead. An extension
(`x123`, `ext. 123`) is dropped: the doctor asks for it.
"""

from __future__ import annotations

import re

_EXTENSION = re.compile(r"\s*(?:x|ext\.?)\s*\d{1,6}\s*$", re.IGNORECASE)


def dialable(callback: str) -> str | None:
    """The callback as E.164 (`+13125550199`), or None when it must not be dialed."""
    main = _EXTENSION.sub("", callback.strip())
    if not main or re.search(r"[^0-9+ ().\-]", main) or main.count("+") > 1:
        return None
    if "+" in main and not main.startswith("+"):
        return None
    digits = re.sub(r"\D", "", main)
    if main.startswith("+"):
        if 8 <= len(digits) <= 15 and digits[0] != "0":
            return "+" + digits
        return None
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    # NANP: area code and exchange both start with 2-9.
    if len(digits) == 10 and digits[0] in "23456789" and digits[3] in "23456789":
        return "+1" + digits
    return None


def spoken(number: str) -> str:
    """The digits Asterisk reads out (`digits:` playback), without the `+`."""
    return re.sub(r"\D", "", number)
