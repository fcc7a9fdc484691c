"""Call journeys end to end: `coverage-engine run`, the sandbox Asterisk, SIPp phones.

Every journey asserts which phone got the call and that caller and callee were
bridged in Asterisk, and what the engine's call record says: the outcome, who
answered, and the whole sequence of events. The engine runs config/coverage.yaml with its ring and
queue times shortened (`fast_config`): the practices, hours, holidays,
rotations and chains are the real ones, only the waiting is shorter, so the
whole suite runs in minutes instead of an hour.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coverage_engine.journey import Journey, Outcome
from coverage_engine.records.report import escalated
from coverage_lab.ari_http import AriCredentials, ari_delete_quietly, ari_get
from coverage_lab.capture import WHOLE_PACKETS, AudioCapture, iter_pcap
from coverage_lab.engine_process import EngineProcess
from coverage_lab.phones import (
    CALLER_PORTS,
    CallerHandle,
    Phones,
    answers,
    busy,
    media_port,
    never_answers,
    presses,
    voicemail,
    wait_bridged,
)
from coverage_lab.proxy import AriProxy
from coverage_lab.records import kinds, wait_for_journey
from coverage_lab.silence import playout, ringback_of, rtp_ulaw, silences

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHICAGO = ZoneInfo("America/Chicago")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
MAPLE = "+13125550100"
LAKESIDE = "+16085550142"
UNKNOWN = "+19995550123"
CALLER = "carrier-in"  # the endpoint inbound calls arrive on
OPERATORS = ("operator1", "operator2", "operator3")

# Instants (the engine's clock starts there). On-call week of Mon 2026-11-30:
# Maple Grove nguyen (primary), okafor (backup); Lakeside ruiz, chen.
MAPLE_OPEN = datetime(2026, 11, 30, 10, 0, tzinfo=CHICAGO)
MAPLE_NIGHT = datetime(2026, 12, 1, 3, 0, tzinfo=CHICAGO)
LAKESIDE_OPEN = datetime(2026, 11, 30, 10, 0, tzinfo=LOS_ANGELES)
LAKESIDE_NIGHT = datetime(2026, 12, 1, 3, 0, tzinfo=LOS_ANGELES)

# Shortened waits (seconds): front desk ring, first operator-queue wait,
# doctor ring. The final operators step keeps the practice's 90 s wait.
STAFF_RING, QUEUE_WAIT, DOCTOR_RING = 6, 8, 8
# How long Maple Grove's night announcement plays (GSM: 33 bytes per 20 ms).
ANNOUNCEMENT_S = (ROOT / "sounds" / "en" / "coverage-emergency.gsm").stat().st_size / 33 * 0.02
# A phone that answers talks this long, then hangs up: the caller (who never
# hangs up first in these journeys) must then be released by the PBX.
TALK = 4
# The emergency announcement (sounds/en/coverage-emergency) lasts about 8 s.
ANNOUNCEMENT = 9


def fast_config(path: Path) -> Path:
    """config/coverage.yaml with shorter ring and queue times, written to `path`."""
    text = (ROOT / "config" / "coverage.yaml").read_text(encoding="utf-8")
    text = re.sub(r"(staff:\n(?:\s+\w+: .*\n)*?\s+ring_seconds:) \d+", rf"\1 {STAFF_RING}", text)
    text = re.sub(r"(\{to: operators, max_wait_seconds:) \d+\}", rf"\1 {QUEUE_WAIT}}}", text)
    text = re.sub(r"(\{to: oncall_\w+, ring_seconds:) \d+", rf"\1 {DOCTOR_RING}", text)
    # The call records next to this copy (records.path is relative to the file).
    text = text.replace("../var/records.sqlite", "records.sqlite")
    path.write_text(text, encoding="utf-8")
    return path


def recorded(
    engine: EngineProcess,
    call: CallerHandle,
    outcome: Outcome,
    answered_by: str | set[str] | None,
    events: str,
) -> Journey:
    """The call's record (once finished) has this outcome, answerer and event sequence.

    After an operator call the record ends with `caller_hung_up` even when the
    operator hung up first: app_queue's Queue() then ends the caller's channel
    itself (it exits non-zero), so the engine sees the caller's channel go.
    """
    journey = wait_for_journey(engine.config.parent / "records.sqlite", call.caller, timeout=15)
    assert journey.outcome is outcome
    if isinstance(answered_by, set):  # one of these, whichever won the race
        assert journey.answered_by in answered_by
    else:
        assert journey.answered_by == answered_by
    assert " ".join(kinds(journey)) == " ".join(events.split())
    assert journey.caller_number == call.caller
    return journey


@pytest.fixture
def engine(ari: AriCredentials, tmp_path: Path) -> Iterator[EngineProcess]:
    """The engine as a child process on the shortened config (started by each test)."""
    proc = EngineProcess(
        fast_config(tmp_path / "coverage.yaml"),
        ari_url=ari.url,
        ari_user=ari.user,
        ari_password=ari.password,
        log_path=tmp_path / "engine.log",
        verbose=True,
    )
    yield proc
    proc.stop()
    clean_up(ari)


def channels(ari: AriCredentials) -> list[dict[str, object]]:
    result = ari_get(ari, "/channels")
    assert isinstance(result, list)
    return result


def bridges(ari: AriCredentials) -> list[dict[str, object]]:
    result = ari_get(ari, "/bridges")
    assert isinstance(result, list)
    return result


def wait_empty(ari: AriCredentials, timeout: float = 15.0) -> None:
    """Poll until Asterisk has no channel and no bridge left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not channels(ari) and not bridges(ari):
            return
        time.sleep(0.2)
    raise AssertionError(f"left behind: channels {channels(ari)}, bridges {bridges(ari)}")


def clean_up(ari: AriCredentials) -> None:
    """Hang up whatever a failed test left in Asterisk, so the next test starts clean."""
    for channel in channels(ari):
        ari_delete_quietly(ari, f"/channels/{channel['id']}")
    for bridge in bridges(ari):
        ari_delete_quietly(ari, f"/bridges/{bridge['id']}")


def shown_to(phones: Phones, phone: str) -> list[str]:
    """The From headers of the INVITEs `phone` received: what its display showed."""
    lines = phones[phone].events_file.read_text(encoding="utf-8").splitlines()
    return [line.split("|", 4)[4] for line in lines if "|invite|" in line]


def reached(
    phones: Phones, ari: AriCredentials, call: CallerHandle, phone: str, timeout: float
) -> None:
    """The call was answered by `phone` and Asterisk bridged it with the caller."""
    deadline = time.monotonic() + timeout
    while phones.answered_by(call.caller) != phone:
        assert time.monotonic() < deadline, f"{phone} did not answer: {phones.describe()}"
        time.sleep(0.1)
    wait_bridged(ari, CALLER, phone, timeout=10)


# -- open ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("did", "at", "desk"),
    [(MAPLE, MAPLE_OPEN, "frontdesk-maple"), (LAKESIDE, LAKESIDE_OPEN, "frontdesk-lakeside")],
    ids=["maple-grove", "lakeside"],
)
def test_open_front_desk_answers(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
    did: str,
    at: datetime,
    desk: str,
) -> None:
    """Open: the practice's front desk rings, answers, and is bridged with the caller."""
    engine.start(at)
    phones.start(desk, answers(after=1, hangup_after=TALK))
    for op in OPERATORS:
        phones.start(op, answers())
    call = place_call(did)
    reached(phones, ari, call, desk, timeout=15)
    assert phones.rang(call.caller) == [desk]
    assert call.wait(timeout=30).ended_by == "remote"
    recorded(engine, call, Outcome.ANSWERED_BY_STAFF, desk,
             "received decided staff_ringing bridged callee_hung_up ended")


@pytest.mark.parametrize(
    ("did", "at", "desk"),
    [(MAPLE, MAPLE_OPEN, "frontdesk-maple"), (LAKESIDE, LAKESIDE_OPEN, "frontdesk-lakeside")],
    ids=["maple-grove", "lakeside"],
)
def test_open_front_desk_does_not_answer_so_an_operator_does(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
    did: str,
    at: datetime,
    desk: str,
) -> None:
    """Open, nobody at the desk: after its ring time the operator queue takes the caller."""
    engine.start(at)
    phones.start(desk, never_answers())
    phones.start("operator1", never_answers())
    phones.start("operator2", answers(after=1, hangup_after=TALK))
    phones.start("operator3", never_answers())
    call = place_call(did)
    reached(phones, ari, call, "operator2", timeout=STAFF_RING + 15)
    assert phones.rang(call.caller)[0] == desk
    assert call.wait(timeout=30).ended_by == "remote"
    recorded(engine, call, Outcome.ANSWERED_BY_OPERATOR, "PJSIP/operator2",
             "received decided staff_ringing queue_entered operator_answered bridged "
             "caller_hung_up ended")


# -- closed: Maple Grove (announcement, operators first, then on call) -------------


def test_closed_operator_answers(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
) -> None:
    """Maple Grove at night: after the announcement an operator answers; no doctor is woken."""
    engine.start(MAPLE_NIGHT)
    for op in OPERATORS:
        phones.start(
            op, answers(after=1, hangup_after=TALK) if op == "operator1" else never_answers()
        )
    phones.start("nguyen", presses("1", hangup_after=TALK))
    call = place_call(MAPLE)
    reached(phones, ari, call, "operator1", timeout=30)
    assert "nguyen" not in phones.rang(call.caller)
    # The operator's phone shows which practice the call is for.
    assert any('"MGP: ' in shown for shown in shown_to(phones, "operator1"))
    assert call.wait(timeout=30).ended_by == "remote"
    recorded(engine, call, Outcome.ANSWERED_BY_OPERATOR, "PJSIP/operator1",
             "received decided announcement_played queue_entered operator_answered bridged "
             "caller_hung_up ended")


def test_closed_queue_wait_expires_then_primary_presses_1(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
) -> None:
    """No operator picks up in time: the primary on call (nguyen) presses 1 and is bridged."""
    engine.start(MAPLE_NIGHT)
    for op in OPERATORS:
        phones.start(op, never_answers())
    phones.start("nguyen", presses("1", after=1, hangup_after=TALK))
    phones.start("okafor", presses("1", hangup_after=TALK))
    call = place_call(MAPLE)
    reached(phones, ari, call, "nguyen", timeout=QUEUE_WAIT + 40)
    assert "okafor" not in phones.rang(call.caller)
    assert call.wait(timeout=30).ended_by == "remote"
    recorded(engine, call, Outcome.ANSWERED_BY_ONCALL, "nguyen",
             "received decided announcement_played queue_entered queue_timeout oncall_dialing "
             "oncall_answered oncall_confirmed bridged callee_hung_up ended")


def test_primary_answers_but_never_presses_1_so_backup_does(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
) -> None:
    """The primary's voicemail answers, never presses 1, is hung up; the backup is bridged."""
    engine.start(MAPLE_NIGHT)
    for op in OPERATORS:
        phones.start(op, never_answers())
    phones.start("nguyen", voicemail(after=1))
    phones.start("okafor", presses("1", after=1, hangup_after=TALK))
    call = place_call(MAPLE)
    reached(phones, ari, call, "okafor", timeout=QUEUE_WAIT + 60)
    (voicemail_call,) = phones.calls("nguyen")
    assert voicemail_call.answered
    assert voicemail_call.ended_by == "remote"  # the engine hung up on the voicemail
    assert call.wait(timeout=30).ended_by == "remote"
    journey = recorded(
        engine, call, Outcome.ANSWERED_BY_ONCALL, "okafor",
        "received decided announcement_played queue_entered queue_timeout oncall_dialing "
        "oncall_answered oncall_not_confirmed oncall_dialing oncall_answered oncall_confirmed "
        "bridged callee_hung_up ended")
    assert escalated(journey)  # the report counts it: primary missed -> backup


# -- closed: Lakeside (on call first, then operators) -------------------------------


def test_lakeside_closed_goes_to_on_call_first(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
) -> None:
    """Lakeside at night: on-call ruiz rings first, presses 1, is bridged; no operator rings."""
    engine.start(LAKESIDE_NIGHT)
    for op in OPERATORS:
        phones.start(op, answers())
    phones.start("ruiz", presses("1", after=1, hangup_after=TALK))
    call = place_call(LAKESIDE)
    reached(phones, ari, call, "ruiz", timeout=20)
    assert phones.rang(call.caller) == ["ruiz"]
    assert any('"LFM: ' in shown for shown in shown_to(phones, "ruiz"))
    assert call.wait(timeout=30).ended_by == "remote"
    recorded(engine, call, Outcome.ANSWERED_BY_ONCALL, "ruiz",
             "received decided oncall_dialing oncall_answered oncall_confirmed bridged "
             "callee_hung_up ended")


def test_primary_and_backup_fail_so_the_operators_answer(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
) -> None:
    """Lakeside at night: ruiz is busy, chen never answers, then an operator takes the caller."""
    engine.start(LAKESIDE_NIGHT)
    phones.start("ruiz", busy())
    phones.start("chen", never_answers())
    phones.start("operator1", never_answers())
    phones.start("operator2", never_answers())
    phones.start("operator3", answers(after=1, hangup_after=TALK))
    call = place_call(LAKESIDE)
    reached(phones, ari, call, "operator3", timeout=DOCTOR_RING + 30)
    assert phones.rang(call.caller)[:2] == ["ruiz", "chen"]
    assert call.wait(timeout=30).ended_by == "remote"
    recorded(engine, call, Outcome.ANSWERED_BY_OPERATOR, "PJSIP/operator3",
             "received decided oncall_dialing oncall_busy oncall_dialing oncall_no_answer "
             "queue_entered operator_answered bridged caller_hung_up ended")


# -- the caller hangs up ----------------------------------------------------------------


def test_caller_hangs_up_while_queued_leaves_nothing_behind(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
) -> None:
    """A caller who gives up in the queue leaves no channel or bridge in Asterisk."""
    engine.start(MAPLE_NIGHT)
    for op in OPERATORS:
        phones.start(op, never_answers())
    # Answered by the engine at once; ~8 s of announcement, then the queue.
    call = place_call(MAPLE, hangup_after=ANNOUNCEMENT + 5)
    phones.wait_for("invite", call.caller, timeout=20)  # the queue rings the operators
    call.wait(timeout=20)
    wait_empty(ari)
    assert phones.answered_by(call.caller) is None
    recorded(engine, call, Outcome.ABANDONED_IN_QUEUE, None,
             "received decided announcement_played queue_entered caller_hung_up ended")


def test_caller_hangs_up_while_the_doctor_rings_leaves_nothing_behind(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
) -> None:
    """The caller hangs up while ruiz's phone rings: the doctor's leg is cancelled at once."""
    engine.start(LAKESIDE_NIGHT)
    phones.start("ruiz", never_answers())
    call = place_call(LAKESIDE, hangup_after=3)
    phones.wait_for("invite", call.caller, timeout=10)
    call.wait(timeout=20)
    wait_empty(ari, timeout=5)
    (ruiz,) = phones.calls("ruiz")
    assert not ruiz.answered
    recorded(engine, call, Outcome.ABANDONED_WHILE_RINGING, None,
             "received decided oncall_dialing caller_hung_up ended")


# -- unknown number -------------------------------------------------------------------


def test_unknown_did_goes_to_the_default_route(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
) -> None:
    """A number no practice claims reaches the default route: the operators."""
    engine.start(MAPLE_OPEN)
    phones.start("frontdesk-maple", answers())
    for op in OPERATORS:
        phones.start(op, answers(after=1, hangup_after=TALK))
    call = place_call(UNKNOWN)
    phones.wait_for("answered", call.caller, timeout=20)
    assert phones.answered_by(call.caller) in OPERATORS
    assert "frontdesk-maple" not in phones.rang(call.caller)
    assert call.wait(timeout=30).ended_by == "remote"
    # All three operators pick up; app_queue bridges whichever answered first.
    journey = recorded(
        engine, call, Outcome.ANSWERED_BY_OPERATOR, {f"PJSIP/{op}" for op in OPERATORS},
        "received decided queue_entered operator_answered bridged caller_hung_up ended")
    assert journey.plan is not None
    assert journey.plan["known_did"] is False


# -- failures --------------------------------------------------------------------------


def test_engine_killed_while_caller_queued_then_restarted_caller_reaches_a_person(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
) -> None:
    """SIGKILL while the caller is queued; the restarted engine takes them on to the doctor."""
    engine.start(MAPLE_NIGHT)
    for op in OPERATORS:
        phones.start(op, never_answers())
    phones.start("nguyen", presses("1", after=1, hangup_after=TALK))
    call = place_call(MAPLE)
    phones.wait_for("invite", call.caller, timeout=20)  # queued: operators ringing
    engine.kill()
    engine.start()  # the same clock start as before
    reached(phones, ari, call, "nguyen", timeout=QUEUE_WAIT + 40)
    assert call.wait(timeout=30).ended_by == "remote"
    # One journey across the crash: closed by the restart, then carried on to the doctor.
    recorded(engine, call, Outcome.ANSWERED_BY_ONCALL, "nguyen",
             "received decided announcement_played queue_entered engine_restarted ended "
             "decided queue_timeout oncall_dialing oncall_answered oncall_confirmed bridged "
             "callee_hung_up ended")


def test_engine_killed_during_the_announcement_the_caller_hears_music_not_silence(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
    tmp_path: Path,
) -> None:
    """SIGKILL while the announcement plays, and no engine for a while after it ends: the
    music the engine asked for with the announcement is started by Asterisk as it ends, so
    the caller hears music, not silence, until an engine is back and carries them on."""
    capture = AudioCapture(
        tmp_path / "heard.pcap", [media_port(p) for p in CALLER_PORTS], snaplen=WHOLE_PACKETS
    )
    capture.start()
    try:
        capture.wait_listening()
        engine.start(MAPLE_NIGHT)
        for op in OPERATORS:
            phones.start(op, never_answers())
        phones.start("nguyen", presses("1", after=1, hangup_after=TALK))
        call = place_call(MAPLE)
        time.sleep(2)  # the announcement (7.8 s) is playing
        engine.kill()
        time.sleep(ANNOUNCEMENT_S + 5)  # it ended a while ago; still no engine
        engine.start()
        reached(phones, ari, call, "nguyen", timeout=QUEUE_WAIT + 40)
        result = call.wait(timeout=30)
    finally:
        capture.stop()
    assert result.answered_at is not None
    audio = [
        (packet.at, sound)
        for packet in iter_pcap(capture.path)
        if packet.dst_port == call.media_port and (sound := rtp_ulaw(packet.payload)) is not None
    ]
    samples = playout(audio, result.answered_at, ANNOUNCEMENT_S + 6)
    ringback = ringback_of((ROOT / "config/asterisk/indications.conf").read_text("utf-8"))
    # From a second after the announcement's end (a track's quiet start) to the restart.
    window = (ANNOUNCEMENT_S + 1, ANNOUNCEMENT_S + 5)
    quiet = sum(s.seconds for s in silences(samples, ringback, (window,)))
    assert quiet < 0.5 * (window[1] - window[0]), f"{quiet:.2f} s of silence in {window}"
    # Without the engine's answer the journey goes on from the restart, as a resumed call.
    recorded(engine, call, Outcome.ANSWERED_BY_ONCALL, "nguyen",
             "received decided engine_restarted ended decided queue_entered queue_timeout "
             "oncall_dialing oncall_answered oncall_confirmed bridged callee_hung_up ended")


def test_doctor_hangs_up_while_no_engine_runs_the_caller_is_released_at_once(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
) -> None:
    """SIGKILL during the conversation; Dr. Ruiz hangs up while no engine runs. Asterisk
    itself releases the caller (the hang-up handler the engine put on the doctor's leg as
    they were bridged): no dead air until an engine is back. The restarted engine closes
    the journey with what the caller reached."""
    engine.start(LAKESIDE_NIGHT)
    phones.start("ruiz", presses("1", after=1, hangup_after=6))
    call = place_call(LAKESIDE)
    wait_bridged(ari, "carrier-in", "ruiz", timeout=DOCTOR_RING + 10)
    engine.kill()
    result = call.wait(timeout=20)  # the doctor hangs up 6 s after answering
    assert result.ended_by == "remote"
    [talk] = [c for c in phones.calls("ruiz") if c.caller == call.caller and c.answered]
    assert talk.ended_by == "phone"
    assert talk.ended_at is not None
    assert result.ended_at is not None
    released = result.ended_at - talk.ended_at
    assert released < 1.0, f"the caller was released {released:.2f} s after the doctor left"
    engine.start()
    recorded(engine, call, Outcome.ANSWERED_BY_ONCALL, "ruiz",
             "received decided oncall_dialing oncall_answered oncall_confirmed bridged "
             "engine_restarted ended")


def test_websocket_dropped_mid_call_the_call_continues(
    ari: AriCredentials,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    tmp_path: Path,
) -> None:
    """The ARI link drops mid-conversation: the call goes on, then ends cleanly."""
    host_port = re.match(r"https?://([^:/]+):(\d+)", ari.url)
    assert host_port is not None
    proxy = AriProxy((host_port[1], int(host_port[2])))
    proc = EngineProcess(
        fast_config(tmp_path / "coverage.yaml"),
        ari_url=f"http://127.0.0.1:{proxy.port}/ari",
        ari_user=ari.user,
        ari_password=ari.password,
        log_path=tmp_path / "engine.log",
    )
    try:
        proc.start(MAPLE_OPEN)
        phones.start("frontdesk-maple", answers(after=1, hangup_after=15))
        call = place_call(MAPLE)
        reached(phones, ari, call, "frontdesk-maple", timeout=15)
        mark = len(proc.log())
        proxy.drop_all()
        proc.wait_log("ari_connected", after=mark, timeout=20)  # reconnected
        wait_bridged(ari, CALLER, "frontdesk-maple", timeout=2)  # still talking
        # The desk hangs up after 15 s of talk: the engine, reconnected,
        # releases the caller (it still knows the call).
        result = call.wait(timeout=40)
        assert result.ended_by == "remote"
        (desk,) = phones.calls("frontdesk-maple")
        assert desk.ended_by == "phone"
        assert desk.talk_seconds is not None
        assert desk.talk_seconds > 10  # the conversation outlived the drop
        wait_empty(ari)
        recorded(proc, call, Outcome.ANSWERED_BY_STAFF, "frontdesk-maple",
                 "received decided staff_ringing bridged callee_hung_up ended")
    finally:
        proc.stop()
        proxy.close()


def test_invalid_yaml_reloaded_keeps_the_old_routing(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
) -> None:
    """An invalid coverage file is rejected on SIGHUP; the next call is still routed as before."""
    engine.start(MAPLE_OPEN)
    phones.start("frontdesk-maple", answers(after=1, hangup_after=TALK))
    mark = len(engine.log())
    engine.config.write_text("practices:\n  maple-grove: [broken\n", encoding="utf-8")
    engine.signal(signal.SIGHUP)
    engine.wait_log("config.rejected", after=mark)
    call = place_call(MAPLE)
    reached(phones, ari, call, "frontdesk-maple", timeout=15)
    assert call.wait(timeout=30).ended_by == "remote"
    recorded(engine, call, Outcome.ANSWERED_BY_STAFF, "frontdesk-maple",
             "received decided staff_ringing bridged callee_hung_up ended")


def test_sigterm_leaves_a_conversation_connected_and_a_new_engine_adopts_it(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
) -> None:
    """SIGTERM stops the engine cleanly without hanging anyone up; its successor ends the call."""
    engine.start(MAPLE_OPEN)
    phones.start("frontdesk-maple", answers(after=1, hangup_after=12))
    call = place_call(MAPLE)
    reached(phones, ari, call, "frontdesk-maple", timeout=15)
    assert engine.stop() == 0
    wait_bridged(ari, CALLER, "frontdesk-maple", timeout=2)  # still talking
    engine.start()  # finds the bridged pair in the application and adopts it
    # The desk hangs up: the new engine releases the caller.
    assert call.wait(timeout=30).ended_by == "remote"
    wait_empty(ari)
    # The stopped engine left the journey open; its successor closed it on start
    # with what it had reached (the adopted conversation has no call logic left).
    recorded(engine, call, Outcome.ANSWERED_BY_STAFF, "frontdesk-maple",
             "received decided staff_ringing bridged engine_restarted ended")


def test_lakeside_primary_voicemail_so_backup_presses_1(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
) -> None:
    """Lakeside at night: ruiz's voicemail answers, never presses 1; chen accepts, is bridged."""
    engine.start(LAKESIDE_NIGHT)
    phones.start("ruiz", voicemail(after=1))
    phones.start("chen", presses("1", after=1, hangup_after=TALK))
    call = place_call(LAKESIDE)
    reached(phones, ari, call, "chen", timeout=60)
    (voicemail_call,) = phones.calls("ruiz")
    assert voicemail_call.answered
    assert voicemail_call.ended_by == "remote"
    assert call.wait(timeout=30).ended_by == "remote"
    journey = recorded(
        engine, call, Outcome.ANSWERED_BY_ONCALL, "chen",
        "received decided oncall_dialing oncall_answered oncall_not_confirmed oncall_dialing "
        "oncall_answered oncall_confirmed "
        "bridged callee_hung_up ended")
    assert escalated(journey)


def test_maple_primary_and_backup_fail_so_the_final_operators_step_answers(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
) -> None:
    """Maple Grove at night: the first queue wait runs out, nguyen is busy, okafor does not
    answer, and the final operators step (the practice's full wait) reaches an operator."""
    engine.start(MAPLE_NIGHT)
    # Slower than the first queue wait (8 s), well within the final one (90 s).
    # Staggered, so one operator answers first and app_queue cancels the others
    # (answering together, all three sent 200 OK and the test could not tell
    # which one app_queue bridged).
    for n, op in enumerate(OPERATORS):
        phones.start(op, answers(after=QUEUE_WAIT + 3 + 3 * n, hangup_after=TALK))
    phones.start("nguyen", busy())
    phones.start("okafor", never_answers())
    call = place_call(MAPLE)
    deadline = ANNOUNCEMENT + QUEUE_WAIT + DOCTOR_RING + QUEUE_WAIT + 30
    phones.wait_for("answered", call.caller, timeout=deadline)
    answered = phones.answered_by(call.caller)
    assert answered in OPERATORS
    wait_bridged(ari, CALLER, str(answered), timeout=10)
    rang = phones.rang(call.caller)
    assert rang.index("nguyen") < rang.index("okafor") < len(rang) - 1
    assert call.wait(timeout=30).ended_by == "remote"
    journey = recorded(
        engine, call, Outcome.ANSWERED_BY_OPERATOR, f"PJSIP/{answered}",
        "received decided announcement_played queue_entered queue_timeout oncall_dialing "
        "oncall_busy oncall_dialing oncall_no_answer queue_entered operator_answered bridged "
        "caller_hung_up ended")
    assert escalated(journey)


def test_engine_killed_while_the_doctor_rings_then_restarted_caller_reaches_the_doctor(
    engine: EngineProcess,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    ari: AriCredentials,
) -> None:
    """SIGKILL while ruiz's phone rings: the restarted engine stops that ring and dials again."""
    engine.start(LAKESIDE_NIGHT)
    phones.start("ruiz", presses("1", after=4, hangup_after=TALK))
    call = place_call(LAKESIDE)
    phones.wait_for("invite", call.caller, timeout=10)
    engine.kill()
    engine.start()  # the caller is still in the application: resumed at its step
    reached(phones, ari, call, "ruiz", timeout=30)
    first, *_ = phones.calls("ruiz")
    assert first.outcome == "cancelled"  # the old engine's leg was hung up, not left ringing
    assert len(phones.calls("ruiz")) == 2
    assert call.wait(timeout=30).ended_by == "remote"
