"""The UDP packets Asterisk sends the SIPp callers, captured on loopback with `tcpdump`.

SIPp neither plays nor analyses the audio it receives, so the lab listens on
the wire instead: `AudioCapture` has `tcpdump` write the packets sent to the
callers' media ports, and `read_pcap` reads them back with their kernel
arrival times. The SIPp benchmark keeps only the headers (when audio arrived);
the chaos suite keeps whole packets (what the audio was).
"""

from __future__ import annotations

import re
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# pcap: the global header, then per packet: seconds, microseconds, captured and
# original lengths. On Linux loopback the link layer is a 14-byte Ethernet header.
_PCAP_MAGIC_US = 0xA1B2C3D4
_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_ETHERNET = 14
_LINKTYPE_ETHERNET = 1
_UDP_HEADER = 8
# Headers only: Ethernet, IPv4 (without options), UDP.
HEADERS_ONLY = 64
# A whole RTP packet of G.711 at 20 ms (12 + 160 bytes) with room for larger ones.
WHOLE_PACKETS = 2048


@dataclass(frozen=True, slots=True)
class Packet:
    """One UDP packet: its arrival time, ports, and as much of its payload as was captured."""

    at: float
    src_port: int
    dst_port: int
    payload: bytes = b""


def iter_pcap(path: Path) -> Iterator[Packet]:
    """The UDP/IPv4 packets of a little-endian, microsecond pcap file (what tcpdump writes)."""
    data = path.read_bytes() if path.exists() else b""
    if len(data) < _GLOBAL.size:
        return
    magic, _major, _minor, _zone, _sigfigs, _snaplen, linktype = _GLOBAL.unpack_from(data)
    if magic != _PCAP_MAGIC_US or linktype != _LINKTYPE_ETHERNET:
        raise ValueError(f"{path}: not a microsecond pcap of an Ethernet-framed capture")
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
        if len(udp) < _UDP_HEADER:
            continue
        src, dst = struct.unpack_from("!HH", udp)
        yield Packet(seconds + micros / 1e6, src, dst, bytes(udp[_UDP_HEADER:]))


def read_pcap(path: Path) -> list[Packet]:
    """Every UDP/IPv4 packet of a pcap file, in capture order (see `iter_pcap`)."""
    return list(iter_pcap(path))


_DROPPED = re.compile(r"(\d+) packets? dropped by kernel")


class AudioCapture:
    """`tcpdump` writing the UDP packets sent to `ports` on loopback into `path`.

    `snaplen` is how much of each packet is kept (`HEADERS_ONLY` or
    `WHOLE_PACKETS`). tcpdump's own report (how many packets the kernel
    dropped) goes to `path` with the suffix `.log`.
    """

    def __init__(self, path: Path, ports: Sequence[int], *, snaplen: int = HEADERS_ONLY) -> None:
        self.path = path
        self.ports = tuple(ports)
        self.snaplen = snaplen
        self.log = path.with_suffix(".log")
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("tcpdump") is not None

    def start(self) -> None:
        wanted = " or ".join(f"dst port {port}" for port in self.ports)
        # Immediate mode: without it the kernel hands packets over a block at a
        # time (up to a second late), and those still held when tcpdump is
        # stopped are lost: the last second of the last calls.
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen(
                ["tcpdump", "-i", "lo", "-n", "--immediate-mode", "-s", str(self.snaplen),
                 "-B", "4096", "-w", str(self.path), f"udp and ({wanted})"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip

    def wait_listening(self, timeout: float = 10.0) -> None:
        """Return once tcpdump says it listens; raise if it stopped or never said so.

        A capture that never ran would pass for callers who heard nothing.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(encoding="utf-8", errors="replace")
            if "listening on" in text:
                return
            if self._proc is None or self._proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"tcpdump is not capturing: {self.log.read_text(errors='replace')}")

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

    def dropped(self) -> int | None:
        """Packets the kernel dropped before tcpdump read them (None: no report yet)."""
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None
        found = _DROPPED.search(text)
        return int(found[1]) if found else None
