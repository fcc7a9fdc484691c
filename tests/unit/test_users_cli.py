"""`coverage-engine users` and `access-log`: accounts from the command line, and the audit."""

from __future__ import annotations

from pathlib import Path

import pytest

from coverage_engine.cli import main
from coverage_engine.web.db import ConsoleDb
from tests.unit.console_support import PASSWORD


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "records.sqlite"


def test_add_list_disable_and_passwd_round_trip(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user added with a password from the environment lists, disables, enables, changes it."""
    monkeypatch.setenv("COVERAGE_USER_PASSWORD", PASSWORD)
    assert (
        main(
            [
                "users",
                "add",
                "olivia",
                "--db",
                str(db),
                "--role",
                "operator",
                "--practice",
                "maple-grove",
                "--name",
                "Olivia Park",
            ]
        )
        == 0
    )
    assert main(["users", "list", "--db", str(db)]) == 0
    assert "olivia           operator  active    maple-grove" in capsys.readouterr().out
    assert main(["users", "disable", "olivia", "--db", str(db)]) == 0
    console = ConsoleDb.open(db)
    assert console.accounts.authenticate("olivia", PASSWORD) is None
    console.close()
    assert main(["users", "disable", "olivia", "--enable", "--db", str(db)]) == 0
    monkeypatch.setenv("COVERAGE_USER_PASSWORD", "a brand new passphrase")
    assert main(["users", "passwd", "olivia", "--db", str(db)]) == 0
    console = ConsoleDb.open(db)
    assert console.accounts.authenticate("olivia", "a brand new passphrase") is not None
    assert console.accounts.authenticate("olivia", PASSWORD) is None
    console.close()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["Bad Name", "--role", "admin"], "is not a username"),
        (["olivia", "--role", "operator"], "needs at least one practice"),
    ],
)
def test_bad_users_are_refused_with_a_reason(
    db: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    words: str,
) -> None:
    """A bad username or a practice-less operator: exit 1 and why."""
    monkeypatch.setenv("COVERAGE_USER_PASSWORD", PASSWORD)
    assert main(["users", "add", "--db", str(db), *args]) == 1
    assert words in capsys.readouterr().err


def test_a_short_password_is_refused(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Twelve characters at least."""
    monkeypatch.setenv("COVERAGE_USER_PASSWORD", "short")
    assert main(["users", "add", "ada", "--db", str(db), "--role", "admin"]) == 1
    assert "at least 12 characters" in capsys.readouterr().err


def test_there_is_no_password_option_on_the_command_line() -> None:
    """`--password` does not exist: passwords never go through argv."""
    with pytest.raises(SystemExit):
        main(["users", "add", "ada", "--db", "x", "--role", "admin", "--password", "p" * 12])


def test_the_access_log_reads_back_changes_and_refusals(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """User changes are in the access log; --refused and --json filter and shape it."""
    monkeypatch.setenv("COVERAGE_USER_PASSWORD", PASSWORD)
    main(["users", "add", "ada", "--db", str(db), "--role", "admin"])
    capsys.readouterr()
    assert main(["access-log", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "user_changed" in out
    assert "change=add user=ada" in out
    assert main(["access-log", "--db", str(db), "--refused"]) == 0
    assert capsys.readouterr().out == ""
