"""The access log: who saw which call or message, when, and what was refused.

HIPAA's audit controls ask that access to patient information be recorded;
here every view of a call or message, every screen pop, every refusal and
every sign-in is one row in the record file's `access_log` table. Rows are
only ever added (the retention purge of calls leaves them), and
`coverage-engine access-log` reads them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from coverage_engine.records.sql import Connection
from coverage_engine.records.sqlite import _dt, _transaction, _ts


class Action(StrEnum):
    """What a user did or tried."""

    SIGN_IN = "sign_in"
    SIGN_IN_FAILED = "sign_in_failed"
    SIGN_IN_THROTTLED = "sign_in_throttled"
    SIGN_OUT = "sign_out"
    VIEW_BOARD_CALL = "view_board_call"  # a call appeared, unmasked, on this user's board
    SCREEN_POP = "screen_pop"
    VIEW_CALL = "view_call"
    VIEW_MESSAGE = "view_message"
    LIST_MESSAGES = "list_messages"
    SAVE_MESSAGE = "save_message"
    ACKNOWLEDGE_MESSAGE = "acknowledge_message"
    RESOLVE_HANDOFF_ALERT = "resolve_handoff_alert"
    CSRF_REFUSED = "csrf_refused"
    USER_CHANGED = "user_changed"
    # An override, swap or undo refused (the change log keeps those made).
    CHANGE_ROUTING = "change_routing"


@dataclass(frozen=True, slots=True)
class AccessEntry:
    at: datetime
    username: str
    action: Action
    allowed: bool
    call_id: str | None = None
    practice: str | None = None
    remote: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


class AccessLog:
    """Appends to and reads the access log (one connection; not thread-safe)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def write(self, *entries: AccessEntry) -> None:
        """Append entries, durably, in one transaction."""
        if not entries:
            return
        with _transaction(self._conn):
            self._conn.executemany(
                "INSERT INTO access_log (at, username, action, allowed, call_id, practice, "
                "remote, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        _ts(e.at),
                        e.username,
                        e.action.value,
                        int(e.allowed),
                        e.call_id,
                        e.practice,
                        e.remote,
                        json.dumps(dict(e.details), default=str),
                    )
                    for e in entries
                ],
            )

    def read(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        username: str | None = None,
        call_id: str | None = None,
        refused_only: bool = False,
        limit: int | None = None,
    ) -> list[AccessEntry]:
        """Entries matching the filters, oldest first."""
        clauses: list[str] = []
        params: list[Any] = []
        if since is not None:
            clauses.append("at >= ?")
            params.append(_ts(since))
        if until is not None:
            clauses.append("at < ?")
            params.append(_ts(until))
        if username is not None:
            clauses.append("username = ?")
            params.append(username)
        if call_id is not None:
            clauses.append("call_id = ?")
            params.append(call_id)
        if refused_only:
            clauses.append("allowed = 0")
        sql = (
            "SELECT id, at, username, action, allowed, call_id, practice, remote, details "
            "FROM access_log"
        )
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        if limit is not None:  # the last `limit` entries, still oldest first
            sql = f"SELECT * FROM ({sql} ORDER BY id DESC LIMIT ?)"  # noqa: S608
            params.append(limit)
        sql += " ORDER BY id"
        rows = self._conn.execute(sql, params).fetchall()
        return [
            AccessEntry(
                _dt(at),
                user,
                Action(action),
                bool(allowed),
                call,
                practice,
                remote,
                json.loads(details),
            )
            for _id, at, user, action, allowed, call, practice, remote, details in rows
        ]
