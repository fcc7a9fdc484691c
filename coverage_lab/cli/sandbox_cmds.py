"""`coverage-engine sandbox ...`: the sandbox PBX by hand (docs/sandbox.md)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from coverage_lab.sandbox import Sandbox, SandboxError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="the sandbox Asterisk PBX (Debian unstable's Asterisk 22 in a chroot)",
        description="Provision, start and stop this checkout's sandbox Asterisk. Needs root.",
    )
    sub = parser.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)
    provision = sub.add_parser(
        "provision", help="build (once, cached) the Asterisk tree; fast when already done"
    )
    provision.add_argument(
        "--refresh", action="store_true",
        help="download Asterisk again (e.g. for a security release) and rebuild the tree",
    )
    provision.set_defaults(func=_provision)
    start = sub.add_parser("start", help="start Asterisk with config/asterisk and dialplan/")
    start.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for ARI")
    start.set_defaults(func=_start)
    sub.add_parser("stop", help="stop Asterisk").set_defaults(func=_stop)
    sub.add_parser("status", help="is it running, does ARI answer, where things are").set_defaults(
        func=_status
    )
    cli = sub.add_parser("cli", help="Asterisk CLI: a command (`cli 'queue show'`) or a console")
    cli.add_argument("command", nargs="*", help="CLI command; none opens a remote console")
    cli.set_defaults(func=_cli)
    logs = sub.add_parser("logs", help="Asterisk's messages log")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("-n", "--lines", type=int, default=50, help="how many last lines")
    logs.set_defaults(func=_logs)


def _guard(action: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(action(args))
        except SandboxError as exc:
            print(f"sandbox: {exc}", file=sys.stderr)
            return 1

    return run


@_guard
def _provision(args: argparse.Namespace) -> int:
    Sandbox().provision(refresh=args.refresh)
    return 0


@_guard
def _start(args: argparse.Namespace) -> int:
    Sandbox().start(timeout=args.timeout)
    return 0


@_guard
def _stop(args: argparse.Namespace) -> int:
    if not Sandbox().stop():
        print("sandbox: not running")
    return 0


@_guard
def _status(args: argparse.Namespace) -> int:
    sandbox = Sandbox()
    st = sandbox.status()
    print(f"provisioned:  {'yes' if st.provisioned else 'no'} ({st.tree})")
    print(f"cached tree:  {st.cache_tree}")
    if st.running:
        ari = "answers" if st.ari_ok else "does not answer from this network namespace"
        print(f"running:      yes, pid {st.pid}; ARI {ari}")
        print(f"version:      {sandbox.cli('core show version').strip()}")
    else:
        print("running:      no")
    print("ports:        SIP 127.0.0.1:5060/udp, HTTP/ARI 127.0.0.1:8088, AMI 127.0.0.1:5038")
    print(f"credentials:  {st.credentials_file} (ARI/AMI user coverage-engine)")
    print(
        f"              {sandbox.operators_credentials_file} "
        "(AMI user coverage-operators, for `coverage-engine operators`)"
    )
    print(f"              {sandbox.secrets_dir / 'sip-passwords.json'} (the phones' SIP passwords)")
    print(f"log:          {sandbox.log_path()}")
    return 0 if st.running else 3


@_guard
def _cli(args: argparse.Namespace) -> int:
    sandbox = Sandbox()
    if args.command:
        sys.stdout.write(sandbox.cli(" ".join(args.command)))
        return 0
    if not sandbox.is_running():
        raise SandboxError("the sandbox is not running; `coverage-engine sandbox start`")
    return subprocess.call(sandbox.console_command())


@_guard
def _logs(args: argparse.Namespace) -> int:
    path = Sandbox().log_path()
    if not path.is_file():
        raise SandboxError(f"no log yet at {path}; has the sandbox been started?")
    argv = ["tail", "-n", str(args.lines)] + (["-F"] if args.follow else []) + [str(path)]
    return subprocess.call(argv)
