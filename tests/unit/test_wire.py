"""The wire contract: the dialplan files and `coverage_engine.wire` say the same thing."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from coverage_engine import wire

ROOT = Path(__file__).resolve().parents[2]
DIALPLANS = sorted((ROOT / "dialplan").glob("*.conf"))
ENGINE_DIALPLAN = ROOT / "dialplan" / "coverage-engine.conf"
GLOBALS_FILE = ROOT / "config" / "asterisk" / "extensions.conf"
ARI_CONF = ROOT / "config" / "asterisk" / "ari.conf"

_READ = re.compile(r"\$\{(COVERAGE_[A-Z0-9_]*)")
# `__NAME`: a variable the channels Dial creates inherit.
_SET = re.compile(r"(?:Set|Read)\((?:__)?(COVERAGE_[A-Z0-9_]+)[=,]")
_STASIS = re.compile(r"\bStasis\(([^)]*)\)")
# StasisBroadcast(timeout,filter,a:b:c): the third argument is the winner's Stasis arguments.
_BROADCAST = re.compile(r"\bStasisBroadcast\((.*)\)\s*$", re.M)


def broadcast_entries(text: str) -> list[tuple[str, str]]:
    """Each StasisBroadcast() line's app filter and entry."""
    found = []
    for arguments in _BROADCAST.findall(text):
        # The timeout may be an expression with commas inside ${...}: split from the right.
        head, args = arguments.rsplit(",", 1)
        app_filter = head.rsplit(",", 1)[1]
        found.append((app_filter, args.split(":")[0]))
    return found


def code(path: Path) -> str:
    """The dialplan without its comments (`;` to the end of the line)."""
    return "\n".join(line.split(";", 1)[0] for line in path.read_text().splitlines())


@cache
def everything() -> str:
    return "\n".join(code(path) for path in DIALPLANS)


def read_names(text: str) -> set[str]:
    return set(_READ.findall(text))


def set_names(text: str) -> set[str]:
    return set(_SET.findall(text))


def test_there_are_dialplans_to_check() -> None:
    """The check reads the dialplan files that ship (a moved directory must not pass silently)."""
    assert ENGINE_DIALPLAN in DIALPLANS
    assert len(DIALPLANS) >= 3


def test_every_broadcast_reaches_the_engines_with_a_known_entry() -> None:
    """Each StasisBroadcast() offers the call to the engines' applications, with an entry the
    engine parses; no plain Stasis() names one application alone any more."""
    entries = broadcast_entries(everything())
    assert entries, "the engine's dialplan hands calls to the engines"
    assert not _STASIS.findall(everything())
    for app_filter, entry in entries:
        assert app_filter in (f"^{wire.APP_PREFIX}", f"^${{{wire.ENGINE}}}$")
        assert entry in {e.value for e in wire.Entry}
        assert entry != wire.Entry.LEG  # only the engine creates legs


def test_the_dialplan_uses_the_entries_the_engine_expects_from_it() -> None:
    """New callers enter with `inbound`, queued callers come back with `queue-result`."""
    entries = {entry for _, entry in broadcast_entries(code(ENGINE_DIALPLAN))}
    assert entries == {wire.Entry.INBOUND, wire.Entry.QUEUE_RESULT}


@pytest.mark.parametrize("context", [wire.QUEUE_CONTEXT, wire.FALLBACK_CONTEXT])
def test_the_contexts_the_engine_continues_callers_into_exist(context: str) -> None:
    """The queue and safety-net contexts the engine continues callers into are defined."""
    assert f"[{context}]" in code(ENGINE_DIALPLAN)


def test_every_variable_the_dialplan_reads_is_set_by_someone_known() -> None:
    """A variable the dialplan reads but never sets comes from the engine, FastAGI or [globals]."""
    text = everything()
    known = {
        *wire.ENGINE_SETS,
        *wire.AGI_SETS,
        *wire.DIALPLAN_GLOBALS,
        *wire.ASTDB_SETS,
        wire.AGI_STEP_PREFIX,
    }
    unknown = read_names(text) - set_names(text) - known
    assert unknown == set()


def test_every_variable_the_engine_sets_for_the_dialplan_is_read_there() -> None:
    """The engine sets nothing for the dialplan that the dialplan does not read."""
    assert set(wire.DIALPLAN_READS) <= read_names(code(ENGINE_DIALPLAN))


def test_the_fastagi_answer_is_what_the_example_dialplan_reads() -> None:
    """The FreePBX example reads its steps and status from the FastAGI answer's names."""
    read = read_names(code(ROOT / "dialplan" / "freepbx-example.conf"))
    assert {wire.AGI_STATUS, wire.AGI_STEPS, wire.AGI_STEP_PREFIX} <= read


def test_dialplan_globals_are_declared_read_and_never_set_by_the_engine() -> None:
    """Each admin global is in the reference [globals], read by a dialplan, and not the engine's."""
    declared = set(re.findall(r"^(COVERAGE_[A-Z0-9_]+)\s*=", GLOBALS_FILE.read_text(), re.M))
    assert set(wire.DIALPLAN_GLOBALS) == declared
    assert set(wire.DIALPLAN_GLOBALS) <= read_names(everything())
    assert not set(wire.DIALPLAN_GLOBALS) & set(wire.ENGINE_SETS)
    assert not set(wire.DIALPLAN_GLOBALS) & set_names(everything())


def test_the_reference_ari_conf_puts_the_call_memory_in_every_snapshot() -> None:
    """ari.conf's channelvars are exactly what an engine reads back to take a call on."""
    (line,) = re.findall(r"^channelvars\s*=\s*(.*)$", code(ARI_CONF), re.M)
    assert tuple(v.strip() for v in line.split(",")) == wire.CALL_MEMORY


def test_the_dialplan_never_writes_the_call_memory_an_engine_resumes_from() -> None:
    """Only the dialed number is set before Stasis; what was tried is the engine's to write."""
    assert set_names(everything()) & set(wire.CALL_MEMORY) == {wire.DID}


@pytest.mark.parametrize(
    ("args", "entry"),
    [
        (("inbound", "+13125550100"), wire.Inbound("+13125550100")),
        (("inbound",), wire.Inbound("")),
        (("leg", "1733000000.12"), wire.LegEntry("1733000000.12")),
        (("queue-result", "TIMEOUT"), wire.QueueReturn("TIMEOUT")),
        (("queue-result", ""), wire.QueueReturn("")),
        (("transfer", "x"), wire.UnknownEntry(("transfer", "x"))),
        ((), wire.UnknownEntry(())),
    ],
)
def test_stasis_arguments_parse_into_entries(args: tuple[str, ...], entry: object) -> None:
    """Each shape of Stasis arguments becomes one typed entry; anything else is unknown."""
    assert wire.parse_entry(args) == entry


def test_a_snapshot_tells_the_entry_only_for_our_application() -> None:
    """A channel in another application, or outside Stasis, has no entry of ours."""
    assert wire.snapshot_entry("coverage-engine", "Stasis", "coverage-engine,leg,c1") == (
        wire.LegEntry("c1")
    )
    assert wire.snapshot_entry("coverage-engine", "Stasis", "other-app,inbound,1") is None
    assert wire.snapshot_entry("coverage-engine", "Queue", "answering") is None


@pytest.mark.parametrize(
    ("ident", "call", "kind", "resumed"),
    [
        ("1733000000.12-leg1", "1733000000.12", wire.Created.LEG, False),
        ("1733000000.12-r0a1b2c-leg3", "1733000000.12", wire.Created.LEG, True),
        ("1733000000.12-pb2", "1733000000.12", wire.Created.PLAYBACK, False),
        ("1733000000.12-bridge", "1733000000.12", wire.Created.BRIDGE, False),
        ("1733000000.12-r0a1b2c-bridge", "1733000000.12", wire.Created.BRIDGE, True),
    ],
)
def test_created_ids_round_trip(
    ident: str, call: str, kind: wire.Created, resumed: bool
) -> None:
    """The ids a call gives what it creates name the call and the kind, restarts included."""
    parsed = wire.parse_created(ident)
    assert parsed == wire.CreatedId(call, kind, resumed)
    assert wire.call_of(ident) == call


def test_ids_are_formatted_the_way_they_are_parsed() -> None:
    """Formatting and parsing agree, with and without the restart prefix."""
    prefix = wire.resumed_prefix("c1", "ab12cd")
    assert wire.is_leg(wire.leg_id("c1", 1))
    assert wire.is_leg(wire.leg_id(prefix, 2))
    assert not wire.is_leg(wire.playback_id("c1", 1))
    assert wire.call_of(wire.bridge_id(prefix)) == "c1"


@pytest.mark.parametrize("ident", ["1733000000.12", "PJSIP/patel-00000001", "c1"])
def test_asterisk_ids_are_not_taken_for_ours(ident: str) -> None:
    """A caller's channel id is its own call; nothing Asterisk names looks created by us."""
    assert wire.parse_created(ident) is None
    assert wire.call_of(ident) == ident
