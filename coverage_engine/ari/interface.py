"""The narrow interface the engine uses to drive Asterisk over ARI.

Two small `Protocol`s: `AriOperations` (REST requests: one method per thing
the call flows do) and `AriEventSource` (the event stream). The production
implementation is `coverage_engine.ari.client.AriClient`; the project's tests
run that same client against the lab's fake ARI server, and
`coverage_engine.testing.MemoryAri` is an in-memory fake of these protocols
for unit tests (yours too).

Contract shared by every method:
  * each request has a deadline; past it, `AriTimeout` is raised;
  * a channel/bridge/playback that no longer exists raises `ResourceGone`,
    which callers treat as normal (the person hung up);
  * errors are the tree in `coverage_engine.ari.errors`, with Asterisk's own
    error message kept.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Literal, Protocol

from coverage_engine.ari.events import StreamItem
from coverage_engine.ari.models import Bridge, CallerId, Channel, Playback

HangupReason = Literal[
    "normal",
    "busy",
    "congestion",
    "no_answer",
    "timeout",
    "rejected",
    "unallocated",
    "normal_unspecified",
    "number_incomplete",
    "codec_mismatch",
    "interworking",
    "failure",
    "answered_elsewhere",
]
"""The `reason` values `DELETE /channels/{id}` accepts (Asterisk maps them to Q.850 causes)."""


class AriOperations(Protocol):
    """REST operations on channels, bridges and playbacks of our ARI application."""

    @property
    def app(self) -> str:
        """The ARI application name (`coverage-engine`): new channels are created into it."""
        ...

    # -- the caller's experience -------------------------------------------------

    async def answer(self, channel_id: str) -> None:
        """Answer the channel (`POST /channels/{id}/answer`)."""
        ...

    async def ring(self, channel_id: str) -> None:
        """Send ringing to the channel (`POST /channels/{id}/ring`)."""
        ...

    async def ring_stop(self, channel_id: str) -> None:
        """Stop locally generated ringing (`DELETE /channels/{id}/ring`)."""
        ...

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        """Start music on hold (`POST /channels/{id}/moh`), the class from musiconhold.conf.

        Asterisk suspends MOH while a /play runs on the channel and does not
        resume it: start it again after the playback finishes.
        """
        ...

    async def stop_moh(self, channel_id: str) -> None:
        """Stop music on hold (`DELETE /channels/{id}/moh`)."""
        ...

    async def play(
        self,
        channel_id: str,
        media: str | Sequence[str],
        *,
        playback_id: str,
        lang: str | None = None,
    ) -> Playback:
        """Play media (`sound:...`, `tone:ring`, ...) to the channel, under our own playback id.

        Several media play one after the other. `PlaybackFinished` with this id
        arrives on the event stream when it ends.
        """
        ...

    async def stop_playback(self, playback_id: str) -> None:
        """Stop a playback (`DELETE /playbacks/{id}`)."""
        ...

    async def hangup(self, channel_id: str, reason: HangupReason = "normal") -> None:
        """Hang the channel up (`DELETE /channels/{id}?reason=...`).

        Events: `ChannelHangupRequest`, `StasisEnd`; `ChannelDestroyed` only
        for channels the application is subscribed to beyond Stasis (legs we
        created, or `subscribe_channel`), not for an inbound caller.
        """
        ...

    # -- reaching people -----------------------------------------------------------

    async def create_channel(
        self,
        endpoint: str,
        *,
        channel_id: str,
        app_args: Sequence[str] = (),
        originator: str | None = None,
        caller_id: CallerId | None = None,
        formats: Sequence[str] = (),
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """Create an outbound channel into our application without dialing it yet.

        `POST /channels/create`. `endpoint` is a dial string built from
        validated config only (`PJSIP/frontdesk-maple`,
        `PJSIP/+15551234567@carrier-out`). `originator` is the caller's
        channel id (links the legs for codecs and CDRs). `caller_id` is what
        the callee's phone shows (set as the new channel's connected line).

        Asterisk 22 puts the new channel into the application at once: a
        `StasisStart` with `app_args` (state Down) arrives right after this
        call, before anything rings. An endpoint Asterisk cannot allocate
        (unknown name) fails here with HTTP 500 "Allocation failed".
        """
        ...

    async def originate(
        self,
        endpoint: str,
        *,
        channel_id: str,
        ring_seconds: int,
        app_args: Sequence[str] = (),
        originator: str | None = None,
        caller_id: CallerId | None = None,
    ) -> Channel:
        """Create an outbound channel and dial it at once, in one request (`POST /channels`).

        What makes a phone ring soonest: one round trip where `create_channel`
        + `dial` take two (and a dial racing the channel's entry into the
        application). The application hears the new channel from the start
        (its `Dial` events, `ChannelDestroyed` with the Q.850 cause when it
        fails) and the channel enters the application when it is answered:
        its `StasisStart` (with `app_args`) comes in state Up. `caller_id` is
        what the callee's phone shows (the new channel's connected line),
        `ring_seconds` Asterisk's own limit on the ringing.
        """
        ...

    async def dial(self, channel_id: str, *, ring_seconds: int, caller: str | None = None) -> None:
        """Dial a created channel, giving up after `ring_seconds` (`POST /channels/{id}/dial`).

        `caller` is the caller's channel id: Asterisk then copies its caller id
        to the new leg's connected line, as Dial() would (overriding the
        `caller_id` given at creation).

        Progress arrives as `Dial` events on the leg (`dialstatus` "", then
        RINGING, then ANSWER) and `ChannelStateChange` (Ringing, Up). A
        failure is NOT reliably a `Dial` event: on Asterisk 22 a busy phone or
        a ring timeout shows only as `ChannelHangupRequest`, `StasisEnd` and
        `ChannelDestroyed` with the Q.850 cause (17 busy, 19 no answer,
        20/27 unreachable, 21 rejected).
        """
        ...

    async def continue_in_dialplan(
        self, channel_id: str, *, context: str, extension: str, priority: int = 1
    ) -> None:
        """Hand the channel back to the dialplan (`POST /channels/{id}/continue`).

        The channel leaves the application (`StasisEnd`); this is how a caller
        reaches the operator queue and the dialplan fallback.
        """
        ...

    async def claim(self, channel_id: str) -> bool:
        """Claim a channel `StasisBroadcast()` offered (a `CallBroadcast`); True if we got it.

        `POST /events/claim?channelId=...&application=<app>`. Only the first
        claim wins; a later one (another engine was faster) or one after the
        offer ran out is refused, which is False here, not an error.
        """
        ...

    async def subscribe_channel(self, channel_id: str) -> None:
        """Keep receiving a channel's events after it leaves the application.

        `POST /applications/{app}/subscription?eventSource=channel:{id}`. Used
        before a caller is continued into the operator queue: the engine still
        learns that they hung up, or which operator answered (ChannelVarset).
        """
        ...

    # -- bridges ---------------------------------------------------------------------

    async def create_bridge(self, bridge_id: str, *, name: str = "") -> Bridge:
        """Create a mixing bridge with our own id (`POST /bridges/{id}?type=mixing`)."""
        ...

    async def destroy_bridge(self, bridge_id: str) -> None:
        """Destroy a bridge (`DELETE /bridges/{id}`); channels in it stay up."""
        ...

    async def add_to_bridge(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        """Put channels into a bridge (`POST /bridges/{id}/addChannel`)."""
        ...

    async def remove_from_bridge(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        """Take channels out of a bridge (`POST /bridges/{id}/removeChannel`)."""
        ...

    # -- state on channels (what a restarted engine reads back) ------------------------

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        """Set a channel variable (`POST /channels/{id}/variable`)."""
        ...

    async def set_variables(self, channel_id: str, variables: Sequence[tuple[str, str]]) -> None:
        """Set several channel variables (or functions, `CALLERID(name)`) in one request.

        Through Asterisk's `ARRAY()` function (func_strings), each value
        escaped for Asterisk's argument parser: the values arrive exactly as
        given, commas, quotes and caller text included.
        """
        ...

    async def get_variable(self, channel_id: str, name: str) -> str | None:
        """Read a channel variable; None when it is not set (`GET /channels/{id}/variable`)."""
        ...

    # -- looking around (recovery after a (re)connect) ---------------------------------

    async def get_channel(self, channel_id: str) -> Channel:
        """One channel's snapshot (`GET /channels/{id}`)."""
        ...

    async def list_channels(self) -> list[Channel]:
        """Every channel in Asterisk, ours or not (`GET /channels`)."""
        ...

    async def list_bridges(self) -> list[Bridge]:
        """Every bridge in Asterisk (`GET /bridges`)."""
        ...

    async def application_channel_ids(self, app: str | None = None) -> list[str]:
        """Ids of the channels an application (ours by default) holds or is subscribed to."""
        ...

    # -- the application's event diet ------------------------------------------------

    async def filter_events(self, allowed: Collection[str]) -> None:
        """Receive only events of the `allowed` types (`PUT /applications/{app}/eventFilter`).

        Asterisk keeps the filter with the application, which it destroys when
        the application's last WebSocket closes: set it again after every
        (re)connect. Events of other types are not even sent.
        """
        ...


class AriEventSource(Protocol):
    """The application's event stream, with connection changes."""

    def events(self) -> AsyncIterator[StreamItem]:
        """Yield events in Asterisk's order, `Connected`/`Disconnected` as the link changes.

        Reconnects by itself, forever, until the client is closed; then the
        iterator ends.
        """
        ...


class Ari(AriOperations, AriEventSource, Protocol):
    """Everything the engine needs from ARI: requests and events."""
