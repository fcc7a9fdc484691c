"""AstDB through the dialplan: batches as Local-channel variables, results through a mailbox."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coverage_engine import wire
from coverage_engine.ari import AriUnavailable
from coverage_engine.ari.astdb import (
    CONTEXT,
    END_EXTENSION,
    ENDPOINT,
    AstDb,
    AstDbError,
    DeleteTree,
    Get,
    Keys,
    Put,
    batch_variables,
    mailbox,
)
from coverage_engine.safetynet.publish import SafetyNetPublisher
from coverage_engine.safetynet.table import CURRENT_KEY, TABLE_FAMILY
from tests.unit.reference import reference_config


class FakeDialplan:
    """Plays `coverage-astdb` against a dict: what the real context does, in Python."""

    def __init__(self, *, finishes: bool = True, fails: bool = False) -> None:
        self.db: dict[str, str] = {}
        self.globals: dict[str, str] = {}
        self.batches: list[dict[str, str]] = []
        self._finishes = finishes
        self._fails = fails

    async def get_global(self, name: str) -> str:
        return self.globals.get(name, "")

    async def set_global(self, name: str, value: str) -> None:
        self.globals[name] = value

    async def run_dialplan(
        self, endpoint: str, *, context: str, extension: str, variables: Mapping[str, str]
    ) -> None:
        if self._fails:
            raise AriUnavailable("POST /channels: connection refused")
        assert context == CONTEXT
        self.batches.append(dict(variables))
        out, n = variables["COVERAGE_DB_OUT"], 1
        while f"COVERAGE_DB_OP{n}" in variables:
            op, key = variables[f"COVERAGE_DB_OP{n}"], variables[f"COVERAGE_DB_KEY{n}"]
            if op == "put":
                self.db[key] = variables[f"COVERAGE_DB_VALUE{n}"]
            elif op == "deltree":
                self.db = {k: v for k, v in self.db.items() if not k.startswith(key + "/")}
            elif op == "get":
                self.globals[f"{out}{n}"] = self.db.get(key, "")
            elif op == "keys":
                under = [k[len(key) + 1 :] for k in self.db if k.startswith(key + "/")]
                names = {k.split("/")[0] for k in under}
                self.globals[f"{out}{n}"] = ",".join(sorted(names))
            n += 1
        if self._finishes:
            self.globals[f"{out}DONE"] = variables["COVERAGE_DB_TOKEN"]


def test_a_batch_is_numbered_variables_for_the_dialplan() -> None:
    """Operation n's kind, key and value are COVERAGE_DB_OP<n>, _KEY<n>, _VALUE<n>."""
    variables = batch_variables(
        [Put("coverage/current", "abc"), DeleteTree("coverage/table/old"), Keys("coverage/net")],
        out="BOX_",
        token="7",
    )
    assert variables == {
        "COVERAGE_DB_OUT": "BOX_",
        "COVERAGE_DB_TOKEN": "7",
        "COVERAGE_DB_OP1": "put",
        "COVERAGE_DB_KEY1": "coverage/current",
        "COVERAGE_DB_VALUE1": "abc",
        "COVERAGE_DB_OP2": "deltree",
        "COVERAGE_DB_KEY2": "coverage/table/old",
        "COVERAGE_DB_OP3": "keys",
        "COVERAGE_DB_KEY3": "coverage/net",
    }


@pytest.mark.parametrize(
    "op",
    [
        Put("coverage/x)=1", "v"),  # would close DB( early
        Put("coverage/../etc", "v"),
        Put("coverage/x", "PJSIP/a&PJSIP/b"),  # a second leg
        Put("coverage/x", "${SHELL(id)}"),
        Get("coverage/x,y"),
        Put("coverage/x", "v" * 401),
    ],
)
def test_keys_and_values_the_dialplan_must_not_see_are_refused(op: Put | Get) -> None:
    """Only safe characters reach `Set(DB(...)=...)`: nothing can add an argument or a function."""
    with pytest.raises(ValueError, match="AstDB"):
        batch_variables([op], out="BOX_", token="1")


def test_mailboxes_differ_per_engine_and_are_plain_variable_names() -> None:
    """Two applications never share a mailbox; the name has no '-' for the dialplan to trip on."""
    a, b = mailbox("coverage-engine"), mailbox("coverage-engine-b")
    assert a != b
    assert a.replace("_", "").isalnum()


async def test_reads_return_in_order_and_the_mailbox_is_emptied_after() -> None:
    """Get and Keys come back where they were asked; the globals holding them are cleared."""
    dialplan = FakeDialplan()
    dialplan.db = {"coverage/net/1.1/caller": "+15550001", "coverage/net/2.2/1": "x"}
    astdb = AstDb(dialplan, owner="coverage-engine")

    results = await astdb.run(
        [Put("coverage/a", "1"), Keys("coverage/net"), Get("coverage/net/1.1/caller")]
    )

    assert results == [None, "1.1,2.2", "+15550001"]
    assert dialplan.db["coverage/a"] == "1"
    box = mailbox("coverage-engine")
    assert dialplan.globals[f"{box}2"] == dialplan.globals[f"{box}3"] == ""


async def test_a_batch_the_dialplan_never_finishes_is_an_error_that_says_what_to_check() -> None:
    """No DONE token in time (the context is missing on this PBX): AstDbError, not a hang."""
    astdb = AstDb(FakeDialplan(finishes=False), owner="e", timeout=0.05)
    with pytest.raises(AstDbError, match="coverage-astdb context"):
        await astdb.run([Put("coverage/a", "1")])


async def test_an_unreachable_pbx_is_an_astdb_error() -> None:
    """The ARI failure is kept in the message."""
    astdb = AstDb(FakeDialplan(fails=True), owner="e")
    with pytest.raises(AstDbError, match="connection refused"):
        await astdb.run([Put("coverage/a", "1")])


async def test_long_batches_are_split_and_each_waits_for_its_own_token() -> None:
    """250 writes make two batches, both applied."""
    dialplan = FakeDialplan()
    astdb = AstDb(dialplan, owner="e")
    await astdb.run([Put(f"coverage/k/{n}", str(n)) for n in range(250)])
    assert len(dialplan.batches) == 2
    assert len(dialplan.db) == 250
    tokens = [b["COVERAGE_DB_TOKEN"] for b in dialplan.batches]
    assert tokens[0] != tokens[1]


NIGHT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # Tuesday 03:00 in Chicago


def _publisher(dialplan: FakeDialplan, now: list[datetime]) -> SafetyNetPublisher:
    return SafetyNetPublisher(
        AstDb(dialplan, owner="e"),
        reference_config,
        now=lambda: now[0],
        wall=lambda: now[0],
    )


async def test_publishing_writes_the_table_then_switches_to_it_and_drops_stale_ones() -> None:
    """`current` is written last; an older table goes, another engine's current one stays."""
    dialplan = FakeDialplan()
    dialplan.db = {
        f"{TABLE_FAMILY}/old/did/+1": "x",
        f"{TABLE_FAMILY}/other/did/+1": "y",
        CURRENT_KEY: "other",
    }
    now = [NIGHT]
    publisher = _publisher(dialplan, now)

    version = await publisher.publish()

    first = dialplan.batches[0]
    ops = [int(k.removeprefix("COVERAGE_DB_OP")) for k in first if k.startswith("COVERAGE_DB_OP")]
    last = max(ops)
    assert first[f"COVERAGE_DB_KEY{last}"] == CURRENT_KEY
    assert dialplan.db[CURRENT_KEY] == version
    assert dialplan.db[f"{TABLE_FAMILY}/{version}/practice/maple-grove/1/primary"] == "PJSIP/nguyen"
    tables = {k.split("/")[2] for k in dialplan.db if k.startswith(TABLE_FAMILY)}
    assert tables == {version}


async def test_a_handoff_or_a_reload_makes_the_table_due_again_and_nothing_else_does() -> None:
    """After publishing, an hour later nothing is due; past Monday 08:00 the table moves on."""
    dialplan = FakeDialplan()
    now = [NIGHT]
    publisher = _publisher(dialplan, now)
    await publisher.publish()
    config = reference_config()

    now[0] = NIGHT + timedelta(hours=1)
    assert not publisher._due(config, now[0])
    now[0] = datetime(2026, 12, 7, 14, 1, tzinfo=UTC)  # Monday 08:01 in Chicago
    assert publisher._due(config, now[0])
    publisher.nudge()  # the ARI link came up again
    assert publisher._due(config, NIGHT + timedelta(hours=1))


async def test_the_publisher_keeps_trying_when_the_pbx_does_not_answer() -> None:
    """A failed publish is logged and retried; the loop itself never dies of it."""
    dialplan = FakeDialplan(fails=True)
    publisher = _publisher(dialplan, [NIGHT])
    task = asyncio.create_task(publisher.run())
    await asyncio.sleep(0.05)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert publisher.version is None


def test_the_dialplan_context_reads_every_variable_a_batch_sets() -> None:
    """`coverage-astdb` in the engine's dialplan walks the variables `batch_variables` sets."""
    text = (Path(__file__).parents[2] / "dialplan" / "coverage-engine.conf").read_text()
    context = text.split(f"[{CONTEXT}]", 1)[1].split("\n[", 1)[0]
    for name in (wire.ASTDB_OP, wire.ASTDB_KEY, wire.ASTDB_VALUE):
        assert f"${{{name}${{COVERAGE_I}}}}" in context
    assert f"GLOBAL(${{{wire.ASTDB_OUT}}}DONE)=${{{wire.ASTDB_TOKEN}}}" in context
    assert ENDPOINT.startswith(f"Local/s@{CONTEXT}/")
    assert f"exten => {END_EXTENSION},1,Hangup()" in context
