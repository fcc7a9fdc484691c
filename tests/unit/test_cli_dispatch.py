"""The command-line dispatcher: version, usage errors, command groups from other packages."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest

from coverage_engine import __version__, cli
from coverage_engine.cli import PLUGIN_GROUP, build_parser, main

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config" / "coverage.yaml"


def test_version_flag_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`coverage-engine --version` names the installed version and exits 0."""
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """With no subcommand the help goes to stderr and the exit code is 2."""
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().err


def _command_names() -> set[str]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    raise AssertionError("the parser has no subcommands")


RUNTIME_COMMANDS = {
    "check", "explain", "calendar", "override", "swap", "changes", "replay", "diff", "feeds",
    "run", "calls", "report", "operators", "agi", "users", "access-log", "console", "messages",
    "status",
}  # fmt: skip
LAB_COMMANDS = {"sandbox", "demo", "bench"}


def test_the_lab_commands_come_from_the_entry_point_group() -> None:
    """The installed lab declares sandbox, demo and bench; the dispatcher finds them there."""
    declared = {point.name for point in entry_points(group=PLUGIN_GROUP)}
    assert declared >= LAB_COMMANDS
    assert _command_names() == RUNTIME_COMMANDS | LAB_COMMANDS


def _without_the_lab(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `import coverage_lab...` fail as it does where the lab is not installed."""
    for name in [m for m in sys.modules if m == "coverage_lab" or m.startswith("coverage_lab.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "coverage_lab", None)


def test_without_the_lab_the_runtime_commands_still_work(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the lab absent its commands are missing, silently, and `check` still runs."""
    _without_the_lab(monkeypatch)
    assert _command_names() == RUNTIME_COMMANDS
    assert main(["check", str(SHIPPED_CONFIG)]) == 0
    assert "coverage_lab" not in capsys.readouterr().err


def test_a_broken_plugin_is_named_once_and_left_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plugin whose import fails says so in one line; the other commands are all there."""
    (tmp_path / "broken_plugin.py").write_text("import a_dependency_nobody_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    broken = EntryPoint(name="broken", value="broken_plugin:register", group=PLUGIN_GROUP)
    installed = list(entry_points(group=PLUGIN_GROUP))
    monkeypatch.setattr(cli, "entry_points", lambda group: [*installed, broken])

    assert _command_names() == RUNTIME_COMMANDS | LAB_COMMANDS
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "'broken' commands (broken_plugin:register) could not be loaded" in err
    assert "a_dependency_nobody_installed" in err


def test_a_plugin_cannot_take_a_runtime_command_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plugin named like a runtime command is left out; the runtime's command stays."""
    impostor = EntryPoint(
        name="run", value="coverage_lab.cli.demo_cmd:register", group=PLUGIN_GROUP
    )
    monkeypatch.setattr(cli, "entry_points", lambda group: [impostor])

    assert _command_names() == RUNTIME_COMMANDS
    assert "'run' commands are left out: that name is taken" in capsys.readouterr().err
