"""What the safety net notes of a call, read back as the call's journey."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from coverage_engine.journey import Journey, Outcome, Received
from coverage_engine.records.recorder import MemoryRecorder
from coverage_engine.safetynet.notes import finished, journey_events

T0 = 1796136534.0


def note(seconds: float, what: str, detail: str = "") -> str:
    return f"{T0 + seconds:.3f},{what},{detail}"


NIGHT_CALL = {
    "caller": "+15550100042",
    "1": note(0.0, "arrived", "+13125550100"),
    "2": note(0.0, "taken", "TIMEOUT"),
    "3": note(8.5, "queue", "answering"),
    "4": note(8.6, "queue_result", "JOINEMPTY"),
    "5": note(8.6, "dial", "primary:nguyen"),
    "6c": note(24.0, "confirm", ""),  # her voicemail answered, nobody pressed 1
    "6": note(24.0, "dial_result", "ANSWER"),
    "7": note(24.0, "dial", "backup:okafor"),
    "8c": note(30.0, "confirm", "1"),
    "8": note(60.0, "end", ""),
}


def test_a_night_call_the_safety_net_carried_reads_as_its_whole_journey() -> None:
    """Received, handed to the safety net and why, the empty queue, the voicemail hung up,
    the backup pressing 1: answered by Okafor, 30 s after the caller arrived."""
    events = journey_events(NIGHT_CALL)

    assert [e.name for _, e in events] == [
        "received", "safety_net", "queue_entered", "queue_timeout",
        "oncall_dialing", "oncall_not_confirmed", "oncall_dialing", "oncall_confirmed",
        "bridged", "caller_hung_up", "ended",
    ]  # fmt: skip
    (at, first), *rest = events
    assert isinstance(first, Received)
    journey = Journey.begin("1796136534.10", at, first)
    for when, event in rest:
        journey = journey.apply(when, event)
    assert journey.caller_number == "+15550100042"
    assert journey.outcome is Outcome.ANSWERED_BY_ONCALL
    assert journey.answered_by == "okafor"
    assert journey.time_to_person == timedelta(seconds=30)


def test_notes_of_a_call_still_in_the_safety_net_are_not_collected_yet() -> None:
    """No end noted: the caller is still waiting for a person."""
    unfinished = {k: v for k, v in NIGHT_CALL.items() if k != "8"}
    assert not finished(unfinished)
    assert finished(NIGHT_CALL)


def test_a_caller_who_hangs_up_in_the_queue_abandoned_there() -> None:
    """The last thing the safety net did was the queue: abandoned in the queue."""
    events = journey_events(
        {
            "caller": "+15550100043",
            "1": note(0, "arrived", "+13125550100"),
            "2": note(0, "taken", "TIMEOUT"),
            "3": note(9, "queue", "answering"),
            "4": note(40, "end", ""),
        }
    )
    assert events[-1][1].details()["outcome"] == Outcome.ABANDONED_IN_QUEUE.value


def test_an_operator_noted_at_the_end_answered_the_call() -> None:
    """app_queue's MEMBERINTERFACE on the caller at the end: an operator had the call."""
    events = journey_events(
        {
            "1": note(0, "arrived", "+19995550123"),
            "2": note(0, "taken", "TIMEOUT"),
            "3": note(9, "queue", "answering"),
            "4": note(70, "end", "PJSIP/operator2"),
        }
    )
    ended = events[-1][1].details()
    assert (ended["outcome"], ended["answered_by"]) == ("answered_by_operator", "PJSIP/operator2")


def test_collecting_twice_writes_the_journey_once() -> None:
    """Keys derived from the notes make a second collection (another engine's) change nothing."""
    recorder = MemoryRecorder()
    for _ in range(2):
        for n, (at, event) in enumerate(journey_events(NIGHT_CALL)):
            recorder.write("c1", at, event, key=f"net:c1:{n}")
    journey = recorder.get("c1")
    assert journey is not None
    assert len(journey.events) == 11
    assert journey.started_at == datetime.fromtimestamp(T0, tz=UTC)


def test_ill_formed_notes_are_skipped_not_fatal() -> None:
    """A note someone edited by hand does not stop the others from being read."""
    events = journey_events({**NIGHT_CALL, "9": "garbage", "x": note(1, "queue", "q")})
    assert len(events) == 11
