"""The operators' alerts on the board: urgent messages nobody acknowledged, unconfirmed handoffs.

Paging raises them: a message's page that reached the operators' rung
(`web.board.Paging`, folded from the call's page events) and a doctor
coming on call who did not press 1 (`records.handoffs`). The board shows
them above the calls until they are dealt with: the message acknowledged
(by its doctor, the practice, or from the command line), the handoff alert
marked done here, or the doctor's turn over. They say what to do and never
a patient's name, number or reason: the link opens the page with the rest,
behind the same access checks as everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from coverage_engine.config.model import CoverageConfig
from coverage_engine.records.handoffs import HandoffCheck
from coverage_engine.web.board import Directory, Paging


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
    link_text: str
    resolvable: bool  # a handoff alert is marked done here; a page ends with its acknowledgement
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self, zone: ZoneInfo) -> dict[str, Any]:
        return {
            **self.extra,
            "kind": self.kind,
            "id": self.id,
            "practice": self.practice,
            "since": self.since.isoformat(),
            "since_local": self.since.astimezone(zone).strftime("%H:%M"),
            "headline": self.headline,
            "advice": self.advice,
            "link": self.link,
            "link_text": self.link_text,
            "resolvable": self.resolvable,
        }


def _zone(config: CoverageConfig, practice: str) -> ZoneInfo:
    found = config.practice(practice)
    return found.zone if found is not None else ZoneInfo("UTC")


def page_alert(
    paging: Paging, config: CoverageConfig, names: Directory, *, now: datetime, message_link: bool
) -> Alert:
    """An urgent message whose paging came back to the operators; `message_link`: the viewer
    may open the message itself (staff, admins) rather than its call (operators)."""
    practice = config.practice(paging.practice)
    since = paging.alert_since or now
    minutes = int(max(0.0, (now - since).total_seconds()) // 60)
    doctors = [names.name(paging.practice, d) for d in paging.doctors]
    name = practice.name if practice is not None else "no practice"
    local = since.astimezone(_zone(config, paging.practice)).strftime("%H:%M")
    headline = f"{paging.urgency.upper()} message for {name} not acknowledged since {local} "
    headline += f"({minutes} min)" + (f": paged {', '.join(doctors)}" if doctors else "")
    advice = (
        "Reach the doctor on call another way (see the practice's card); the message stops "
        "paging once it is acknowledged."
        if practice is not None
        else "The call reached no practice, so no doctor was paged: find out whose patient "
        "this is and call their doctor."
    )
    return Alert(
        kind="page",
        id=paging.call_id,
        practice=paging.practice,
        since=since,
        headline=headline,
        advice=advice,
        link=f"/messages/{paging.call_id}" if message_link else f"/calls/{paging.call_id}",
        link_text="Open the message" if message_link else "Open the call",
        resolvable=False,
        extra={
            "call_id": paging.call_id,
            "urgency": paging.urgency,
            "doctors": doctors,
            "minutes": minutes,
            "practice_name": name,
        },
    )


def handoff_alert(check: HandoffCheck, config: CoverageConfig) -> Alert:
    """A doctor coming on call who did not confirm."""
    practice = config.practice(check.practice)
    name = practice.name if practice is not None else check.practice
    doctor = check.doctor
    if practice is not None and practice.oncall is not None and doctor in practice.oncall.doctors:
        doctor = practice.oncall.doctors[doctor].name
    starts = check.starts_at.astimezone(_zone(config, check.practice)).strftime("%a %H:%M")
    calls = f"{check.attempts} call{'s' if check.attempts != 1 else ''}"
    return Alert(
        kind="handoff",
        id=check.check_id,
        practice=check.practice,
        since=check.alerted_at or check.starts_at,
        headline=f"{doctor} did not confirm being on call for {name} from {starts} ({calls} "
        "without a press of 1)",
        advice="Reach them another way, or the backup; mark it done here once someone is.",
        link=f"/calls/{check.check_id}",
        link_text="Open the check",
        resolvable=True,
        extra={"doctor": doctor, "practice_name": name},
    )


def alerts_json(
    paging: list[Paging],
    handoffs: list[HandoffCheck],
    config: CoverageConfig,
    names: Directory,
    *,
    now: datetime,
    visible: Callable[[str], bool],
    message_links: bool,
) -> list[dict[str, Any]]:
    """The alerts a viewer may see (`visible(practice)`), oldest first, as the board's JSON."""
    found = [
        page_alert(p, config, names, now=now, message_link=message_links)
        for p in paging
        if p.alerting
    ]
    found += [handoff_alert(c, config) for c in handoffs if c.alert_open(now)]
    found.sort(key=lambda a: a.since)
    return [a.to_json(_zone(config, a.practice)) for a in found if visible(a.practice)]
