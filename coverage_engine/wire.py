"""The wire contract with the dialplan: every name the engine and Asterisk must agree on.

The engine and `dialplan/*.conf` talk through a few strings: the arguments a
channel enters the ARI application with (`Stasis(coverage-engine,inbound,<did>)`),
the ids the engine gives the channels, playbacks and bridges it creates, the
dialplan contexts it hands callers to, and the `COVERAGE_*` channel variables
either side sets for the other. They live here, once; `tests/unit/test_wire.py`
reads the dialplan files and fails when the two sides disagree.

Pure: no I/O, no imports from the rest of the package.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

# -- the application and the dialplan contexts ---------------------------------------------

#: The ARI application name the reference dialplan hands calls to (`--ari-app` may differ:
#: a PBX that renames it edits its dialplan to match).
APP = "coverage-engine"
#: The context an operators step continues the caller into: Queue(), then back into Stasis.
QUEUE_CONTEXT = "coverage-queue"
#: The dialplan's safety net: operator queue, then a fixed on-call number, in a loop.
FALLBACK_CONTEXT = "coverage-fallback"
#: A hang-up handler the call flow pushes on a person's leg as it is bridged with the
#: caller (`release_handler`): when that person hangs up, Asterisk releases the caller
#: itself, whether or not an engine is there to hear it (one that is does it too).
RELEASE_CONTEXT = "coverage-release"
#: The dialplan function a hang-up handler is pushed through (a channel variable write).
HANGUP_HANDLER_PUSH = "CHANNEL(hangup_handler_push)"
#: ... and the one that takes every handler off again (an empty value: none is left).
HANGUP_HANDLER_WIPE = "CHANNEL(hangup_handler_wipe)"


def release_handler(call_id: str, context: str = RELEASE_CONTEXT) -> str:
    """The hang-up handler that releases caller `call_id` (its channel id) as its person leaves."""
    return f"{context},s,1({call_id})"


# -- how a channel enters the application --------------------------------------------------


class Entry(StrEnum):
    """The first Stasis argument: why a channel is entering the application."""

    INBOUND = "inbound"  # Stasis(app,inbound,<did>): a caller dialed a practice
    LEG = "leg"  # appArgs of a leg the engine created: leg,<caller channel id>
    QUEUE_RESULT = "queue-result"  # Stasis(app,queue-result,<QUEUESTATUS>): back from Queue()


@dataclass(frozen=True, slots=True)
class Inbound:
    """A new caller; `did` is the dialed number the dialplan reduced to `+` and digits."""

    did: str


@dataclass(frozen=True, slots=True)
class LegEntry:
    """A leg the engine created for the call whose caller channel is `caller_id`."""

    caller_id: str


@dataclass(frozen=True, slots=True)
class QueueReturn:
    """A caller back from the dialplan's Queue() with app_queue's `QUEUESTATUS`."""

    status: str


@dataclass(frozen=True, slots=True)
class UnknownEntry:
    """Arguments nothing here produces (a hand-edited dialplan): the safety net's case."""

    args: tuple[str, ...]


StasisEntry = Inbound | LegEntry | QueueReturn | UnknownEntry


def parse_entry(args: Sequence[str]) -> StasisEntry:
    """What the Stasis arguments of a channel say (the application name already removed)."""
    head, rest = (args[0], tuple(args[1:])) if args else ("", ())
    value = rest[0] if rest else ""
    if head == Entry.INBOUND:
        return Inbound(value)
    if head == Entry.LEG:
        return LegEntry(value)
    if head == Entry.QUEUE_RESULT:
        return QueueReturn(value)
    return UnknownEntry(tuple(args))


def leg_args(caller_id: str) -> tuple[str, ...]:
    """The appArgs of a leg created for the call of caller channel `caller_id`."""
    return (Entry.LEG.value, caller_id)


#: The dialplan application that offers a channel to every engine (`CallBroadcast`).
BROADCAST = "StasisBroadcast"
#: Engines' application names start with this: the broadcasts' app filter is `^<prefix>`.
APP_PREFIX = APP


def broadcast_args(app_data: str) -> tuple[str, ...]:
    """The Stasis arguments a `StasisBroadcast(timeout,filter,a:b:c)` hands its winner.

    They are colon-separated in the third argument (the winner sees them as
    `StasisStart.args`).
    """
    parts = app_data.split(",", 2)
    return tuple(parts[2].split(":")) if len(parts) == 3 and parts[2] else ()


def snapshot_entry(
    app: str, app_name: str, app_data: str, *, claimed: bool = False
) -> StasisEntry | None:
    """The entry of a channel found in a snapshot (`GET /channels`), None unless in `app`.

    A channel snapshot says which dialplan application runs on it: `Stasis`
    with data `<app>,<args...>` while it is in an ARI application, or
    `StasisBroadcast` with `<timeout>,<filter>,<a:b:c>` when it entered an
    application through a broadcast. The broadcast's data does not say which
    application won it: `claimed` tells whether `app` did (the caller looks
    at the application's channels).
    """
    if app_name.lower() == BROADCAST.lower():
        return parse_entry(broadcast_args(app_data)) if claimed else None
    if app_name.lower() != "stasis":
        return None
    name, *args = app_data.split(",")
    return parse_entry(args) if name == app else None


# -- ids of what a call creates ------------------------------------------------------------

# Everything a call creates is named after its caller's channel id (the call
# id), so an ARI event about it finds its call without a round trip:
#   <call>-leg<n>    an outbound leg          <call>-pb<n>   a playback
#   <call>-bridge    the call's bridge
# A call taken on again after a restart uses the prefix <call>-r<hex> instead,
# so its new ids never collide with what the previous engine left behind.
# Asterisk's own channel ids ("1733000000.12") never take these shapes.
_CREATED = re.compile(
    r"^(?P<call>.+?)(?:-r(?P<token>[0-9a-f]+))?-(?:(?P<kind>leg|pb)(?P<n>\d+)|bridge)$"
)


class Created(StrEnum):
    """The kinds of things a call creates and names."""

    LEG = "leg"
    PLAYBACK = "pb"
    BRIDGE = "bridge"


def leg_id(prefix: str, n: int) -> str:
    """The id of the call's `n`th created leg."""
    return f"{prefix}-{Created.LEG.value}{n}"


def playback_id(prefix: str, n: int) -> str:
    """The id of the call's `n`th playback."""
    return f"{prefix}-{Created.PLAYBACK.value}{n}"


def bridge_id(prefix: str) -> str:
    """The id of the call's bridge (a call has at most one at a time)."""
    return f"{prefix}-{Created.BRIDGE.value}"


def resumed_prefix(call_id: str, token: str) -> str:
    """The id prefix of a call taken on again; `token` is fresh hex (e.g. `secrets.token_hex`)."""
    return f"{call_id}-r{token}"


@dataclass(frozen=True, slots=True)
class CreatedId:
    """A parsed id of something a call created."""

    call_id: str
    kind: Created
    resumed: bool  # created by an engine that took the call on again


def parse_created(ident: str) -> CreatedId | None:
    """What `ident` names, if a call created it; None for Asterisk's own ids."""
    found = _CREATED.match(ident)
    if found is None:
        return None
    kind = Created(found["kind"]) if found["kind"] else Created.BRIDGE
    return CreatedId(found["call"], kind, resumed=found["token"] is not None)


def is_leg(ident: str) -> bool:
    """Whether `ident` is a leg some call created (ours, or a previous engine's)."""
    created = parse_created(ident)
    return created is not None and created.kind is Created.LEG


def call_of(ident: str) -> str:
    """The call id `ident` belongs to: itself for a caller's channel."""
    created = parse_created(ident)
    return created.call_id if created is not None else ident


# -- channel variables ---------------------------------------------------------------------

# On the caller's channel, set by the engine: the call's memory outside the
# process. A restarted (or another) engine reads them back to take the call on.
# The dialed number: coverage-inbound sets it before Stasis, so the engine
# only reads it back (one request fewer per call).
DID = "COVERAGE_DID"
PRACTICE = "COVERAGE_PRACTICE"  # the practice the call was decided for
# The keys of the steps tried so far, the current one last (`callflow.resume`).
TRIED = "COVERAGE_TRIED"
# The ARI application of the engine that holds the call: the queue's broadcast
# offers the caller back to it first (coverage-queue).
ENGINE = "COVERAGE_ENGINE"

# Set by app_queue on the caller (queues.conf `setinterfacevar = yes`) as an
# operator answers: who took a queued caller while no engine was listening
# (the engine that sent them there died, and the survivor was not yet following).
QUEUE_MEMBER = "MEMBERINTERFACE"

#: What an engine reads back from a caller's channel to take the call on.
CALL_MEMORY: tuple[str, ...] = (DID, PRACTICE, TRIED, ENGINE, QUEUE_MEMBER)

# Set by the engine for the dialplan to read (coverage-queue, coverage-fallback).
QUEUE = "COVERAGE_QUEUE"  # the queue of the operators step
QUEUE_WAIT = "COVERAGE_QUEUE_WAIT"  # its maximum wait in seconds
QUEUE_WHISPER = "COVERAGE_QUEUE_WHISPER"  # the practice's prompt for the operator only
ANNOUNCED = "COVERAGE_ANNOUNCED"  # "1": the caller heard the emergency announcement

#: Every variable the engine sets on a caller's channel, the dialplan's ones included.
ENGINE_SETS: tuple[str, ...] = (
    PRACTICE,
    TRIED,
    ENGINE,
    QUEUE,
    QUEUE_WAIT,
    QUEUE_WHISPER,
    ANNOUNCED,
)
#: Those of them the dialplan reads.
DIALPLAN_READS: tuple[str, ...] = (ENGINE, QUEUE, QUEUE_WAIT, QUEUE_WHISPER, ANNOUNCED)

# On a Local channel the engine originates into `coverage-astdb` (`ari/astdb.py`): a batch
# of AstDB operations n = 1, 2, ... and where the dialplan leaves what reads return.
ASTDB_CONTEXT = "coverage-astdb"
ASTDB_OP = "COVERAGE_DB_OP"  # <n>: put | deltree | get | keys
ASTDB_KEY = "COVERAGE_DB_KEY"  # <n>: family/key
ASTDB_VALUE = "COVERAGE_DB_VALUE"  # <n>: what put writes
# The mailbox prefix: results go to the globals <OUT><n>, the batch's token to <OUT>DONE.
ASTDB_OUT = "COVERAGE_DB_OUT"
ASTDB_TOKEN = "COVERAGE_DB_TOKEN"  # noqa: S105 (a variable's name, not a secret)
#: What the engine sets on an AstDB batch's channel (numbered ones by their prefix).
ASTDB_SETS: tuple[str, ...] = (ASTDB_OP, ASTDB_KEY, ASTDB_VALUE, ASTDB_OUT, ASTDB_TOKEN)

# The FastAGI service's answer (`agi/route.py`), read by dialplan/freepbx-example.conf.
AGI_PRACTICE_NAME = "COVERAGE_PRACTICE_NAME"
AGI_SHORT_NAME = "COVERAGE_SHORT_NAME"
AGI_REASON = "COVERAGE_REASON"
AGI_ANNOUNCEMENT = "COVERAGE_ANNOUNCEMENT"
AGI_WHISPER = "COVERAGE_WHISPER"
AGI_STEPS = "COVERAGE_STEPS"
AGI_STATUS = "COVERAGE_STATUS"  # set last: the dialplan trusts the others once it is set
AGI_STEP_PREFIX = "COVERAGE_STEP_"
#: The caller's name as an operator's phone may show it (caller_text.display_name).
AGI_CALLER_NAME = "COVERAGE_CALLER_NAME"
#: The dialplan global holding the shared secret the service asks the channel for.
AGI_SECRET = "COVERAGE_AGI_SECRET"  # noqa: S105 (a variable's name, not a secret)


class StepField(StrEnum):
    """The per-step variables of the FastAGI answer: COVERAGE_STEP_<n>_<field>."""

    KIND = "KIND"
    DIAL = "DIAL"
    RING = "RING"
    CONFIRM = "CONFIRM"
    TARGET = "TARGET"
    LABEL = "LABEL"


def agi_step(n: int, field: StepField) -> str:
    """The variable of step `n` (from 1) of the FastAGI answer."""
    return f"{AGI_STEP_PREFIX}{n}_{field.value}"


#: Every fixed name the FastAGI service sets (plus the per-step ones of `agi_step`).
AGI_SETS: tuple[str, ...] = (
    PRACTICE,
    AGI_PRACTICE_NAME,
    AGI_SHORT_NAME,
    AGI_REASON,
    AGI_ANNOUNCEMENT,
    AGI_WHISPER,
    AGI_CALLER_NAME,
    AGI_STEPS,
    AGI_STATUS,
)

#: Dialplan globals the PBX admin sets in extensions.conf `[globals]`; the engine never
#: touches them. The safety net's queue and on-call number, the operators' login queue,
#: and the FastAGI example's service URL and press-1 prompt.
DIALPLAN_GLOBALS: Mapping[str, str] = {
    "COVERAGE_FALLBACK_QUEUE": "the queue the safety net tries first",
    "COVERAGE_FALLBACK_QUEUE_WAIT": "how long the safety net waits in that queue (s)",
    "COVERAGE_FALLBACK_DIAL": "the dial string the safety net rings next",
    "COVERAGE_FALLBACK_RING": "how long it rings (s)",
    "COVERAGE_FALLBACK_ANNOUNCE": "the sound the safety net plays once",
    "COVERAGE_OPERATOR_QUEUE": "the queue operators log in to with *21..*24",
    "COVERAGE_AGI_URL": "where the FastAGI example asks for decisions",
    "COVERAGE_AGI_DIAL_PATTERN": "the dial strings the FastAGI example accepts (a regex)",
    "COVERAGE_CONFIRM_PROMPT": "what a doctor hears before pressing 1 (FastAGI example)",
    "COVERAGE_CLAIM_MS": "how long an engine has to claim a call before the safety net takes it",
}

# A dialplan function the call flow writes through a channel variable: what
# an operator's phone shows for a queued caller ("MGP: Jane Doe").
CALLER_NAME = "CALLERID(name)"
