"""The operators' alerts on the board: urgent messages nobody acknowledged, unconfirmed handoffs.

Paging raises them (`records.pages`: a page that climbed to the operators'
rung; `records.handoffs`: a doctor coming on call who did not press 1);
the board shows them above the calls until they are dealt with: the
message acknowledged (by its doctor, the practice, or from the command
line), the handoff alert resolved here, or the doctor's turn over. They say
what to do, never a patient's name, number or reason: the link opens the
page with the rest, behind the same access checks as everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from coverage_engine.config.model import CoverageConfig
from coverage_engine.records.handoffs import HandoffCheck
from coverage_engine.records.pages import Page


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as a viewer's board shows it."""

    kind: str  # page / handoff
    id: str  # the message's call id, or the handoff check's id
    practice: str
    since: datetime  # when the operators were alerted
    headline: str
    advice: str
    link: str
    resolvable: bool  # a handoff alert is resolved here; a page by acknowledging its message

    def to_json(self, zone: ZoneInfo) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "practice": self.practice,
            "since": self.since.isoformat(),
            "since_local": self.since.astimezone(zone).strftime("%a %H:%M"),
            "headline": self.headline,
            "advice": self.advice,
            "link": self.link,
            "resolvable": self.resolvable,
        }


def _zone(config: CoverageConfig, practice: str) -> ZoneInfo:
    found = config.practice(practice)
    return found.zone if found is not None else ZoneInfo("UTC")


def page_alert(page: Page, config: CoverageConfig, *, message_link: bool) -> Alert:
    """An urgent message the operators were alerted about; `message_link`: the viewer may open
    the message itself (staff, admins) rather than its call (operators)."""
    practice = config.practice(page.practice)
    name = practice.short_name if practice is not None else "No practice"
    zone = _zone(config, page.practice)
    taken = page.created_at.astimezone(zone).strftime("%H:%M")
    attempts = f"{page.attempts} page{'s' if page.attempts != 1 else ''}"
    advice = (
        "Reach the doctor on call another way (see the practice's card); the message stops "
        "paging once it is acknowledged."
        if practice is not None
        else "The call reached no practice, so no doctor was paged: find out whose patient "
        "this is and call their doctor."
    )
    return Alert(
        kind="page",
        id=page.call_id,
        practice=page.practice,
        since=page.alerted_at or page.created_at,
        headline=f"{name}: {page.urgency.value.upper()} message taken {taken} not acknowledged "
        f"after {attempts}",
        advice=advice,
        link=f"/messages/{page.call_id}" if message_link else f"/calls/{page.call_id}",
        resolvable=False,
    )


def handoff_alert(check: HandoffCheck, config: CoverageConfig) -> Alert:
    """A doctor coming on call who did not confirm."""
    practice = config.practice(check.practice)
    name = practice.short_name if practice is not None else check.practice
    doctor = check.doctor
    if practice is not None and practice.oncall is not None and doctor in practice.oncall.doctors:
        doctor = practice.oncall.doctors[doctor].name
    zone = _zone(config, check.practice)
    starts = check.starts_at.astimezone(zone).strftime("%a %H:%M")
    calls = f"{check.attempts} call{'s' if check.attempts != 1 else ''}"
    return Alert(
        kind="handoff",
        id=check.check_id,
        practice=check.practice,
        since=check.alerted_at or check.starts_at,
        headline=f"{name}: {doctor} did not confirm being on call from {starts} ({calls} "
        "without a press of 1)",
        advice="Reach them another way, or the backup; mark it done here once someone is.",
        link=f"/calls/{check.check_id}",
        resolvable=True,
    )


def alerts_json(
    pages: list[Page],
    handoffs: list[HandoffCheck],
    config: CoverageConfig,
    *,
    visible: Callable[[str], bool],
    message_links: bool,
) -> list[dict[str, Any]]:
    """The alerts a viewer may see (`visible(practice)`), oldest first, as the board's JSON."""
    found = [page_alert(p, config, message_link=message_links) for p in pages]
    found += [handoff_alert(c, config) for c in handoffs]
    found.sort(key=lambda a: a.since)
    return [a.to_json(_zone(config, a.practice)) for a in found if visible(a.practice)]
