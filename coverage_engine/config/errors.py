"""Configuration errors as a clinic admin reads them: file, line, key path, what to do.

Every message has the shape

    coverage.yaml:42: practices.maple-grove.hours.friday[0].end: "25:00" is not a time

so an editor can jump to the line and the admin sees which key is wrong.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from coverage_engine.config.text import one_line
from coverage_engine.config.text import show as _show
from coverage_engine.config.yamlsource import LineMap, PathKey


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One thing wrong with the file."""

    source: str
    line: int | None
    path: PathKey
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        key = format_path(self.path)
        text = f"{where}: {key}: {self.message}" if key else f"{where}: {self.message}"
        # Keys, file names and values may hold control characters: one issue, one line.
        return one_line(text)


class ConfigError(Exception):
    """The configuration is invalid; `issues` holds every problem found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.line or 0, format_path(i.path)))
        super().__init__("\n".join(str(i) for i in self.issues))


def format_path(path: PathKey) -> str:
    """("practices", "x", "hours", "friday", 0, "end") -> practices.x.hours.friday[0].end."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


# pydantic's own wording, rephrased for people who do not read Python.
_TYPE_MESSAGES: dict[str, str] = {
    "int_parsing": "{value} is not a whole number",
    "int_type": "{value} is not a whole number",
    "int_from_float": "{value} is not a whole number",
    "bool_parsing": "{value} is not yes/no (write true or false)",
    "bool_type": "{value} is not yes/no (write true or false)",
    "string_type": "{value} should be text",
    "dict_type": "expected a mapping of keys (key: value lines), got {value}",
    "model_type": "expected a mapping of keys (key: value lines), got {value}",
    "model_attributes_type": "expected a mapping of keys (key: value lines), got {value}",
    "tuple_type": "expected a list (lines starting with '- '), got {value}",
    "list_type": "expected a list (lines starting with '- '), got {value}",
}


def issues_from_validation(
    exc: ValidationError, lines: LineMap, source: str, root: type[BaseModel]
) -> list[ConfigIssue]:
    """Translate every pydantic error into a `ConfigIssue` with its line."""
    return [
        _issue(err, lines, source, root)
        for err in exc.errors(include_url=False)
        if not _is_injected_id(err)
    ]


def _is_injected_id(err: ErrorDetails) -> bool:
    """The practice id copied from its key: a bad key is already reported once."""
    loc = err["loc"]
    return len(loc) == 3 and loc[0] == "practices" and loc[2] == "id" and err.get("input") == loc[1]


def _issue(err: ErrorDetails, lines: LineMap, source: str, root: type[BaseModel]) -> ConfigIssue:
    loc: PathKey = tuple(p for p in err["loc"] if p != "[key]")
    kind = err["type"]
    value = _show(err.get("input"))
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        allowed = _allowed_keys(root, loc[:-1])
        hint = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        message = f"unknown key {_show(key)}"
        if hint:
            message += f' (did you mean "{hint[0]}"?)'
        elif allowed:
            message += f" (allowed here: {', '.join(sorted(allowed))})"
        return ConfigIssue(source, lines.line_of(loc), loc, message)
    if kind == "missing":
        return ConfigIssue(source, lines.line_of(loc), loc, "required key is missing")
    if kind == "value_error":
        ctx = err.get("ctx") or {}
        message = str(ctx.get("error", err["msg"]))
    elif kind == "literal_error":
        expected = str((err.get("ctx") or {}).get("expected", ""))
        message = f"{value} is not one of {expected}"
        choices = re.findall(r"'([^']*)'", expected)
        hint = difflib.get_close_matches(str(err.get("input")), choices, n=1, cutoff=0.6)
        if hint:
            message += f' (did you mean "{hint[0]}"?)'

    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        message = f"{value} is out of range ({err['msg'].lower()})"
    elif kind in ("too_short",):
        message = "must not be empty"
    elif kind in _TYPE_MESSAGES:
        message = _TYPE_MESSAGES[kind].format(value=value)
    else:
        message = err["msg"]
    return ConfigIssue(source, lines.line_of(loc), loc, message)


def _allowed_keys(root: type[BaseModel], path: PathKey) -> list[str]:
    """The keys the model accepts at `path`, for "did you mean" hints."""
    current: Any = root
    for part in path:
        current = _step_into(current, part)
        if current is None:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items() if name != "id"]
    return []


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional to reach the model or container type."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _step_into(tp: Any, part: str | int) -> Any:
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, field in tp.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is dict and len(args) == 2:
        return args[1]
    if origin in (tuple, list) and args:
        return args[0]
    return None
