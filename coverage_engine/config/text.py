"""How a value the admin wrote is quoted back in messages.

A message is one line: an editor jumps to `file:line`, and a log keeps one
entry per problem. So text is shown in double quotes with every control
character escaped (a newline as `\\n`, a NUL as `\\x00`), and long text is
shortened: a value can never split or flood a message.
"""

from __future__ import annotations

# Longest piece of an admin's text quoted back; enough to recognise it.
MAX_SHOWN = 80

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\\": "\\\\"}


def escape(text: str) -> str:
    """`text` with control characters (C0, DEL, C1, line separators) written as escapes."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 32 or 127 <= ord(ch) < 160 or ch in "\u2028\u2029":
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def one_line(text: str) -> str:
    """A whole message made safe to print as one line (control characters escaped).

    Quotes and backslashes are left as they are: only what could break the
    line or the terminal is escaped.
    """
    if all(32 <= ord(ch) < 127 or (ord(ch) >= 160 and ch not in "\u2028\u2029") for ch in text):
        return text
    return "".join(
        ch
        if ch in ('"', "\\") or not (ord(ch) < 32 or 127 <= ord(ch) < 160 or ch in "\u2028\u2029")
        else escape(ch)
        for ch in text
    )


def show(value: object) -> str:
    """A value as the admin wrote it: text in double quotes, containers by kind."""
    if isinstance(value, str):
        shown = escape(value[:MAX_SHOWN])
        return f'"{shown}..."' if len(value) > MAX_SHOWN else f'"{shown}"'
    if value is None:
        return "an empty value"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return escape(repr(value))
