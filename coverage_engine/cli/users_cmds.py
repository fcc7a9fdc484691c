"""`coverage-engine users ...` and `coverage-engine access-log`: console accounts and their audit.

Users live in the record file (so every engine sharing it knows them).
Passwords are typed at a prompt, or read from a file or $COVERAGE_USER_PASSWORD
for scripts: never from the command line, where `ps` would show them.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coverage_engine.cli.calls_cmds import _db_path, _zone, parse_instant
from coverage_engine.records.sqlite import StoreError
from coverage_engine.web.access import AccessEntry, AccessLog, Action
from coverage_engine.web.accounts import AccountError, Role
from coverage_engine.web.db import ConsoleDb

ENV_PASSWORD = "COVERAGE_USER_PASSWORD"  # noqa: S105 - the variable's name, not a password

# The command line is the edge where the real clock is read; tests replace it.
clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def _store_options(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--db", help="the records: a SQLite file, or a postgresql:// URL")
    where.add_argument("--config", type=Path, help="the coverage config (uses records.path)")


def register(subparsers: Any) -> None:
    users = subparsers.add_parser(
        "users",
        help="console users: add, list, disable, change a password",
        description="Who may sign in to the operators' console, with which role and practices.",
    )
    sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)

    # No abbreviations: `--password` must not quietly mean `--password-file`.
    p = sub.add_parser("add", help="add a user (asks for the password)", allow_abbrev=False)
    _store_options(p)
    p.add_argument("username", help="2-40 lowercase letters, digits, '.', '_', '-'")
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument(
        "--practice",
        action="append",
        default=[],
        metavar="ID",
        help="a practice this user covers (repeat for several; admins cover all)",
    )
    p.add_argument("--name", default="", help="the name shown in the console")
    p.add_argument("--password-file", type=Path, help="read the password from this file")
    p.set_defaults(func=_guarded(_cmd_add))

    p = sub.add_parser("list", help="every user, with role, practices and state")
    _store_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_guarded(_cmd_list))

    p = sub.add_parser("disable", help="stop a user signing in (ends their sessions now)")
    _store_options(p)
    p.add_argument("username")
    p.add_argument("--enable", action="store_true", help="allow them again instead")
    p.set_defaults(func=_guarded(_cmd_disable))

    p = sub.add_parser(
        "passwd", help="set a new password (ends the user's sessions)", allow_abbrev=False
    )
    _store_options(p)
    p.add_argument("username")
    p.add_argument("--password-file", type=Path, help="read the password from this file")
    p.set_defaults(func=_guarded(_cmd_passwd))

    p = subparsers.add_parser(
        "access-log",
        help="who saw which call or message, and when (the console's access audit)",
        description="Every view of a call or message in the console, every refusal and "
        "sign-in, oldest first.",
    )
    _store_options(p)
    p.add_argument("--since", help="from this date or ISO time (inclusive)")
    p.add_argument("--until", help="up to this date or ISO time (exclusive)")
    p.add_argument("--tz", default="UTC", help="time zone of dates and times shown (default UTC)")
    p.add_argument("--user", help="only this user")
    p.add_argument("--call", help="only this call id")
    p.add_argument("--refused", action="store_true", help="only refused requests")
    p.add_argument("--last", type=int, help="only the last N entries")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_guarded(_cmd_access_log))


def _guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (AccountError, StoreError, ValueError) as exc:
            print(f"coverage-engine: {exc}", file=sys.stderr)
            return 1

    return handler


def _open(args: argparse.Namespace) -> ConsoleDb:
    return ConsoleDb.open(_db_path(args))


def _password(args: argparse.Namespace, username: str) -> str:
    if args.password_file is not None:
        return Path(args.password_file).read_text(encoding="utf-8").rstrip("\n")
    if os.environ.get(ENV_PASSWORD):
        return os.environ[ENV_PASSWORD]
    if not sys.stdin.isatty():
        raise AccountError(
            f"no password: type it at a terminal, or use --password-file or ${ENV_PASSWORD}"
        )
    first = getpass.getpass(f"password for {username}: ")
    if getpass.getpass("again: ") != first:
        raise AccountError("the two passwords differ; nothing changed")
    return first


def _audit(db: ConsoleDb, what: str, username: str) -> None:
    db.access.write(
        AccessEntry(
            clock(),
            f"cli:{getpass.getuser()}",
            Action.USER_CHANGED,
            True,
            details={"change": what, "user": username},
        )
    )


def _cmd_add(args: argparse.Namespace) -> int:
    password = _password(args, args.username)
    db = _open(args)
    try:
        user = db.accounts.add(
            args.username,
            password=password,
            role=Role(args.role),
            practices=args.practice,
            display_name=args.name,
            at=clock(),
        )
        _audit(db, "add", user.username)
    finally:
        db.close()
    print(f"added {user.username} ({user.role.value}: {', '.join(user.practices)})")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    db = _open(args)
    try:
        users = db.accounts.users()
    finally:
        db.close()
    if args.json:
        for u in users:
            print(
                json.dumps(
                    {
                        "username": u.username,
                        "name": u.display_name,
                        "role": u.role.value,
                        "practices": list(u.practices),
                        "disabled": u.disabled,
                        "created_at": u.created_at.isoformat(),
                    }
                )
            )
        return 0
    print(f"{'USER':<16} {'ROLE':<9} {'STATE':<9} {'PRACTICES':<28} NAME")
    for u in users:
        state = "disabled" if u.disabled else "active"
        practices = "all" if u.all_practices else ",".join(u.practices)
        print(f"{u.username:<16} {u.role.value:<9} {state:<9} {practices:<28} {u.display_name}")
    return 0


def _cmd_disable(args: argparse.Namespace) -> int:
    db = _open(args)
    try:
        db.accounts.set_disabled(args.username, not args.enable)
        _audit(db, "enable" if args.enable else "disable", args.username)
    finally:
        db.close()
    print(f"{args.username} {'enabled' if args.enable else 'disabled (signed out everywhere)'}")
    return 0


def _cmd_passwd(args: argparse.Namespace) -> int:
    db = _open(args)
    try:
        if db.accounts.user(args.username) is None:
            raise AccountError(f"there is no user {args.username!r}")
        db.accounts.set_password(args.username, _password(args, args.username), at=clock())
        _audit(db, "password", args.username)
    finally:
        db.close()
    print(f"password of {args.username} changed (signed out everywhere)")
    return 0


def _cmd_access_log(args: argparse.Namespace) -> int:
    tz = _zone(args.tz)
    db = _open(args)
    try:
        entries = db.access.read(
            since=parse_instant(args.since, tz) if args.since else None,
            until=parse_instant(args.until, tz) if args.until else None,
            username=args.user,
            call_id=args.call,
            refused_only=args.refused,
            limit=args.last,
        )
    finally:
        db.close()
    for e in entries:
        if args.json:
            print(
                json.dumps(
                    {
                        "at": e.at.isoformat(),
                        "user": e.username,
                        "action": e.action.value,
                        "allowed": e.allowed,
                        "call_id": e.call_id,
                        "practice": e.practice,
                        "remote": e.remote,
                        "details": dict(e.details),
                    }
                )
            )
        else:
            print(_line(e, tz))
    return 0


def _line(e: AccessEntry, tz: Any) -> str:
    stamp = e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
    verdict = "ok     " if e.allowed else "REFUSED"
    what = e.call_id or ""
    if e.practice:
        what += f" ({e.practice})"
    extra = " ".join(f"{k}={v}" for k, v in e.details.items())
    text = f"{stamp}  {verdict}  {e.username:<14} {e.action.value:<20} {what} {extra}"
    # Details may hold a path a browser sent: keep the terminal safe.
    return "".join(ch if ch.isprintable() else "?" for ch in text).rstrip()


__all__ = ["AccessLog", "register"]
