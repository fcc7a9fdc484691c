"""Read a YAML file safely into plain data, remembering the line of every key.

This is the only module that touches YAML. It hands the model plain Python
data (dicts, lists, strings, None) and a `LineMap` so every validation error
can name the line an admin has to fix.

Why plain scalars stay strings: PyYAML follows YAML 1.1, where an unquoted
`17:30` is the base-60 integer 1050, `+13125550100` is an integer that loses
its `+`, `no` is False (the country code of Norway) and `2026-12-24` becomes a
date object. Admins mean text: a time, a phone number, a country. So this
loader resolves nothing implicitly except null, and the pydantic model parses
each string into the type its field needs ("20" -> 20 for a ring time).

Why not `yaml.safe_load`: we compose the node graph with a SafeLoader
subclass (which never constructs arbitrary objects) and build the data
ourselves, which gives us line numbers, duplicate-key detection and a bound on
alias expansion (a "billion laughs" file of a few KB could otherwise expand
into billions of nodes during validation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# An admin's coverage file is a few KB; 1 MiB leaves ample room and refuses
# anything that is plainly not a hand-written configuration.
MAX_FILE_BYTES = 1024 * 1024
# Upper bound on nodes after expanding aliases (anchors reused with `*name`).
MAX_EXPANDED_NODES = 200_000

PathKey = tuple[str | int, ...]

_NULL_TAG = "tag:yaml.org,2002:null"
_STR_TAG = "tag:yaml.org,2002:str"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"
# Explicit tags an admin may legitimately write (`!!str 0800`); everything else
# (`!!python/object`, custom `!tags`) is refused rather than interpreted.
_ALLOWED_TAGS = frozenset(
    {
        _NULL_TAG,
        _STR_TAG,
        _SEQ_TAG,
        _MAP_TAG,
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:float",
    }
)


class _TextOnlyLoader(yaml.SafeLoader):
    """A SafeLoader whose only implicit resolution is null: all else stays text."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, Any]]] = {}  # noqa: RUF012


for _first, _resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items():
    kept = [(tag, regexp) for tag, regexp in _resolvers if tag == _NULL_TAG]
    if kept:
        _TextOnlyLoader.yaml_implicit_resolvers[_first] = kept


@dataclass(frozen=True, slots=True)
class SourceIssue:
    """A problem found while reading the file, before the model sees it."""

    line: int | None
    path: PathKey
    message: str


@dataclass(slots=True)
class LineMap:
    """Line (1-based) of each key path in the document."""

    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: PathKey) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


@dataclass(frozen=True, slots=True)
class Source:
    """The document read from YAML: plain data plus where each key came from."""

    name: str
    data: Any
    lines: LineMap


class SourceError(Exception):
    """The file could not be read as YAML; `issues` says why and where."""

    def __init__(self, name: str, issues: list[SourceIssue]) -> None:
        super().__init__(f"{name}: {len(issues)} problem(s)")
        self.name = name
        self.issues = issues


def read_source(path: Path, display_name: str | None = None) -> Source:
    """Read and parse `path`; raise `SourceError` with line numbers on any problem."""
    name = display_name or str(path)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise SourceError(
            name,
            [
                SourceIssue(
                    1,
                    (),
                    f"file is {size / 1_048_576:.1f} MB; a coverage configuration is at most "
                    f"{MAX_FILE_BYTES // 1024} KB (is this the right file?)",
                )
            ],
        )
    with path.open("rb") as fh:
        raw = fh.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:  # the file grew between stat and read
        raise SourceError(name, [SourceIssue(1, (), "file is larger than the 1 MB limit")])
    return parse_bytes(raw, name)


def parse_bytes(raw: bytes, name: str) -> Source:
    """Decode UTF-8 text and parse it; the testable core of `read_source`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SourceError(
            name,
            [
                SourceIssue(
                    line,
                    (),
                    f"this file is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                    f"{exc.start}); save it as UTF-8 in your editor",
                )
            ],
        ) from None
    text = text.removeprefix("\ufeff")  # a UTF-8 byte-order mark some editors add
    return parse_text(text, name)


def parse_text(text: str, name: str) -> Source:
    """Parse YAML text into plain data with a line map."""
    try:
        node = yaml.compose(text, Loader=_TextOnlyLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or "syntax error"
        if "\t" in problem or "\\t" in problem:  # PyYAML writes a tab as \t
            problem += " (YAML indents with spaces, never tabs)"
        context = f" ({exc.context})" if exc.context else ""
        raise SourceError(
            name,
            [
                SourceIssue(
                    line,
                    (),
                    f"invalid YAML: {problem}{context}; check the indentation, and quote "
                    "text that contains ':' followed by a space, or '#'",
                )
            ],
        ) from None
    except yaml.YAMLError as exc:
        raise SourceError(name, [SourceIssue(None, (), f"invalid YAML: {exc}")]) from None
    if node is None:
        raise SourceError(name, [SourceIssue(1, (), "the file is empty")])
    if _expanded_size(node) > MAX_EXPANDED_NODES:
        raise SourceError(
            name,
            [
                SourceIssue(
                    node.start_mark.line + 1,
                    (),
                    "the document expands (through anchors and aliases) into more than "
                    f"{MAX_EXPANDED_NODES} values; reuse anchors less deeply",
                )
            ],
        )
    builder = _Builder()
    data = builder.build(node, ())
    if builder.issues:
        raise SourceError(name, builder.issues)
    return Source(name=name, data=data, lines=builder.lines)


def _expanded_size(root: yaml.Node) -> int:
    """How many values the document holds once every alias is expanded."""
    memo: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        memo[key] = 1  # guards against recursive aliases while we descend
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        memo[key] = total
        return total

    return size(root)


class _Builder:
    """Turns a composed node graph into plain data, recording lines and issues."""

    def __init__(self) -> None:
        self.lines = LineMap()
        self.issues: list[SourceIssue] = []
        self._active: set[int] = set()

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        line = node.start_mark.line + 1
        self.lines.lines.setdefault(path, line)
        if node.tag not in _ALLOWED_TAGS:
            self.issues.append(
                SourceIssue(line, path, f"YAML tag {node.tag!r} is not allowed here; remove it")
            )
            return None
        if id(node) in self._active:
            self.issues.append(SourceIssue(line, path, "an alias refers to itself"))
            return None
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _NULL_TAG:
                return None
            return str(node.value)
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
        finally:
            self._active.discard(id(node))
        return None  # pragma: no cover - compose yields only the three node kinds

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if (
                not isinstance(key_node, yaml.ScalarNode)
                or key_node.tag == _NULL_TAG
                or key_node.tag not in _ALLOWED_TAGS
            ):
                self.issues.append(SourceIssue(key_line, path, "a key must be plain text"))
                continue
            key = str(key_node.value)
            if key == "<<":
                self.issues.append(
                    SourceIssue(
                        key_line, path, "YAML merge keys (<<) are not supported; repeat the keys"
                    )
                )
                continue
            if key in out:
                first = self.lines.lines.get((*path, key))
                self.issues.append(
                    SourceIssue(
                        key_line,
                        (*path, key),
                        f"key {key!r} appears twice in the same mapping (first on line {first})",
                    )
                )
                continue
            self.lines.lines[(*path, key)] = key_line
            out[key] = self.build(value_node, (*path, key))
        return out
