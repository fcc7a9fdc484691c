"""The `coverage-engine` command line: a thin dispatcher.

Each command group lives in its own module and registers its subcommands here,
so the dispatcher never grows policy. Exit codes: 0 success, 1 a finding the
user must act on (invalid config, a coverage gap, a failed call), 2 usage,
70 an internal error (a bug: said in one line, never a traceback).

The runtime's own groups are listed below. Other packages add groups through
the `coverage_engine.commands` entry point group (the lab declares `sandbox`,
`demo` and `bench` there in pyproject.toml), so the runtime never imports
them: where they are not installed, those commands are simply absent.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from coverage_engine.config.text import escape

# Modules that define `register(subparsers)`. A subcommand's handler is stored
# as `func` on its parser and returns the process exit code.
_COMMAND_MODULES: tuple[str, ...] = (
    "coverage_engine.cli.routing_cmds",
    "coverage_engine.cli.changes_cmds",
    "coverage_engine.cli.replay_cmds",
    "coverage_engine.cli.feeds_cmds",
    "coverage_engine.cli.run_cmd",
    "coverage_engine.cli.calls_cmds",
    "coverage_engine.cli.operators_cmds",
    "coverage_engine.cli.agi_cmd",
    "coverage_engine.cli.users_cmds",
    "coverage_engine.cli.console_cmd",
    "coverage_engine.cli.messages_cmds",
    "coverage_engine.cli.status_cmd",
)

PLUGIN_GROUP = "coverage_engine.commands"
"""Entry point group of command groups from other packages: `name = "module:register"`."""

Handler = Callable[[argparse.Namespace], int]
Register = Callable[[Any], None]


def _plugin_registers() -> list[tuple[str, Register]]:
    """The installed plugins' `register` functions, by name; a broken one is skipped with a note.

    A plugin whose module is not installed is left out silently (a runtime
    installed without the lab). One that fails to import for another reason
    is a bug in that plugin: the rest of the command line must keep working
    (a clinic's `run` does not depend on the lab), so it gets one line on
    stderr instead of a traceback.
    """
    found: list[tuple[str, Register]] = []
    for point in sorted(entry_points(group=PLUGIN_GROUP), key=lambda p: p.name):
        try:
            register = point.load()
        except ModuleNotFoundError as exc:
            if exc.name is not None and _is_plugin_module(point, exc.name):
                continue
            _note(point, exc)
            continue
        except Exception as exc:  # whatever breaks a plugin's import: reported, not raised
            _note(point, exc)
            continue
        found.append((point.name, register))
    return found


def _is_plugin_module(point: EntryPoint, missing: str) -> bool:
    """Whether the missing module is the plugin's own module or a package above it."""
    return point.module == missing or point.module.startswith(missing + ".")


def _note(point: EntryPoint, exc: BaseException) -> None:
    print(
        f"coverage-engine: the {point.name!r} commands ({point.value}) could not be loaded "
        f"and are left out: {type(exc).__name__}: {exc}",
        file=sys.stderr,
    )

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
        importlib.import_module(name).register(sub)
    for plugin, register in _plugin_registers():
        if plugin in sub.choices:
            print(
                f"coverage-engine: a plugin's {plugin!r} commands are left out: "
                "that name is taken",
                file=sys.stderr,
            )
            continue
        register(sub)
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
