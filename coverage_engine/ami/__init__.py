"""Asterisk Manager Interface: the panoramisk adapter and operator presence.

`client` talks to Asterisk; `presence` is the pure fold of queue events;
`tracker` keeps a `Presence` current from a live connection.
"""

from __future__ import annotations

from coverage_engine.ami.client import (
    Ami,
    AmiActionFailed,
    AmiError,
    AmiLoginFailed,
    AmiSettings,
    AmiTimeout,
    AmiUnavailable,
    PanoramiskAmi,
)
from coverage_engine.ami.presence import Member, Presence, QueueAvailability
from coverage_engine.ami.tracker import PresenceTracker

__all__ = [
    "Ami",
    "AmiActionFailed",
    "AmiError",
    "AmiLoginFailed",
    "AmiSettings",
    "AmiTimeout",
    "AmiUnavailable",
    "Member",
    "PanoramiskAmi",
    "Presence",
    "PresenceTracker",
    "QueueAvailability",
]
