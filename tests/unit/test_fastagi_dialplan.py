"""The example FastAGI dialplan's dial-string pattern: every configured phone in, nothing else.

The dialplan checks each dial string the service answers against
COVERAGE_AGI_DIAL_PATTERN (POSIX extended regular expressions, which Python's
`re` reads the same way for the constructs used here). These tests read the
pattern from the files Asterisk reads.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from coverage_engine.config import load_config

ROOT = Path(__file__).resolve().parents[2]
GLOBALS = (ROOT / "config" / "asterisk" / "extensions.conf").read_text(encoding="utf-8")
EXAMPLE = (ROOT / "dialplan" / "freepbx-example.conf").read_text(encoding="utf-8")


def sandbox_pattern() -> re.Pattern[str]:
    (value,) = re.findall(r"^COVERAGE_AGI_DIAL_PATTERN = (.+)$", GLOBALS, re.MULTILINE)
    return re.compile(value)


def default_pattern() -> re.Pattern[str]:
    (value,) = re.findall(r"Set\(COVERAGE_DIAL_RE=(\^[^)]+\$)\)", EXAMPLE)
    return re.compile(value)


def configured_dial_strings() -> set[str]:
    config = load_config(ROOT / "config" / "coverage.yaml")
    found = set()
    for practice in config.practices.values():
        if practice.staff:
            found.add(practice.staff.dial)
        if practice.oncall:
            found |= {doctor.dial for doctor in practice.oncall.doctors.values()}
    return found


def test_the_sandbox_pattern_admits_every_phone_the_config_rings() -> None:
    """Front desks and doctors of config/coverage.yaml all match: nobody is refused by mistake."""
    dials = configured_dial_strings()
    assert len(dials) >= 7
    assert all(sandbox_pattern().search(d) for d in dials), dials


ROGUE = [
    "PJSIP/+19005550100@carrier-out",
    "PJSIP/frontdesk-maple,10,U(evil^s^1)",
    "PJSIP/frontdesk-maple&PJSIP/+19005550100@carrier-out",
    "Local/*22@coverage-operators",
    "PJSIP/operator1",  # a phone, but not one the configuration rings directly
    "PJSIP/carrier-out",
    "PJSIP/patel-x",
    "xPJSIP/patel",
    "",
]


@pytest.mark.parametrize("dial", ROGUE)
def test_the_sandbox_pattern_refuses_what_the_config_does_not_produce(dial: str) -> None:
    """Numbers through the trunk, options, second legs, Local channels, other phones: refused."""
    assert not sandbox_pattern().search(dial)


@pytest.mark.parametrize(
    ("dial", "allowed"),
    [
        ("PJSIP/patel", True),
        ("PJSIP/frontdesk-maple", True),
        ("PJSIP/+19005550100@carrier-out", False),
        ("PJSIP/patel,10,U(x)", False),
        ("Local/s@default", False),
        ("IAX2/evil", False),
    ],
)
def test_the_examples_default_pattern_is_one_endpoint_never_a_trunk(
    dial: str, allowed: bool
) -> None:
    """Without COVERAGE_AGI_DIAL_PATTERN, only a bare PJSIP endpoint may be dialed."""
    assert bool(default_pattern().search(dial)) is allowed
