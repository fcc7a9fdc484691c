"""`coverage-engine messages list|show|ack|resend`: the messages and their pages, from a terminal.

What the console's inbox shows, for the supervisor at a terminal: each
message's urgency, state and page (attempts, whether the operators are
alerted). `ack` is the console's Acknowledge (the one acknowledgement paging
waits for); `resend` pages a message again from the first rung (never
sooner than a minute after its last page). Both are written on the call's
record with the system user who ran them.
"""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import tzinfo
from typing import Any

from coverage_engine.caller_text import for_terminal
from coverage_engine.cli.calls_cmds import (
    UsageError,
    _db_path,
    _guarded,
    _store_options,
    _when,
    _zone,
    clock,
)
from coverage_engine.journey import MessageCorrected, MessageEvent, MessageTaken, PageEvent
from coverage_engine.message import Message, Urgency
from coverage_engine.records.location import open_connection
from coverage_engine.records.messages import MessageFilter, MessageStore, NoSuchMessage
from coverage_engine.records.pages import Page, PageStore, request_page
from coverage_engine.records.sqlite import RecordStore, _transaction


def register(subparsers: Any) -> None:
    messages = subparsers.add_parser(
        "messages",
        help="list, show, acknowledge and resend messages and their pages",
        description="The messages operators took, and how their pages stand.",
    )
    sub = messages.add_subparsers(dest="messages_command", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="one line per message, newest first")
    _store_options(p)
    p.add_argument("--practice", help="only this practice")
    p.add_argument("--urgency", choices=[u.value for u in Urgency])
    p.add_argument("--state", choices=["unread", "read", "acknowledged"])
    p.add_argument("--tz", default="UTC", help="time zone for the times shown (default UTC)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_guarded(_list))
    for name, helptext, func in (
        ("show", "one message, its page and its events", _show),
        ("ack", "acknowledge a message (stops its paging)", _ack),
        ("resend", "page a message again, from the first rung", _resend),
    ):
        p = sub.add_parser(name, help=helptext)
        _store_options(p)
        p.add_argument("call_id", metavar="ID", help="the message's call id")
        p.add_argument("--tz", default="UTC", help="time zone for the times shown")
        p.set_defaults(func=_guarded(func))


def _page_state(page: Page | None) -> str:
    if page is None:
        return "-"
    if not page.pending:
        return page.state
    alerted = ", operators alerted" if page.alerted_at is not None else ""
    return f"paging ({page.attempts} sent{alerted})"


def _line(message: Message, page: Page | None, tz: tzinfo) -> str:
    return (
        f"{_when(message.taken_at, tz):<24} {message.call_id:<16} {message.practice:<12} "
        f"{message.fields.urgency.value:<9} {message.state:<12} {_page_state(page)}"
    )


def _json(message: Message, page: Page | None) -> dict[str, Any]:
    # No patient data: what the terminal needs to find and follow a message.
    return {
        "call_id": message.call_id,
        "practice": message.practice,
        "taken_at": message.taken_at.isoformat(),
        "urgency": message.fields.urgency.value,
        "state": message.state,
        "acknowledged_by": message.acknowledged_by,
        "page": None if page is None else {
            "state": page.state,
            "attempts": page.attempts,
            "next_at": page.next_at.isoformat(),
            "alerted_at": page.alerted_at.isoformat() if page.alerted_at else None,
        },
    }  # fmt: skip


def _list(args: argparse.Namespace) -> int:
    tz = _zone(args.tz)
    conn = open_connection(_db_path(args))
    try:
        where = MessageFilter(
            practices=[args.practice] if args.practice else None,
            urgency=Urgency(args.urgency) if args.urgency else None,
            state=args.state,
        )
        messages, pages = MessageStore(conn), PageStore(conn)
        found = messages.list(where)
        if not args.json and found:
            print(f"{'taken':<24} {'call id':<16} {'practice':<12} {'urgency':<9} "
                  f"{'state':<12} page")  # fmt: skip
        for message in found:
            page = pages.get(message.call_id)
            print(json.dumps(_json(message, page)) if args.json else _line(message, page, tz))
    finally:
        conn.close()
    return 0


def _found(store: MessageStore, call_id: str) -> Message:
    message = store.get(call_id)
    if message is None:
        raise UsageError(f"there is no message on call {call_id}")
    return message


def _show(args: argparse.Namespace) -> int:
    tz = _zone(args.tz)
    conn = open_connection(_db_path(args))
    try:
        store = MessageStore(conn)
        message = _found(store, args.call_id)
        page = PageStore(conn).get(args.call_id)
        journey = RecordStore(conn).get(args.call_id)
    finally:
        conn.close()
    f = message.fields
    print(f"message {message.call_id}  {message.practice}  {f.urgency.value}  {message.state}")
    print(f"  taken     {_when(message.taken_at, tz)} by {message.taken_by}")
    print(f"  caller    {_one_line(f.caller_name)}  callback {_one_line(f.callback) or '(none)'}")
    print(f"  patient   {_one_line(f.patient_name)}  {_one_line(f.patient_dob)}")
    print(f"  reason    {_one_line(f.reason)}")
    if message.acknowledged_at is not None:
        print(f"  acked     {_when(message.acknowledged_at, tz)} by {message.acknowledged_by}")
    print(f"  page      {_page_state(page)}")
    if page is not None and page.pending:
        print(f"  next      {_when(page.next_at, tz)}")
    print()
    for stamped in journey.events if journey is not None else ():
        event = stamped.event
        if not isinstance(event, MessageEvent | PageEvent):
            continue
        details = event.details()
        if isinstance(event, MessageTaken | MessageCorrected):
            # The message itself is printed above; its versions are in `calls show`.
            details = {k: v for k, v in details.items() if k in ("version", "by")}
        shown = " ".join(f"{k}={_one_line(v)}" for k, v in details.items() if v not in (None, ""))
        print(f"  {_when(stamped.at, tz):<24} {stamped.name:<22} {shown}".rstrip())
    return 0


def _ack(args: argparse.Namespace) -> int:
    conn = open_connection(_db_path(args))
    try:
        store = MessageStore(conn)
        _found(store, args.call_id)
        try:
            saved = store.acknowledge(
                args.call_id, by=getpass.getuser(), at=clock(), via="command line"
            )
        except NoSuchMessage as exc:
            raise UsageError(str(exc)) from None
        when = _when(saved.acknowledged_at, _zone(args.tz))
        print(f"acknowledged by {saved.acknowledged_by} ({when})")
    finally:
        conn.close()
    return 0


def _resend(args: argparse.Namespace) -> int:
    conn = open_connection(_db_path(args))
    try:
        message = _found(MessageStore(conn), args.call_id)
        if message.acknowledged_at is not None:
            raise UsageError(
                f"message {args.call_id} was acknowledged by {message.acknowledged_by}; "
                "nothing to resend"
            )
        by = getpass.getuser()
        with _transaction(conn):
            page = request_page(
                conn, message.call_id, message.practice, message.fields.urgency,
                by=by, at=clock(), why=f"resent by {by}", restart=True,
            )  # fmt: skip
        if page is None:
            raise UsageError(f"message {args.call_id} is {message.fields.urgency.value}: not paged")
        print(f"paging again from {_when(page.next_at, _zone(args.tz))}")
    finally:
        conn.close()
    return 0


def _one_line(value: object) -> str:
    """Typed text on one terminal line: line breaks and control characters shown escaped."""
    return for_terminal(str(value))
