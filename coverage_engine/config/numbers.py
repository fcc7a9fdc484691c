"""Phone numbers as carriers send them, read once into E.164.

A DID or caller number arrives however the carrier writes it: `+13125550100`,
`13125550100`, the 10-digit `3125550100` many US carriers send, sometimes
with spaces or dashes. Matched as text, all but the first would miss the
practice and fall to the default queue, with no announcement and no doctor.
So every number is read once, here, with the practice file's
`default_region` for numbers written without a country code, using Google's
libphonenumber metadata (the `phonenumbers` package: national and trunk
prefixes, international dialing prefixes such as 011 and 00, per country).

In the spirit of the dialplan's FILTER: only `+`, digits and the usual
separators are accepted; text with anything else is not a number.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberFormat
from phonenumbers.phonenumberutil import ValidationResult

# Separators people and carriers write inside numbers.
_SEPARATORS = re.compile(r"[\s\-./()]")
_DIALABLE = re.compile(r"\+?\d{1,20}")


def supported_region(code: str) -> bool:
    """True for a region libphonenumber knows (`US`, `CA`, `GB`, ...)."""
    return code in phonenumbers.SUPPORTED_REGIONS


@lru_cache(maxsize=4096)
def normalize_number(text: str, region: str) -> str | None:
    """`text` as E.164 (`+13125550100`), or None when it is not a phone number.

    Without a `+`, the number is read as dialed in `region` (national,
    with a trunk prefix, or with the international prefix); if that is not
    a possible number there, as digits that lack only their `+`, since
    carriers differ on sending it. Cached: the same few DIDs come again and
    again.
    """
    compact = _SEPARATORS.sub("", text.strip())
    if not _DIALABLE.fullmatch(compact):
        return None
    candidates: list[tuple[str, str | None]] = (
        [(compact, None)] if compact.startswith("+") else [(compact, region)]
    )
    if not compact.startswith("+"):
        candidates.append((f"+{compact}", None))
    for number, where in candidates:
        try:
            parsed = phonenumbers.parse(number, where)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number_with_reason(parsed) == ValidationResult.IS_POSSIBLE:
            return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
    return None
