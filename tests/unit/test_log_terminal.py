"""On a terminal the log shows caller text escaped; JSON lines escape it themselves."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from coverage_engine.logs import configure_logging

OSC = "\x1b]0;pwned\x07"


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as the admin's console is."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_the_console_layout_escapes_a_callers_escape_sequence() -> None:
    """A caller name with an OSC title change is shown as \\x1b]0;..., not sent to the terminal."""
    out = Terminal()
    configure_logging(stream=out)
    structlog.get_logger("t").info("journey", caller_name=f"Jane{OSC}", details={"name": OSC})
    text = out.getvalue()
    assert "\x1b]0" not in text
    assert "\\x1b]0;pwned\\x07" in text


def test_json_lines_escape_it_themselves() -> None:
    """Off a terminal (journald, files) every line is JSON; the name reads back exactly."""
    out = io.StringIO()
    configure_logging(stream=out)
    structlog.get_logger("t").info("journey", caller_name=f"Jane{OSC}\u202e")
    (line,) = out.getvalue().splitlines()
    assert line.isascii()
    assert json.loads(line)["caller_name"] == f"Jane{OSC}\u202e"
