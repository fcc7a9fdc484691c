"""The safety net's on-call table: who the dialplan rings with no engine, a week ahead."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coverage_engine.safetynet.table import (
    CURRENT_KEY,
    GENERIC_PROMPT,
    TABLE_FAMILY,
    Span,
    astdb_entries,
    safety_net_table,
)
from coverage_engine.schedule import OnCallSpan, oncall_spans
from tests.unit.reference import reference_config

CHICAGO = ZoneInfo("America/Chicago")
DIALPLAN = Path(__file__).parents[2] / "dialplan" / "coverage-engine.conf"


def at(text: str) -> datetime:
    """A Chicago wall-clock time ("2026-12-06 12:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=CHICAGO)


def who(spans: list[OnCallSpan], zone: ZoneInfo = CHICAGO) -> list[tuple[str, str, str | None]]:
    """Each span as (local start, primary, backup)."""
    return [
        (
            s.start.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            s.assignment.primary,
            s.assignment.backup,
        )
        for s in spans
    ]


def people(span: Span) -> tuple[str | None, int, str | None, int]:
    """A table span as (primary, ring seconds, backup, ring seconds)."""
    primary, backup = span.primary, span.backup
    return (
        primary.doctor_id if primary else None,
        primary.ring_seconds if primary else 0,
        backup.doctor_id if backup else None,
        backup.ring_seconds if backup else 0,
    )


def test_a_span_ends_at_the_monday_handoff_and_the_next_doctor_takes_over() -> None:
    """Sunday noon to Tuesday: Nguyen (backup Okafor) until Monday 08:00, then Okafor (Patel)."""
    roster = reference_config().practices["maple-grove"].oncall
    assert roster is not None

    spans = oncall_spans(roster, CHICAGO, at("2026-12-06 12:00"), at("2026-12-08 12:00"))

    assert who(spans) == [
        ("2026-12-06 12:00", "nguyen", "okafor"),
        ("2026-12-07 08:00", "okafor", "patel"),
    ]
    assert spans[0].until == spans[1].start == at("2026-12-07 08:00")
    assert spans[-1].until == at("2026-12-08 12:00")


def test_a_swap_is_its_own_span_with_the_rotation_on_either_side() -> None:
    """Christmas: Okafor covers from the 24th 12:00 to the 26th 08:00, inside Nguyen's week."""
    roster = reference_config().practices["maple-grove"].oncall
    assert roster is not None

    spans = oncall_spans(roster, CHICAGO, at("2026-12-23 00:00"), at("2026-12-27 00:00"))

    assert who(spans) == [
        ("2026-12-23 00:00", "nguyen", "okafor"),
        ("2026-12-24 12:00", "okafor", "patel"),
        ("2026-12-26 08:00", "nguyen", "okafor"),
    ]


def test_a_handoff_stays_at_8_local_across_the_spring_dst_change() -> None:
    """Monday 2027-03-15 08:00 CDT, the day after clocks went forward: still 08:00 local."""
    roster = reference_config().practices["maple-grove"].oncall
    assert roster is not None

    spans = oncall_spans(roster, CHICAGO, at("2027-03-13 00:00"), at("2027-03-16 00:00"))

    assert [s.start.astimezone(CHICAGO).strftime("%H:%M") for s in spans[1:]] == ["08:00"]
    assert spans[1].start == datetime(2027, 3, 15, 13, 0, tzinfo=UTC)


def test_spans_need_an_end_after_their_start() -> None:
    """An empty stretch of time is a programming error, said so."""
    roster = reference_config().practices["maple-grove"].oncall
    assert roster is not None
    with pytest.raises(ValueError, match="until after start"):
        oncall_spans(roster, CHICAGO, at("2026-12-08 00:00"), at("2026-12-08 00:00"))


def test_the_table_maps_every_number_and_rings_doctors_as_long_as_the_closed_chain() -> None:
    """Maple Grove's doctors ring 25 s, Lakeside's 30 s; Lakeside's fixed roster is one span."""
    table = safety_net_table(
        reference_config(), at("2026-12-01 03:00"), prompt_for=lambda p: f"prompt-{p}"
    )

    assert table.dids == {
        "+13125550100": "maple-grove",
        "+13125550101": "maple-grove",
        "+16085550142": "lakeside",
    }
    lakeside, maple = table.practices
    assert lakeside.prompt == "prompt-lakeside"
    assert [people(s) for s in lakeside.spans] == [("ruiz", 30, "chen", 30)]
    first = maple.spans[0]
    assert people(first) == ("nguyen", 25, "okafor", 25)
    assert first.primary is not None
    assert first.primary.dial == "PJSIP/nguyen"
    assert first.until == at("2026-12-07 08:00")
    assert table.span_at("maple-grove", at("2026-12-07 09:00")) == maple.spans[1]


def test_the_astdb_entries_sit_under_a_version_with_span_ends_in_pbx_seconds() -> None:
    """Keys under coverage/table/<version>; the PBX clock may run apart from the engine's."""
    table = safety_net_table(reference_config(), at("2026-12-01 03:00"))
    offset = timedelta(days=-30)  # the engine's clock is 30 days behind the PBX's

    version, entries = astdb_entries(
        table, epoch=lambda instant: (instant - offset).timestamp() + 0.2
    )

    base = f"{TABLE_FAMILY}/{version}"
    assert entries[f"{base}/did/+13125550100"] == "maple-grove"
    assert entries[f"{base}/practice/maple-grove/1/primary"] == "PJSIP/nguyen"
    assert entries[f"{base}/practice/maple-grove/1/backup_id"] == "okafor"
    handoff = (at("2026-12-07 08:00") - offset).timestamp()
    # Rounded up: a span never ends before its time.
    assert entries[f"{base}/practice/maple-grove/1/until"] == str(int(handoff) + 1)
    assert int(entries[f"{base}/practice/maple-grove/spans"]) == len(table.practices[1].spans)
    assert all(key.startswith(f"{base}/") for key in entries)


def test_equal_tables_get_equal_versions_and_a_change_of_doctor_a_new_one() -> None:
    """Two engines with the same configuration write the same version; a swap changes it."""
    config = reference_config()
    now = at("2026-12-01 03:00")

    def version_at(instant: datetime) -> str:
        return astdb_entries(
            safety_net_table(config, instant, horizon=timedelta(days=2)),
            epoch=lambda i: i.timestamp(),
        )[0]

    assert version_at(now) == version_at(now)
    assert version_at(now) != version_at(at("2026-12-08 03:00"))


def _dialplan_reads() -> tuple[set[str], set[str]]:
    """The table keys the dialplan reads: practice-level ones and per-span ones."""
    text = DIALPLAN.read_text(encoding="utf-8")
    practice = set(re.findall(r"DB\(\$\{COVERAGE_NET_T\}/([a-z_]+)\)", text))
    per_span = set(re.findall(r"DB\(\$\{COVERAGE_NET_T\}/\$\{COVERAGE_NET_S\}/([a-z_]+)\)", text))
    return practice, per_span


def test_the_dialplan_reads_exactly_the_keys_the_engine_writes() -> None:
    """The wire contract: every key the safety net reads is written, and the other way round."""
    table = safety_net_table(reference_config(), at("2026-12-01 03:00"))
    version, entries = astdb_entries(table, epoch=lambda i: i.timestamp())
    prefix = f"{TABLE_FAMILY}/{version}/practice/maple-grove/"
    written = {k.removeprefix(prefix) for k in entries if k.startswith(prefix)}

    practice, per_span = _dialplan_reads()

    assert {k for k in written if "/" not in k} == practice
    assert {k.split("/", 1)[1] for k in written if k.startswith("1/")} == per_span
    text = DIALPLAN.read_text(encoding="utf-8")
    assert f"DB({CURRENT_KEY})" in text
    assert f"DB({TABLE_FAMILY}/${{COVERAGE_NET_V}}/did/${{COVERAGE_DID}})" in text
    assert GENERIC_PROMPT in text


def test_every_number_the_safety_net_rings_must_press_1() -> None:
    """No Dial() in coverage-fallback connects a caller without the press-1 subroutine."""
    text = DIALPLAN.read_text(encoding="utf-8")
    fallback = text.split("[coverage-fallback]", 1)[1].split("\n[", 1)[0]
    dials = re.findall(r"Dial\((.*)\)\s*$", fallback, flags=re.MULTILINE)
    assert len(dials) == 3
    assert all("U(coverage-confirm^" in dial for dial in dials)
