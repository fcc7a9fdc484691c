"""What a caller heard before a person answered, from captured packets (the SIPp benchmark)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from coverage_lab.benchmark.audio import CallAudio, audio_by_call, first_audio, silences
from coverage_lab.capture import Packet, read_pcap


def pcap(path: Path, packets: list[tuple[float, int, int]], *, linktype: int = 1) -> Path:
    """A microsecond pcap of Ethernet-framed UDP/IPv4 packets (time, source, destination port)."""
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 64, linktype)
    for at, src, dst in packets:
        ip = bytes([0x45, 0, 0, 48, 0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1])
        frame = bytes(14) + ip + struct.pack("!HHHH", src, dst, 28, 0) + bytes(20)
        out += struct.pack("<IIII", int(at), round((at % 1) * 1e6), len(frame), len(frame))
        out += frame
    path.write_bytes(out)
    return path


def call(**times: float | int | None) -> CallAudio:
    fields: dict[str, float | int | None] = {
        "invite": 100.0,
        "ringing": None,
        "rtp_port": 20000,
        "answered": None,
        "ended": 130.0,
        "person": None,
    }
    fields.update(times)
    return CallAudio(**fields)  # type: ignore[arg-type]


def test_a_capture_file_reads_as_udp_packets_with_their_times(tmp_path: Path) -> None:
    """tcpdump's file gives each packet's time, ports and payload; other link types are refused."""
    path = pcap(tmp_path / "a.pcap", [(1796142403.25, 20000, 34110), (1796142403.27, 20002, 34120)])
    assert read_pcap(path) == [
        Packet(pytest.approx(1796142403.25), 20000, 34110, bytes(20)),  # type: ignore[arg-type]
        Packet(pytest.approx(1796142403.27), 20002, 34120, bytes(20)),  # type: ignore[arg-type]
    ]
    assert read_pcap(tmp_path / "missing.pcap") == []
    with pytest.raises(ValueError, match="Ethernet"):
        read_pcap(pcap(tmp_path / "b.pcap", [], linktype=113))


def test_each_call_gets_the_packets_of_its_own_port_while_it_lasts() -> None:
    """A port reused by a later call is not counted for an earlier one, nor another port's."""
    packets = [Packet(101.0, 20000, 1), Packet(140.0, 20000, 1), Packet(101.5, 20002, 1)]
    [(_, audio)] = audio_by_call([call()], packets)
    assert audio == [101.0]


@pytest.mark.parametrize(
    ("case", "kwargs", "audio", "heard", "longest"),
    [
        (
            "the engine's ringback starts 26 ms after the INVITE, the person at 1 s",
            {"answered": 100.006, "person": 101.0},
            [100.026 + 0.02 * i for i in range(49)],
            0.026,
            0.026,
        ),
        (
            "a 180 lets the caller's phone ring by itself until the answer",
            {"ringing": 100.004, "answered": 101.0, "person": 101.0},
            [],
            0.004,
            0.004,
        ),
        (
            "the queue's music starts 290 ms after the announcement's last sound",
            {"answered": 100.005, "person": 112.0},
            [100.01 + 0.02 * i for i in range(400)] + [108.30 + 0.02 * i for i in range(185)],
            0.01,
            0.29,
        ),
        (
            "nothing at all until the person",
            {"answered": 100.005, "person": 101.5},
            [],
            1.5,
            1.5,
        ),
    ],
)
def test_the_longest_silence_before_the_person(
    case: str, kwargs: dict[str, float], audio: list[float], heard: float, longest: float
) -> None:
    """First thing heard and the longest stretch of silence, INVITE to the person's answer."""
    one = call(**kwargs)
    assert first_audio(one, audio) == pytest.approx(heard)
    assert silences(one, audio) == pytest.approx(longest)


def test_a_call_nobody_answered_has_no_silence_figure() -> None:
    """Silence is measured up to a person: without one there is nothing to measure against."""
    assert silences(call(), [100.1]) is None
