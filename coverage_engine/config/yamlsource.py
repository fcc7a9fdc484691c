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

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from coverage_engine.config.text import show

# An admin's coverage file is a few KB; 1 MiB leaves ample room and refuses
# anything that is plainly not a hand-written configuration.
MAX_FILE_BYTES = 1024 * 1024
# Upper bound on nodes after expanding aliases (anchors reused with `*name`).
MAX_EXPANDED_NODES = 200_000
# Deepest nesting of mappings and lists. The reference file nests 7 levels;
# PyYAML's composer recurses once per level, so a few hundred would end in a
# RecursionError before any message could name the line.
MAX_DEPTH = 40

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
    """Read and parse `path`; raise `SourceError` with line numbers on any problem.

    Only a regular file is read. A FIFO or a device would block or never end,
    so the file is opened without blocking and refused unless it is regular:
    a check must answer, not hang.
    """
    name = display_name or str(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(21, "is a directory", str(path))
        if not stat.S_ISREG(info.st_mode):
            raise SourceError(
                name,
                [
                    SourceIssue(
                        None,
                        (),
                        f"is not a regular file ({_file_kind(info.st_mode)}); "
                        "give the path of the coverage YAML file itself",
                    )
                ],
            )
        size = info.st_size
        if size > MAX_FILE_BYTES:
            raise SourceError(
                name,
                [
                    SourceIssue(
                        1,
                        (),
                        f"file is {size / 1_048_576:.1f} MB; a coverage configuration is at "
                        f"most {MAX_FILE_BYTES // 1024} KB (is this the right file?)",
                    )
                ],
            )
        raw = fh.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:  # the file grew between stat and read
        raise SourceError(name, [SourceIssue(1, (), "file is larger than the 1 MB limit")])
    return parse_bytes(raw, name)


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


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
    depth_issue = _too_deep(text)
    if depth_issue is not None:
        raise SourceError(name, [depth_issue])
    try:
        node = yaml.compose(text, Loader=_TextOnlyLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        raise SourceError(name, [_syntax_issue(exc)]) from None
    except yaml.reader.ReaderError as exc:
        raise SourceError(name, [_reader_issue(exc, text)]) from None
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


def _syntax_issue(exc: yaml.MarkedYAMLError) -> SourceIssue:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    problem = exc.problem or "syntax error"
    if "\t" in problem or "\\t" in problem:  # PyYAML writes a tab as \t
        problem += " (YAML indents with spaces, never tabs)"
    context = f" ({exc.context})" if exc.context else ""
    return SourceIssue(
        line,
        (),
        f"invalid YAML: {problem}{context}; check the indentation, and quote "
        "text that contains ':' followed by a space, or '#'",
    )


def _reader_issue(exc: yaml.reader.ReaderError, text: str) -> SourceIssue:
    """A character YAML does not allow (a NUL byte, a control character), with its line."""
    position = max(0, min(exc.position, len(text)))
    line = text.count("\n", 0, position) + 1
    character = exc.character
    code = character if isinstance(character, int) else ord(str(character)[:1] or "\0")
    return SourceIssue(
        line,
        (),
        f"the file contains the control character U+{code:04X}, which YAML does not allow "
        "(is this a text file? remove the character in your editor)",
    )


def _too_deep(text: str) -> SourceIssue | None:
    """A document nested deeper than `MAX_DEPTH`, found without recursion.

    The event stream is flat, so counting starts and ends of mappings and
    lists measures the depth before the (recursive) composer ever runs.
    """
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_TextOnlyLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    line = event.start_mark.line + 1 if event.start_mark is not None else None
                    return SourceIssue(
                        line,
                        (),
                        f"mappings and lists are nested more than {MAX_DEPTH} levels deep here; "
                        "a coverage file needs fewer than 10 (check the indentation and brackets)",
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return None  # the composer reports the syntax error with its line
    return None


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
                SourceIssue(line, path, f"YAML tag {show(node.tag)} is not allowed here; remove it")
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
                        f"key {show(key)} appears twice in the same mapping "
                        f"(first on line {first})",
                    )
                )
                continue
            self.lines.lines[(*path, key)] = key_line
            out[key] = self.build(value_node, (*path, key))
        return out
