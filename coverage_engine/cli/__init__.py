"""The `coverage-engine` command line: a thin dispatcher.

Each command group lives in its own module and registers its subcommands here,
so the dispatcher never grows policy. Exit codes: 0 success, 1 a finding the
user must act on (invalid config, a coverage gap, a failed call), 2 usage,
70 an internal error (a bug: said in one line, never a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from coverage_engine.config.text import escape

# Modules that define `register(subparsers)`. A subcommand's handler is stored
# as `func` on its parser and returns the process exit code.
_COMMAND_MODULES: tuple[str, ...] = (
    "coverage_engine.cli.routing_cmds",
    "coverage_engine.cli.changes_cmds",
    "coverage_engine.cli.sandbox_cmds",
    "coverage_engine.cli.run_cmd",
    "coverage_engine.cli.calls_cmds",
    "coverage_engine.cli.operators_cmds",
    "coverage_engine.cli.agi_cmd",
    "coverage_engine.cli.demo_cmd",
    "coverage_engine.cli.bench_cmd",
)

Handler = Callable[[argparse.Namespace], int]

# sysexits.h EX_SOFTWARE: the program itself went wrong.
EXIT_BUG = 70
# What a shell reports for a process ended by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141


def build_parser() -> argparse.ArgumentParser:
    from coverage_engine import __version__

    parser = argparse.ArgumentParser(
        prog="coverage-engine",
        description="A person answers every call to the practice, at any hour.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that command group is not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Handler | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `calendar ... | head`: the reader has what it wanted. Nothing more
        # may reach the closed pipe, not even Python's final flush.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except RecursionError:
        print(
            "coverage-engine: internal error (this is a bug, please report it): "
            "the input is nested too deeply to process",
            file=sys.stderr,
        )
        return EXIT_BUG
    except Exception as exc:
        # The last resort: a user never sees a traceback, only this line. Every
        # error a user can cause has its own message before it gets here.
        detail = " ".join(str(exc).split())[:200] or "no details"
        print(
            "coverage-engine: internal error (this is a bug, please report it): "
            f"{type(exc).__name__}: {escape(detail)}",
            file=sys.stderr,
        )
        return EXIT_BUG


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file (a test's capture)
        pass
