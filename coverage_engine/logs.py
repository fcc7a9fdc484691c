"""Logging for the whole application: structlog, one configuration, patient numbers masked.

* `configure_logging()` is called once, by the composition root. JSON lines
  when the output is not a terminal (production, journald, CI), a readable
  console rendering in a terminal. Standard-library loggers (aiohttp,
  panoramisk) go through the same chain, so they are rendered and masked alike;
  our own lines skip the standard library's machinery (records, handlers, a
  second copy of each record), which made a journey line cost three times as
  much, and a line below the level costs a no-op call.
* Every line of a call carries its call id and practice: the engine binds
  them with `bind_call()` at the start of the call's task; contextvars are
  copied per asyncio task, so concurrent calls never see each other's ids.
* Patient phone numbers are masked everywhere in a log event (the message,
  every field, nested dicts and lists, formatted exceptions): only the last
  four digits stay. Only the call-record store keeps whole numbers. The
  masking errs on the side of privacy: any run of 7 or more digits that could
  be a phone number is masked, whatever field it is in.
"""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO, cast

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from coverage_engine.caller_text import for_terminal

# A phone number as people and Asterisk write it: an optional +, digits, and
# spaces, dots, dashes or parentheses between them; letters or punctuation
# next to it do not protect it ("caller5557654321", "caller-555-765-4321").
_PHONE = re.compile(r"(?<!\d)\+?\(?\d[\d\s().\-]{5,}\d(?!\d)")
# Digit runs that are not phone numbers and that logs need to stay readable:
# Asterisk unique ids / linkedids ("1700000000.12"), IPv4 addresses, and
# anything holding a date ("2026-03-01 02:14").
_NOT_A_PHONE = re.compile(r"\d+\.\d+|\d{1,3}(?:\.\d{1,3}){3}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A channel name's sequence suffix, eight hex digits: "PJSIP/operator1-0000001a".
_CHANNEL_SUFFIX = re.compile(r"(-[0-9a-f]{8})(?![0-9A-Za-z])")
_MIN_DIGITS = 7  # shorter runs are extensions, ports, durations
# Seven digits anywhere: text without them cannot hold a number to mask (most
# log text: event names, practices, labels), so it is returned untouched.
_SEVEN_DIGITS = re.compile(rf"\d(?:\D*\d){{{_MIN_DIGITS - 1}}}")


def mask_number(text: str) -> str:
    """Free text with every phone-number-like run replaced by *** and its last four digits.

    For log lines and messages, where a number may be anywhere. A value that
    *is* a phone number (a caller field) is masked with `mask_caller`.
    """

    if _SEVEN_DIGITS.search(text) is None:
        return text

    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        digits = re.sub(r"\D", "", found)
        if len(digits) < _MIN_DIGITS or _NOT_A_PHONE.fullmatch(found) or _DATE.search(found):
            return found
        return f"***{digits[-4:]}"

    # Channel-name suffixes are left whole; the text between them is searched.
    pieces = _CHANNEL_SUFFIX.split(text)
    return "".join(p if i % 2 else _PHONE.sub(replace, p) for i, p in enumerate(pieces))


def mask_caller(number: str) -> str:
    """A value known to be a phone number: only its last four digits show (`*******1234`).

    Stricter than `mask_number`, which looks for number-like runs in free
    text and leaves short ones alone: a field that *is* the caller's number is
    masked whatever its length and whatever surrounds the digits.
    """
    digits = [c for c in number if c.isdigit()]
    if len(digits) <= 4:
        return "*" * len(number)
    keep = len(number) - 4
    return "".join("*" if c.isdigit() else c for c in number[:keep]) + number[keep:]


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_number(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if len(str(abs(value))) < _MIN_DIGITS else mask_number(str(value))
    if isinstance(value, Mapping):
        return {_mask(k): _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask(v) for v in value]
    # Anything else (a dataclass, an exception) would be rendered with str()
    # or repr() later, outside our sight: render it now and mask that.
    return mask_number(str(value))


def mask_phone_numbers(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """The structlog processor: mask phone numbers in every field of the event."""
    return {key: _mask(value) for key, value in event_dict.items()}


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.StackInfoRenderer(),
    ]


def _printable(value: Any, *, lines: bool = False) -> Any:
    if isinstance(value, str):
        if lines:  # a traceback keeps its line breaks, nothing else
            return "\n".join(for_terminal(line) for line in value.split("\n"))
        return for_terminal(value)
    if isinstance(value, Mapping):
        return {k: _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


def printable_for_terminal(
    _logger: WrappedLogger, _method: str, event_dict: EventDict
) -> EventDict:
    """Caller text (names, numbers, a DID) shown escaped on a terminal, never obeyed.

    JSON lines escape control characters themselves; the console layout
    would print them raw, so an escape sequence in a caller's name could
    drive the admin's terminal.
    """
    return {k: _printable(v, lines=k == "exception") for k, v in event_dict.items()}


class _Stderr(io.TextIOBase):
    """The process's standard error as it is when a line is written, not when logging
    was configured (a daemon's redirect, a test's capture)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


class _LineWriter:
    """Where our own lines go, one write each; `name` is what `add_logger_name` reads.

    A closed or broken stream loses the line, as the standard library's
    handlers lose it: logging must never stop a call.
    """

    def __init__(self, stream: TextIO, name: str) -> None:
        self._stream = stream
        self.name = name

    def msg(self, message: str) -> None:
        try:
            self._stream.write(message + "\n")
            self._stream.flush()
        except (OSError, ValueError):
            pass

    log = debug = info = warning = warn = error = err = critical = fatal = exception = msg


def configure_logging(
    *, json: bool | None = None, level: str = "info", stream: TextIO | None = None
) -> None:
    """Configure structlog and the standard library once for the whole process.

    `json` None means: JSON lines unless `stream` is a terminal.
    """
    # _Stderr has the TextIO methods logging and structlog call (write, flush, isatty).
    out = stream if stream is not None else cast(TextIO, _Stderr())
    as_json = json if json is not None else not out.isatty()
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    # What every line goes through last, ours and the standard library's alike.
    render: list[Processor] = [
        # Exceptions become text before masking, so numbers in them are masked too.
        structlog.processors.format_exc_info,
        mask_phone_numbers,
        # Stamped after masking: our own digits, nothing to mask in them.
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # A terminal would obey what JSON escapes: caller text shown escaped.
        *([] if as_json else [printable_for_terminal]),
        renderer,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    structlog.configure(
        processors=[*_shared_processors(), *render],
        logger_factory=lambda *args: _LineWriter(out, str(args[0]) if args else ""),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # Not cached: tests swap processors with structlog.testing.capture_logs().
        cache_logger_on_first_use=False,
    )


def bind_call(call_id: str, practice: str | None = None) -> None:
    """Bind the call id (and practice) to every log line of the current task from now on."""
    if practice is None:
        structlog.contextvars.bind_contextvars(call_id=call_id)
    else:
        structlog.contextvars.bind_contextvars(call_id=call_id, practice=practice)


@contextmanager
def call_context(call_id: str, practice: str | None = None) -> Iterator[None]:
    """Bind the call id (and practice) to log lines inside the block only."""
    values = (
        {"call_id": call_id} if practice is None else {"call_id": call_id, "practice": practice}
    )
    with structlog.contextvars.bound_contextvars(**values):
        yield
