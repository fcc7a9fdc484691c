"""Calls to a number no practice has: counted, and logged with the number masked.

A DID that reaches no practice still reaches a person (the default route),
but it usually means a misconfiguration: a new number the carrier turned on,
a typo in the file, a carrier sending an odd format. The metric lets an
alert catch it; the log line says which number (its last four digits).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from datetime import datetime

import structlog
from prometheus_client import CollectorRegistry, Counter

from coverage_engine.logs import mask_caller
from coverage_engine.plan import Plan

log = structlog.get_logger("coverage_engine.routing")

Route = Callable[[datetime, str, str], Plan]

_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()


def _counter(registry: CollectorRegistry) -> Counter:
    # One counter per registry, however many engines a process builds on it.
    found = _COUNTERS.get(registry)
    if found is None:
        found = Counter(
            "coverage_unknown_did_calls",
            "calls to a number no practice has (unknown) or that is no number (unreadable), "
            "sent to the default route",
            ["kind"],
            registry=registry,
        )
        _COUNTERS[registry] = found
    return found


def counted(route: Route, registry: CollectorRegistry) -> Route:
    """`route`, counting and logging every call whose plan is the default route."""
    counter = _counter(registry)

    def counting(instant: datetime, did: str, caller: str) -> Plan:
        plan = route(instant, did, caller)
        if not plan.known_did:
            kind = "unreadable" if plan.reason.startswith("unreadable") else "unknown"
            counter.labels(kind).inc()
            log.warning(
                "did.unknown",
                kind=kind,
                did=mask_caller(did),
                message="a call to a number no practice has went to the default route",
            )
        return plan

    return counting
