"""Block Kit for an Alertmanager group: what fired, its context, its runbook procedure, and buttons.

One message per notification group (`groupKey`): the headline and count, the labels its alerts share,
one line per alert when there are several (what tells each apart, firing or resolved), who acknowledged
or silenced it, the context read on arrival (incidents.alert_context), the runbook procedure of each
rule among its firing alerts with its steps as buttons, and the group's own buttons (Ack, Silence 1h /
4h, or Unsilence). It is rendered from the stored alerts and group (`cf_alerts`, `cf_alert_groups`), so
any replica can redraw it: a resolved group keeps everything but the buttons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import Block

from base.durations import duration_text
from base.text import clip, code, escape, link, literal
from bot.render import Button, Rendered, actions, context, fields_block, section
from incidents.alert_context import ContextPart
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


ACK, SILENCE, UNSILENCE = "cf_alert_ack", "cf_alert_silence", "cf_alert_unsilence"  # action ids (value: group id)
SILENCE_HOURS = (1, 4)
MAX_LISTED = 15  # alerts listed one per line; more are counted


@dataclass(frozen=True)
class GroupState:
    """What the message of one alert group shows besides its alerts: ack, silence, context, people's names."""

    group_id: str
    incident_id: str | None = None
    acked_by: str | None = None  # a display name, not an id
    acked_at: float | None = None
    silenced_by: str | None = None
    silenced_until: float | None = None
    context: Sequence[ContextPart] = ()
    context_at: float | None = None


def group_message(alerts: Sequence[dict[str, Any]], resolved: Sequence[float | None], rules: Sequence[AlertRule],
                  state: GroupState, procedure: Sequence[Button], now: float) -> Rendered:
    """One message for an Alertmanager group: its alerts (stored form, arrival order) with their resolution
    times (None: firing) and rules, the group's ack/silence/context, the procedure buttons while any fires."""
    firing = [i for i, r in enumerate(resolved) if r is None]
    lead = firing[0] if firing else 0
    alert, rule = alerts[lead], rules[lead]
    names = list(dict.fromkeys(a.get("alertname", "alert") for a in alerts))
    done_at = None if firing else max(r or 0 for r in resolved)
    icon = ":large_green_circle:" if done_at else _SEVERITY_ICON.get(alert.get("labels", {}).get("severity", ""),
                                                                       ":red_circle:")
    state_word = "RESOLVED" if done_at else "FIRING"
    if len(names) == 1:
        title = rule.title if rule.key != "generic" else names[0]
        headline = f"{icon} *{state_word}* {code(names[0])} — {literal(title)}"
    else:
        headline = f"{icon} *{state_word}* " + ", ".join(code(n) for n in names[:5]) + (" …" if len(names) > 5 else "")
    body = [headline, _count(len(alerts), len(firing))]
    notes: dict[str, str] = alert.get("annotations", {})
    text = notes.get("summary") or notes.get("message") or ""
    if text and len(alerts) == 1:
        body.append(literal(text, 500))
    if notes.get("description"):
        body.append(f"_{literal(notes['description'], 1000)}_")
    built: list[Block] = [section("\n".join(body))]
    built.extend(fields_block(_fields(alerts, alert, state)[:10]))
    if len(alerts) > 1:
        built.append(section(_listing(alerts, resolved)))
    status = _status(state, now)
    if status:
        built.append(context(status))
    if state.context:
        read = f" (read {when(state.context_at, '{time_secs}')})" if state.context_at else ""
        built.append(section(f"*Context on arrival*{read}\n" + "\n".join(context_lines(state.context))))
    for index in leads(resolved, rules):
        built.append(section(_procedure(rules[index], alerts[index].get("labels", {}))))
    if procedure and firing:
        built.append(actions(list(procedure), block_id="cf_alert_procedure"))
    controls = _controls(state, bool(firing), now)
    if controls:
        built.append(actions(controls, block_id="cf_alert_controls"))
    built.append(context(_footer(alerts, resolved, done_at)))
    fallback = f"{state_word}: " + ", ".join(literal(n, one_line=True) for n in names[:3])
    if text:
        fallback += f" {literal(text, one_line=True)}"
    if len(alerts) > 1:
        fallback += f" ({len(alerts)} alerts)"
    return Rendered(text=clip(fallback, 300), blocks=[b.to_dict() for b in built[:50]])


def leads(resolved: Sequence[float | None], rules: Sequence[AlertRule]) -> list[int]:
    """The alert whose labels fill each rule's procedure: the first firing one of each rule (of all, once
    every alert is resolved), in order."""
    firing = [i for i, r in enumerate(resolved) if r is None]
    chosen: dict[str, int] = {}
    for i in firing or range(len(resolved)):
        chosen.setdefault(rules[i].key, i)
    return list(chosen.values())


def _count(total: int, firing: int) -> str:
    if total == 1:
        return "_1 alert, " + ("firing_" if firing else "resolved_")
    return f"*{total} alerts* — {firing} firing, {total - firing} resolved"


def _fields(alerts: Sequence[dict[str, Any]], alert: dict[str, Any], state: GroupState) -> list[tuple[str, str]]:
    """The labels every alert of the group shares (all of them for one alert), since when, the incident."""
    labels: dict[str, str] = alert.get("labels", {})
    shared = [(k, code(labels[k], 100)) for k in _SHOWN_LABELS
              if labels.get(k) and all((a.get("labels") or {}).get(k) == labels[k] for a in alerts)]
    started = min((t for t in (_epoch(a.get("startsAt")) for a in alerts) if t), default=None)
    if started:
        shared.append(("Since", when(started)))
    if state.incident_id:
        shared.append(("Incident", state.incident_id))
    return shared


def _listing(alerts: Sequence[dict[str, Any]], resolved: Sequence[float | None]) -> str:
    """One line per alert: its state, the labels that tell it from the others, its summary."""
    common = set.intersection(*(set((a.get("labels") or {}).items()) for a in alerts))
    lines = []
    for alert, done in list(zip(alerts, resolved, strict=True))[:MAX_LISTED]:
        own = {k: v for k, v in (alert.get("labels") or {}).items() if (k, v) not in common}
        which = " ".join(code(f"{k}={v}", 80) for k, v in sorted(own.items())[:4]) or code(alert.get("alertname", ""))
        mark = f":large_green_circle: resolved {when(done, '{time}')}" if done else ":red_circle: firing"
        summary = (alert.get("annotations") or {}).get("summary", "")
        lines.append(f"• {mark} {which}" + (f" — {literal(summary, 200, one_line=True)}" if summary else ""))
    if len(alerts) > MAX_LISTED:
        lines.append(f"… and {len(alerts) - MAX_LISTED} more")
    return "*Alerts*\n" + "\n".join(lines)


def _status(state: GroupState, now: float) -> str:
    parts = []
    if state.acked_by and state.acked_at:
        parts.append(f":eyes: acked by @{literal(state.acked_by)} {when(state.acked_at, '{time}')}")
    if state.silenced_by and state.silenced_until:
        if state.silenced_until > now:
            parts.append(f":no_bell: silenced by @{literal(state.silenced_by)} until {when(state.silenced_until)}")
        else:
            parts.append(f":bell: the silence by @{literal(state.silenced_by)} ended {when(state.silenced_until)}")
    return " · ".join(parts)


def _controls(state: GroupState, firing: bool, now: float) -> list[Button]:
    silenced = bool(state.silenced_until and state.silenced_until > now)
    buttons = []
    if firing and not state.acked_at:
        buttons.append(Button("Ack", ACK, state.group_id))
    if silenced:
        buttons.append(Button("Unsilence", UNSILENCE, state.group_id))
    elif firing:
        buttons += [Button(f"Silence {h}h", f"{SILENCE}:{h}", state.group_id) for h in SILENCE_HOURS]
    return buttons


def context_lines(parts: Sequence[ContextPart]) -> list[str]:
    """Each part as the message shows it: `*Label:* text`, or `:warning: *Label:* unavailable (reason)`."""
    return [f":warning: *{p.label}:* unavailable ({literal(p.failed, 80, one_line=True)})" if p.failed
            else f"*{p.label}:* {p.text}" for p in parts]


def _footer(alerts: Sequence[dict[str, Any]], resolved: Sequence[float | None], done_at: float | None) -> str:
    parts = []
    starts = [t for t in (_epoch(a.get("startsAt")) for a in alerts) if t]
    if done_at:
        lasted = f" after {duration_text(done_at - min(starts))}" if starts else ""
        parts.append(f":white_check_mark: Resolved {when(done_at)}{lasted}")
    seen: set[str] = set()
    for alert in alerts[:MAX_LISTED]:
        for url, label in ((alert.get("generatorURL") or "", "source"),
                           ((alert.get("annotations") or {}).get("runbook_url", ""), "runbook")):
            made = _link(url, label)
            if made and url not in seen:
                seen.add(url)
                parts.append(made)
    parts += [f"fingerprint {code(a.get('fingerprint', ''), 40)}" for a in alerts[:MAX_LISTED]]
    return " · ".join(parts)


def _link(url: str, label: str) -> str | None:
    """A mrkdwn link for an http(s) URL from the alert; None for anything that could break the markup."""
    if not url.startswith(("http://", "https://")) or any(c in url for c in "|<> \n") or len(url) > 1000:
        return None
    return link(url, label)


def resolved_note(alert: dict[str, Any], resolved_at: float, remaining: int = 0) -> str:
    started = _epoch(alert.get("startsAt"))
    lasted = f" after {duration_text(resolved_at - started)}" if started else ""
    name = code(alert.get("alertname", "alert"))
    left = f" {remaining} of the group still firing." if remaining else ""
    return f":large_green_circle: Resolved: {name}{lasted}.{left}"
