"""How a value the admin wrote is quoted back in error messages."""

from __future__ import annotations


def show(value: object) -> str:
    """A value as the admin wrote it: text in quotes, containers by kind."""
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "an empty value"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)
