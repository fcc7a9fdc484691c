"""The command-line dispatcher: version, usage errors."""

from __future__ import annotations

import pytest

from coverage_engine import __version__
from coverage_engine.cli import main


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
