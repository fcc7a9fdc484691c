"""Voice pages over ARI: call the doctor, press 1 to accept, hear the callback number, press 2.

The pages live in an ARI application of their own (`<app>-page`), beside the
engine's callers: a page is an outbound call nobody is waiting on, and its
events never mix with a caller's. One event stream feeds every page leg's
own queue (`VoiceLink`); each page is a short sequence over its queue:

    dial the doctor (their dial string from validated config)
      ├─ busy / no answer / unreachable ──────────────> page_failed
      └─ answered ──> "urgent message from <practice>, press 1 to accept" (x3)
                        ├─ nothing, or hung up (a voicemail) ─> page_failed
                        └─ 1 ─> acknowledged (durably, first) ─> the number read out,
                                 "press 2 to be connected now, 3 to hear it again"
                                 └─ 2 ─> the callback number through the practice's
                                         trunk, bridged with the doctor: page_connected

A handoff check's call (`AriVoicePager.call`) is the same dial and the same
press-1 rounds with its own sentence ("you are on call ... until ...", said
twice), confirmed durably before the thank-you plays.

A voicemail never presses 1, so it never acknowledges or confirms. After a
restart the legs left in the application are hung up; their attempts are
taken on again by the services (see `records.pages`, `records.handoffs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable, Sequence

import structlog

from coverage_engine.ari import Ari, AriError
from coverage_engine.ari.events import (
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEvent,
    ChannelHangupRequest,
    ChannelStateChange,
    Connected,
    Dial,
    PlaybackFinished,
    StasisStart,
    StreamItem,
)
from coverage_engine.ari.models import CallerId
from coverage_engine.journey import (
    HandoffAnswered,
    HandoffAttemptFailed,
    HandoffDialing,
    HandoffEvent,
    PageAnswered,
    PageConnected,
    PageEvent,
    PageFailed,
    PageSent,
)
from coverage_engine.paging.callback import dialable, spoken
from coverage_engine.paging.handoff_checks import HandoffCall
from coverage_engine.paging.prompts import Prompts
from coverage_engine.paging.service import VoiceJob

log = structlog.get_logger("coverage_engine.paging")

#: Every page leg's id starts with this: what a restarted engine hangs up.
LEG_PREFIX = "page-"
PROMPT_ROUNDS = 3  # the press-1 prompt, then the menu, are offered this many times
# A handoff check's sentence is long, and nothing waits on it: said twice.
HANDOFF_ROUNDS = 2
DIGIT_WAIT = 6.0  # seconds of silence after a prompt, for a key press
CALLBACK_RING = 30  # seconds the callback number rings

# Q.850 causes of a leg that never answered.
_CAUSES = {17: "busy", 18: "no answer", 19: "no answer", 21: "declined", 20: "unreachable",
           27: "unreachable", 3: "unreachable", 1: "unreachable", 34: "unreachable"}  # fmt: skip
_DIALSTATUS = {"BUSY": "busy", "NOANSWER": "no answer", "CHANUNAVAIL": "unreachable",
               "CONGESTION": "unreachable"}  # fmt: skip


class Gone(Exception):
    """The leg hung up (or never came up); `reason` in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Leg:
    """One channel a page created: its events, in order, and the waits over them."""

    def __init__(self, link: VoiceLink, leg_id: str) -> None:
        self.id = leg_id
        self._link = link
        self.events: asyncio.Queue[StreamItem] = asyncio.Queue()
        self.up = False
        self.gone: str | None = None
        self._playbacks = 0

    def playback_id(self) -> str:
        self._playbacks += 1
        return f"{self.id}-pb{self._playbacks}"

    def _why(self, cause: int | None) -> str:
        if self.up:
            return "hung up"
        return _CAUSES.get(cause or 0, "no answer")

    def _note(self, item: StreamItem) -> None:
        # A failed dial shows as the hangup's Q.850 cause (busy 17, no answer 19...);
        # the Dial event's DIALSTATUS, when it comes, says the same in words.
        match item:
            case StasisStart(channel=channel) | ChannelStateChange(channel=channel) if (
                channel.is_up
            ):
                self.up = True
            case ChannelHangupRequest(cause=cause) | ChannelDestroyed(cause=cause) if (
                self.gone is None
            ):
                self.gone = self._why(cause)
            case Dial(dialstatus=status) if status in _DIALSTATUS and not self.up:
                self.gone = _DIALSTATUS[status]

    async def next(self, within: float) -> StreamItem | None:
        """The next event, or None after `within` seconds; raises Gone once the leg is gone."""
        if self.gone is not None and self.events.empty():
            raise Gone(self.gone)
        try:
            item = await asyncio.wait_for(self.events.get(), within)
        except TimeoutError:
            return None
        self._note(item)
        if self.gone is not None:
            raise Gone(self.gone)
        return item

    async def answered(self, within: float) -> None:
        """Wait until the callee answers; Gone (busy, no answer...) if they do not."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not self.up:
            left = deadline - loop.time()
            if left <= 0:
                raise Gone("no answer")
            await self.next(left)

    async def prompt(self, media: Sequence[str], digits: str, fallback: Sequence[str] = ()) -> str:
        """Play `media` and wait DIGIT_WAIT after it for one of `digits`; "" if none came.

        A key press interrupts the prompt. A prompt that cannot play (a
        missing sound) is replaced by `fallback` once.
        """
        ari = self._link.ari
        playback = self.playback_id()
        await ari.play(self.id, list(media), playback_id=playback)
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        while True:
            left = 60.0 if deadline is None else deadline - loop.time()
            if left <= 0:
                return ""
            item = await self.next(left)
            match item:
                case None if deadline is not None:
                    return ""
                case ChannelDtmfReceived(digit=digit) if digit in digits:
                    with contextlib.suppress(AriError):
                        await ari.stop_playback(playback)
                    return digit
                case PlaybackFinished(playback=done) if done.id == playback:
                    if done.state == "failed":
                        log.warning("paging.prompt_failed", media=list(media))
                    if done.state == "failed" and fallback:
                        playback = self.playback_id()
                        await ari.play(self.id, list(fallback), playback_id=playback)
                        fallback = ()
                        continue
                    deadline = loop.time() + DIGIT_WAIT

    async def say(self, media: Sequence[str], within: float = 30.0) -> None:
        """Play `media` to its end (or for `within` seconds at most); no keys are waited for."""
        playback = self.playback_id()
        await self._link.ari.play(self.id, list(media), playback_id=playback)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while (left := deadline - loop.time()) > 0:
            match await self.next(left):
                case PlaybackFinished(playback=done) if done.id == playback:
                    return

    async def hangup(self) -> None:
        with contextlib.suppress(AriError):
            await self._link.ari.hangup(self.id, "normal")


class VoiceLink:
    """The page application's event stream, handed out to each leg's queue."""

    def __init__(self, ari: Ari) -> None:
        self.ari = ari
        self._legs: dict[str, Leg] = {}
        self._playbacks: dict[str, str] = {}
        self.connected = asyncio.Event()

    def open(self, leg_id: str) -> Leg:
        leg = Leg(self, leg_id)
        self._legs[leg_id] = leg
        return leg

    def close(self, leg: Leg) -> None:
        self._legs.pop(leg.id, None)

    async def run(self) -> None:
        """Feed every event to its leg until cancelled; after each connect, clear leftovers."""
        async for item in self.ari.events():
            if isinstance(item, Connected):
                self.connected.set()
                await self._hang_up_leftovers()
                continue
            target = _leg_of(item)
            leg = self._legs.get(target) if target else None
            if leg is not None:
                leg.events.put_nowait(item)

    async def _hang_up_leftovers(self) -> None:
        """Page legs nobody here carries (a previous run's) would ring or hold on forever."""
        try:
            channels = await self.ari.list_channels()
        except AriError as exc:
            log.warning("paging.recovery_failed", error=str(exc))
            return
        for channel in channels:
            if channel.id.startswith(LEG_PREFIX) and channel.id not in self._legs:
                log.info("paging.leftover_leg_hung_up", channel=channel.id)
                with contextlib.suppress(AriError):
                    await self.ari.hangup(channel.id, "normal")


def _leg_of(item: StreamItem) -> str | None:
    if isinstance(item, PlaybackFinished):
        return item.playback.id.rsplit("-pb", 1)[0]
    if isinstance(item, Dial):
        return item.peer.id
    if isinstance(item, ChannelEvent):
        return item.channel.id
    return None


class AriVoicePager:
    """The `VoicePager` of the paging service, on the page application's ARI link."""

    def __init__(self, link: VoiceLink, prompts: Prompts | None = None) -> None:
        self._link = link
        self._prompts = prompts or Prompts()
        self._after: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Stop the pages' continuations (a number being read out, a connected call stays up)."""
        for task in list(self._after):
            task.cancel()
        for task in list(self._after):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def page(
        self,
        job: VoiceJob,
        acknowledge: Callable[[], Awaitable[None]],
        record: Callable[[Sequence[PageEvent]], Awaitable[None]],
    ) -> list[PageEvent]:
        """Call the doctor; returns once the outcome is known (the failure's events, if any)."""
        practice = job.practice
        fail: list[PageEvent] = []
        caller_id = CallerId(f"{practice.short_name} URGENT MSG", practice.dids[0])
        leg = await self._ring(job.dial, ("page", job.call_id), caller_id, job.ring_seconds)
        if isinstance(leg, AriError):
            reason = f"could not call {job.doctor} ({job.dial}): {leg}"
            return [PageFailed(job.attempt, "voice", reason, job.doctor)]
        # Progress is written as it happens, so the record reads in order.
        await record([PageSent(job.attempt, "voice", job.target, job.doctor)])
        try:
            await leg.answered(job.ring_seconds + 5)
            await record([PageAnswered(job.attempt, job.doctor)])
            if not await self._accepted(leg, job):
                await leg.hangup()
                reason = "answered, but nobody pressed 1 (a voicemail?)"
                fail = [PageFailed(job.attempt, "voice", reason, job.doctor)]
        except Gone as gone:
            reason = gone.reason if leg.up is False else f"{gone.reason} before pressing 1"
            fail = [PageFailed(job.attempt, "voice", reason, job.doctor)]
        if fail:
            await leg.hangup()
            self._link.close(leg)
            return fail
        await acknowledge()
        task = asyncio.create_task(self._after_ack(leg, job, record), name=f"{leg.id}-after")
        self._after.add(task)
        task.add_done_callback(self._after.discard)
        return []

    async def _ring(
        self, dial: str, app_args: tuple[str, str], caller_id: CallerId, ring_seconds: int
    ) -> Leg | AriError:
        """A new leg ringing `dial` (from validated config), or the PBX's refusal."""
        ari = self._link.ari
        leg = self._link.open(f"{LEG_PREFIX}{secrets.token_hex(6)}")
        try:
            await ari.create_channel(
                dial, channel_id=leg.id, app_args=app_args, caller_id=caller_id
            )
            await ari.dial(leg.id, ring_seconds=ring_seconds)
        except AriError as exc:
            self._link.close(leg)
            return exc
        return leg

    async def _accepted(self, leg: Leg, job: VoiceJob) -> bool:
        p = self._prompts
        lead = p.emergency if job.urgency.value == "emergency" else p.urgent
        media = [lead, p.practice(job.practice.id), p.press_1]
        return await _pressed_1(leg, media, [lead, p.press_1])

    async def call(
        self,
        job: HandoffCall,
        confirm: Callable[[], Awaitable[None]],
        record: Callable[[Sequence[HandoffEvent]], Awaitable[None]],
    ) -> HandoffAttemptFailed | None:
        """Call the doctor coming on call; None once they pressed 1, else why not.

        `confirm` is awaited the moment they press 1, before the thank-you
        plays, so a confirmation is on the record even if the engine dies then.
        """
        practice = job.practice
        caller_id = CallerId(f"{practice.short_name} ON CALL", practice.dids[0])
        leg = await self._ring(job.dial, ("handoff", job.check_id), caller_id, job.ring_seconds)
        if isinstance(leg, AriError):
            reason = f"could not call {job.doctor} ({job.dial}): {leg}"
            return HandoffAttemptFailed(job.attempt, job.doctor, reason)
        await record([HandoffDialing(job.attempt, job.doctor)])
        why: str | None = None
        try:
            await leg.answered(job.ring_seconds + 5)
            await record([HandoffAnswered(job.attempt, job.doctor)])
            sentence = job.sentence
            if await _pressed_1(leg, sentence.media, sentence.fallback, HANDOFF_ROUNDS):
                await confirm()
                with contextlib.suppress(AriError, Gone):
                    await leg.say(sentence.confirmed)
            else:
                why = "answered, but nobody pressed 1 (a voicemail?)"
        except Gone as gone:
            why = gone.reason if not leg.up else f"{gone.reason} before pressing 1"
        finally:
            await leg.hangup()
            self._link.close(leg)
        return None if why is None else HandoffAttemptFailed(job.attempt, job.doctor, why)

    async def _after_ack(
        self, leg: Leg, job: VoiceJob, record: Callable[[Sequence[PageEvent]], Awaitable[None]]
    ) -> None:
        """The number read out, and press 2 to be connected to it; then goodbye."""
        p = self._prompts
        number = dialable(job.callback)
        trunk = job.practice.paging.callback_trunk
        category = p.category_emergency if job.urgency.value == "emergency" else p.category_urgent
        if number is not None and trunk is not None:
            readout = [p.accepted, p.callback, f"digits:{spoken(number)}", category, p.menu]
            keys = "23"
        else:
            readout = [p.accepted, p.no_callback, category]
            keys = ""
        try:
            for _ in range(PROMPT_ROUNDS):
                key = await leg.prompt(readout, keys)
                if key == "2" and number is not None and trunk is not None:
                    await self._connect(leg, job, number, trunk, record)
                    return
                if key != "3":
                    break
                readout = readout[1:]  # again, without the thank-you
            if number is None:
                why = "no callback number" if not job.callback else "callback number not dialable"
                await record([PageConnected(job.attempt, job.doctor, f"not offered: {why}")])
        except Gone:
            pass
        finally:
            await leg.hangup()
            self._link.close(leg)

    async def _connect(
        self,
        leg: Leg,
        job: VoiceJob,
        number: str,
        trunk: str,
        record: Callable[[Sequence[PageEvent]], Awaitable[None]],
    ) -> None:
        ari = self._link.ari
        practice = job.practice
        callee = self._link.open(f"{leg.id}-cb")
        try:
            with contextlib.suppress(AriError):
                await ari.play(leg.id, [self._prompts.connecting], playback_id=leg.playback_id())
            # Digits and a `+` only, through the practice's configured trunk.
            await ari.create_channel(
                f"PJSIP/{number}@{trunk}",
                channel_id=callee.id,
                app_args=("page-callback", job.call_id),
                originator=leg.id,
                caller_id=CallerId(practice.name, practice.dids[0]),
            )
            await ari.dial(callee.id, ring_seconds=CALLBACK_RING)
            await callee.answered(CALLBACK_RING + 5)
        except (AriError, Gone) as exc:
            why = exc.reason if isinstance(exc, Gone) else f"could not dial: {exc}"
            await record([PageConnected(job.attempt, job.doctor, why)])
            with contextlib.suppress(AriError, Gone):
                await leg.prompt([self._prompts.connect_failed], "")
            await self._drop(callee)
            return
        bridge = f"{leg.id}-bridge"
        try:
            await ari.create_bridge(bridge, name="page-callback")
            await ari.add_to_bridge(bridge, [leg.id, callee.id])
        except AriError as exc:
            await record([PageConnected(job.attempt, job.doctor, f"could not bridge: {exc}")])
            await self._drop(callee)
            return
        await record([PageConnected(job.attempt, job.doctor, "connected")])
        log.info("paging.connected", doctor=job.doctor, call_id=job.call_id)
        # Together until either hangs up; then the other is released.
        first = [asyncio.create_task(_until_gone(x)) for x in (leg, callee)]
        try:
            await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in first:
                task.cancel()
            await self._drop(callee)
            with contextlib.suppress(AriError):
                await ari.destroy_bridge(bridge)

    async def _drop(self, leg: Leg) -> None:
        await leg.hangup()
        self._link.close(leg)


async def _pressed_1(
    leg: Leg, media: Sequence[str], fallback: Sequence[str], rounds: int = PROMPT_ROUNDS
) -> bool:
    """Whether someone pressed 1 within `rounds` of the prompt (a voicemail never does)."""
    for _ in range(rounds):
        if await leg.prompt(media, "1", fallback=fallback) == "1":
            return True
    return False


async def _until_gone(leg: Leg) -> None:
    with contextlib.suppress(Gone):
        while True:
            await leg.next(3600)
