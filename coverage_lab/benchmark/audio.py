"""What a caller hears before a person answers: audio packets captured on loopback.

SIPp callers do not say when audio reaches them, so the benchmark captures it:
`tcpdump` writes the headers of the UDP packets sent to the callers' media
ports (`coverage_lab.capture`), and `audio_by_call` sorts them out
afterwards. Each call's own stream is Asterisk's RTP port of that call (the
`m=audio` port of the SDP in its 200 OK, which the caller's scenario logs;
Asterisk's RTP is symmetric), within the call's lifetime, since ports are
reused.

`silences` is the measure of the issue's promise, that the engine never
leaves a caller in silence for more than a second: from the INVITE until a
person answers, the longest stretch without audio, counting the local
ringback a 180 Ringing gives the caller as audio from then on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from coverage_lab.capture import Packet

# The sound one RTP packet carries (Asterisk's default packetization).
FRAME_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class CallAudio:
    """One call as its caller heard it: seconds since the epoch, None when it never happened."""

    invite: float
    ringing: float | None  # a 180 Ringing: the caller's phone rings locally from then on
    rtp_port: int | None  # Asterisk's media port of the call (its 200 OK's SDP)
    answered: float | None  # the caller's 200 OK
    ended: float | None
    person: float | None  # the phone (front desk, operator) that answered, picked up


def audio_by_call(
    calls: Iterable[CallAudio], packets: Sequence[Packet]
) -> list[tuple[CallAudio, list[float]]]:
    """Each call with the times of the audio packets Asterisk sent it, in order."""
    by_port: dict[int, list[float]] = defaultdict(list)
    for packet in packets:
        by_port[packet.src_port].append(packet.at)
    found = []
    for call in calls:
        times: list[float] = []
        if call.rtp_port is not None:
            end = call.ended if call.ended is not None else float("inf")
            times = [t for t in by_port.get(call.rtp_port, []) if call.invite <= t <= end]
        found.append((call, times))
    return found


def first_audio(call: CallAudio, audio: Sequence[float]) -> float | None:
    """When the caller first heard something: ringback (local or sent), a prompt, music,
    or the person; seconds after the INVITE."""
    heard = [t for t in (call.ringing, audio[0] if audio else None, call.person) if t is not None]
    return min(heard) - call.invite if heard else None


def silences(call: CallAudio, audio: Sequence[float]) -> float | None:
    """The longest silence the caller sat through before a person answered (seconds).

    What counts as heard: each audio packet (20 ms of sound), and, after a
    180 Ringing, the ringback the caller's own phone plays until the call is
    answered. Silence is any stretch from the INVITE to the person's answer
    that none of it covers. None when nobody answered.
    """
    if call.person is None:
        return None
    heard = [(t, t + FRAME_SECONDS) for t in audio if t < call.person]
    if call.ringing is not None:
        until = call.answered if call.answered is not None else call.person
        heard.append((call.ringing, min(until, call.person)))
    longest, covered_to = 0.0, call.invite
    for start, end in sorted(heard):
        longest = max(longest, start - covered_to)
        covered_to = max(covered_to, end)
    return max(longest, call.person - covered_to)
