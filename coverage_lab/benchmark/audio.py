"""What a caller hears before a person answers: audio packets captured on loopback.

SIPp callers do not say when audio reaches them, so the benchmark captures it:
`tcpdump` writes the headers of the UDP packets sent to the callers' media
ports (`AudioCapture`), and `audio_by_call` sorts them out afterwards. Each
call's own stream is Asterisk's RTP port of that call (the `m=audio` port of
the SDP in its 200 OK, which the caller's scenario logs; Asterisk's RTP is
symmetric), within the call's lifetime, since ports are reused.

`silences` is the measure of the issue's promise, that the engine never
leaves a caller in silence for more than a second: from the INVITE until a
person answers, the longest stretch without audio, counting the local
ringback a 180 Ringing gives the caller as audio from then on.
"""

from __future__ import annotations

import shutil
import signal
import struct
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# pcap: the global header, then per packet: seconds, microseconds, captured and
# original lengths. On Linux loopback the link layer is a 14-byte Ethernet header.
_PCAP_MAGIC_US = 0xA1B2C3D4
_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_ETHERNET = 14
_LINKTYPE_ETHERNET = 1
# Headers are all the benchmark reads: Ethernet, IPv4 (without options), UDP.
SNAPLEN = 64
# The sound one RTP packet carries (Asterisk's default packetization).
FRAME_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class Packet:
    """One UDP packet's time and ports."""

    at: float
    src_port: int
    dst_port: int


def read_pcap(path: Path) -> list[Packet]:
    """The UDP/IPv4 packets of a little-endian, microsecond pcap file (what tcpdump writes)."""
    data = path.read_bytes() if path.exists() else b""
    if len(data) < _GLOBAL.size:
        return []
    magic, _major, _minor, _zone, _sigfigs, _snaplen, linktype = _GLOBAL.unpack_from(data)
    if magic != _PCAP_MAGIC_US or linktype != _LINKTYPE_ETHERNET:
        raise ValueError(f"{path}: not a microsecond pcap of an Ethernet-framed capture")
    packets: list[Packet] = []
    offset = _GLOBAL.size
    while offset + _RECORD.size <= len(data):
        seconds, micros, captured, _original = _RECORD.unpack_from(data, offset)
        offset += _RECORD.size
        frame = data[offset : offset + captured]
        offset += captured
        ip = frame[_ETHERNET:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:  # IPv4, UDP
            continue
        udp = ip[(ip[0] & 0x0F) * 4 :]
        if len(udp) < 4:
            continue
        src, dst = struct.unpack_from("!HH", udp)
        packets.append(Packet(seconds + micros / 1e6, src, dst))
    return packets


class AudioCapture:
    """`tcpdump` writing the UDP packets sent to `ports` on loopback into `path`."""

    def __init__(self, path: Path, ports: Sequence[int]) -> None:
        self.path = path
        self.ports = tuple(ports)
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("tcpdump") is not None

    def start(self) -> None:
        wanted = " or ".join(f"dst port {port}" for port in self.ports)
        self._proc = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-n", "-s", str(SNAPLEN), "-B", "4096",
             "-w", str(self.path), f"udp and ({wanted})"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the capture; tcpdump writes what it has on SIGINT."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
