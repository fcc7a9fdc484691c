"""What a caller heard: the audio Asterisk sent them, and the longest silence in it.

The chaos suite captures the RTP packets sent to each SIPp caller
(`coverage_lab.capture`); `playout` lays their G.711 audio out in time as the
caller's phone would play it (each packet when it arrived, or after the one
before if it came early), with nothing where no packet came, and the result is
kept as a WAV. `silences` then reads the audio 20 ms at a time:

* A frame is **silent** when its RMS level is under `SILENT_DBFS` (-60 dBFS):
  40 dB under speech on a phone line (about -20 dBFS), at the floor of what
  G.711 carries (its smallest step is -72 dBFS). Everything Asterisk plays to
  a caller stays above it (the prompts, ringback, and the music on hold except
  the fade at the end of a track and the first second of some tracks: see
  docs/reliability.md), while a stretch where nothing is sent, or where
  Asterisk sends its own silence frames, is digital zero, far below.
* **Ringback** (`Ringback`, read from indications.conf) is a tone and then a
  pause of digital silence (4 s in the US): the caller hears ringing, not
  silence. A quiet stretch right after the ringback tone is counted only for
  what lasts longer than the pause.
* Silence counts only `within` the spans given: from the start of the audio
  (the moment the PBX answered) until a person was connected, and again if
  that person left while the caller's line stayed up. With a person on the
  line the SIPp phones, which send no audio, are silent by design.
"""

from __future__ import annotations

import configparser
import math
import operator
import struct
import sys
import wave
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
SILENT_DBFS = -60.0
_FULL_SCALE = 32768.0
# A frame is silent when its sum of squares is under this (RMS under SILENT_DBFS).
_SILENT_ENERGY = FRAME_SAMPLES * (_FULL_SCALE * 10 ** (SILENT_DBFS / 20)) ** 2
# The ringback tone must be most of the sound just before a pause for the pause
# to be ringback: half a second of it, at least 80 % of its energy at the
# tone's own frequencies (music or a voice is spread over many).
_RING_WINDOW_FRAMES = 25
_RING_SHARE = 0.8
# A packet or two of jitter on top of the configured pause.
_RING_TOLERANCE_S = 0.1
_PCMU = 0


# ------------------------------------------------------------------- G.711 and RTP
def _ulaw_sample(code: int) -> int:
    """One G.711 mu-law byte as a 16-bit linear sample (ITU-T G.711)."""
    code = ~code & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 0x07)
    return (0x84 - magnitude) if code & 0x80 else (magnitude - 0x84)


_ULAW = tuple(struct.pack("<h", _ulaw_sample(code)) for code in range(256))


def ulaw_to_pcm(data: bytes) -> array[int]:
    """G.711 mu-law bytes as 16-bit linear samples."""
    samples = array("h")
    samples.frombytes(b"".join(map(_ULAW.__getitem__, data)))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def rtp_ulaw(packet: bytes) -> bytes | None:
    """The G.711 mu-law audio of an RTP packet; None for anything else (DTMF events, CN)."""
    if len(packet) < 12 or packet[0] >> 6 != 2 or packet[1] & 0x7F != _PCMU:
        return None
    start = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:  # a header extension: 4 bytes, then its length in 32-bit words
        if len(packet) < start + 4:
            return None
        start += 4 + 4 * struct.unpack_from("!H", packet, start + 2)[0]
    end = len(packet) - (packet[-1] if packet[0] & 0x20 else 0)  # padding
    return packet[start:end] if start <= end else None


def playout(packets: Iterable[tuple[float, bytes]], start: float, seconds: float) -> array[int]:
    """`seconds` of audio from `start`, from (arrival time, mu-law audio) packets.

    Each packet plays when it arrived, or right after the one before if it
    came early (as a phone's jitter buffer would); where no packet came there
    is nothing (zeros). Times are seconds since the epoch.
    """
    length = max(0, round(seconds * SAMPLE_RATE))
    out = array("h", bytes(2 * length))
    cursor = 0
    for at, audio in sorted(packets, key=lambda p: p[0]):
        position = max(round((at - start) * SAMPLE_RATE), cursor)
        if position >= length:
            break
        pcm = ulaw_to_pcm(audio)
        end = min(position + len(pcm), length)
        out[position:end] = pcm[: end - position]
        cursor = position + len(pcm)
    return out


# ---------------------------------------------------------------------- ringback
@dataclass(frozen=True, slots=True)
class Ringback:
    """The ringback Asterisk plays: its tone's frequencies (Hz) and its longest pause (s)."""

    freqs: tuple[float, ...]
    pause_s: float


def ringback_of(indications_conf: str) -> Ringback:
    """The `ring` tone of the country indications.conf's [general] section names.

    `ring = 440+480/2000,0/4000` is 440 and 480 Hz for 2 s, then 4 s of nothing.
    """
    parser = configparser.ConfigParser(
        inline_comment_prefixes=(";",), comment_prefixes=(";",), strict=False
    )
    parser.read_string(indications_conf)
    country = parser.get("general", "country", fallback="").strip()
    if not parser.has_option(country, "ring"):
        raise ValueError(f"indications.conf has no `ring` tone for country {country!r}")
    freqs: list[float] = []
    pause_ms = 0.0
    for part in parser.get(country, "ring").split(","):
        tone, _, duration = part.strip().lstrip("!").partition("/")
        try:
            values = [float(f) for f in tone.split("+")]
            ms = float(duration) if duration else 0.0
        except ValueError:
            raise ValueError(f"indications.conf: cannot read the ring tone part {part!r}") from None
        if any(values):
            freqs += [f for f in values if f and f not in freqs]
        else:
            pause_ms = max(pause_ms, ms)
    if not freqs:
        raise ValueError(f"indications.conf: the `ring` tone of {country!r} has no frequency")
    return Ringback(tuple(freqs), pause_ms / 1000)


def _tone_share(samples: array[int], freqs: tuple[float, ...]) -> float:
    """The share of the samples' energy at `freqs` (Goertzel): 1.0 for those pure tones."""
    energy = float(sum(map(operator.mul, samples, samples)))
    if not samples or energy == 0:
        return 0.0
    share = 0.0
    for freq in freqs:
        coeff = 2 * math.cos(2 * math.pi * freq / SAMPLE_RATE)
        s1 = s2 = 0.0
        for x in samples:
            s1, s2 = x + coeff * s1 - s2, s1
        share += 2 * (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (len(samples) * energy)
    return share


# ---------------------------------------------------------------------- silences
@dataclass(frozen=True, slots=True)
class Silence:
    """A stretch the caller heard nothing in: from `at_s` (after the answer), `seconds` long.

    `zero_s` of it was digital zero (nothing sent, or Asterisk's silence
    frames); the rest was sound too quiet to hear (the fade of a track).
    """

    at_s: float
    seconds: float
    zero_s: float


def _silent(samples: array[int], frame: int) -> tuple[bool, bool]:
    """Whether a 20 ms frame is silent, and whether it is all zeros."""
    chunk = samples[frame * FRAME_SAMPLES : (frame + 1) * FRAME_SAMPLES]
    energy = sum(map(operator.mul, chunk, chunk))
    return energy < _SILENT_ENERGY, energy == 0


EVERYWHERE: tuple[tuple[float, float], ...] = ((0.0, math.inf),)


def silences(
    samples: array[int],
    ringback: Ringback,
    within: Sequence[tuple[float, float]] = EVERYWHERE,
) -> list[Silence]:
    """Every silence in `samples`, in order; only what lies `within` the given spans counts.

    `within` is (from, to) spans in seconds from the start, in order, not
    overlapping: the stretches in which the caller had nobody on the line. A
    silence across the edge of a span counts for the part inside it. A pause
    right after the ringback tone is ringback for `ringback.pause_s` (and a
    little jitter): only what goes on longer is silence, from then.
    """
    duration = len(samples) / SAMPLE_RATE
    frames = math.ceil(len(samples) / FRAME_SAMPLES)
    kinds = [_silent(samples, k) for k in range(frames)]
    found: list[Silence] = []
    k = 0
    while k < frames:
        if not kinds[k][0]:
            k += 1
            continue
        end = k
        while end < frames and kinds[end][0]:
            end += 1
        first = k
        if _after_ringback(samples, kinds, k, ringback):
            first = k + math.ceil((ringback.pause_s + _RING_TOLERANCE_S) / FRAME_SECONDS)
        for span_from, span_to in within:
            low = max(first * FRAME_SECONDS, span_from)
            high = min(end * FRAME_SECONDS, span_to, duration)
            if high - low < 1e-9:
                continue
            zeros = sum(
                1
                for frame in range(first, end)
                if kinds[frame][1] and low <= frame * FRAME_SECONDS < high
            )
            found.append(
                Silence(
                    at_s=round(low, 3),
                    seconds=round(high - low, 3),
                    zero_s=round(min(zeros * FRAME_SECONDS, high - low), 3),
                )
            )
        k = end
    return found


def _after_ringback(
    samples: array[int], kinds: list[tuple[bool, bool]], frame: int, ringback: Ringback
) -> bool:
    """Whether the half second before `frame` is the ringback tone."""
    begin = frame - _RING_WINDOW_FRAMES
    if begin < 0 or any(silent for silent, _ in kinds[begin:frame]):
        return False
    window = samples[begin * FRAME_SAMPLES : frame * FRAME_SAMPLES]
    return _tone_share(window, ringback.freqs) >= _RING_SHARE


def longest(found: Iterable[Silence]) -> Silence | None:
    """The longest of `found` (the first of equals), None when there is none."""
    best: Silence | None = None
    for silence in found:
        if best is None or silence.seconds > best.seconds:
            best = silence
    return best


# --------------------------------------------------------------------------- WAV
def write_wav(path: Path, samples: array[int]) -> None:
    """Samples as a mono 16-bit 8 kHz WAV."""
    data = array("h", samples)
    if sys.byteorder == "big":
        data.byteswap()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(data.tobytes())


def read_wav(path: Path) -> array[int]:
    """The samples of a mono 16-bit 8 kHz WAV (what `write_wav` writes)."""
    with wave.open(str(path), "rb") as src:
        shape = (src.getnchannels(), src.getsampwidth(), src.getframerate())
        if shape != (1, 2, SAMPLE_RATE):
            raise ValueError(
                f"{path}: {shape[0]} channel(s), {8 * shape[1]}-bit, {shape[2]} Hz; "
                f"expected mono 16-bit {SAMPLE_RATE} Hz"
            )
        samples = array("h")
        samples.frombytes(src.readframes(src.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def main(argv: list[str] | None = None) -> int:
    """`python -m coverage_lab.silence FILE.wav...`: the silences in recordings, as counted."""
    import argparse

    from coverage_lab.sandbox import project_root

    parser = argparse.ArgumentParser(prog="python -m coverage_lab.silence", description=__doc__)
    parser.add_argument("wav", nargs="+", type=Path, help="mono 16-bit 8 kHz recordings")
    parser.add_argument("--until", type=float, default=math.inf, help="count up to this second")
    parser.add_argument("--over", type=float, default=0.2, help="list silences longer than this")
    args = parser.parse_args(argv)
    conf = project_root() / "config" / "asterisk" / "indications.conf"
    ringback = ringback_of(conf.read_text(encoding="utf-8"))
    for path in args.wav:
        samples = read_wav(path)
        found = silences(samples, ringback, ((0.0, args.until),))
        worst = longest(found)
        print(
            f"{path}: {len(samples) / SAMPLE_RATE:.2f} s, longest silence "
            f"{worst.seconds if worst else 0:.2f} s"
        )
        for silence in found:
            if silence.seconds > args.over:
                print(
                    f"  at {silence.at_s:7.2f} s: {silence.seconds:5.2f} s "
                    f"({silence.zero_s:.2f} s of it digital zero)"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
