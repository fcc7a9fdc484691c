"""The audio capture's own report: how many packets the kernel dropped before tcpdump."""

from __future__ import annotations

from pathlib import Path

import pytest

from coverage_lab.capture import AudioCapture


@pytest.mark.parametrize(
    ("log", "dropped"),
    [
        (
            "tcpdump: listening on lo\n20838 packets captured\n41676 packets received by filter\n"
            "0 packets dropped by kernel\n",
            0,
        ),
        ("12 packets captured\n1 packet dropped by kernel\n", 1),
        ("tcpdump: listening on lo\n", None),
    ],
)
def test_the_packets_dropped_by_the_kernel_come_from_tcpdumps_report(
    tmp_path: Path, log: str, dropped: int | None
) -> None:
    """tcpdump's closing lines give the count; a capture still running has none yet."""
    capture = AudioCapture(tmp_path / "heard.pcap", [31000])
    capture.log.write_text(log)
    assert capture.dropped() == dropped


def test_a_capture_that_never_ran_is_an_error_not_silence(tmp_path: Path) -> None:
    """Waiting for a tcpdump that was never started fails instead of measuring nothing."""
    capture = AudioCapture(tmp_path / "heard.pcap", [31000])
    capture.log.write_text("tcpdump: lo: You don't have permission to capture on that device\n")
    with pytest.raises(RuntimeError, match=r"not capturing.*permission"):
        capture.wait_listening(timeout=0.2)
