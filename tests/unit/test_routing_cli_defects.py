"""`check`, `explain` and `calendar` on hostile input: one clear line and an exit code, never a
traceback, a hang or a split message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coverage_engine.cli import EXIT_BUG, main
from tests.unit.reference import MAPLE_DID, REFERENCE_CONFIG

REFERENCE_TEXT = REFERENCE_CONFIG.read_text(encoding="utf-8")
ROOT = REFERENCE_CONFIG.parents[1]


def written(tmp_path: Path, text: str | bytes) -> Path:
    """`text` saved as coverage.yaml in `tmp_path`."""
    path = tmp_path / "coverage.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command line in-process: exit code, stdout, stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def replaced(old: str, new: str) -> str:
    """The reference file with `old` (present once) replaced by `new`."""
    assert REFERENCE_TEXT.count(old) == 1, old
    return REFERENCE_TEXT.replace(old, new)


# ------------------------------------------------------------------ nesting depth


@pytest.mark.parametrize("command", ["check", "explain"])
def test_a_file_nested_hundreds_deep_is_one_error_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """400 nested lists: exit 1 and one message with the line, not a RecursionError."""
    depth = 400
    path = written(tmp_path, "version: 1\nengine:\n  x: " + "[" * depth + "]" * depth + "\n")
    extra = ["--did", MAPLE_DID, "--at", "2026-12-01T03:00"] if command == "explain" else []
    code, _, err = run(capsys, command, str(path), *extra)
    assert code == 1
    assert f"{path}:3: mappings and lists are nested more than 40 levels deep" in err
    assert "Traceback" not in err
    assert "RecursionError" not in err


def test_an_unexpected_exception_is_one_line_that_says_it_is_a_bug(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure nobody foresaw ends in exit 70 and a single line naming it a bug."""

    def broken(*args: object, **kwargs: object) -> object:
        raise KeyError("surprise\nsecond line")

    monkeypatch.setattr("coverage_engine.cli.routing_cmds.decide", broken)
    code, out, err = run(
        capsys, "explain", str(REFERENCE_CONFIG), "--did", MAPLE_DID, "--at", "2026-12-01T03:00"
    )
    assert code == EXIT_BUG == 70
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("coverage-engine: internal error (this is a bug, please report it): ")
    assert "KeyError" in err
    assert "surprise" in err


# ------------------------------------------------------------------ dates out of range


@pytest.mark.parametrize("at", ["9999-12-31", "0001-01-01", "1999-12-31T23:00", "2200-01-01"])
def test_explain_refuses_an_instant_outside_the_supported_dates(
    capsys: pytest.CaptureFixture[str], at: str
) -> None:
    """Years 1 and 9999 would overflow a time-zone conversion: a usage error, not a crash."""
    code, _, err = run(capsys, "explain", str(REFERENCE_CONFIG), "--did", MAPLE_DID, "--at", at)
    assert code == 2
    assert err.strip() == (
        f'coverage-engine explain: --at "{at}": out of range: dates go from 2000-01-01 '
        "to 2199-12-31"
    )


def test_the_supported_range_ends_are_explained(capsys: pytest.CaptureFixture[str]) -> None:
    """The first and last supported days are ordinary instants."""
    for at in ("2000-01-01T00:00", "2199-12-31T23:59"):
        code, out, _ = run(
            capsys, "explain", str(REFERENCE_CONFIG), "--did", MAPLE_DID, "--at", at, "--json"
        )
        assert code == 0
        assert json.loads(out)["practice"] == "maple-grove"


def test_calendar_refuses_a_start_outside_the_supported_dates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--from 0001-01-01 is an argument error (exit 2) that names the range."""
    with pytest.raises(SystemExit) as exited:
        main(["calendar", str(REFERENCE_CONFIG), "--practice", "maple-grove",
              "--from", "0001-01-01"])  # fmt: skip
    assert exited.value.code == 2
    assert "out of range: dates go from 2000-01-01 to 2199-12-31" in capsys.readouterr().err


def test_calendar_refuses_to_run_past_the_last_supported_date(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """60 days from 2199-12-01 would cross into 2200: a usage error before any work."""
    code, out, err = run(
        capsys, "calendar", str(REFERENCE_CONFIG), "--practice", "maple-grove",
        "--from", "2199-12-01", "--days", "60",
    )  # fmt: skip
    assert (code, out) == (2, "")
    assert "past 2199-12-31" in err


@pytest.mark.parametrize("until", ["9999-12-31 23:00", "0001-01-01"])
def test_an_override_dated_out_of_range_is_a_check_error_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], until: str
) -> None:
    """A date the time-zone code cannot convert is refused where it is written."""
    text = replaced(
        "    overrides: []\n",
        f"    overrides:\n      - {{from: 2026-12-01 06:00, until: {until}, reason: snow}}\n",
    )
    path = written(tmp_path, text)
    code, _, err = run(capsys, "check", str(path))
    line = text[: text.index("- {from: 2026-12-01")].count("\n") + 1
    assert code == 1
    key = "practices.maple-grove.overrides[0].until"
    assert f'{path}:{line}: {key}: "{until}" is out of range' in err


# ------------------------------------------------------------------ not a regular file


@pytest.mark.timeout(20)
def test_check_on_a_named_pipe_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A FIFO nobody writes to would block forever; check refuses it without reading."""
    fifo = tmp_path / "coverage.yaml"
    os.mkfifo(fifo)
    code, _, err = run(capsys, "check", str(fifo))
    assert code == 1
    assert f"{fifo}: is not a regular file (a named pipe)" in err


def test_check_on_a_device_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """/dev/zero never ends; it is not read."""
    code, _, err = run(capsys, "check", "/dev/zero")
    assert code == 1
    assert "/dev/zero: is not a regular file (a device)" in err


# ------------------------------------------------------------------ NUL bytes, control characters


def test_a_nul_byte_is_reported_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A NUL in the middle of the file names the line it is on."""
    text = replaced("    short_name: LFM\n", "    short_name: L\x00FM\n")
    path = written(tmp_path, text)
    code, _, err = run(capsys, "check", str(path))
    line = text[: text.index("L\x00FM")].count("\n") + 1
    assert code == 1
    assert f"{path}:{line}: the file contains the control character U+0000" in err


def test_control_characters_in_values_never_split_an_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Escaped newlines and tabs in a quoted value come back escaped, one error per line."""
    text = replaced("endpoint: frontdesk-maple", 'endpoint: "front\\ndesk\\r\\u0007\\tmaple"')
    text = text.replace("timezone: America/Los_Angeles", 'timezone: "Mars\\nOlympus"')
    path = written(tmp_path, text)
    code, _, err = run(capsys, "check", str(path))
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 3  # two errors and the count
    assert lines[-1] == f"{path}: 2 errors, not loaded"
    assert '"front\\ndesk\\r\\x07\\tmaple" cannot be used in a dial string' in err
    assert '"Mars\\nOlympus" is not an IANA time zone' in err


def test_a_key_with_a_newline_stays_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown key is quoted with its control characters escaped."""
    text = replaced("      ring_seconds: 20\n", '      "ring\\nsecs": 20\n')
    path = written(tmp_path, text)
    code, _, err = run(capsys, "check", str(path))
    assert code == 1
    assert len(err.splitlines()) == 2
    assert 'unknown key "ring\\nsecs"' in err


# ------------------------------------------------------------------ broken pipe


def test_calendar_into_a_closed_pipe_exits_quietly() -> None:
    """`calendar ... | head -1`: the first line arrives, and no traceback follows."""
    script = (
        f"{sys.executable} -m coverage_engine calendar {REFERENCE_CONFIG} --practice maple-grove "
        "--from 2026-01-01 --days 366 | head -1"
    )
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert done.stdout.startswith("Coverage calendar: Maple Grove Pediatrics")
    assert done.stdout.count("\n") == 1
    assert done.stderr == ""
    assert done.returncode == 141


# ------------------------------------------------------------------ duplicate backups


def test_a_swap_whose_backup_is_its_own_doctor_is_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ringing okafor twice would waste 25 s at 3 a.m.: check refuses it on the swap's line."""
    text = replaced("reason: Christmas}", "reason: Christmas, backup: okafor}")
    path = written(tmp_path, text)
    code, _, err = run(capsys, "check", str(path))
    line = text[: text.index("backup: okafor}")].count("\n") + 1
    assert code == 1
    assert (
        f'{path}:{line}: practices.maple-grove.oncall.swaps[0].backup: "okafor" covers this '
        "swap, so cannot also be its backup" in err
    )


def test_a_fixed_backup_equal_to_the_fixed_primary_is_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lakeside's primary ruiz named as backup too is an error, not a silent collapse."""
    text = replaced("      backup: chen\n", "      backup: ruiz\n")
    path = written(tmp_path, text)
    code, _, err = run(capsys, "check", str(path))
    line = text[: text.index("backup: ruiz")].count("\n") + 1
    assert code == 1
    assert (
        f'{path}:{line}: practices.lakeside.oncall.backup: "ruiz" is the primary, so cannot '
        "also be the backup" in err
    )


def test_a_fixed_backup_who_is_on_call_this_week_is_rung_once_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fixed backup who is the rotation's primary this week: one ring, and explain says why."""
    text = replaced("      backup: next_in_rotation     # after okafor comes patel\n",
                    "      backup: nguyen\n")  # fmt: skip
    path = written(tmp_path, text)
    code, out, _ = run(
        capsys, "explain", str(path), "--did", MAPLE_DID, "--at", "2026-12-01T03:00", "--json"
    )
    plan = json.loads(out)
    assert code == 0
    assert [s["target"] for s in plan["steps"]] == ["answering", "nguyen", "answering"]
    assert plan["oncall"] == {"primary": "nguyen", "backup": None}
    assert plan["notes"] == [
        "skipped oncall_backup: the backup, nguyen, is on call as primary now (never rung twice)"
    ]


# ------------------------------------------------------------------ DST notes


@pytest.mark.parametrize(
    ("at", "note"),
    [
        (
            "2026-03-08T02:30",
            "2026-03-08 02:30 does not exist in America/Chicago (the clocks jump forward that "
            "night); read as 03:00 CDT, the first moment after it",
        ),
        (
            "2026-11-01T01:30",
            "2026-11-01 01:30 happens twice in America/Chicago (the clocks go back that night); "
            "read as the first, 01:30 CDT (UTC-05:00); for the second write "
            "2026-11-01T01:30-06:00",
        ),
    ],
)
def test_explain_notes_a_wall_time_in_the_dst_gap_or_the_repeated_hour(
    capsys: pytest.CaptureFixture[str], at: str, note: str
) -> None:
    """The instant explained is said plainly, in the text and the JSON."""
    code, out, _ = run(capsys, "explain", str(REFERENCE_CONFIG), "--did", MAPLE_DID, "--at", at)
    assert code == 0
    assert f"Note:     {note}" in out.splitlines()
    code, out, _ = run(
        capsys, "explain", str(REFERENCE_CONFIG), "--did", MAPLE_DID, "--at", at, "--json"
    )
    assert json.loads(out)["notes"][0] == note


def test_explain_with_an_offset_or_an_ordinary_time_has_no_dst_note(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An explicit offset is unambiguous; an ordinary night hour needs no note."""
    for at in ("2026-11-01T01:30-06:00", "2026-11-02T01:30"):
        code, out, _ = run(
            capsys, "explain", str(REFERENCE_CONFIG), "--did", MAPLE_DID, "--at", at, "--json"
        )
        assert code == 0
        assert not any("clocks" in n for n in json.loads(out)["notes"])
