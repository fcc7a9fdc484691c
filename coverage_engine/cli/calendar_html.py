"""The coverage calendar as one self-contained HTML page (no scripts, no external files)."""

from __future__ import annotations

from html import escape

from coverage_engine.coverage import DayCoverage
from coverage_engine.plan import Plan, StepKind

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.05em; margin: 1.2em 0 0.3em; }
table { border-collapse: collapse; width: 100%; }
td { padding: 0.3em 0.6em; border-bottom: 1px solid #ddd; vertical-align: top; }
td.time { white-space: nowrap; font-variant-numeric: tabular-nums; width: 8em; }
tr.open td.status { background: #d9f2d9; } tr.closed td.status { background: #fff1cc; }
tr.gap td { background: #f8c4c4; font-weight: bold; }
.summary.ok { color: #1a7f1a; } .summary.gap { color: #b00; font-weight: bold; }
"""


def people_in_order(plan: Plan, *, names: bool) -> list[str]:
    """Each step briefly: `operators 90s`, `okafor 25s press-1` (or the label with `names`)."""
    parts = []
    for step in plan.steps:
        who = step.target
        if step.kind in (StepKind.OPERATORS, StepKind.FALLBACK):
            who = step.kind.value
        if names and step.kind is not StepKind.OPERATORS:
            who = step.label or step.target
        press = " press-1" if step.confirm else ""
        parts.append(f"{who} {step.ring_seconds}s{press}")
    return parts


def render_calendar_html(practice_name: str, zone: str, days: list[DayCoverage]) -> str:
    """The calendar as HTML: a table per day; gaps in red."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Coverage: {escape(practice_name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Coverage calendar: {escape(practice_name)} <small>(times in {escape(zone)})"
        "</small></h1>",
    ]
    for day in days:
        out.append(f"<h2>{day.day.strftime('%A %Y-%m-%d')}</h2><table>")
        for seg in day.segments:
            end = "24:00" if seg.end.date() > day.day else seg.end.strftime("%H:%M")
            css = "gap" if seg.gap else seg.plan.status
            people = " &rarr; ".join(escape(p) for p in people_in_order(seg.plan, names=True))
            oncall = ""
            if seg.plan.oncall is not None:
                backup = seg.plan.oncall.backup or "none"
                oncall = f"on call: {seg.plan.oncall.primary} (backup {backup})"
            oncall = "; ".join([oncall, *seg.plan.notes]) if seg.plan.notes else oncall
            out.append(
                f'<tr class="{css}"><td class="time">{seg.start:%H:%M}&ndash;{end}</td>'
                f'<td class="status">{escape(seg.plan.status)}</td>'
                f"<td>{escape(seg.plan.reason)}</td><td>{people}</td>"
                f"<td>{escape(oncall)}</td></tr>"
            )
        out.append("</table>")
    gaps = sum(len(d.gaps) for d in days)
    if gaps:
        out.append(
            f'<p class="summary gap">{gaps} gap(s) with no staffed person at the end.</p>'
        )
    else:
        out.append('<p class="summary ok">No gaps: a person is reachable at every minute.</p>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"
