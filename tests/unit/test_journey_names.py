"""Journey event names and outcomes are written in one module; everyone else uses the types."""

from __future__ import annotations

import ast
from pathlib import Path

from coverage_engine.journey import EventKind, Outcome

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [p for p in (ROOT / "coverage_engine", ROOT / "coverage_lab") if p.is_dir()]
HOME = ROOT / "coverage_engine" / "journey" / "events.py"
NAMES = {k.value for k in EventKind} | {o.value for o in Outcome}
# The same word for another idea, where it is that other idea: a message's field
# `disposition` (coverage_engine.message.MessageFields) shares the event's name.
ELSEWHERE = {
    ("coverage_engine/message.py", "disposition"),
    ("coverage_engine/records/messages.py", "disposition"),
    ("coverage_engine/web/app.py", "disposition"),
}


def literals(path: Path) -> list[tuple[int, str]]:
    """The string constants of a module that are exactly a journey name or outcome."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in NAMES
    ]


def test_the_scan_reads_the_packages_and_finds_the_home_module() -> None:
    """The check looks where the code is, and would find literals (the home module has them)."""
    assert ROOT / "coverage_engine" in PACKAGES
    assert {value for _, value in literals(HOME)} == NAMES


def test_no_journey_name_or_outcome_is_a_string_literal_outside_its_module() -> None:
    """A journey event or outcome written as a string anywhere else is a misspelling waiting."""
    found = {
        f"{path.relative_to(ROOT)}:{line}: {value!r}"
        for package in PACKAGES
        for path in sorted(package.rglob("*.py"))
        if path != HOME
        for line, value in literals(path)
        if (str(path.relative_to(ROOT)), value) not in ELSEWHERE
    }
    assert found == set()
