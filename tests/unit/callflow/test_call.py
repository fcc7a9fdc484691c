"""The per-call state machine, event by event, with the whole state asserted each time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from coverage_engine.callflow import Call, CallSettings, CallState, Hold, LegFailure, Phase
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
    LegHangingUp,
    LegUp,
    OperatorConnected,
    PlaybackEnded,
    QueueResult,
    TimerFired,
)
from coverage_engine.journey import (
    Decided,
    Ended,
    EventKind,
    Outcome,
    Received,
    StaffRinging,
    Via,
    event_class,
)
from coverage_engine.plan import Plan, Step, StepKind

C = "caller1"  # the caller's channel id, which is also the call id
# What the person's leg runs as it hangs up once bridged (dialplan/coverage-engine.conf).
RELEASE = "coverage-release,s,1(caller1)"
FRONT = Step(StepKind.STAFF, "frontdesk-maple", "PJSIP/frontdesk-maple", 20, label="Front desk")
QUEUE = Step(StepKind.OPERATORS, "answering", "answering", 90, label="Operators")
PATEL = Step(
    StepKind.ONCALL,
    "patel",
    "PJSIP/patel",
    25,
    True,
    "Dr. Patel",
    doctor_id="patel",
    role="primary",
)
NGUYEN = Step(
    StepKind.ONCALL,
    "nguyen",
    "PJSIP/nguyen",
    25,
    True,
    "Dr. Nguyen",
    doctor_id="nguyen",
    role="backup",
)
OPEN = Plan("maple-grove", "Maple Grove Pediatrics", "MGP", "open", "office hours", (FRONT, QUEUE))
CLOSED = Plan(
    "maple-grove",
    "Maple Grove Pediatrics",
    "MGP",
    "closed",
    "outside hours",
    (QUEUE, PATEL, NGUYEN, QUEUE),
    announcement="coverage-engine/emergency-maple-grove",
)
PROMPT = "sound:coverage/accept-maple-grove"


def entered(plan: Plan, **kw: Any) -> CallerEntered:
    return CallerEntered(plan, "+13125559876", "Jane Doe", "+13125550100", **kw)


def rec(name: str) -> str:
    """A journey record in the tables below, by its event's name (details have own tests)."""
    return name


def names(commands: Sequence[Command | str]) -> list[str]:
    """Commands as comparable text: records by their event's name."""
    return [
        c if isinstance(c, str) else c.event.name if isinstance(c, Record) else repr(c)
        for c in commands
    ]


def expect(call: Call, event: Event, commands: Sequence[Command | str], state: CallState) -> None:
    """Feed one event; the commands (records by name) and the whole state must match."""
    got = call.handle(event)
    assert names(got) == names(commands)
    assert call.state == state


def answer(call: Call, leg: str) -> list[Command]:
    """Asterisk's two facts of an answered leg: it is in the application, and it is up."""
    assert call.handle(LegEnteredApp(leg)) == []
    return call.handle(LegUp(leg))


PRACTICE = ("COVERAGE_PRACTICE", "maple-grove")


def step_var(*tried: str, first: bool = False) -> SetVariables:
    """The variables a step sets in one request: the keys of the steps tried so far, the
    current one last (and, on the call's first step, the practice it was decided for)."""
    return SetVariables(C, (*([PRACTICE] if first else []), ("COVERAGE_TRIED", ",".join(tried))))


def queue_vars(*tried: str, first: bool = False) -> SetVariables:
    """An operators step's one request of variables: its memory, then what the dialplan reads."""
    return SetVariables(C, (*step_var(*tried, first=first).variables, *QUEUE_VARS.variables))


OPEN_KEYS = ("staff/frontdesk-maple", "operators/answering")
CLOSED_KEYS = ("operators/answering", "oncall/patel", "oncall/nguyen", "operators/answering#2")


# Set with the announcement (the dialed number is on the channel already: the dialplan).
ENTRY_VARS = SetVariables(C, (PRACTICE,))
QUEUE_VARS = SetVariables(
    C,
    (
        ("COVERAGE_QUEUE", "answering"),
        ("COVERAGE_QUEUE_WAIT", "90"),
        ("CALLERID(name)", "MGP: Jane Doe"),
    ),
)
TO_QUEUE = ContinueInDialplan(C, "coverage-queue", watch=True)


def test_open_front_desk_answers_and_is_bridged() -> None:
    """Open: the caller hears ringback, the front desk is dialed, answers, and is bridged."""
    call = Call(C)
    expect(
        call,
        entered(OPEN),
        [
            # Dial first: the front desk's phone, then the caller's answer and
            # ringback, then the call's memory on the channel.
            CreateLeg(
                "caller1-leg1", "PJSIP/frontdesk-maple", C, "MGP: Jane Doe", "+13125559876", 25
            ),
            StartTimer("ring:caller1-leg1", 20.0),
            rec("received"),
            rec("decided"),
            Answer(C),
            StartRinging(C),
            step_var(*OPEN_KEYS[:1], first=True),
            rec("staff_ringing"),
        ],
        CallState(
            Phase.RINGING, 0, "caller1-leg1", timer="ring:caller1-leg1", hold=Hold.RINGING, seq=1
        ),
    )
    assert call.handle(LegEnteredApp("caller1-leg1")) == []
    expect(
        call,
        LegUp("caller1-leg1"),
        [
            CancelTimer("ring:caller1-leg1"),
            StopRinging(C),
            MakeBridge("caller1-bridge", (C, "caller1-leg1")),
            # Recorded before the next round trip: an engine stopped now leaves "bridged".
            rec("bridged"),
            # The front desk hanging up releases the caller, engine or not.
            SetVariables("caller1-leg1", (("CHANNEL(hangup_handler_push)", RELEASE),)),
        ],
        CallState(
            Phase.TALKING,
            0,
            "caller1-leg1",
            bridge_id="caller1-bridge",
            answered_by="frontdesk-maple",
            outcome=Outcome.ANSWERED_BY_STAFF,
            seq=1,
            leg_in_app=True,
            leg_up=True,
        ),
    )
    expect(
        call,
        CallerGone(),
        [
            HangUp("caller1-leg1"),
            DestroyBridge("caller1-bridge"),
            rec("caller_hung_up"),
            rec("ended"),
        ],
        CallState(
            Phase.DONE, 0, answered_by="frontdesk-maple", outcome=Outcome.ANSWERED_BY_STAFF, seq=1
        ),
    )
    assert call.finished


def test_open_front_desk_no_answer_goes_to_the_operator_queue() -> None:
    """Open: the front desk rings out, its leg is hung up, the caller enters the queue."""
    call = Call(C)
    call.handle(entered(OPEN))
    expect(
        call,
        TimerFired("ring:caller1-leg1"),
        [
            HangUp("caller1-leg1", "no_answer"),
            StopRinging(C),
            queue_vars(*OPEN_KEYS[:2]),
            TO_QUEUE,
            rec("queue_entered"),
        ],
        CallState(Phase.QUEUED, 1, seq=1),
    )
    expect(
        call,
        OperatorConnected("PJSIP/operator2"),
        [rec("operator_answered"), rec("bridged")],
        CallState(
            Phase.WITH_OPERATOR,
            1,
            answered_by="PJSIP/operator2",
            outcome=Outcome.ANSWERED_BY_OPERATOR,
            seq=1,
        ),
    )
    expect(
        call,
        CallerGone(),
        [rec("caller_hung_up"), rec("ended")],
        CallState(
            Phase.DONE,
            1,
            answered_by="PJSIP/operator2",
            outcome=Outcome.ANSWERED_BY_OPERATOR,
            seq=1,
        ),
    )


def closed_call_in_queue() -> Call:
    """A closed-hours call after the announcement, waiting in the operator queue."""
    call = Call(C)
    expect(
        call,
        entered(CLOSED),
        [
            rec("received"),
            rec("decided"),
            Answer(C),
            ENTRY_VARS,
            Play(C, "sound:coverage-engine/emergency-maple-grove", "caller1-pb1"),
            # Asked for now, started by Asterisk as the announcement ends.
            StartMoh(C),
        ],
        CallState(Phase.ANNOUNCING, playback_id="caller1-pb1", seq=1, hold=Hold.MOH),
    )
    expect(
        call,
        PlaybackEnded("caller1-pb1"),
        [
            rec("announcement_played"),
            queue_vars(*CLOSED_KEYS[:1]),
            TO_QUEUE,
            rec("queue_entered"),
        ],
        CallState(Phase.QUEUED, 0, seq=1, announced=True),
    )
    return call


def test_the_engine_holding_the_call_is_in_its_memory_from_the_first_request() -> None:
    """With two engines, the one that decided the call says so before the announcement, and
    again (the same) when it sends the caller to the queue: an engine coming back after a
    restart finds the call held by another and leaves it alone."""
    call = Call(C, settings=CallSettings(engine="coverage-engine-b"))
    commands = call.handle(entered(CLOSED))
    holder = ("COVERAGE_ENGINE", "coverage-engine-b")
    assert SetVariables(C, (PRACTICE, holder)) in commands
    later = call.handle(PlaybackEnded("caller1-pb1"))
    (queue,) = [c for c in later if isinstance(c, SetVariables)]
    assert queue.variables.count(holder) == 1


def test_closed_queue_timeout_then_primary_presses_1() -> None:
    """Closed: the queue times out, the primary answers, hears the prompt, presses 1, is bridged."""
    call = closed_call_in_queue()
    expect(
        call,
        QueueResult("TIMEOUT"),
        [
            CreateLeg("caller1-leg2", "PJSIP/patel", C, "MGP: Jane Doe", "+13125559876", 30),
            StartTimer("ring:caller1-leg2", 25.0),
            rec("queue_timeout"),
            StartMoh(C),
            step_var(*CLOSED_KEYS[:2]),
            rec("oncall_dialing"),
        ],
        CallState(
            Phase.RINGING,
            1,
            "caller1-leg2",
            timer="ring:caller1-leg2",
            hold=Hold.MOH,
            seq=2,
            announced=True,
        ),
    )
    assert call.handle(LegEnteredApp("caller1-leg2")) == []
    expect(
        call,
        LegUp("caller1-leg2"),
        [
            CancelTimer("ring:caller1-leg2"),
            Play("caller1-leg2", PROMPT, "caller1-pb3"),
            StartTimer("confirm:caller1-leg2", 15.0),
            rec("oncall_answered"),
        ],
        CallState(
            Phase.CONFIRMING,
            1,
            "caller1-leg2",
            playback_id="caller1-pb3",
            timer="confirm:caller1-leg2",
            hold=Hold.MOH,
            seq=3,
            prompts=1,
            announced=True,
            leg_in_app=True,
            leg_up=True,
        ),
    )
    # The prompt repeats while the doctor thinks.
    expect(
        call,
        PlaybackEnded("caller1-pb3"),
        [Play("caller1-leg2", PROMPT, "caller1-pb4")],
        CallState(
            Phase.CONFIRMING,
            1,
            "caller1-leg2",
            playback_id="caller1-pb4",
            timer="confirm:caller1-leg2",
            hold=Hold.MOH,
            seq=4,
            prompts=2,
            announced=True,
            leg_in_app=True,
            leg_up=True,
        ),
    )
    expect(
        call,
        DtmfReceived("caller1-leg2", "1"),
        [
            CancelTimer("confirm:caller1-leg2"),
            StopPlayback("caller1-pb4"),
            rec("oncall_confirmed"),
            StopMoh(C),
            MakeBridge("caller1-bridge", (C, "caller1-leg2")),
            rec("bridged"),
            SetVariables("caller1-leg2", (("CHANNEL(hangup_handler_push)", RELEASE),)),
        ],
        CallState(
            Phase.TALKING,
            1,
            "caller1-leg2",
            bridge_id="caller1-bridge",
            answered_by="patel",
            outcome=Outcome.ANSWERED_BY_ONCALL,
            seq=4,
            announced=True,
            leg_in_app=True,
            leg_up=True,
        ),
    )
    expect(
        call,
        LegFailed("caller1-leg2", LegFailure.GONE),
        [HangUp(C), DestroyBridge("caller1-bridge"), rec("callee_hung_up"), rec("ended")],
        CallState(
            Phase.DONE,
            1,
            answered_by="patel",
            outcome=Outcome.ANSWERED_BY_ONCALL,
            seq=4,
            announced=True,
        ),
    )


def test_primary_voicemail_never_presses_1_so_backup_is_dialed() -> None:
    """The press-1 rule: an answer without a 1 (a voicemail) is hung up and the backup is dialed."""
    call = closed_call_in_queue()
    call.handle(QueueResult("TIMEOUT"))
    answer(call, "caller1-leg2")
    call.handle(DtmfReceived("caller1-leg2", "5"))  # not 1: ignored
    expect(
        call,
        TimerFired("confirm:caller1-leg2"),
        [
            # The backup's phone rings first; the voicemail is hung up next.
            CreateLeg("caller1-leg4", "PJSIP/nguyen", C, "MGP: Jane Doe", "+13125559876", 30),
            StartTimer("ring:caller1-leg4", 25.0),
            HangUp("caller1-leg2"),
            rec("oncall_not_confirmed"),
            step_var(*CLOSED_KEYS[:3]),
            rec("oncall_dialing"),
        ],
        CallState(
            Phase.RINGING,
            2,
            "caller1-leg4",
            timer="ring:caller1-leg4",
            hold=Hold.MOH,
            seq=4,
            announced=True,
        ),
    )


@pytest.mark.parametrize(
    ("cause", "record"),
    [
        (LegFailure.BUSY, "oncall_busy"),
        (LegFailure.REJECTED, "oncall_declined"),
        (LegFailure.NO_ANSWER, "oncall_no_answer"),
        (LegFailure.GONE, "oncall_no_answer"),
    ],
)
def test_doctor_leg_failure_is_recorded_by_cause(cause: LegFailure, record: str) -> None:
    """Busy, declined, unanswered or unreachable doctors are recorded as such; then next step."""
    call = closed_call_in_queue()
    call.handle(QueueResult("TIMEOUT"))
    got = call.handle(LegFailed("caller1-leg2", cause))
    assert names(got)[2:4] == ["CancelTimer(name='ring:caller1-leg2')", record]
    assert got[3] == Record(event_class(EventKind(record))(doctor="patel", cause=cause.value))
    assert call.state.step == 2
    assert call.state.leg_id == "caller1-leg3"


def test_primary_and_backup_fail_so_the_caller_goes_back_to_the_operators() -> None:
    """Both doctors fail: the last step, the operator queue, takes the caller."""
    call = closed_call_in_queue()
    call.handle(QueueResult("TIMEOUT"))
    call.handle(LegFailed("caller1-leg2", LegFailure.BUSY))
    expect(
        call,
        TimerFired("ring:caller1-leg3"),
        [
            HangUp("caller1-leg3", "no_answer"),
            rec("oncall_no_answer"),
            # Our music goes on until Queue() starts its own over it.
            queue_vars(*CLOSED_KEYS[:4]),
            TO_QUEUE,
            rec("queue_entered"),
        ],
        CallState(Phase.QUEUED, 3, seq=3, announced=True),
    )
    # Even the final queue returns the caller (no operator logged in): the
    # dialplan's fallback context is the last safety net.
    expect(
        call,
        QueueResult("JOINEMPTY"),
        [
            rec("queue_timeout"),
            # The safety net must not repeat the announcement the caller heard.
            SetVariables(C, (("COVERAGE_ANNOUNCED", "1"),)),
            ContinueInDialplan(C, "coverage-fallback"),
            rec("ended"),
        ],
        CallState(Phase.DONE, 3, outcome=Outcome.FAILED_OVER_TO_DIALPLAN, seq=3, announced=True),
    )


def test_caller_hangs_up_while_the_doctor_rings_tears_everything_down() -> None:
    """The caller hangs up mid-ring: the doctor's leg and the ring timer go at once."""
    call = closed_call_in_queue()
    call.handle(QueueResult("TIMEOUT"))
    expect(
        call,
        CallerGone(),
        [
            CancelTimer("ring:caller1-leg2"),
            HangUp("caller1-leg2"),
            rec("caller_hung_up"),
            rec("ended"),
        ],
        CallState(Phase.DONE, 1, outcome=Outcome.ABANDONED_WHILE_RINGING, seq=2, announced=True),
    )
    # Late news about the leg we hung up changes nothing.
    expect(call, LegFailed("caller1-leg2", LegFailure.GONE), [], call.state)


def test_caller_hangs_up_during_the_press_1_prompt() -> None:
    """The caller hangs up while the doctor hears the prompt: the doctor's leg is hung up."""
    call = closed_call_in_queue()
    call.handle(QueueResult("TIMEOUT"))
    answer(call, "caller1-leg2")
    got = call.handle(CallerGone())
    assert HangUp("caller1-leg2") in got
    assert CancelTimer("confirm:caller1-leg2") in got
    assert call.state == CallState(
        Phase.DONE, 1, outcome=Outcome.ABANDONED_WHILE_RINGING, seq=3, announced=True
    )


def test_caller_hangs_up_in_the_queue() -> None:
    """A caller who gives up in the queue is recorded as abandoned there; nothing to tear down."""
    call = closed_call_in_queue()
    expect(
        call,
        CallerGone(),
        [rec("caller_hung_up"), rec("ended")],
        CallState(Phase.DONE, 0, outcome=Outcome.ABANDONED_IN_QUEUE, seq=1, announced=True),
    )


def test_caller_hangs_up_during_the_announcement() -> None:
    """Hanging up during the announcement is its own outcome."""
    call = Call(C)
    call.handle(entered(CLOSED))
    got = call.handle(CallerGone())
    assert got[-1] == Record(Ended(Outcome.ABANDONED_DURING_ANNOUNCEMENT))


def test_a_missing_announcement_does_not_hold_the_caller() -> None:
    """If the announcement cannot play, the call goes straight to its first step."""
    call = Call(C)
    play = next(c for c in call.handle(entered(CLOSED)) if isinstance(c, Play))
    got = call.handle(CommandFailed(play, gone=False, reason="sound not found"))
    assert TO_QUEUE in got
    assert call.state.phase is Phase.QUEUED


def test_a_404_on_the_caller_channel_means_the_caller_hung_up() -> None:
    """A command failing because the caller's channel is gone is the same as a hang-up."""
    call = Call(C)
    call.handle(entered(OPEN))
    got = call.handle(CommandFailed(StartRinging(C), gone=True))
    assert HangUp("caller1-leg1") in got
    assert call.state.phase is Phase.DONE


def test_a_leg_that_cannot_be_created_moves_on() -> None:
    """Asterisk refusing the leg (unknown endpoint) moves the caller on to the next step."""
    call = Call(C)
    create = call.handle(entered(OPEN))[0]
    assert isinstance(create, CreateLeg)
    got = call.handle(CommandFailed(create, gone=False, reason="400 Allocation failed"))
    assert TO_QUEUE in got
    assert call.state.phase is Phase.QUEUED


def test_queue_context_missing_falls_back_to_the_dialplan() -> None:
    """If the caller cannot be continued into the queue context, the fallback context takes them."""
    call = closed_call_in_queue()
    got = call.handle(CommandFailed(TO_QUEUE, gone=False, reason="500"))
    assert ContinueInDialplan(C, "coverage-fallback") in got
    assert call.state.outcome is Outcome.FAILED_OVER_TO_DIALPLAN


def test_operator_hangs_up_first_and_the_caller_is_released() -> None:
    """When the operator ends the call, app_queue returns the caller, who is hung up."""
    call = closed_call_in_queue()
    call.handle(OperatorConnected("PJSIP/operator1"))
    got = call.handle(QueueResult(""))
    assert got[0] == HangUp(C)
    assert call.state.phase is Phase.DONE


def test_the_persons_hang_up_request_ends_a_conversation_and_nothing_before_it() -> None:
    """The person's BYE (`LegHangingUp`) comes before the hang-up handler releases the
    caller: in a conversation it ends the call as the person's hang-up; a leg still ringing
    waits for its end, whose cause says busy or declined."""
    ringing = Call(C)
    ringing.handle(entered(OPEN))
    assert ringing.handle(LegHangingUp("caller1-leg1")) == []
    assert ringing.state.phase is Phase.RINGING
    talking = Call(C)
    talking.handle(entered(OPEN))
    answer(talking, "caller1-leg1")
    got = talking.handle(LegHangingUp("caller1-leg1"))
    assert names(got) == names(
        [HangUp(C), DestroyBridge("caller1-bridge"), rec("callee_hung_up"), rec("ended")]
    )
    assert talking.handle(LegFailed("caller1-leg1", LegFailure.GONE)) == []


def test_bridge_failure_tries_the_next_step() -> None:
    """A bridge that cannot be built (a channel vanished) hangs up the leg and moves on; the
    leg's release handler is taken off first, or its hang-up would release the caller too."""
    call = Call(C)
    call.handle(entered(OPEN))
    bridge = answer(call, "caller1-leg1")[2]
    assert isinstance(bridge, MakeBridge)
    got = call.handle(CommandFailed(bridge, gone=False, reason="422"))
    assert got[:3] == [
        DestroyBridge("caller1-bridge"),
        SetVariables("caller1-leg1", (("CHANNEL(hangup_handler_wipe)", ""),)),
        HangUp("caller1-leg1"),
    ]
    assert call.state.phase is Phase.QUEUED


def test_resumed_from_the_queue_after_a_restart_goes_to_the_next_step() -> None:
    """A caller back from the queue that the engine does not remember resumes after that step."""
    call = Call(C, id_prefix="caller1-r1")
    got = call.handle(
        entered(CLOSED, tried=("operators/answering",), queue_status="TIMEOUT", resumed=True)
    )
    assert names(got)[2:5] == ["decided", "Answer(channel_id='caller1')", "queue_timeout"]
    assert got[2] == Record(Decided.of(CLOSED, via=Via.ARI, resumed=True))
    assert got[0] == CreateLeg(
        "caller1-r1-leg1", "PJSIP/patel", C, "MGP: Jane Doe", "+13125559876", 30
    )
    assert got[-2] == SetVariables(
        C, (PRACTICE, ("COVERAGE_TRIED", "operators/answering,oncall/patel"))
    )
    assert call.state.step == 1


def test_record_details_say_what_a_person_would_ask() -> None:
    """The journey records carry the decision, the doctor and the outcome."""
    call = Call(C)
    got = call.handle(entered(OPEN))
    assert got[2] == Record(Received("+13125550100", "+13125559876", "Jane Doe"))
    decided = got[3]
    assert isinstance(decided, Record)
    assert isinstance(decided.event, Decided)
    assert (decided.event.status, decided.event.reason) == ("open", "office hours")
    assert got[-1] == Record(StaffRinging(0, "frontdesk-maple", "Front desk"))


# Events that make no sense in a phase: each must leave the whole state as it was.
ILLEGAL: list[tuple[str, list[Event], Event]] = [
    ("new: dtmf", [], DtmfReceived(C, "1")),
    ("new: hangup before entering", [], CallerGone()),
    ("ringing: stale leg answered", [entered(OPEN)], LegUp("other-leg")),
    ("ringing: stale leg in app", [entered(OPEN)], LegEnteredApp("other-leg")),
    ("ringing: stale timer", [entered(OPEN)], TimerFired("ring:old")),
    ("ringing: dtmf before answer", [entered(OPEN)], DtmfReceived("caller1-leg1", "1")),
    ("ringing: queue result", [entered(OPEN)], QueueResult("TIMEOUT")),
    ("ringing: second entry", [entered(OPEN)], entered(CLOSED)),
    ("queued: leg answered", [entered(OPEN), TimerFired("ring:caller1-leg1")], LegUp("x")),
    (
        "bridged: dtmf",
        [entered(OPEN), LegEnteredApp("caller1-leg1"), LegUp("caller1-leg1")],
        DtmfReceived("caller1-leg1", "1"),
    ),
    (
        "done: anything",
        [entered(OPEN), CallerGone()],
        LegUp("caller1-leg1"),
    ),
]


@pytest.mark.parametrize(("case", "before", "event"), ILLEGAL, ids=[c[0] for c in ILLEGAL])
def test_an_illegal_event_changes_nothing(case: str, before: list[Event], event: Event) -> None:
    """An event that cannot happen in the current phase yields no command and no change."""
    call = Call(C)
    for e in before:
        call.handle(e)
    snapshot = replace(call.state)
    assert call.handle(event) == []
    assert call.state == snapshot


def test_the_prompt_repeats_a_bounded_number_of_times() -> None:
    """A prompt that ends at once (a missing sound) is not replayed forever; the timer decides."""
    call = closed_call_in_queue()
    call.handle(QueueResult("TIMEOUT"))
    answer(call, "caller1-leg2")
    plays = 1
    while call.handle(PlaybackEnded(call.state.playback_id or "")):
        plays += 1
    assert plays == 3
    assert call.state.phase is Phase.CONFIRMING
    assert call.state.playback_id is None
    assert HangUp("caller1-leg2") in call.handle(TimerFired("confirm:caller1-leg2"))


def test_a_missing_practice_prompt_falls_back_to_the_generic_one() -> None:
    """If the practice's press-1 prompt cannot play, the doctor hears the generic prompt."""
    call = closed_call_in_queue()
    call.handle(QueueResult("TIMEOUT"))
    answer(call, "caller1-leg2")
    got = call.handle(PlaybackEnded("caller1-pb3", failed=True))
    assert got == [Play("caller1-leg2", "sound:coverage/coverage-press-1", "caller1-pb4")]
    assert call.state.generic_prompt
    assert call.state.prompts == 1
    again = call.handle(PlaybackEnded("caller1-pb4"))
    assert again == [Play("caller1-leg2", "sound:coverage/coverage-press-1", "caller1-pb5")]


def test_the_safety_net_plays_its_announcement_when_ours_did_not_play() -> None:
    """A caller whose announcement could not play reaches the safety net without the flag."""
    call = Call(C)
    play = next(c for c in call.handle(entered(CLOSED)) if isinstance(c, Play))
    call.handle(CommandFailed(play, gone=False, reason="sound not found"))
    got = call.handle(CommandFailed(TO_QUEUE, gone=False, reason="500"))
    assert ContinueInDialplan(C, "coverage-fallback") in got
    assert not any(isinstance(c, SetVariables) for c in got)


@pytest.mark.parametrize(
    "facts",
    [
        [LegEnteredApp("caller1-leg1"), LegUp("caller1-leg1")],
        [LegUp("caller1-leg1"), LegEnteredApp("caller1-leg1")],
    ],
    ids=["in the application, then up", "up, then in the application"],
)
def test_a_leg_is_answered_once_in_the_application_and_up_in_either_order(
    facts: list[Event],
) -> None:
    """The first fact alone changes nothing audible; the second bridges the front desk."""
    call = Call(C)
    call.handle(entered(OPEN))
    first, second = facts
    assert call.handle(first) == []
    assert call.state.phase is Phase.RINGING
    got = call.handle(second)
    assert MakeBridge("caller1-bridge", (C, "caller1-leg1")) in got
    assert call.state.phase is Phase.TALKING


def test_the_facts_of_an_earlier_leg_do_not_count_for_the_next() -> None:
    """A leg given up on was in the application; the next leg must get there itself."""
    call = Call(C)
    call.handle(entered(CLOSED))
    call.handle(PlaybackEnded("caller1-pb1"))
    call.handle(QueueResult("TIMEOUT"))
    assert call.handle(LegEnteredApp("caller1-leg2")) == []
    call.handle(LegFailed("caller1-leg2", LegFailure.BUSY))
    assert (call.state.leg_id, call.state.leg_in_app) == ("caller1-leg3", False)
    assert call.handle(LegUp("caller1-leg3")) == []
    assert call.state.phase is Phase.RINGING
