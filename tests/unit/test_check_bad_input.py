"""`coverage-engine check`: every bad input is rejected with file, line and key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from coverage_engine.cli import main
from tests.unit.reference import REFERENCE_CONFIG

REFERENCE_TEXT = REFERENCE_CONFIG.read_text(encoding="utf-8")


def mutate(old: str, new: str) -> tuple[str, int]:
    """The reference file with `old` (present once) replaced; and the line `new` starts on."""
    assert REFERENCE_TEXT.count(old) == 1, old
    text = REFERENCE_TEXT.replace(old, new)
    line = text[: text.index(new)].count("\n") + 1
    return text, line


def run_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes
) -> tuple[int, str, Path]:
    """Write `content` to a file, run `check` on it; exit code, stderr and the path."""
    path = tmp_path / "coverage.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    code = main(["check", str(path)])
    return code, capsys.readouterr().err, path


def line_of(text: str, needle: str) -> int:
    """1-based line of the first occurrence of `needle`."""
    return text[: text.index(needle)].count("\n") + 1


# (case id, old text, new text, key path, words of the message, text on the blamed line)
MUTATIONS = [
    ("invalid-yaml", "    name: Maple Grove Pediatrics\n", "    name: Maple Grove: Pediatrics\n",
     "", "invalid YAML", "Maple Grove: Pediatrics"),
    ("unknown-key-suggests", "      ring_seconds: 20\n", "      ring_secs: 20\n",
     "practices.maple-grove.staff.ring_secs", 'did you mean "ring_seconds"', "ring_secs"),
    ("bad-timezone", "timezone: America/Los_Angeles", "timezone: America/Lakeside",
     "practices.lakeside.timezone", "not an IANA time zone", "America/Lakeside"),
    ("hour-25", "        - {start: 13:00, end: 16:00}", "        - {start: 13:00, end: 25:00}",
     "practices.maple-grove.hours.friday[1].end", '"25:00" is not a time', "end: 25:00"),
    ("end-before-start", "        - {start: 09:00, end: 12:00}",
     "        - {start: 12:00, end: 09:00}",
     "practices.maple-grove.hours.saturday[0]", "end 09:00 is not after start 12:00", "end: 09:00"),
    ("overlap", "        - {start: 13:00, end: 16:00}", "        - {start: 11:00, end: 16:00}",
     "practices.maple-grove.hours.friday", "overlap", "friday:"),
    ("did-twice", "dids: [+16085550142]", "dids: [+13125550101]",
     "practices.lakeside.dids[0]", 'already a number of practice "maple-grove"',
     "dids: [+13125550101]"),
    ("did-not-e164", "dids: [+16085550142]", "dids: [608-555-0142]",
     "practices.lakeside.dids[0]", "not an E.164 phone number", "608-555-0142"),
    ("doctor-undefined", "doctors: [patel, nguyen, okafor]",
     "doctors: [patel, nguyen, okafor, smith]",
     "practices.maple-grove.oncall.rotation.doctors[3]", 'doctor "smith" is not defined',
     "okafor, smith"),
    ("rotation-empty", "doctors: [patel, nguyen, okafor]", "doctors: []",
     "practices.maple-grove.oncall.rotation.doctors", "at least one doctor", "doctors: []"),
    ("chain-ends-without-person",
     "        - {to: oncall_backup, ring_seconds: 30, confirm: true}\n        - {to: operators}\n",
     "        - {to: oncall_backup, ring_seconds: 30, confirm: true}\n",
     "practices.lakeside.when_closed.chain[1]", "last step must be operators",
     "{to: oncall_backup, ring_seconds: 30"),
    ("override-ends-before-start", "    overrides: []\n",
     "    overrides:\n      - {from: 2027-01-27 06:00, until: 2027-01-26 06:00, reason: snow}\n",
     "practices.maple-grove.overrides[0].until", "ends before it starts", "{from: 2027-01-27"),
    ("misspelt-choice", "{to: oncall_primary, ring_seconds: 30",
     "{to: oncall_primry, ring_seconds: 30",
     "practices.lakeside.when_closed.chain[0].to", 'did you mean "oncall_primary"?',
     "oncall_primry"),
    ("bad-anchor-weekday", "anchor: 2026-11-02", "anchor: 2026-11-03",
     "practices.maple-grove.oncall.rotation.anchor", "must be a handoff day", "anchor: 2026-11-03"),
    ("undeclared-trunk", "patel:  {name: Dr. Priya Patel, endpoint: patel}",
     "patel:  {name: Dr. Priya Patel, number: +13125550199, trunk: other-trunk}",
     "practices.maple-grove.oncall.doctors.patel.trunk", 'trunk "other-trunk" is not listed',
     "other-trunk"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "key", "words", "blamed"),
    [m[1:] for m in MUTATIONS],
    ids=[m[0] for m in MUTATIONS],
)
def test_check_rejects_bad_input_naming_line_and_key(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    key: str,
    words: str,
    blamed: str,
) -> None:
    """Each broken file exits 1 with a message naming the file, the line and the key."""
    text, _ = mutate(old, new)
    code, err, path = run_check(tmp_path, capsys, text)
    assert code == 1
    location = f"{path}:{line_of(text, blamed)}: {key + ': ' if key else ''}"
    assert any(ln.startswith(location) and words in ln for ln in err.splitlines()), err


def test_missing_required_key_names_the_practice_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Leaving out short_name points at the practice's own line."""
    text, _ = mutate("    short_name: LFM\n", "")
    code, err, path = run_check(tmp_path, capsys, text)
    assert code == 1
    assert f"{path}:{line_of(text, '  lakeside:')}: practices.lakeside.short_name: " in err
    assert "required key is missing" in err


@pytest.mark.parametrize("bad", ["&", ",", "(", ")", "|", " ", "/", "$"])
def test_dial_target_with_unsafe_character_is_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    """An endpoint that could smuggle another dial leg or option is refused."""
    text, line = mutate("endpoint: frontdesk-maple", f'endpoint: "frontdesk{bad}maple"')
    code, err, path = run_check(tmp_path, capsys, text)
    assert code == 1
    assert f"{path}:{line}: practices.maple-grove.staff.endpoint: " in err
    assert "cannot be used in a dial string" in err


def test_all_errors_are_reported_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two unrelated mistakes both appear, each with its own line, and a count."""
    text = REFERENCE_TEXT.replace("{start: 13:00, end: 16:00}", "{start: 13:00, end: 25:00}")
    text = text.replace("timezone: America/Los_Angeles", "timezone: Mars/Olympus")
    code, err, path = run_check(tmp_path, capsys, text)
    assert code == 1
    assert f"{path}:{line_of(text, 'end: 25:00')}: " in err
    assert f"{path}:{line_of(text, 'Mars/Olympus')}: practices.lakeside.timezone" in err
    assert "2 errors" in err


def test_not_utf8_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Latin-1 byte in the file is reported with its line and the fix."""
    raw = REFERENCE_TEXT.replace("Dr. Minh Nguyen", "Dr. Minh Nguy\u00ean").encode("latin-1")
    code, err, path = run_check(tmp_path, capsys, raw)
    assert code == 1
    assert f"{path}:{line_of(REFERENCE_TEXT, 'Dr. Minh Nguyen')}: " in err
    assert "not UTF-8" in err


def test_huge_file_is_refused_without_parsing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 50 MB file is rejected by size, at line 1, before YAML sees it."""
    path = tmp_path / "coverage.yaml"
    with path.open("wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    code = main(["check", str(path)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{path}:1: file is 50.0 MB" in err


def test_yaml_never_executes_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A python/object tag is refused with its line, and nothing runs."""
    marker = tmp_path / "pwned"
    text, line = mutate(
        "    name: Maple Grove Pediatrics\n",
        f'    name: !!python/object/apply:os.system ["touch {marker}"]\n',
    )
    code, err, path = run_check(tmp_path, capsys, text)
    assert code == 1
    assert f"{path}:{line}: practices.maple-grove.name: YAML tag" in err
    assert not marker.exists()


def test_alias_bomb_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Nested aliases that would expand into billions of values are refused quickly."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    code, err, _ = run_check(tmp_path, capsys, "\n".join(lines) + "\n")
    assert code == 1
    assert "expands" in err


def test_duplicate_key_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A key written twice in one mapping is reported, not silently overwritten."""
    text, line = mutate("    short_name: LFM\n", "    short_name: LFM\n    short_name: LF\n")
    code, err, path = run_check(tmp_path, capsys, text)
    assert code == 1
    assert (
        f"{path}:{line + 1}: practices.lakeside.short_name: key \"short_name\" appears twice" in err
    )


def test_missing_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A path that does not exist exits 2, not 1: nothing was checked."""
    code = main(["check", str(tmp_path / "nope.yaml")])
    assert code == 2
    assert "cannot read" in capsys.readouterr().err


def test_reference_file_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped config/coverage.yaml passes with a one-line summary."""
    code = main(["check", str(REFERENCE_CONFIG)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("\n") == 1
    assert "OK: 2 practices" in out


def test_cross_checks_still_run_on_practices_that_are_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo in one practice does not hide an undefined doctor in the other."""
    text = REFERENCE_TEXT.replace("timezone: America/Los_Angeles", "timezone: Mars/Olympus")
    text = text.replace("doctors: [patel, nguyen, okafor]", "doctors: [patel, nguyen, smith]")
    code, err, path = run_check(tmp_path, capsys, text)
    assert code == 1
    assert f"{path}:{line_of(text, 'Mars/Olympus')}: practices.lakeside.timezone" in err
    assert f"{path}:{line_of(text, 'nguyen, smith')}: " in err
    assert 'doctor "smith" is not defined' in err


def test_bad_practice_id_is_reported_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A practice key that is not a valid id gives one error on its line, not two."""
    text, line = mutate("  lakeside:\n", "  Lake Side:\n")
    code, err, path = run_check(tmp_path, capsys, text)
    assert code == 1
    assert err.count("is not a valid id") == 1
    assert f'{path}:{line}: practices.Lake Side: "Lake Side" is not a valid id' in err


def test_tab_indentation_is_explained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A tab where YAML wants spaces is named as such, with its line."""
    text, line = mutate("    short_name: LFM\n", "\tshort_name: LFM\n")
    code, err, path = run_check(tmp_path, capsys, text)
    assert code == 1
    assert f"{path}:{line}: invalid YAML" in err
    assert "never tabs" in err


def test_check_without_a_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`check` with no CONFIG exits 2 with argparse's usage line."""
    with pytest.raises(SystemExit) as exc:
        main(["check"])
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_check_on_a_directory_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder is not a coverage file: exit 2, saying it cannot be read."""
    assert main(["check", str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err
