"""Safe change for admins: overrides and swaps as validated, atomic, audited, reversible changes.

The command line (`override`, `swap`, `changes`) and the console call the
same `ChangeService`; see `service` for how a change is made.
"""

from __future__ import annotations

from coverage_engine.changes.audit import AuditEntry
from coverage_engine.changes.service import Actor, Applied, ChangeRefused, ChangeService, Entry

__all__ = ["Actor", "Applied", "AuditEntry", "ChangeRefused", "ChangeService", "Entry"]
