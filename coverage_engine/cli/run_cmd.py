"""`coverage-engine run`: connect to Asterisk over ARI and carry every call to a person.

The ARI URL, user and application come from flags or the environment; the
password only from the environment or a file, never from the command line
(where `ps` and shell history would show it). SIGTERM and SIGINT stop the
engine cleanly, leaving calls in progress connected in Asterisk; SIGHUP
reloads the configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from coverage_engine import wire
from coverage_engine.ami.client import ENV_USER as AMI_USER_ENV
from coverage_engine.ami.client import AmiError, AmiSettings
from coverage_engine.ari import AriSettings
from coverage_engine.ari.errors import AriAuthError
from coverage_engine.clock import ALLOW_OVERRIDE_ENV, ClockOverrideRefused, clock_from_options
from coverage_engine.config import ConfigError
from coverage_engine.logs import configure_logging
from coverage_engine.records.sqlite import StoreError
from coverage_engine.web import DEFAULT_HOST as DEFAULT_CONSOLE_HOST
from coverage_engine.web import DEFAULT_PORT as DEFAULT_CONSOLE_PORT

ENV_URL = "COVERAGE_ARI_URL"
ENV_USER = "COVERAGE_ARI_USER"
ENV_APP = "COVERAGE_ARI_APP"
ENV_PASSWORD = "COVERAGE_ARI_PASSWORD"  # noqa: S105 - the variable's name, not a password
ENV_PASSWORD_FILE = "COVERAGE_ARI_PASSWORD_FILE"  # noqa: S105
ENV_CA_FILE = "COVERAGE_ARI_CA_FILE"
ENV_METRICS_PORT = "COVERAGE_METRICS_PORT"
DEFAULT_METRICS_PORT = 9464  # the port Prometheus' own exporters list leaves to custom apps
ENV_CONSOLE_PORT = "COVERAGE_CONSOLE_PORT"

log = structlog.get_logger("coverage_engine.run")


def register(subparsers: Any) -> None:
    """Add the `run` command."""
    parser = subparsers.add_parser(
        "run",
        help="connect to Asterisk (ARI) and answer every call with a person",
        description=(
            "Run the engine next to Asterisk. The ARI password is read from "
            f"${ENV_PASSWORD} or from the file in --ari-password-file / ${ENV_PASSWORD_FILE}."
        ),
    )
    parser.add_argument("--config", required=True, type=Path, help="the coverage YAML file")
    add_ari_options(parser)
    parser.add_argument(
        "--clock-start",
        metavar="INSTANT",
        help=(
            "TESTS AND DEMO ONLY: start the engine's clock at this instant "
            f"(e.g. '2026-12-25T03:00 America/Chicago'); also needs {ALLOW_OVERRIDE_ENV}=1"
        ),
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        help=f"Prometheus /metrics port (default ${ENV_METRICS_PORT}, else "
        f"{DEFAULT_METRICS_PORT}; 0 turns it off)",
    )
    parser.add_argument(
        "--metrics-host", default="127.0.0.1", help="interface for /metrics (default 127.0.0.1)"
    )
    parser.add_argument(
        "--console-port",
        type=int,
        help=f"the operators' console port (default ${ENV_CONSOLE_PORT}, else "
        f"{DEFAULT_CONSOLE_PORT}; 0 turns it off)",
    )
    parser.add_argument(
        "--console-host",
        default=DEFAULT_CONSOLE_HOST,
        help="interface for the console (default 127.0.0.1; put a TLS proxy in front "
        "rather than opening it to the network: docs/running.md)",
    )
    parser.add_argument(
        "--console-secure-cookies",
        action="store_true",
        help="mark the console's cookies Secure (it is reached over HTTPS through a proxy)",
    )
    parser.add_argument("--verbose", action="store_true", help="log ARI requests too")
    parser.set_defaults(func=run)


def add_ari_options(parser: argparse.ArgumentParser, *, app: bool = True) -> None:
    """The ARI connection options `ari_settings_from` reads: one set for every command
    that reaches ARI (`status` asks without its own application: `app=False`)."""
    parser.add_argument(
        "--ari-url", help=f"ARI base URL (default ${ENV_URL}, else http://127.0.0.1:8088/ari)"
    )
    parser.add_argument("--ari-user", help=f"ARI user (default ${ENV_USER}, else coverage-engine)")
    if app:
        parser.add_argument(
            "--ari-app", help=f"ARI application (default ${ENV_APP}, else coverage-engine)"
        )
    else:
        parser.set_defaults(ari_app=None)
    parser.add_argument(
        "--ari-password-file", type=Path, help="file holding the ARI password (one line)"
    )
    parser.add_argument(
        "--ari-ca-file",
        help=f"CA certificates (PEM) for an https:// ARI URL (default ${ENV_CA_FILE}, "
        "else the system's)",
    )


def ari_settings_from(args: argparse.Namespace, environ: Mapping[str, str]) -> AriSettings:
    """ARI settings from flags, the environment, then defaults; the password never from argv."""
    password = environ.get(ENV_PASSWORD, "")
    password_file = args.ari_password_file or (
        Path(environ[ENV_PASSWORD_FILE]) if environ.get(ENV_PASSWORD_FILE) else None
    )
    if password_file is not None:
        password = password_file.read_text(encoding="utf-8").strip()
    if not password:
        raise ValueError(
            f"no ARI password: set {ENV_PASSWORD} or point --ari-password-file "
            f"(or {ENV_PASSWORD_FILE}) at a file holding it"
        )
    ca_file = args.ari_ca_file or environ.get(ENV_CA_FILE) or None
    if ca_file is not None and not Path(ca_file).is_file():
        raise ValueError(f"the ARI CA file {ca_file} does not exist")
    return AriSettings(
        url=args.ari_url or environ.get(ENV_URL) or "http://127.0.0.1:8088/ari",
        username=args.ari_user or environ.get(ENV_USER) or "coverage-engine",
        password=password,
        app=args.ari_app or environ.get(ENV_APP) or wire.APP,
        ca_file=ca_file,
    ).check_engine_app()


def metrics_port_from(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """The /metrics port: the flag, else the environment, else the default (0: off)."""
    return port_from(args.metrics_port, environ, ENV_METRICS_PORT, DEFAULT_METRICS_PORT)


def port_from(flag: int | None, environ: Mapping[str, str], variable: str, default: int) -> int:
    """A port: the flag, else the environment variable, else the default (0: off)."""
    if flag is not None:
        return int(flag)
    text = environ.get(variable, "")
    try:
        port = int(text) if text else default
    except ValueError:
        raise ValueError(f"{variable}={text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{port} is not a port number (0 to 65535)")
    return port


def run(args: argparse.Namespace) -> int:
    """The `run` command: returns 0 after a clean stop, 1 when it cannot start."""
    from coverage_engine.bootstrap import (
        EngineParts,
        load_holder,
        run_engine,
        tune_garbage_collector,
    )

    configure_logging(level="debug" if args.verbose else "info")
    try:
        settings = ari_settings_from(args, os.environ)
        # Logged loudly (a warning) when the clock starts at another instant.
        clock = clock_from_options(args.clock_start, os.environ)
        port = metrics_port_from(args, os.environ)
        console_port = port_from(
            args.console_port, os.environ, ENV_CONSOLE_PORT, DEFAULT_CONSOLE_PORT
        )
    except (ValueError, OSError, ClockOverrideRefused) as exc:
        print(f"coverage-engine run: {exc}", file=sys.stderr)
        return 1
    try:
        # AMI (operator presence) is optional: on when COVERAGE_AMI_USER is set.
        ami = AmiSettings.from_env() if os.environ.get(AMI_USER_ENV) else None
    except AmiError as exc:
        print(f"coverage-engine run: {exc}", file=sys.stderr)
        return 1
    parts = EngineParts(
        config_path=args.config,
        ari_settings=settings,
        clock=clock,
        ami_settings=ami,
        metrics_address=(args.metrics_host, port) if port else None,
        console_address=(args.console_host, console_port) if console_port else None,
        console_secure_cookies=args.console_secure_cookies,
        environ=os.environ,
    )
    try:
        holder = load_holder(parts)
    except ConfigError as exc:
        print(f"coverage-engine run: {args.config} is not valid:", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"coverage-engine run: cannot read {args.config}: {exc}", file=sys.stderr)
        return 1

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_engine(parts, holder, stop)

    tune_garbage_collector()
    try:
        asyncio.run(main())
    except AriAuthError as exc:
        print(
            f"coverage-engine run: Asterisk refused the ARI user or password ({exc.message}); "
            "check ari.conf and the password",
            file=sys.stderr,
        )
        return 1
    except StoreError as exc:
        print(f"coverage-engine run: {exc}", file=sys.stderr)
        return 1
    return 0
