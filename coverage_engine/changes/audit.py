"""The audit log of changes: who changed what, when, why, and what it was before and after.

One JSON object per line in `coverage.audit.jsonl`, appended, never
rewritten. Each entry names the changes-file revision it made; an entry whose
revision the changes file never reached was interrupted before the change
took effect (the log says so rather than pretending).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change as the audit log keeps it."""

    seq: int
    at: datetime
    by: str
    via: str  # "cli" or "console"
    action: str  # override.add, override.end, swap.add, swap.remove, undo
    practice: str
    entry: str  # the id of the override or swap changed
    why: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    revision: int
    section: str = ""  # where in the changes file: overrides, swaps or ended_early
    undoes: int | None = None  # for `undo`: the seq of the change reversed

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "by": self.by,
            "via": self.via,
            "action": self.action,
            "practice": self.practice,
            "entry": self.entry,
            "why": self.why,
            "before": self.before,
            "after": self.after,
            "revision": self.revision,
            "section": self.section,
        }
        if self.undoes is not None:
            data["undoes"] = self.undoes
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditEntry:
        return cls(
            seq=int(data["seq"]),
            at=datetime.fromisoformat(str(data["at"])),
            by=str(data["by"]),
            via=str(data.get("via", "cli")),
            action=str(data["action"]),
            practice=str(data.get("practice", "")),
            entry=str(data.get("entry", "")),
            why=str(data.get("why", "")),
            before=data.get("before"),
            after=data.get("after"),
            revision=int(data.get("revision", 0)),
            section=str(data.get("section", "")),
            undoes=data.get("undoes"),
        )


def read_audit(path: Path) -> list[AuditEntry]:
    """Every entry, oldest first. A line torn by a crash mid-append is skipped, not fatal."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            entries.append(AuditEntry.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            continue
    return entries


def encode(entry: AuditEntry) -> str:
    """The entry as its one line."""
    return json.dumps(entry.to_json(), sort_keys=False, ensure_ascii=False)
