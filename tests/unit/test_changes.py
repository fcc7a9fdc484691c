"""Overrides and swaps as changes: validated by the model, atomic, audited, reversible."""

from __future__ import annotations

import json
import multiprocessing
import os
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coverage_engine.changes import Actor, ChangeRefused, ChangeService
from coverage_engine.changes.files import audit_path
from coverage_engine.cli import main
from coverage_engine.config import ConfigError, load_config
from coverage_engine.config.overlay import overlay_path
from coverage_engine.routing import decide
from tests.unit.reference import MAPLE_DID, REFERENCE_CONFIG

CHICAGO = ZoneInfo("America/Chicago")
NOW = datetime(2027, 1, 26, 5, 55, tzinfo=CHICAGO)  # a snowy Tuesday, before opening
JDOE = Actor("jdoe")
ORIGINAL: dict[Path, str] = {}  # each test's copy of the YAML as written, to show it unchanged


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A copy of the reference coverage file, alone in its folder."""
    path = tmp_path / "coverage.yaml"
    text = REFERENCE_CONFIG.read_text(encoding="utf-8")
    path.write_text(text.replace("../var/records.sqlite", "records.sqlite"), encoding="utf-8")
    ORIGINAL[path] = path.read_text(encoding="utf-8")
    return path


def service(config: Path, now: datetime = NOW) -> ChangeService:
    return ChangeService(config, now=lambda: now)


def at(hour: int, minute: int = 0, day: int = 26) -> datetime:
    return datetime(2027, 1, day, hour, minute, tzinfo=CHICAGO)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file in the folder and its bytes (to show a refusal wrote nothing)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix != ".lock"}


# ---------------------------------------------------------------- overrides


def test_a_snow_day_closes_the_practice_and_is_audited(config: Path) -> None:
    """The override reaches routing through the changes file; the audit says who, why, after."""
    applied = service(config).add_override(
        JDOE, practice="maple-grove", start=at(6), until=at(6, day=27), reason="snow day"
    )
    plan = decide(load_config(config), at(10), MAPLE_DID)
    assert (plan.status, plan.reason) == ("closed", "override: snow day")
    assert config.read_text(encoding="utf-8") == ORIGINAL[config]
    (entry,) = service(config).log()
    assert (entry.seq, entry.by, entry.via, entry.action, entry.why) == (
        1, "jdoe", "cli", "override.add", "snow day",
    )  # fmt: skip
    assert entry.before is None
    assert entry.after is not None
    assert entry.after["from"] == "2027-01-26T06:00:00-06:00"
    assert entry.entry == applied.audit.entry
    assert entry.revision == 1


def test_open_late_wins_over_an_earlier_closed_override(config: Path) -> None:
    """The newest change wins where two overlap: closed all day, then open from noon."""
    svc = service(config)
    svc.add_override(JDOE, practice="maple-grove", start=at(6), until=at(20), reason="snow day")
    svc.add_override(JDOE, practice="maple-grove", start=at(12), until=at(19), reason="dug out",
                     status="open")  # fmt: skip
    loaded = load_config(config)
    assert decide(loaded, at(10), MAPLE_DID).reason == "override: snow day"
    assert decide(loaded, at(18), MAPLE_DID).status == "open"
    assert decide(loaded, at(18), MAPLE_DID).reason == "override: dug out"


def test_route_straight_to_oncall_rings_the_doctor_first(config: Path) -> None:
    """--oncall: primary, backup, operators; no operators first, and a note says why."""
    service(config).add_override(JDOE, practice="maple-grove", start=at(12), until=at(14),
                                 reason="staff meeting", route="oncall")  # fmt: skip
    plan = decide(load_config(config), at(12, 30), MAPLE_DID)
    assert [s.kind.value for s in plan.steps] == ["oncall", "oncall", "operators"]
    assert "straight to the doctor on call (override: staff meeting)" in plan.notes


def test_ending_an_override_early_and_cancelling_one_not_begun(config: Path) -> None:
    """End at 12:00: closed before, office hours after; an upcoming one ended is cancelled."""
    svc = service(config)
    running = svc.add_override(JDOE, practice="maple-grove", start=at(6), until=at(20),
                               reason="snow day").audit.entry  # fmt: skip
    upcoming = svc.add_override(JDOE, practice="maple-grove", start=at(8, day=28),
                                until=at(12, day=28), reason="training").audit.entry  # fmt: skip
    later = service(config, now=at(12))
    ended = later.end(JDOE, running, reason="roads clear")
    assert ended.entry is not None
    assert ended.entry.until == at(12)
    later.end(JDOE, upcoming, reason="training moved")
    loaded = load_config(config)
    assert decide(loaded, at(11), MAPLE_DID).reason == "override: snow day"
    assert decide(loaded, at(13), MAPLE_DID).reason == "office hours"
    assert decide(loaded, at(9, day=28), MAPLE_DID).reason == "office hours"
    states = {e.id: e.state(at(12)) for e in later.entries("override")}
    assert states == {running: "over"}  # the cancelled one is gone; the log keeps it
    assert [e.after for e in later.log()][-1] is None


def test_an_override_written_in_the_yaml_can_be_ended_by_a_command(config: Path) -> None:
    """The YAML stays as written; the changes file ends it, and list shows both facts."""
    text = config.read_text(encoding="utf-8").replace(
        "    overrides: []\n",
        "    overrides:\n      - {from: 2027-01-26 06:00, until: 2027-01-27 06:00, reason: ice}\n",
    )
    config.write_text(text, encoding="utf-8")
    svc = service(config, now=at(9))
    (entry,) = svc.entries("override")
    assert (entry.origin, entry.id[:2]) == ("file", "y-")
    svc.end(JDOE, entry.id, reason="salted")
    assert config.read_text(encoding="utf-8") == text
    assert decide(load_config(config), at(10), MAPLE_DID).reason == "office hours"
    (after,) = svc.entries("override")
    assert (after.until, after.planned_until, after.by) == (at(9), at(6, day=27), "jdoe")


def test_editing_the_ended_yaml_entry_leaves_a_warning_not_an_error(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An early end that matches nothing any more is reported by check, and does nothing."""
    text = config.read_text(encoding="utf-8").replace(
        "    overrides: []\n",
        "    overrides:\n      - {from: 2027-01-26 06:00, until: 2027-01-27 06:00, reason: ice}\n",
    )
    config.write_text(text, encoding="utf-8")
    svc = service(config, now=at(9))
    svc.end(JDOE, svc.entries("override")[0].id, reason="salted")
    config.write_text(text.replace("reason: ice", "reason: black ice"), encoding="utf-8")
    assert main(["check", str(config)]) == 0
    out = capsys.readouterr().out
    assert "matches no override or swap in the YAML file any more" in out
    assert decide(load_config(config), at(10), MAPLE_DID).reason == "override: black ice"


# ---------------------------------------------------------------- swaps


def test_a_swap_puts_its_doctor_on_call_and_remove_takes_it_back(config: Path) -> None:
    """Patel covers Tuesday night; removing the swap gives the night back to the rotation."""
    svc = service(config)
    before = decide(load_config(config), at(23), MAPLE_DID).oncall
    assert before is not None
    cover, backup = [d for d in ("patel", "nguyen", "okafor") if d != before.primary]
    added = svc.add_swap(JDOE, practice="maple-grove", doctor=cover, backup=backup,
                         start=at(18), until=at(8, day=27), reason="family event")  # fmt: skip
    oncall = decide(load_config(config), at(23), MAPLE_DID).oncall
    assert oncall is not None
    assert (oncall.primary, oncall.backup) == (cover, backup)
    svc.end(JDOE, added.audit.entry, reason="plans changed", kind="swap")
    assert decide(load_config(config), at(23), MAPLE_DID).oncall == before


@pytest.mark.parametrize(
    ("doctor", "backup", "start", "until", "words"),
    [
        ("smith", None, at(18), at(20), 'no doctor "smith" in maple-grove'),
        ("patel", "smith", at(18), at(20), 'no doctor "smith" in maple-grove'),
        ("patel", "patel", at(18), at(20), '"patel" covers this swap, so cannot also be its'),
        ("patel", None, at(20), at(18), "until must be after from"),
        ("patel", None, at(1, day=20), at(2, day=20), "until is in the past"),
    ],
)
def test_a_bad_swap_is_refused_and_nothing_is_written(
    config: Path, doctor: str, backup: str | None, start: datetime, until: datetime, words: str
) -> None:
    """Refused with the reason; the folder is byte for byte as before."""
    before = snapshot(config.parent)
    with pytest.raises(ChangeRefused) as refused:
        service(config).add_swap(JDOE, practice="maple-grove", doctor=doctor, backup=backup,
                                 start=start, until=until, reason="cover")  # fmt: skip
    assert words in " ".join([refused.value.message, *refused.value.details])
    assert snapshot(config.parent) == before


def test_a_change_to_an_unknown_practice_or_without_reason_is_refused(config: Path) -> None:
    """Unknown practice, or no reason: refused before anything is read for writing."""
    before = snapshot(config.parent)
    with pytest.raises(ChangeRefused, match='no practice "elm" \\(practices: maple-grove'):
        service(config).add_override(JDOE, practice="elm", start=at(6), until=at(7), reason="x")
    with pytest.raises(ChangeRefused, match="give a reason"):
        service(config).add_override(JDOE, practice="maple-grove", start=at(6), until=at(7),
                                     reason="  ")  # fmt: skip
    assert snapshot(config.parent) == before


def test_a_yaml_with_errors_refuses_every_change(config: Path) -> None:
    """A half-edited YAML: no change is checked against it, nothing is written."""
    config.write_text(config.read_text(encoding="utf-8").replace("end: 16:00", "end: 25:00"),
                      encoding="utf-8")  # fmt: skip
    before = snapshot(config.parent)
    with pytest.raises(ChangeRefused) as refused:
        service(config).add_override(JDOE, practice="maple-grove", start=at(6), until=at(7),
                                     reason="snow")  # fmt: skip
    assert "has errors, so no change can be checked against it" in refused.value.message
    assert any('"25:00" is not a time' in d for d in refused.value.details)
    assert snapshot(config.parent) == before


def test_a_hand_broken_changes_file_is_an_error_everywhere_with_its_line(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check names the changes file and line; the service refuses to build on it."""
    service(config).add_override(JDOE, practice="maple-grove", start=at(6), until=at(7),
                                 reason="snow")  # fmt: skip
    changes = overlay_path(config)
    text = changes.read_text(encoding="utf-8").replace("status: closed", "status: shut")
    changes.write_text(text, encoding="utf-8")
    line = text[: text.index("status: shut")].count("\n") + 1
    assert main(["check", str(config)]) == 1
    err = capsys.readouterr().err
    assert (
        f"{changes}:{line}: overrides[0].status: \"shut\" is not one of 'open' or 'closed'" in err
    )
    with pytest.raises(ConfigError):
        load_config(config)
    with pytest.raises(ChangeRefused, match="has errors"):
        service(config).add_override(JDOE, practice="maple-grove", start=at(8), until=at(9),
                                     reason="more snow")  # fmt: skip


# ---------------------------------------------------------------- undo, log


def test_undo_puts_an_entry_back_as_it_was(config: Path) -> None:
    """Undo the early end: the snow day runs until 20:00 again; undo the add: it is gone."""
    svc = service(config)
    added = svc.add_override(JDOE, practice="maple-grove", start=at(6), until=at(20),
                             reason="snow day")  # fmt: skip
    later = service(config, now=at(9))
    later.end(JDOE, added.audit.entry, reason="oops")
    assert decide(load_config(config), at(15), MAPLE_DID).reason == "office hours"
    with pytest.raises(ChangeRefused, match="was changed again after change 1"):
        later.undo(Actor("boss"), 1, reason="not yet")
    later.undo(Actor("boss"), 2, reason="ended by mistake")
    assert decide(load_config(config), at(15), MAPLE_DID).reason == "override: snow day"
    later.undo(Actor("boss"), 1, reason="no snow after all")
    assert later.entries("override") == []
    log = later.log()
    assert [e.action for e in log] == ["override.add", "override.end", "undo", "undo"]
    assert [e.undoes for e in log] == [None, None, 2, 1]
    assert log[-1].by == "boss"


def test_the_log_command_shows_who_when_why_before_and_after(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """changes log prints each change; --json prints one object per line."""
    service(config).add_override(JDOE, practice="maple-grove", start=at(6), until=at(20),
                                 reason="snow day")  # fmt: skip
    assert main(["changes", "log", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "jdoe via cli  override.add o-" in out
    assert ": snow day" in out
    assert "before: nothing" in out
    assert "after:  status closed, from 2027-01-26T06:00:00-06:00, until 2027-01-26T20:00" in out
    assert main(["changes", "log", "--config", str(config), "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["took_effect"] is True


def test_an_interrupted_change_is_marked_in_the_log_and_never_applied(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crash between the audit entry and the rename: the file is unchanged, the log says so."""
    import coverage_engine.changes.service as service_module

    def crash(prepared: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(service_module, "commit", crash)
    with pytest.raises(ChangeRefused, match="could not write the change: No space left"):
        service(config).add_override(JDOE, practice="maple-grove", start=at(6), until=at(7),
                                     reason="snow")  # fmt: skip
    assert not overlay_path(config).exists()
    assert not list(config.parent.glob(".*.tmp"))
    assert main(["changes", "log", "--config", str(config)]) == 0
    assert "!! interrupted: never took effect" in capsys.readouterr().out


def _add_one(config: str, index: int) -> None:
    """One admin's process: add an override (for the concurrency test)."""
    svc = ChangeService(Path(config), now=lambda: NOW)
    svc.add_override(Actor(f"admin{index}"), practice="maple-grove",
                     start=at(6) + timedelta(days=index), until=at(7) + timedelta(days=index),
                     reason=f"change {index}")  # fmt: skip


def test_changes_made_at_the_same_time_are_all_kept(config: Path) -> None:
    """Eight processes add at once: eight overrides, eight audit entries, revision 8."""
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_add_one, args=(str(config), i)) for i in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert [w.exitcode for w in workers] == [0] * 8
    svc = service(config)
    assert len(svc.entries("override")) == 8
    assert sorted(e.seq for e in svc.log()) == list(range(1, 9))
    assert svc.applied_revision() == 8


def test_files_beside_the_yaml_get_its_permissions(config: Path) -> None:
    """A YAML readable by its owner only: the changes file and the audit log are too."""
    config.chmod(0o600)
    service(config).add_override(JDOE, practice="maple-grove", start=at(6), until=at(7),
                                 reason="snow")  # fmt: skip
    assert overlay_path(config).stat().st_mode & 0o777 == 0o600
    assert audit_path(config).stat().st_mode & 0o777 == 0o600


# ---------------------------------------------------------------- the command line


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_override_add_list_end_from_the_command_line(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The admin's flow: add with relative times, see it in list and explain, end it."""
    monkeypatch.setenv("USER", "frontdesk")
    monkeypatch.delenv("SUDO_USER", raising=False)
    code, out, _ = cli(capsys, "override", "add", "--config", str(config), "--practice",
                       "maple-grove", "--closed", "--until", "+2h", "--reason", "power cut",
                       "--wait", "0")  # fmt: skip
    assert code == 0
    assert out.startswith("override added: o-")
    assert "maple-grove closed from" in out
    assert "change 1 by" in out
    ident = out.split()[2]
    code, out, _ = cli(capsys, "override", "list", "--config", str(config))
    assert code == 0
    assert out.startswith(f"{ident}  maple-grove closed from")
    assert "[running]" in out
    code, out, _ = cli(capsys, "explain", str(config), "--did", MAPLE_DID)
    assert "Status:   closed - override: power cut" in out
    code, out, _ = cli(capsys, "override", "end", ident, "--config", str(config), "--reason",
                       "power back", "--wait", "0")  # fmt: skip
    assert code == 0
    assert out.startswith(f"override ended: {ident}")
    code, out, _ = cli(capsys, "override", "list", "--config", str(config))
    assert out.strip() == "no overrides running or coming (--all shows past ones)"


def test_bad_times_and_refusals_have_exit_codes_and_one_line_reasons(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unreadable time: usage (2). Unknown doctor: refused (1). Nothing written either way."""
    before = snapshot(config.parent)
    code, _, err = cli(capsys, "override", "add", "--config", str(config), "--practice",
                       "maple-grove", "--open", "--until", "half past five",
                       "--reason", "x")  # fmt: skip
    assert code == 2
    assert err.strip().startswith('coverage-engine: "half past five" is not a time')
    code, _, err = cli(capsys, "swap", "add", "--config", str(config), "--practice",
                       "maple-grove", "--doctor", "house", "--until", "+1d",
                       "--reason", "x")  # fmt: skip
    assert code == 1
    assert err.strip() == (
        'coverage-engine: no doctor "house" in maple-grove (doctors: nguyen, okafor, patel)'
    )
    code, _, err = cli(capsys, "override", "add", "--config", str(config), "--practice",
                       "maple-grove", "--open", "--until", "9999-12-31 00:00",
                       "--reason", "x")  # fmt: skip
    assert code == 2
    assert "out of range" in err
    assert snapshot(config.parent) == before


def test_the_command_waits_for_a_running_engine_to_confirm(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a status file naming this process and the new content: confirmed at once."""
    from coverage_engine.ari import AriSettings
    from coverage_engine.bootstrap import EngineParts, load_holder

    parts = EngineParts(config, AriSettings("http://127.0.0.1:1/ari", "u", "p", "app"))
    holder = load_holder(parts)
    code, out, _ = cli(capsys, "override", "add", "--config", str(config), "--practice",
                       "maple-grove", "--closed", "--until", "+1h", "--reason", "snow",
                       "--wait", "0.2")  # fmt: skip
    assert code == 0
    assert "the running engine has not confirmed it yet" in out  # nobody reloaded
    assert holder.changed_on_disk()
    assert holder.reload(why="test")
    code, out, _ = cli(capsys, "swap", "add", "--config", str(config), "--practice",
                       "maple-grove", "--doctor", "patel", "--until", "+1d", "--reason", "x",
                       "--wait", "0.2")  # fmt: skip
    assert "not confirmed" in out
    holder.reload(why="test")
    status = json.loads((config.parent / "coverage.loaded.json").read_text())
    assert status["pid"] == os.getpid()
    assert status["files"]["coverage.changes.yaml"] is not None


def test_a_broken_changes_file_never_replaces_the_running_config(config: Path) -> None:
    """The engine's holder keeps its config, says why in the status file, and takes the fix."""
    from coverage_engine.ari import AriSettings
    from coverage_engine.bootstrap import EngineParts, load_holder

    holder = load_holder(EngineParts(config, AriSettings("http://127.0.0.1:1/ari", "u", "p")))
    running = holder.current
    changes = overlay_path(config)
    changes.write_text("version: 1\noverrides:\n  - {practice: nowhere}\n", encoding="utf-8")
    assert holder.changed_on_disk()
    assert not holder.reload(why="file changed")
    assert holder.current is running
    status = json.loads((config.parent / "coverage.loaded.json").read_text(encoding="utf-8"))
    assert status["rejected"]["files"]["coverage.changes.yaml"] is not None
    assert any("overrides[0]" in e for e in status["rejected"]["errors"])
    assert not holder.changed_on_disk()  # rejected once, not again every poll
    changes.unlink()
    service(config).add_override(JDOE, practice="maple-grove", start=at(6), until=at(20),
                                 reason="snow day")  # fmt: skip
    assert holder.changed_on_disk()
    assert holder.reload(why="file changed")
    assert decide(holder.current, at(10), MAPLE_DID).reason == "override: snow day"
