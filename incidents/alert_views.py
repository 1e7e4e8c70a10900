"""Block Kit for an Alertmanager alert: what fired, its runbook procedure, and the steps as buttons.

The message is rendered from the alert as stored (`cf_alerts.alert`), so the replica that receives
the "resolved" notification can redraw it without the original payload: same text, a resolved
status line, no buttons.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import Block

from base.durations import duration_text
from base.text import clip, code, escape, link, literal
from bot.render import Button, Rendered, actions, context, fields_block, section
from incidents.alert_rules import AlertRule, command_line, label_values
from incidents.views import when

_SEVERITY_ICON = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}
_SHOWN_LABELS = ("severity", "namespace", "service", "job", "pod", "node", "instance", "deployment", "container")


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp() if moment.year > 1970 else None


def steps(rule: AlertRule, labels: dict[str, str]) -> list[tuple[str, str | None]]:
    """(label, command line or None when a needed label is missing) for each step of the rule."""
    values = label_values(labels)
    return [(s.label, command_line(s, values)) for s in rule.steps]


def _procedure(rule: AlertRule, labels: dict[str, str]) -> str:
    lines = []
    for (label, line), step in zip(steps(rule, labels), rule.steps, strict=True):
        shown = f"`/cf {escape(line)}`" if line else f"`/cf {escape(step.command)}` (the alert has no such label)"
        lines.append(f"• {escape(label)} — {shown}")
    heading = "Runbook procedure" if rule.key != "generic" else "No runbook section for this alert; generic triage"
    return f"*{heading}* — _{escape(rule.section)}_\n" + "\n".join(lines)


def alert_message(alert: dict[str, Any], rule: AlertRule, buttons: Sequence[Button],
                  resolved_at: float | None = None, incident_id: str | None = None) -> Rendered:
    labels: dict[str, str] = alert.get("labels", {})
    notes: dict[str, str] = alert.get("annotations", {})
    name = alert.get("alertname", "alert")
    severity = labels.get("severity", "")
    icon = ":large_green_circle:" if resolved_at else _SEVERITY_ICON.get(severity, ":red_circle:")
    state = "RESOLVED" if resolved_at else "FIRING"
    headline = f"{icon} *{state}* {code(name)} — {literal(rule.title if rule.key != 'generic' else name)}"
    text = notes.get("summary") or notes.get("message") or ""
    body = [headline] + ([literal(text, 500)] if text else [])
    if notes.get("description"):
        body.append(f"_{literal(notes['description'], 1000)}_")
    built: list[Block] = [section("\n".join(body))]
    shown = [(k, code(labels[k], 100)) for k in _SHOWN_LABELS if labels.get(k)]
    started = _epoch(alert.get("startsAt"))
    if started:
        shown.append(("Since", when(started)))
    if incident_id:
        shown.append(("Incident", incident_id))
    if shown:
        built.extend(fields_block(shown[:10]))
    built.append(section(_procedure(rule, labels)))
    if buttons and not resolved_at:
        built.append(actions(list(buttons)))
    built.append(context(_footer(alert, started, resolved_at)))
    fallback = f"{state}: {literal(name, one_line=True)} {literal(text, one_line=True)}".strip()
    return Rendered(text=clip(fallback, 300), blocks=[b.to_dict() for b in built])


def _footer(alert: dict[str, Any], started: float | None, resolved_at: float | None) -> str:
    parts = []
    if resolved_at:
        lasted = f" after {duration_text(resolved_at - started)}" if started else ""
        parts.append(f":white_check_mark: Resolved {when(resolved_at)}{lasted}")
    for url, label in ((alert.get("generatorURL") or "", "source"),
                       ((alert.get("annotations") or {}).get("runbook_url", ""), "runbook")):
        link = _link(url, label)
        if link:
            parts.append(link)
    parts.append(f"fingerprint {code(alert.get('fingerprint', ''), 40)}")
    return " · ".join(parts)


def _link(url: str, label: str) -> str | None:
    """A mrkdwn link for an http(s) URL from the alert; None for anything that could break the markup."""
    if not url.startswith(("http://", "https://")) or any(c in url for c in "|<> \n") or len(url) > 1000:
        return None
    return link(url, label)


def resolved_note(alert: dict[str, Any], resolved_at: float) -> str:
    started = _epoch(alert.get("startsAt"))
    lasted = f" after {duration_text(resolved_at - started)}" if started else ""
    return f":large_green_circle: Resolved{lasted}."
