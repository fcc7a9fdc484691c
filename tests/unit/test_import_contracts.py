"""The import contracts of pyproject.toml fail when the code breaks them.

`scripts/test` runs `lint-imports` on the real code, where the contracts are
kept. Here each contract is shown failing once: on a copy of the code with
one new module that imports what it must not, lint-imports exits non-zero
and names the contract and the import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
RUNTIME_WITHOUT_LAB = "The runtime never imports the lab"
PURE_WITHOUT_IO = "Pure modules never import I/O"


def lint_imports_on_a_copy(tmp_path: Path, intruder: str, source: str) -> str:
    """Copy the packages and pyproject.toml, add the module `intruder`, run lint-imports there."""
    for package in ("coverage_engine", "coverage_lab"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / (intruder.replace(".", "/") + ".py")).write_text(source, encoding="utf-8")
    # The copy comes first on the path, ahead of the installed (editable) packages.
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("intruder", "imported", "broken", "kept"),
    [
        ("coverage_engine.intruder", "coverage_lab.fake_ari", RUNTIME_WITHOUT_LAB, PURE_WITHOUT_IO),
        ("coverage_engine.callflow.intruder", "aiohttp", PURE_WITHOUT_IO, RUNTIME_WITHOUT_LAB),
        (
            "coverage_engine.schedule.intruder",
            "coverage_engine.records.sqlite",
            PURE_WITHOUT_IO,
            RUNTIME_WITHOUT_LAB,
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract_by_name(
    tmp_path: Path, intruder: str, imported: str, broken: str, kept: str
) -> None:
    """A runtime module importing the lab, or a pure one importing I/O, fails the check."""
    report = lint_imports_on_a_copy(tmp_path, intruder, f"import {imported}\n")

    assert f"{broken} BROKEN" in report
    assert f"{kept} KEPT" in report
    assert f"{intruder} -> {imported} (l.1)" in report
