"""Console users, their sessions, and the login throttle.

* Passwords are hashed with argon2id (argon2-cffi's defaults follow RFC
  9106's recommended parameters): memory-hard, so a stolen record file does
  not give up passwords to a GPU farm, and without bcrypt's 72-byte limit.
* A session is a random 256-bit token in an HttpOnly, SameSite=Strict cookie;
  the record file keeps only its SHA-256, so a copy of the file cannot be
  replayed as a login. Sessions live in the record file, so a restart does not
  sign everyone out and every engine sharing the store knows them.
* Each session has its own CSRF token (the synchronizer-token pattern): every
  form and every state-changing API call must send it back.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from coverage_engine.records.sql import Connection
from coverage_engine.records.sqlite import _dt, _transaction, _ts

SESSION_IDLE = timedelta(hours=2)
SESSION_MAX = timedelta(hours=13)  # a 12-hour night shift, and the handover
MIN_PASSWORD = 12
ALL_PRACTICES = "*"

_HASHER = PasswordHasher()
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,39}")


@cache
def _dummy_hash() -> str:
    """A throwaway hash to verify against when the user does not exist, so a
    wrong username costs as long as a wrong password (no account enumeration
    by timing)."""
    return _HASHER.hash(secrets.token_hex(16))


class Role(StrEnum):
    """What a console user may see and do."""

    OPERATOR = "operator"  # the board, the screen pop, the messages they took
    STAFF = "staff"  # their practice's messages and calls
    ADMIN = "admin"  # everything, users included


class AccountError(Exception):
    """A user change that cannot be made; the message says why."""


@dataclass(frozen=True, slots=True)
class User:
    """A console user (never carries the password hash out of this module)."""

    username: str
    display_name: str
    role: Role
    practices: tuple[str, ...]  # ("*",) means every practice
    disabled: bool
    created_at: datetime

    @property
    def all_practices(self) -> bool:
        return ALL_PRACTICES in self.practices

    def sees_practice(self, practice: str) -> bool:
        """Whether this user may see calls and messages of `practice`."""
        return self.all_practices or practice in self.practices

    def scope(self, known: Collection[str]) -> list[str]:
        """The practices of `known` this user may see, sorted."""
        return sorted(p for p in known if self.sees_practice(p))

    @property
    def sees_numbers(self) -> bool:
        """Whether the live board shows callers' whole numbers and names to this user.

        Operators get the caller on their own screen pop; the board of every
        call in progress shows them only the last four digits.
        """
        return self.role is not Role.OPERATOR


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser."""

    user: User
    csrf: str
    phone: str
    token_hash: str
    expires_at: datetime


def check_username(username: str) -> str:
    if not _USERNAME.fullmatch(username):
        raise AccountError(
            f"{username!r} is not a username: 2 to 40 lowercase letters, digits, '.', '_', '-'"
        )
    return username


def check_password(password: str, username: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise AccountError("the password must have at most 1024 characters")
    if username.lower() in password.lower():
        raise AccountError("the password must not contain the username")
    return password


@dataclass(frozen=True, slots=True)
class LoginRecord:
    user: User
    password_hash: str
    needs_rehash: bool


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches the stored hash (a missing user costs the same time)."""
    try:
        return _HASHER.verify(stored or _dummy_hash(), password[:1024]) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_USER_COLUMNS = "username, display_name, role, practices, disabled, created_at"


def _user(row: Sequence[Any]) -> User:
    username, display, role, practices, disabled, created = row
    return User(
        username=username,
        display_name=display,
        role=Role(role),
        practices=tuple(p for p in practices.split(",") if p),
        disabled=bool(disabled),
        created_at=_dt(created),
    )


class Accounts:
    """Users and sessions in the record file, on one connection (not thread-safe)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    # -- users ---------------------------------------------------------------------

    def add(
        self,
        username: str,
        *,
        password: str,
        role: Role,
        practices: Sequence[str],
        display_name: str,
        at: datetime,
    ) -> User:
        """Create a user; raises `AccountError` for a bad or taken name, or a weak password."""
        check_username(username)
        check_password(password, username)
        if role is not Role.ADMIN and not practices:
            raise AccountError(f"a {role.value} needs at least one practice (--practice ID)")
        scope = (ALL_PRACTICES,) if role is Role.ADMIN else tuple(practices)
        display = display_name.strip() or username
        if len(display) > 80 or any(ord(c) < 32 for c in display):
            raise AccountError("the display name must be one line of at most 80 characters")
        try:
            with _transaction(self._conn):
                self._conn.execute(
                    "INSERT INTO users (username, display_name, role, practices, password_hash, "
                    "created_at, password_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        username,
                        display,
                        role.value,
                        ",".join(scope),
                        _HASHER.hash(password),
                        _ts(at),
                        _ts(at),
                    ),
                )
        except sqlite3.IntegrityError:
            raise AccountError(f"there is already a user {username!r}") from None
        user = self.user(username)
        assert user is not None
        return user

    def user(self, username: str) -> User | None:
        row = self._conn.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?",  # noqa: S608
            (username,),
        ).fetchone()
        return None if row is None else _user(row)

    def users(self) -> list[User]:
        rows = self._conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username")  # noqa: S608
        return [_user(r) for r in rows]

    def set_disabled(self, username: str, disabled: bool) -> None:
        """Disable (or enable) a user; disabling ends their sessions at once."""
        with _transaction(self._conn):
            cur = self._conn.execute(
                "UPDATE users SET disabled = ? WHERE username = ?", (int(disabled), username)
            )
            if cur.rowcount == 0:
                raise AccountError(f"there is no user {username!r}")
            if disabled:
                self._conn.execute("DELETE FROM sessions WHERE username = ?", (username,))

    def set_password(self, username: str, password: str, *, at: datetime) -> None:
        """Set a new password; every session of the user ends."""
        check_password(password, username)
        with _transaction(self._conn):
            cur = self._conn.execute(
                "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE username = ?",
                (_HASHER.hash(password), _ts(at), username),
            )
            if cur.rowcount == 0:
                raise AccountError(f"there is no user {username!r}")
            self._conn.execute("DELETE FROM sessions WHERE username = ?", (username,))

    def login_record(self, username: str) -> LoginRecord | None:
        """What signing in needs to check (quick: the slow hash check happens outside)."""
        row = self._conn.execute(
            "SELECT password_hash FROM users WHERE username = ?", (username,)
        ).fetchone()
        user = self.user(username)
        if row is None or user is None:
            return None
        return LoginRecord(user, row[0], _HASHER.check_needs_rehash(row[0]))

    def rehash(self, username: str, password: str) -> None:
        """Store the password again with today's hashing parameters."""
        with _transaction(self._conn):
            self._conn.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?",
                (_HASHER.hash(password), username),
            )

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password is theirs and they are enabled; else None (slow on purpose)."""
        record = self.login_record(username)
        ok = verify_password(record.password_hash if record else None, password)
        if record is None or not ok or record.user.disabled:
            return None
        return record.user

    # -- sessions ------------------------------------------------------------------

    def open_session(self, user: User, *, at: datetime) -> tuple[str, Session]:
        """A new session for `user`: (the cookie token, the session)."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        expires = at + SESSION_MAX
        with _transaction(self._conn):
            # Sessions past their end are removed on the way.
            self._conn.execute("DELETE FROM sessions WHERE expires_at < ?", (_ts(at),))
            self._conn.execute(
                "INSERT INTO sessions (token_hash, username, csrf, created_at, last_seen, "
                "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (_token_hash(token), user.username, csrf, _ts(at), _ts(at), _ts(expires)),
            )
        return token, Session(user, csrf, "", _token_hash(token), expires)

    def session(self, token: str, *, at: datetime, touch: bool = True) -> Session | None:
        """The live session of a cookie token, or None (unknown, expired, idle, disabled)."""
        if not token or len(token) > 100:
            return None
        digest = _token_hash(token)
        row = self._conn.execute(
            "SELECT username, csrf, phone, last_seen, expires_at FROM sessions "
            "WHERE token_hash = ?",
            (digest,),
        ).fetchone()
        if row is None:
            return None
        username, csrf, phone, last_seen, expires = row
        if _dt(expires) <= at or at - _dt(last_seen) > SESSION_IDLE:
            self.close_session(digest)
            return None
        user = self.user(username)
        if user is None or user.disabled:
            return None
        if touch and at - _dt(last_seen) > timedelta(minutes=1):
            with _transaction(self._conn):
                self._conn.execute(
                    "UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (_ts(at), digest)
                )
        return Session(user, csrf, phone, digest, _dt(expires))

    def phones(self, *, at: datetime) -> dict[str, str]:
        """phone -> display name of the user signed in at it, for live sessions."""
        rows = self._conn.execute(
            "SELECT s.phone, u.display_name FROM sessions s JOIN users u USING (username) "
            "WHERE s.phone != '' AND s.expires_at > ? AND s.last_seen > ? AND u.disabled = 0 "
            "ORDER BY s.last_seen",
            (_ts(at), _ts(at - SESSION_IDLE)),
        )
        return dict(rows)

    def set_phone(self, session: Session, phone: str) -> None:
        with _transaction(self._conn):
            self._conn.execute(
                "UPDATE sessions SET phone = ? WHERE token_hash = ?", (phone, session.token_hash)
            )

    def close_session(self, token_hash: str) -> None:
        with _transaction(self._conn):
            self._conn.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))


@dataclass
class LoginThrottle:
    """Failed sign-ins per username and per address in a sliding window.

    Kept in memory: it slows down guessing against this process; the access
    log keeps every failure durably for the audit.
    """

    window: timedelta = timedelta(minutes=15)
    per_user: int = 5
    per_address: int = 20
    _failures: dict[str, deque[datetime]] = field(default_factory=dict)

    def _recent(self, key: str, at: datetime) -> deque[datetime]:
        times = self._failures.setdefault(key, deque())
        while times and at - times[0] > self.window:
            times.popleft()
        return times

    def _keys(self, username: str, address: str) -> list[tuple[str, int]]:
        keys = [(f"u:{username}", self.per_user)]
        # Behind a reverse proxy on this machine every browser comes from the
        # loopback address: counting it would let one guesser lock everyone out.
        if address and not address.startswith(("127.", "::1")):
            keys.append((f"a:{address}", self.per_address))
        return keys

    def blocked(self, username: str, address: str, at: datetime) -> timedelta | None:
        """How long until this username and address may try again; None when they may now."""
        waits = []
        for key, limit in self._keys(username, address):
            times = self._recent(key, at)
            if len(times) >= limit:
                waits.append(times[0] + self.window - at)
        return max(waits) if waits else None

    def failed(self, username: str, address: str, at: datetime) -> None:
        for key, _limit in self._keys(username, address):
            self._recent(key, at).append(at)
        if len(self._failures) > 10_000:  # bounded memory under a spray of usernames
            for key in [k for k, v in self._failures.items() if not v][:5_000]:
                del self._failures[key]

    def succeeded(self, username: str) -> None:
        self._failures.pop(f"u:{username}", None)
