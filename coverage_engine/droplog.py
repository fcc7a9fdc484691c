"""Log lines about refused or broken connections that a flood cannot multiply.

A port scan, a fuzzer or a misconfigured health check makes one bad
connection after another. Each deserves a trace, but not one line each: ten
thousand lines bury the ones that matter and fill the disk. `DropLog` logs
the first `burst` drops of each `window` one by one and only counts the
rest; the count is logged once, when the next window begins or at `flush()`.

`http_server_logger` applies it to aiohttp's server logger, which otherwise
writes a traceback at ERROR for every malformed HTTP request (the metrics
endpoint and the web console both serve aiohttp).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import structlog
from aiohttp.http_exceptions import HttpProcessingError

from coverage_engine.caller_text import for_terminal

_REASON_MAX = 80


class DropLog:
    """Rate-limited log lines for dropped connections (one logger, one summary event)."""

    def __init__(
        self,
        logger: structlog.typing.FilteringBoundLogger | structlog.stdlib.BoundLogger,
        *,
        summary: str,
        burst: int = 10,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._summary = summary
        self._burst = burst
        self._window = window
        self._clock = clock
        self._started = clock()
        self._logged = 0
        self._suppressed: dict[str, int] = {}

    def drop(self, event: str, peer: object, reason: str) -> None:
        """One dropped connection: logged if this window's burst allows, else counted."""
        now = self._clock()
        if now - self._started >= self._window:
            self.flush()
            self._started, self._logged = now, 0
        # The reason may quote what the peer sent: escaped and short.
        shown = for_terminal(reason[:_REASON_MAX])
        if self._logged < self._burst:
            self._logged += 1
            self._log.info(event, peer=str(peer), reason=shown)
            return
        self._suppressed[shown] = self._suppressed.get(shown, 0) + 1

    def flush(self) -> None:
        """Log the count of drops not logged one by one, if any."""
        if self._suppressed:
            self._log.warning(
                self._summary,
                count=sum(self._suppressed.values()),
                reasons=dict(self._suppressed),
                window_seconds=self._window,
            )
            self._suppressed = {}


class _BadRequests(logging.Filter):
    """Turns aiohttp's traceback for a malformed request into one rate-limited line."""

    def __init__(self, drops: DropLog) -> None:
        super().__init__()
        self._drops = drops

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True  # a real error of ours: keep it, traceback and all
        peer = record.args[0] if isinstance(record.args, tuple) and record.args else ""
        first = (error.message or "").strip().splitlines()[:1]
        self._drops.drop(
            "http.bad_request", peer, f"{type(error).__name__}: {first[0] if first else ''}"
        )
        return False


def http_server_logger(name: str, **limits: float) -> logging.Logger:
    """A logger for an aiohttp server (`AppRunner(..., logger=...)`) with quiet bad requests.

    `name` is the logger's name (e.g. `coverage_engine.metrics.http`); records
    go up to the root handler configured in `logs.py` like any other.
    """
    logger = logging.getLogger(name)
    if not any(isinstance(f, _BadRequests) for f in logger.filters):
        drops = DropLog(
            structlog.get_logger(name),
            summary="http.bad_requests",
            burst=int(limits.get("burst", 10)),
            window=limits.get("window", 60.0),
        )
        logger.addFilter(_BadRequests(drops))
    return logger
