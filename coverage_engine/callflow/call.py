"""The life of one call, as a pure state machine: `Call.handle(event) -> commands`.

No I/O happens here. The engine (the shell) turns ARI traffic into the events
of `callflow.events`, feeds them to the call, and carries out the returned
commands of `callflow.commands` in order. A failed command comes back as a
`CommandFailed` event, so the call decides what a failure means (like h11's
`send_failed()`); nothing outside patches the state.

The plan (from the routing core) is an ordered list of steps, each a person:
the front desk (`staff`), the operator queue (`operators`), the doctor on call
(`oncall`). The call tries them in order until one is bridged to the caller.
The plan always ends with the operator queue; if even that returns the caller
(no operator logged in), the call is handed to the dialplan's fallback context,
Asterisk's own safety net. No path ends in silence or a hang-up.

Dial first: in the commands of a step that rings a phone, the request that
makes it ring comes first; what the caller needs (the answer, ringback or
music) follows, and the call's memory on the channel (one request of
variables per step) comes last, since only a restarted engine reads it.

Phases and what moves a call between them (read `_TRANSITIONS` at the bottom):

    NEW ──CallerEntered──> ANNOUNCING ──PlaybackEnded──> (first step)
      (no announcement) ─────────────────────────────────> (first step)

    (a step)  staff / oncall  -> RINGING     (a leg is dialed, ring timer runs)
              operators       -> QUEUED      (the caller is in app_queue, in the dialplan)
              none left       -> DONE        (dialplan fallback context)

    RINGING   ──LegEnteredApp + LegUp (either order)──> TALKING, or CONFIRMING for
              press-1 steps
              ──LegFailed / ring TimerFired──> (next step)
    CONFIRMING──DtmfReceived('1')──> TALKING
              ──confirm TimerFired / LegFailed──> (next step)
    QUEUED    ──OperatorConnected──> WITH_OPERATOR
              ──QueueResult──> (next step)
    TALKING / WITH_OPERATOR ──either side hangs up──> DONE

    any live phase ──CallerGone──> DONE, tearing down every leg, bridge, timer.

An event that makes no sense in the current phase (a late event about a leg
already given up on, a DTMF from a channel we do not know) changes nothing and
produces no command: telephony is full of such races and they are normal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from coverage_engine import wire
from coverage_engine.caller_text import caller_digits, display_name
from coverage_engine.callflow.commands import (
    Answer,
    CancelTimer,
    Command,
    ContinueInDialplan,
    CreateLeg,
    DestroyBridge,
    HangUp,
    MakeBridge,
    Play,
    Record,
    SetVariables,
    StartMoh,
    StartRinging,
    StartTimer,
    StopMoh,
    StopPlayback,
    StopRinging,
)
from coverage_engine.callflow.events import (
    CallerEntered,
    CallerGone,
    CommandFailed,
    DtmfReceived,
    Event,
    LegEnteredApp,
    LegFailed,
    LegFailure,
    LegHangingUp,
    LegUp,
    OperatorConnected,
    PlaybackEnded,
    QueueResult,
    TimerFired,
)
from coverage_engine.callflow.resume import format_tried, resume_index, step_keys
from coverage_engine.journey import (
    AnnouncementPlayed,
    Bridged,
    CalleeHungUp,
    CallerHungUp,
    Decided,
    Ended,
    OncallAnswered,
    OncallBusy,
    OncallConfirmed,
    OncallDeclined,
    OncallDialing,
    OncallMissed,
    OncallNoAnswer,
    OncallNotConfirmed,
    OperatorAnswered,
    OperatorsSkipped,
    Outcome,
    QueueEntered,
    QueueTimeout,
    Received,
    StaffRinging,
    Via,
)
from coverage_engine.plan import Plan, Step, StepKind
from coverage_engine.presence import OperatorsCheck, reason_to_skip


class Phase(StrEnum):
    """Where the call is in its journey."""

    NEW = "new"  # nothing known yet
    ANNOUNCING = "announcing"  # the emergency announcement plays to the caller
    RINGING = "ringing"  # a front desk or doctor leg is being dialed
    CONFIRMING = "confirming"  # the doctor answered; waiting for them to press 1
    QUEUED = "queued"  # the caller waits in the dialplan's operator queue
    WITH_OPERATOR = "with_operator"  # app_queue bridged the caller to an operator
    TALKING = "talking"  # the caller talks to the front desk or a doctor, in our bridge
    DONE = "done"  # ended, or handed to the dialplan fallback


class Hold(StrEnum):
    """What the caller hears while the engine works. Never silence."""

    NONE = "none"  # nothing from us: a prompt, the queue's own music, or a bridge
    RINGING = "ringing"  # ringback: the front desk "is ringing", as on any phone
    MOH = "moh"  # music on hold: longer waits (the doctor's phone, after the queue)


@dataclass(frozen=True, slots=True)
class CallState:
    """Everything the call knows besides its plan. Tests compare it whole."""

    phase: Phase = Phase.NEW
    step: int = -1  # index into plan.steps of the step being tried
    leg_id: str | None = None  # the outbound leg of the current step
    bridge_id: str | None = None
    playback_id: str | None = None  # the announcement, or the press-1 prompt
    timer: str | None = None  # the one timer running (ring or confirm)
    # What Asterisk said of the current leg: a leg can be played to or bridged
    # only once it is both in the application and answered (either order).
    leg_in_app: bool = False
    leg_up: bool = False
    hold: Hold = Hold.NONE
    answered_by: str | None = None  # the target of the step that reached a person
    outcome: Outcome | None = None  # the journey outcome, once known
    seq: int = 0  # counter for the ids of legs and playbacks this call creates
    prompts: int = 0  # how many times the press-1 prompt started on the current leg
    generic_prompt: bool = False  # the practice's own prompt failed to play: use the generic one
    # The caller heard the emergency announcement (a call taken on again is
    # assumed to have: it is never played twice); the safety net then skips its own.
    announced: bool = False


@dataclass(frozen=True, slots=True)
class CallSettings:
    """How the call flow talks to the dialplan and the doctors.

    The contexts must match `dialplan/coverage-engine.conf`. `confirm_seconds`
    is how long a doctor who answered has to press 1 (the prompt repeats
    meanwhile); `leg_timeout_margin` gives Asterisk's own ring limit a few
    seconds more than our ring timer, as a backstop only.
    """

    queue_context: str = wire.QUEUE_CONTEXT
    fallback_context: str = wire.FALLBACK_CONTEXT
    release_context: str = wire.RELEASE_CONTEXT
    confirm_seconds: float = 15.0
    # The prompt is said again when it ends, this many times at most: if the
    # sound cannot play at all, Asterisk ends each playback at once and an
    # unbounded repeat would spin. The confirm timer decides either way.
    confirm_plays: int = 3
    leg_timeout_margin: int = 5
    # The press-1 prompt the doctor hears, naming the practice
    # (sounds/en/accept-<practice>, installed into <astdatadir>/sounds/en/coverage/).
    confirm_media: Callable[[Plan], str] = lambda plan: f"sound:coverage/accept-{plan.practice_id}"
    # Played instead when the practice's own prompt is missing on this PBX:
    # the doctor must never be left in silence, unable to know they may accept.
    generic_confirm_media: str = "sound:coverage/coverage-press-1"
    # This engine's ARI application, left on a caller sent to the queue
    # (COVERAGE_ENGINE): the queue hands the caller back to it first.
    engine: str = ""


Transition = tuple[CallState, list[Command]]


class Call:
    """One caller's journey through the plan.

    `call_id` is the caller's channel id (Asterisk's linkedid for an inbound
    call). `id_prefix` prefixes the ids of the legs, bridges and playbacks the
    call creates; the engine passes a fresh one when it picks a call up again
    after a restart so new ids never collide with leftovers.
    """

    def __init__(
        self,
        call_id: str,
        *,
        id_prefix: str | None = None,
        settings: CallSettings | None = None,
        operators_check: OperatorsCheck | None = None,
    ) -> None:
        self.call_id = call_id
        self.id_prefix = id_prefix or call_id
        self.settings = settings or CallSettings()
        # Operator presence, asked as each operators step is about to start
        # (`presence`). None: no presence known, nothing is skipped.
        self._operators_check = operators_check
        self.plan: Plan | None = None
        # The steps a previous engine tried (a resumed call), and the index of
        # the plan this call started at: together, what COVERAGE_TRIED says.
        self._tried_before: tuple[str, ...] = ()
        self._first_step = 0
        self.caller_name = ""  # what callees see after the practice prefix
        self.caller_number = ""
        self.state = CallState()

    # ------------------------------------------------------------------ entry

    def handle(self, event: Event) -> list[Command]:
        """Apply one event; return the commands to carry out, in order.

        An event that is not legal in the current phase leaves the state
        exactly as it was and returns no command.
        """
        event = self._normalise(event)
        handler = _TRANSITIONS.get((self.state.phase, type(event)))
        if handler is None:
            return []
        result = handler(self, event)
        if result is None:  # the handler judged the event stale or irrelevant
            return []
        self.state, commands = result
        return commands

    @property
    def finished(self) -> bool:
        """True once the call needs nothing more from the engine."""
        return self.state.phase is Phase.DONE

    def channels(self) -> tuple[str, ...]:
        """The channels this call currently owns (caller first)."""
        leg = self.state.leg_id
        return (self.call_id,) if leg is None else (self.call_id, leg)

    def _normalise(self, event: Event) -> Event:
        """Turn a 404 on one of our channels into the fact it reveals.

        A command failing with "gone" on the caller's channel means the caller
        hung up before Asterisk told us; on the current leg, that the leg ended.
        """
        if isinstance(event, CommandFailed) and event.gone:
            channel = getattr(event.command, "channel_id", None)
            if channel == self.call_id:
                return CallerGone()
            leg = self.state.leg_id
            if leg is not None and leg in (
                channel,
                getattr(event.command, "leg_id", None),
            ):
                return LegFailed(leg, LegFailure.GONE)
        return event

    def _plan(self) -> Plan:
        if self.plan is None:  # pragma: no cover - the table never allows it
            raise RuntimeError("call has no plan before CallerEntered")
        return self.plan

    def _next_leg(self, state: CallState) -> tuple[CallState, str]:
        return replace(state, seq=state.seq + 1), wire.leg_id(self.id_prefix, state.seq + 1)

    def _next_playback(self, state: CallState) -> tuple[CallState, str]:
        return replace(state, seq=state.seq + 1), wire.playback_id(self.id_prefix, state.seq + 1)

    # --------------------------------------------------------------- NEW

    def _on_entered(self, event: CallerEntered) -> Transition:
        """A caller arrived: record the decision, answer at once, start the plan.

        The caller is answered at once (after the request that rings the
        first phone, when the plan starts with one) so that what they hear is
        ours (ringback, the announcement, music) instead of silence while the
        engine works. The practice goes on the channel with the step's own
        memory, so that a restart can find the call again; the dialed number
        is there already (`coverage-inbound` sets COVERAGE_DID before Stasis).
        """
        self.plan = plan = event.plan
        # What callees' phones show and what can be dialed back: the
        # carrier's text made printable, one line, 40 characters at most
        # (a caller ID can carry escapes, bidi overrides or CR LF, which
        # would otherwise reach the operator's screen or the SIP headers of
        # the INVITE to their phone), and the number as digits only.
        self.caller_number = caller_digits(event.caller_number)
        self.caller_name = display_name(event.caller_name) or self.caller_number
        resumed = event.resumed or event.queue_status is not None
        # The journey first: recording costs no round trip, and once the
        # channel says an engine took the call, its journey must exist.
        commands: list[Command] = []
        if not resumed:
            received = Received.of(event.did, event.caller_number, event.caller_name)
            commands.append(Record(received))
        commands += [Record(Decided.of(plan, via=Via.ARI, resumed=resumed)), Answer(self.call_id)]
        # Which engine holds the call goes with the rest of its memory: an
        # engine coming back (restarted, thawed) leaves calls another holds.
        memory = ((wire.PRACTICE, plan.practice_id),) + (
            ((wire.ENGINE, engine),) if (engine := self.settings.engine) else ()
        )
        state = CallState(announced=resumed and plan.announcement is not None)
        if resumed:
            # Picked up by an engine with no memory of the call, in a plan
            # decided again now: find the place by the steps tried, not by
            # the old index (see `callflow.resume`). Back from the queue means
            # that step is over; otherwise the interrupted step is tried again.
            self._tried_before = event.tried
            self._first_step = resume_index(
                plan, event.tried, finished=event.queue_status is not None
            )
        if event.queue_status is not None:
            # Back from the queue with no memory of the call (the engine was
            # restarted while the caller waited): the queue step is over.
            commands.append(Record(QueueTimeout(event.queue_status)))
            return self._start_step(state, self._first_step, commands, after="queue", memory=memory)
        if plan.announcement and not resumed:
            state, playback = self._next_playback(state)
            # The memory before the announcement: Asterisk runs a channel's
            # ARI commands one after another on the channel's own thread, and a
            # playback holds that thread until it ends, so a variable set after
            # it would wait out the whole announcement (and an engine taking
            # the call on meanwhile would find no sign that it was received).
            # Music right behind it, asked for now: Asterisk starts it the
            # moment the announcement ends (the request is queued behind the
            # playback, and answered at once), so an engine that dies as the
            # announcement ends leaves the caller music, not silence, until
            # a survivor takes the call on.
            commands += [
                SetVariables(self.call_id, memory),
                Play(self.call_id, f"sound:{plan.announcement}", playback),
                StartMoh(self.call_id),
            ]
            announcing = replace(state, phase=Phase.ANNOUNCING, playback_id=playback, hold=Hold.MOH)
            return announcing, commands
        return self._start_step(state, self._first_step, commands, memory=memory)

    # --------------------------------------------------------------- ANNOUNCING

    def _on_announcement_done(self, event: PlaybackEnded) -> Transition | None:
        """The emergency announcement finished: go to the first step."""
        state = self.state
        if event.playback_id != state.playback_id:
            return None
        commands: list[Command] = [Record(AnnouncementPlayed())]
        return self._start_step(replace(state, playback_id=None, announced=True), 0, commands)

    def _on_announcement_failed(self, event: CommandFailed) -> Transition | None:
        """The announcement could not play (missing sound): never hold the caller for it."""
        if (
            not isinstance(event.command, Play)
            or event.command.playback_id != self.state.playback_id
        ):
            return None
        return self._start_step(replace(self.state, playback_id=None), 0, [])

    # --------------------------------------------------------------- steps

    def _start_step(
        self,
        state: CallState,
        index: int,
        commands: list[Command],
        *,
        after: str | None = None,
        memory: tuple[tuple[str, str], ...] = (),
    ) -> Transition:
        """Try step `index` of the plan, or the dialplan fallback when none is left.

        `memory`: more variables for the channel, set with the step's own.
        """
        steps = self._plan().steps
        index = self._pass_over_unavailable(index, commands)
        if index >= len(steps):
            return self._to_fallback(state, commands, reason="every step of the plan was tried")
        step = steps[index]
        state = replace(
            state,
            step=index,
            leg_id=None,
            leg_in_app=False,
            leg_up=False,
            timer=None,
            playback_id=None,
        )
        memory = (*memory, (wire.TRIED, format_tried(self._tried(index))))
        if step.kind is StepKind.OPERATORS:
            return self._enter_queue(state, step, commands, after, memory)
        return self._dial(state, step, commands, after, memory)

    def _pass_over_unavailable(self, index: int, commands: list[Command]) -> int:
        """The first step from `index` on that operator presence does not pass over.

        Asked at the moment the caller would enter each operators step
        (`presence`); each step passed over is a journey event with its reason.
        """
        plan = self._plan()
        while index < len(plan.steps):
            reason = reason_to_skip(plan, index, self._operators_check)
            if reason is None:
                break
            commands.append(Record(OperatorsSkipped(index, plan.steps[index].target, reason)))
            index += 1
        return index

    def _tried(self, index: int) -> tuple[str, ...]:
        """The keys of the steps tried once step `index` starts, the current one last.

        A step passed over (skipped for presence) counts as tried: a restart
        must not go back to it.
        """
        tried = list(self._tried_before)
        for key in step_keys(self._plan())[self._first_step : index + 1]:
            if not tried or tried[-1] != key:  # a resumed step is not listed twice
                tried.append(key)
        return tuple(tried)

    def _dial(
        self,
        state: CallState,
        step: Step,
        commands: list[Command],
        after: str | None,
        memory: tuple[tuple[str, str], ...],
    ) -> Transition:
        """Create and dial the front desk or doctor leg, and start its ring timer.

        Dial first: the leg goes out before everything else this transition
        does (the caller's answer and what they hear, the old leg's hang-up,
        the channel's memory), which follows in its own order.
        Ringback for the front desk (the patient expects a phone to ring at an
        open practice); music on hold for a doctor, which may take a while.
        The ring timer is ours rather than Asterisk's dial timeout so that
        "no answer" is decided in one place, here.
        """
        state, leg = self._next_leg(state)
        timer = f"ring:{leg}"
        commands[:0] = [
            CreateLeg(
                leg_id=leg,
                dial=step.dial,
                caller_channel_id=self.call_id,
                caller_name=self._display_name,
                caller_number=self.caller_number,
                timeout=step.ring_seconds + self.settings.leg_timeout_margin,
            ),
            StartTimer(timer, float(step.ring_seconds)),
        ]
        wanted = Hold.RINGING if step.kind is StepKind.STAFF else Hold.MOH
        state, sound = self._switch_hold(state, wanted)
        commands += [*sound, SetVariables(self.call_id, memory)]
        index = state.step
        if step.kind is StepKind.STAFF:
            commands.append(Record(StaffRinging(index, step.target, step.label, after)))
        else:
            commands.append(
                Record(
                    OncallDialing(
                        index,
                        step.target,
                        _doctor(step),
                        step.label,
                        step.role,
                        step.confirm,
                        after,
                    )
                )
            )
        return replace(state, phase=Phase.RINGING, leg_id=leg, timer=timer), commands

    def _enter_queue(
        self,
        state: CallState,
        step: Step,
        commands: list[Command],
        after: str | None,
        memory: tuple[tuple[str, str], ...],
    ) -> Transition:
        """Hand the caller to app_queue through the dialplan's queue context.

        app_queue stays in charge (operators log in, strategies and reports
        work as usual); the queue plays its own music in place of ours (no
        request to stop ours: Queue() starts its class over it). The
        caller name is prefixed with the practice's short name so the operator
        greets with the right practice ("MGP: Jane Doe"). The dialplan comes
        back with `Stasis(coverage-engine,queue-result,${QUEUESTATUS})` when
        the maximum wait runs out.
        """
        if state.hold is Hold.MOH:
            state = replace(state, hold=Hold.NONE)
        state, sound = self._switch_hold(state, Hold.NONE)
        commands += sound
        commands.append(
            SetVariables(
                self.call_id,
                (
                    *memory,
                    (wire.QUEUE, step.dial),
                    (wire.QUEUE_WAIT, str(step.ring_seconds)),
                    # The practice's whisper, played by Queue() to the operator
                    # only as they pick up; no extra request when there is none.
                    *(
                        ((wire.QUEUE_WHISPER, whisper),)
                        if (whisper := self._plan().whisper)
                        else ()
                    ),
                    (wire.CALLER_NAME, self._display_name),
                    # Who to hand the caller back to when the wait runs out
                    # (unless the memory above says it already).
                    *(
                        ((wire.ENGINE, engine),)
                        if (engine := self.settings.engine) and (wire.ENGINE, engine) not in memory
                        else ()
                    ),
                ),
            )
        )
        commands.append(ContinueInDialplan(self.call_id, self.settings.queue_context, watch=True))
        commands.append(
            Record(QueueEntered(state.step, step.target, step.ring_seconds, step.label, after))
        )
        return replace(state, phase=Phase.QUEUED), commands

    @property
    def _display_name(self) -> str:
        """The caller name callees see: "MGP: Jane Doe" (practice short name first)."""
        return f"{self._plan().short_name}: {self.caller_name}"

    def _next_step(self, state: CallState, commands: list[Command], after: str) -> Transition:
        return self._start_step(state, state.step + 1, commands, after=after)

    def _to_fallback(self, state: CallState, commands: list[Command], *, reason: str) -> Transition:
        """Give the caller to the dialplan's fallback context (queue, then a fixed number)."""
        state, sound = self._switch_hold(state, Hold.NONE)
        commands += sound
        if state.announced:
            # The safety net plays its own announcement unless told the caller heard ours.
            commands.append(SetVariables(self.call_id, ((wire.ANNOUNCED, "1"),)))
        commands.append(ContinueInDialplan(self.call_id, self.settings.fallback_context))
        outcome = Outcome.FAILED_OVER_TO_DIALPLAN
        commands.append(Record(Ended(outcome, reason=reason)))
        return replace(state, phase=Phase.DONE, outcome=outcome, timer=None), commands

    # --------------------------------------------------------------- RINGING

    def _on_leg_in_app(self, event: LegEnteredApp) -> Transition | None:
        """The leg entered the application: answered too, it is the person's turn."""
        if event.leg_id != self.state.leg_id:
            return None
        return self._leg_answered_when_ready(replace(self.state, leg_in_app=True))

    def _on_leg_up(self, event: LegUp) -> Transition | None:
        """The leg was answered: in the application too, it is the person's turn."""
        if event.leg_id != self.state.leg_id:
            return None
        return self._leg_answered_when_ready(replace(self.state, leg_up=True))

    def _leg_answered_when_ready(self, state: CallState) -> Transition:
        """Someone picked up. A press-1 step asks them to confirm first.

        Only a leg both answered and in the application can hear a prompt or
        join a bridge; Asterisk reports the two in either order.

        The press-1 rule: a doctor's mobile forwards an unanswered call to
        their personal voicemail, which "answers" like a person would. Only a
        human presses 1, so on `confirm` steps the caller is bridged only
        after the digit arrives; a voicemail never hears the caller.
        """
        leg = state.leg_id
        if leg is None or not (state.leg_in_app and state.leg_up):
            return state, []
        step = self._plan().steps[state.step]
        commands: list[Command] = [CancelTimer(state.timer)] if state.timer else []
        if not step.confirm:
            return self._bridge(replace(state, timer=None), step, commands)
        state, playback = self._next_playback(state)
        timer = f"confirm:{leg}"
        commands += [
            Play(leg, self.settings.confirm_media(self._plan()), playback),
            StartTimer(timer, self.settings.confirm_seconds),
            Record(OncallAnswered(_doctor(step))),
        ]
        state = replace(state, phase=Phase.CONFIRMING, playback_id=playback, timer=timer, prompts=1)
        return state, commands

    def _on_leg_failed(self, event: LegFailed) -> Transition | None:
        """The leg is busy, declined, unreachable or gone: try the next step."""
        state = self.state
        if event.leg_id != state.leg_id:
            return None
        commands: list[Command] = [CancelTimer(state.timer)] if state.timer else []
        step = self._plan().steps[state.step]
        if step.kind is StepKind.ONCALL:
            missed = _MISSED_BY_CAUSE.get(event.cause, OncallNoAnswer)
            commands.append(Record(missed(_doctor(step), event.cause.value)))
        return self._next_step(replace(state, leg_id=None, timer=None), commands, event.cause)

    def _on_ring_timeout(self, event: TimerFired) -> Transition | None:
        """Nobody answered within the step's ring time: hang the leg up, move on."""
        state = self.state
        if event.name != state.timer or state.leg_id is None:
            return None
        step = self._plan().steps[state.step]
        commands: list[Command] = [HangUp(state.leg_id, "no_answer")]
        if step.kind is StepKind.ONCALL:
            commands.append(Record(OncallNoAnswer(_doctor(step), LegFailure.NO_ANSWER.value)))
        return self._next_step(replace(state, leg_id=None, timer=None), commands, "no_answer")

    def _on_leg_command_failed(self, event: CommandFailed) -> Transition | None:
        """Asterisk refused to create or dial the leg (unknown endpoint...): next step."""
        command = event.command
        if isinstance(command, CreateLeg) and command.leg_id == self.state.leg_id:
            return self._on_leg_failed(LegFailed(command.leg_id, LegFailure.GONE))
        return None

    # --------------------------------------------------------------- CONFIRMING

    def _on_dtmf(self, event: DtmfReceived) -> Transition | None:
        """The doctor pressed a key. Only `1` accepts; other keys are ignored."""
        state = self.state
        if event.channel_id != state.leg_id or event.digit != "1":
            return None
        step = self._plan().steps[state.step]
        commands: list[Command] = []
        if state.timer:
            commands.append(CancelTimer(state.timer))
        if state.playback_id:
            commands.append(StopPlayback(state.playback_id))
        commands.append(Record(OncallConfirmed(_doctor(step))))
        return self._bridge(
            replace(state, timer=None, playback_id=None, prompts=0, generic_prompt=False),
            step,
            commands,
        )

    def _on_prompt_done(self, event: PlaybackEnded) -> Transition | None:
        """The press-1 prompt ended without a key: say it again until the timer runs out."""
        state, leg = self.state, self.state.leg_id
        if event.playback_id != state.playback_id or leg is None:
            return None
        if event.failed and not state.generic_prompt:
            # The practice's prompt is missing: switch to the generic one now
            # (this does not count as a repeat).
            state, playback = self._next_playback(state)
            media = self.settings.generic_confirm_media
            return replace(state, playback_id=playback, generic_prompt=True), [
                Play(leg, media, playback)
            ]
        if state.prompts >= self.settings.confirm_plays:
            return replace(state, playback_id=None), []  # silence until the timer decides
        state, playback = self._next_playback(state)
        media = (
            self.settings.generic_confirm_media
            if state.generic_prompt
            else self.settings.confirm_media(self._plan())
        )
        state = replace(state, playback_id=playback, prompts=state.prompts + 1)
        return state, [Play(leg, media, playback)]

    def _on_confirm_timeout(self, event: TimerFired) -> Transition | None:
        """Answered but no 1 pressed in time: a voicemail, or someone who cannot take it."""
        state = self.state
        if event.name != state.timer or state.leg_id is None:
            return None
        step = self._plan().steps[state.step]
        commands: list[Command] = [
            HangUp(state.leg_id, "normal"),
            Record(OncallNotConfirmed(_doctor(step), "not_confirmed")),
        ]
        cleared = replace(
            state, leg_id=None, timer=None, playback_id=None, prompts=0, generic_prompt=False
        )
        return self._next_step(cleared, commands, "not_confirmed")

    def _on_confirm_leg_failed(self, event: LegFailed) -> Transition | None:
        """The doctor hung up on the prompt: they declined."""
        state = self.state
        if event.leg_id != state.leg_id:
            return None
        step = self._plan().steps[state.step]
        commands: list[Command] = [CancelTimer(state.timer)] if state.timer else []
        commands.append(Record(OncallDeclined(_doctor(step), "hangup")))
        cleared = replace(
            state, leg_id=None, timer=None, playback_id=None, prompts=0, generic_prompt=False
        )
        return self._next_step(cleared, commands, "declined")

    # --------------------------------------------------------------- TALKING

    def _bridge(self, state: CallState, step: Step, commands: list[Command]) -> Transition:
        """Connect caller and callee in a mixing bridge; our ringback/music stops first."""
        leg = state.leg_id
        if leg is None:  # pragma: no cover - only called with a live leg
            raise RuntimeError("bridge without a leg")
        state, sound = self._switch_hold(state, Hold.NONE)
        commands += sound
        bridge = wire.bridge_id(self.id_prefix)
        commands.append(MakeBridge(bridge, (self.call_id, leg)))
        # Recorded as soon as they are bridged, before the next round trip: an
        # engine stopped or killed after the bridge must leave a journey that
        # says a person answered (recovery closes it from what was written).
        commands.append(Record(Bridged(step.kind, step.target, step.label)))
        # From now on the person hanging up ends the call, even if no engine
        # hears it (this one died meanwhile): Asterisk runs the handler as the
        # leg hangs up and releases the caller, instead of leaving them in
        # silence until a survivor takes the call over.
        release = wire.release_handler(self.call_id, self.settings.release_context)
        commands.append(SetVariables(leg, ((wire.HANGUP_HANDLER_PUSH, release),)))
        outcome = Outcome.answered_by_kind(step.kind)
        return (
            replace(
                state,
                phase=Phase.TALKING,
                bridge_id=bridge,
                answered_by=step.target,
                outcome=outcome,
            ),
            commands,
        )

    def _on_callee_hung_up(self, event: LegFailed | LegHangingUp) -> Transition | None:
        """The front desk or doctor hung up: the conversation is over, release the caller."""
        state = self.state
        if event.leg_id != state.leg_id:
            return None
        commands: list[Command] = [HangUp(self.call_id, "normal")]
        if state.bridge_id:
            commands.append(DestroyBridge(state.bridge_id))
        commands += [Record(CalleeHungUp()), self._ended(state)]
        done = replace(
            state, phase=Phase.DONE, leg_id=None, leg_in_app=False, leg_up=False, bridge_id=None
        )
        return done, commands

    def _on_bridge_failed(self, event: CommandFailed) -> Transition | None:
        """The bridge could not be made (a channel vanished): drop the leg, try the next step."""
        state = self.state
        if not isinstance(event.command, MakeBridge) or event.command.bridge_id != state.bridge_id:
            return None
        commands: list[Command] = [DestroyBridge(event.command.bridge_id)]
        if state.leg_id:
            # The caller goes on to the next step: the leg must not release them.
            commands.append(SetVariables(state.leg_id, ((wire.HANGUP_HANDLER_WIPE, ""),)))
            commands.append(HangUp(state.leg_id, "normal"))
        cleared = replace(state, leg_id=None, bridge_id=None, answered_by=None, outcome=None)
        return self._next_step(cleared, commands, "bridge_failed")

    # --------------------------------------------------------------- QUEUED

    def _on_queue_result(self, event: QueueResult) -> Transition:
        """The caller is back from the queue unanswered: the maximum wait ran out."""
        commands: list[Command] = [Record(QueueTimeout(event.status))]
        return self._next_step(replace(self.state, hold=Hold.NONE), commands, "queue")

    def _on_operator_answered(self, event: OperatorConnected) -> Transition:
        """app_queue connected the caller to an operator."""
        commands: list[Command] = [
            Record(OperatorAnswered(event.member)),
            Record(Bridged(StepKind.OPERATORS, event.member)),
        ]
        state = replace(
            self.state,
            phase=Phase.WITH_OPERATOR,
            answered_by=event.member,
            outcome=Outcome.ANSWERED_BY_OPERATOR,
        )
        return state, commands

    def _on_queue_continue_failed(self, event: CommandFailed) -> Transition | None:
        """The queue context could not be entered: the dialplan fallback is the net."""
        command = event.command
        if (
            not isinstance(command, ContinueInDialplan)
            or command.context != self.settings.queue_context
        ):
            return None
        return self._to_fallback(self.state, [], reason=f"queue unavailable: {event.reason}")

    # --------------------------------------------------------------- WITH_OPERATOR

    def _on_operator_done(self, event: QueueResult) -> Transition:
        """The operator hung up first and app_queue returned the caller: release them."""
        commands: list[Command] = [
            HangUp(self.call_id, "normal"),
            Record(CalleeHungUp()),
            self._ended(self.state),
        ]
        return replace(self.state, phase=Phase.DONE), commands

    # --------------------------------------------------------------- teardown

    def _on_caller_hung_up(self, event: CallerGone) -> Transition:
        """The caller hung up: tear down every leg, bridge, timer and prompt of the call at once.

        Asterisk would not do it for us: a leg we created lives in the
        application on its own, so a doctor's phone would keep ringing for a
        caller who is gone, and an empty bridge would stay.
        """
        state = self.state
        commands: list[Command] = []
        if state.timer:
            commands.append(CancelTimer(state.timer))
        if state.leg_id:
            commands.append(HangUp(state.leg_id, "normal"))
        if state.bridge_id:
            commands.append(DestroyBridge(state.bridge_id))
        outcome = state.outcome or _abandoned(state.phase)
        state = replace(
            state,
            phase=Phase.DONE,
            leg_id=None,
            leg_in_app=False,
            leg_up=False,
            bridge_id=None,
            timer=None,
            playback_id=None,
            hold=Hold.NONE,
            outcome=outcome,
            prompts=0,
            generic_prompt=False,
        )
        commands += [Record(CallerHungUp()), self._ended(state)]
        return state, commands

    def _ended(self, state: CallState) -> Record:
        if state.outcome is None:  # pragma: no cover - every ending phase sets one
            raise RuntimeError("a call ended without an outcome")
        return Record(Ended(state.outcome, state.answered_by))

    # --------------------------------------------------------------- helpers

    def _switch_hold(self, state: CallState, wanted: Hold) -> tuple[CallState, list[Command]]:
        """Commands that move what the caller hears from `state.hold` to `wanted`."""
        if state.hold is wanted:
            return state, []
        commands: list[Command] = []
        if state.hold is Hold.RINGING:
            commands.append(StopRinging(self.call_id))
        elif state.hold is Hold.MOH:
            commands.append(StopMoh(self.call_id))
        if wanted is Hold.RINGING:
            commands.append(StartRinging(self.call_id))
        elif wanted is Hold.MOH:
            commands.append(StartMoh(self.call_id))
        return replace(state, hold=wanted), commands


def _abandoned(phase: Phase) -> Outcome:
    """The outcome of a call whose caller hung up before reaching a person."""
    return {
        Phase.NEW: Outcome.ABANDONED_DURING_ANNOUNCEMENT,
        Phase.ANNOUNCING: Outcome.ABANDONED_DURING_ANNOUNCEMENT,
        Phase.QUEUED: Outcome.ABANDONED_IN_QUEUE,
    }.get(phase, Outcome.ABANDONED_WHILE_RINGING)


def _doctor(step: Step) -> str:
    """The doctor an on-call step rings (its target when no doctor id was given)."""
    return step.doctor_id or step.target


# How a doctor's leg that failed is recorded; anything else is "no answer".
_MISSED_BY_CAUSE: Mapping[LegFailure, type[OncallMissed]] = {
    LegFailure.BUSY: OncallBusy,
    LegFailure.REJECTED: OncallDeclined,
}


_Handler = Callable[[Call, Any], "Transition | None"]

# The whole behaviour of a call, phase by phase. Anything not listed here is
# an event that cannot happen in that phase (or is stale) and changes nothing.
_TRANSITIONS: Mapping[tuple[Phase, type], _Handler] = {
    (Phase.NEW, CallerEntered): Call._on_entered,
    (Phase.ANNOUNCING, PlaybackEnded): Call._on_announcement_done,
    (Phase.ANNOUNCING, CommandFailed): Call._on_announcement_failed,
    (Phase.ANNOUNCING, CallerGone): Call._on_caller_hung_up,
    (Phase.RINGING, LegEnteredApp): Call._on_leg_in_app,
    (Phase.RINGING, LegUp): Call._on_leg_up,
    (Phase.RINGING, LegFailed): Call._on_leg_failed,
    (Phase.RINGING, TimerFired): Call._on_ring_timeout,
    (Phase.RINGING, CommandFailed): Call._on_leg_command_failed,
    (Phase.RINGING, CallerGone): Call._on_caller_hung_up,
    (Phase.CONFIRMING, DtmfReceived): Call._on_dtmf,
    (Phase.CONFIRMING, PlaybackEnded): Call._on_prompt_done,
    (Phase.CONFIRMING, TimerFired): Call._on_confirm_timeout,
    (Phase.CONFIRMING, LegFailed): Call._on_confirm_leg_failed,
    (Phase.CONFIRMING, CallerGone): Call._on_caller_hung_up,
    (Phase.TALKING, LegFailed): Call._on_callee_hung_up,
    (Phase.TALKING, LegHangingUp): Call._on_callee_hung_up,
    (Phase.TALKING, CommandFailed): Call._on_bridge_failed,
    (Phase.TALKING, CallerGone): Call._on_caller_hung_up,
    (Phase.QUEUED, QueueResult): Call._on_queue_result,
    (Phase.QUEUED, OperatorConnected): Call._on_operator_answered,
    (Phase.QUEUED, CommandFailed): Call._on_queue_continue_failed,
    (Phase.QUEUED, CallerGone): Call._on_caller_hung_up,
    (Phase.WITH_OPERATOR, QueueResult): Call._on_operator_done,
    (Phase.WITH_OPERATOR, CallerGone): Call._on_caller_hung_up,
}
