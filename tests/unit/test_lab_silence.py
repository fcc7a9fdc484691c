"""The silence a caller heard, measured on synthetic audio (coverage_lab.silence)."""

from __future__ import annotations

import math
import struct
from array import array
from pathlib import Path

import pytest

from coverage_lab.sandbox import project_root
from coverage_lab.silence import (
    SAMPLE_RATE,
    Ringback,
    Silence,
    longest,
    playout,
    read_wav,
    ringback_of,
    rtp_ulaw,
    silences,
    ulaw_to_pcm,
    write_wav,
)

US_RINGBACK = Ringback((440.0, 480.0), 4.0)


def tone(seconds: float, *freqs: float, dbfs: float = -20.0) -> array[int]:
    """`freqs` together at an RMS level of `dbfs` (each sine an equal share)."""
    rms = 32768 * 10 ** (dbfs / 20)
    amplitude = rms * math.sqrt(2 / len(freqs))
    n = round(seconds * SAMPLE_RATE)
    return array(
        "h",
        (
            round(sum(amplitude * math.sin(2 * math.pi * f * i / SAMPLE_RATE) for f in freqs))
            for i in range(n)
        ),
    )


def until(seconds: float) -> tuple[tuple[float, float]]:
    """Count from the answer up to `seconds` (when a person was connected)."""
    return ((0.0, seconds),)


def gap(seconds: float) -> array[int]:
    """Nothing at all: digital zero."""
    return array("h", bytes(2 * round(seconds * SAMPLE_RATE)))


def ringback(rings: int) -> array[int]:
    """US ringback: 440+480 Hz for 2 s, then 4 s of nothing, `rings` times."""
    out = array("h")
    for _ in range(rings):
        out += tone(2.0, 440, 480) + gap(4.0)
    return out


def test_a_gap_between_two_tones_is_the_silence() -> None:
    """A tone, 1.3 s of nothing, a tone: one silence of 1.3 s, where the gap is, all zero."""
    audio = tone(0.5, 1000) + gap(1.3) + tone(0.7, 1000)
    assert silences(audio, US_RINGBACK) == [Silence(at_s=0.5, seconds=1.3, zero_s=1.3)]


@pytest.mark.parametrize(
    ("dbfs", "silent"),
    [(-54.0, False), (-58.0, False), (-63.0, True), (-70.0, True)],
)
def test_sound_under_60_dbfs_is_silence_but_not_digital_zero(dbfs: float, silent: bool) -> None:
    """A stretch under -60 dBFS counts as silence (not as zeros); one above it is sound."""
    audio = tone(0.4, 1000) + tone(1.5, 1000, dbfs=dbfs) + tone(0.4, 1000)
    expected = [Silence(at_s=0.4, seconds=1.5, zero_s=0.0)] if silent else []
    assert silences(audio, US_RINGBACK) == expected


def test_silence_at_the_answer_counts_from_the_first_frame() -> None:
    """Nothing for 0.3 s after the answer, then music: 0.3 s of silence at 0."""
    assert silences(gap(0.3) + tone(1.0, 500, 700), US_RINGBACK) == [
        Silence(at_s=0.0, seconds=0.3, zero_s=0.3)
    ]


def test_what_follows_the_person_is_not_counted() -> None:
    """The gap after `until` is the conversation; a gap across it counts up to it."""
    audio = tone(1.0, 1000) + gap(2.0)
    assert silences(audio, US_RINGBACK, until(1.0)) == []
    assert silences(audio, US_RINGBACK, until(1.5)) == [Silence(at_s=1.0, seconds=0.5, zero_s=0.5)]
    assert silences(audio, US_RINGBACK, until(60.0)) == [Silence(at_s=1.0, seconds=2.0, zero_s=2.0)]


def test_a_caller_left_alone_after_the_person_hung_up_is_in_silence_again() -> None:
    """Music, a person from 1 s to 4 s (silent phone), then a dead line until 9 s: only
    the dead line counts, from the moment the person left."""
    audio = tone(1.0, 262, 330) + gap(8.0)
    alone = ((0.0, 1.0), (4.0, 9.0))
    assert silences(audio, US_RINGBACK, alone) == [Silence(at_s=4.0, seconds=5.0, zero_s=5.0)]


def test_the_pauses_of_ringback_are_ringing_not_silence() -> None:
    """Three rings of US ringback (2 s of tone, 4 s of nothing): no silence at all."""
    assert silences(ringback(3), US_RINGBACK) == []


def test_a_pause_after_ringback_is_silence_only_past_the_cadence() -> None:
    """Ringback, then 5.5 s of nothing: the first 4 s (and 0.1 s of jitter) are its pause."""
    audio = ringback(1)[: 2 * SAMPLE_RATE] + gap(5.5) + tone(1.0, 1000)
    [found] = silences(audio, US_RINGBACK)
    assert found.at_s == pytest.approx(6.1)
    assert found.seconds == pytest.approx(1.4)


def test_a_gap_after_music_gets_no_ringback_allowance() -> None:
    """Music (a chord) or a 1 kHz tone before a 3 s gap is not ringback: all 3 s count."""
    for before in (tone(1.0, 262, 330, 392), tone(1.0, 1000)):
        assert silences(before + gap(3.0) + tone(0.5, 1000), US_RINGBACK) == [
            Silence(at_s=1.0, seconds=3.0, zero_s=3.0)
        ]


def test_the_longest_silence_is_the_first_of_the_longest() -> None:
    """`longest` picks by length; none found is None."""
    a, b, c = Silence(0.0, 0.3, 0.3), Silence(2.0, 1.1, 1.1), Silence(5.0, 1.1, 0.0)
    assert longest([a, b, c]) == b
    assert longest([]) is None


def test_mu_law_bytes_decode_to_linear_samples() -> None:
    """G.711's two zeros, its loudest codes and its quietest (as audioop decodes them)."""
    assert list(ulaw_to_pcm(bytes([0xFF, 0x7F, 0x80, 0x00, 0xFE, 0x7E]))) == [
        0,
        0,
        32124,
        -32124,
        8,
        -8,
    ]


def rtp(payload: bytes, *, pt: int = 0, csrc: int = 0, ext: bytes = b"", pad: int = 0) -> bytes:
    """An RTP packet with optional CSRCs, header extension and padding."""
    first = 0x80 | csrc | (0x10 if ext else 0) | (0x20 if pad else 0)
    head = struct.pack("!BBHII", first, pt, 1, 160, 0xDEADBEEF) + bytes(4 * csrc)
    if ext:
        head += struct.pack("!HH", 0xBEDE, len(ext) // 4) + ext
    return head + payload + (bytes(pad - 1) + bytes([pad]) if pad else b"")


def test_the_audio_of_an_rtp_packet_is_its_payload_past_every_header() -> None:
    """CSRCs, an extension and padding are skipped; only PCMU is audio."""
    audio = bytes(range(160))
    assert rtp_ulaw(rtp(audio)) == audio
    assert rtp_ulaw(rtp(audio, csrc=2, ext=bytes(8), pad=4)) == audio
    assert rtp_ulaw(rtp(audio, pt=101)) is None  # a DTMF event
    assert rtp_ulaw(b"\x00" * 20) is None  # not RTP version 2
    assert rtp_ulaw(b"\x80\x00") is None


def test_packets_play_when_they_arrive_and_nothing_plays_between() -> None:
    """Two packets, a gap, a burst of two: the burst plays back to back, the gap stays empty."""
    loud = bytes([0x80]) * 160  # +32124
    packets = [(100.00, loud), (100.02, loud), (100.50, loud), (100.50, loud), (101.2, loud)]
    audio = playout(packets, 100.0, 1.0)
    assert len(audio) == SAMPLE_RATE
    heard = [k for k in range(50) if audio[k * 160] != 0]  # which 20 ms frames have sound
    assert heard == [0, 1, 25, 26]


def test_a_packet_before_the_answer_plays_at_its_start() -> None:
    """A packet that came a moment before the answer was logged plays from 0."""
    audio = playout([(99.99, bytes([0x80]) * 160)], 100.0, 0.1)
    assert audio[0] == 32124
    assert audio[159] == 32124
    assert audio[160] == 0


def test_the_sandbox_ringback_is_read_from_indications_conf() -> None:
    """config/asterisk/indications.conf plays 440+480 Hz with 4 s pauses (the US cadence)."""
    conf = (project_root() / "config" / "asterisk" / "indications.conf").read_text()
    assert ringback_of(conf) == US_RINGBACK


def test_another_country_cadence_and_a_missing_tone() -> None:
    """The UK's double ring keeps its longest pause; a country without `ring` is an error."""
    uk = "[general]\ncountry = uk\n[uk]\nring = 400+450/400,0/200,400+450/400,0/2000 ; double\n"
    assert ringback_of(uk) == Ringback((400.0, 450.0), 2.0)
    with pytest.raises(ValueError, match="no `ring` tone"):
        ringback_of("[general]\ncountry = fr\n")


def test_a_recording_reads_back_as_written(tmp_path: Path) -> None:
    """write_wav then read_wav gives the same samples; another format is refused."""
    audio = tone(0.1, 1000) + gap(0.1)
    write_wav(tmp_path / "a.wav", audio)
    assert read_wav(tmp_path / "a.wav") == audio
    import wave

    with wave.open(str(tmp_path / "b.wav"), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(bytes(8))
    with pytest.raises(ValueError, match="expected mono 16-bit 8000 Hz"):
        read_wav(tmp_path / "b.wav")
