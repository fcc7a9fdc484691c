"""Asterisk's database (AstDB), read and written by the dialplan on the engine's behalf.

Why not straight over ARI: Asterisk blocks the `DB()` function (read and
write) for requests that come from outside the PBX (ARI, AMI) unless the
whole PBX runs with `live_dangerously`, which we will not ask for; and
AMI's DBPut needs the `system` privilege, which can also restart the PBX.
The dialplan itself may use AstDB freely. So a batch of operations goes
to `coverage-astdb` (dialplan/coverage-engine.conf) as the variables of a
Local channel the engine originates; the dialplan applies them in order,
puts what reads return into dialplan globals (the engine's mailbox, a fixed
set of names per engine, so they never pile up), and writes the batch's
token into the mailbox's `DONE` global last. The engine waits for that token:
once seen, every write of the batch is in AstDB (Asterisk commits AstDB
writes to its SQLite file within a second).

Keys and values come from validated configuration and Asterisk ids only;
`AstDb` refuses anything else rather than let it reach the dialplan.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from coverage_engine import wire
from coverage_engine.ari.errors import AriError

#: The dialplan context that does the work, and how it is reached.
CONTEXT = wire.ASTDB_CONTEXT
ENDPOINT = f"Local/s@{CONTEXT}/n"
END_EXTENSION = "end"

OP, KEY, VALUE, OUT, TOKEN = (
    wire.ASTDB_OP,
    wire.ASTDB_KEY,
    wire.ASTDB_VALUE,
    wire.ASTDB_OUT,
    wire.ASTDB_TOKEN,
)

#: Most operations in one batch (the dialplan walks them one by one).
MAX_BATCH = 200

_KEY = re.compile(r"[A-Za-z0-9_.+-]+(/[A-Za-z0-9_.+-]+)*")
_VALUE = re.compile(r"[A-Za-z0-9_.+@/:, -]*")


class AstDbError(Exception):
    """A batch did not complete (Asterisk unreachable, the dialplan context missing, too slow)."""


@dataclass(frozen=True, slots=True)
class Put:
    """Write `value` at `key` ("family/sub/key")."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class DeleteTree:
    """Delete `family` and everything under it."""

    family: str


@dataclass(frozen=True, slots=True)
class Get:
    """Read the value at `key` ("" when missing)."""

    key: str


@dataclass(frozen=True, slots=True)
class Keys:
    """The names directly under `family` (not their paths)."""

    family: str


Op = Put | DeleteTree | Get | Keys


@runtime_checkable
class DialplanPort(Protocol):
    """What `AstDb` needs from the ARI client."""

    async def get_global(self, name: str) -> str: ...

    async def set_global(self, name: str, value: str) -> None: ...

    async def run_dialplan(
        self, endpoint: str, *, context: str, extension: str, variables: Mapping[str, str]
    ) -> None: ...


def mailbox(owner: str) -> str:
    """The global-variable prefix of `owner`'s mailbox (an ARI application name)."""
    return f"COVERAGE_ASTDB_{hashlib.sha256(owner.encode()).hexdigest()[:8].upper()}_"


def batch_variables(ops: Sequence[Op], *, out: str, token: str) -> dict[str, str]:
    """The Local channel's variables for `ops` (checked: only safe keys and values)."""
    if not ops:
        raise ValueError("an AstDB batch needs at least one operation")
    if len(ops) > MAX_BATCH:
        raise ValueError(f"an AstDB batch holds at most {MAX_BATCH} operations")
    variables = {OUT: out, TOKEN: token}
    for n, op in enumerate(ops, start=1):
        match op:
            case Put(key, value):
                kind, path = "put", key
                if not _VALUE.fullmatch(value) or len(value) > 400:
                    raise ValueError(f"the AstDB value for {key} is not one the dialplan may see")
                variables[f"{VALUE}{n}"] = value
            case DeleteTree(family):
                kind, path = "deltree", family
            case Get(key):
                kind, path = "get", key
            case Keys(family):
                kind, path = "keys", family
        if not _KEY.fullmatch(path) or ".." in path:
            raise ValueError(f"{path!r} is not an AstDB key this engine writes")
        variables[f"{OP}{n}"] = kind
        variables[f"{KEY}{n}"] = path
    return variables


class AstDb:
    """Batches of AstDB operations, carried out by the dialplan (see the module docstring)."""

    def __init__(self, port: DialplanPort, *, owner: str, timeout: float = 5.0) -> None:
        self._port = port
        self._out = mailbox(owner)
        self._timeout = timeout
        self._lock = asyncio.Lock()  # one batch at a time: the mailbox is shared
        self._tokens = itertools.count(int(time.time() * 1000))

    async def run(self, ops: Sequence[Op]) -> list[str | None]:
        """Carry out `ops` in order; the results of `Get` and `Keys` (None for writes).

        Raises `AstDbError` when the batch did not complete in time: none,
        some or all of its writes may have happened (each is idempotent, so
        the caller simply tries again later).
        """
        results: list[str | None] = []
        for start in range(0, len(ops), MAX_BATCH):
            results += await self._batch(ops[start : start + MAX_BATCH])
        return results

    async def _batch(self, ops: Sequence[Op]) -> list[str | None]:
        async with self._lock:
            token = str(next(self._tokens))
            variables = batch_variables(ops, out=self._out, token=token)
            try:
                await self._port.run_dialplan(
                    ENDPOINT, context=CONTEXT, extension=END_EXTENSION, variables=variables
                )
                await self._wait_done(token)
                results = [
                    await self._port.get_global(f"{self._out}{n}")
                    if isinstance(op, Get | Keys)
                    else None
                    for n, op in enumerate(ops, start=1)
                ]
                # Reads may return callers' numbers: do not leave them in globals.
                for n, op in enumerate(ops, start=1):
                    if isinstance(op, Get | Keys):
                        await self._port.set_global(f"{self._out}{n}", "")
            except AriError as exc:
                raise AstDbError(f"AstDB batch failed: {exc}") from exc
            return results

    async def _wait_done(self, token: str) -> None:
        deadline = time.monotonic() + self._timeout
        delay = 0.005
        while await self._port.get_global(f"{self._out}DONE") != token:
            if time.monotonic() >= deadline:
                raise AstDbError(
                    f"the dialplan did not finish an AstDB batch within {self._timeout:g} s "
                    f"(is the {CONTEXT} context of dialplan/coverage-engine.conf installed?)"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
