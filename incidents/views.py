"""Block Kit for incidents: the pinned summary, the announcement, updates, the declare modal.

Buttons here carry a `/cf` command line as their value (action id `cf_run:N`); a click is handled
like the same line typed in that channel — same parser, same roles, same approval for changes. A
step becomes a button only when its command exists in this bot (`command_buttons`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block

from base.durations import duration_text
from base.text import USER_MENTION, clip, date, escape, literal
from base.vocabulary import KINDS, SEVERITIES, SEVERITY_LABEL
from bot.policy import Policy
from bot.render import Button, Rendered, actions, context, fields_block, header, section
from commands.args import UsageError, split_text
from commands.base import Registry
from incidents.playbooks import PLAYBOOKS
from incidents.store import Incident

RUN = "cf_run"  # action id prefix of buttons whose value is a command line
DECLARE_CALLBACK = "cf_incident_declare"
VALUE_LIMIT = 2000  # Slack's limit on a button's value
_STATUS_ICON = {"investigating": ":mag:", "identified": ":dart:", "monitoring": ":eyes:",
                "resolved": ":large_green_circle:"}


def command_buttons(registry: Registry, policy: Policy, steps: Sequence[tuple[str, str]]) -> list[Button]:
    """(label, command line) -> buttons for the lines this bot can run; changes say they need approval."""
    buttons: list[Button] = []
    for label, line in steps:
        if len(line) > VALUE_LIMIT:
            continue
        try:
            resolved = registry.resolve(split_text(line))
        except UsageError:
            continue
        if resolved is None:
            continue
        spec = resolved[0]
        suffix = " (approval)" if policy.needs_approval(spec) else ""
        buttons.append(Button(label + suffix, f"{RUN}:{len(buttons)}", line))
    return buttons


def when(ts: float, fmt: str = "{date_short_pretty} {time}") -> str:
    """A Slack date token (shown in the reader's time zone) with a UTC fallback."""
    fallback = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))
    return date(ts, fmt, fallback)


def person(user: str | None) -> str:
    if not user:
        return "unassigned"
    return f"<@{user}>" if user[:1] in ("U", "W") else literal(user)


def with_people(text: str) -> str:
    """Outside text escaped as `literal()` does, but for Slack's user mentions, which Slack shows as names.

    What people type into an update (`asked <@U123|vic> to look`) and the requesters of open change
    requests stay mentions; anything else that looks like markup is shown as typed.
    """
    out: list[str] = []
    pos = 0
    for match in USER_MENTION.finditer(text):
        out += [literal(text[pos : match.start()]), f"<@{match.group(1)}>"]
        pos = match.end()
    out.append(literal(text[pos:]))
    return "".join(out)


def topic(incident: Incident) -> str:
    return clip(f"{incident.severity.upper()} · {incident.status} · commander {person(incident.commander)} · "
                f"{literal(incident.title, one_line=True)}", 250)


def purpose(incident: Incident) -> str:
    kind = PLAYBOOKS[incident.kind].label if incident.kind in PLAYBOOKS else incident.kind
    title = literal(incident.title, one_line=True)
    return clip(f"{incident.id}: {title} ({incident.severity.upper()}, {kind}). Declared by "
                f"{person(incident.declared_by)}. Run /cf commands here: they are audited under {incident.id}.", 250)


def _facts(incident: Incident) -> list[tuple[str, str]]:
    return [
        ("Severity", SEVERITY_LABEL.get(incident.severity, incident.severity)),
        ("Status", f"{_STATUS_ICON.get(incident.status, '')} {incident.status}".strip()),
        ("Commander", person(incident.commander)),
        ("Comms / scribe", f"{person(incident.comms)} / {person(incident.scribe)}"),
        ("Declared", f"{when(incident.declared_at)} by {person(incident.declared_by)}"),
        ("Type", PLAYBOOKS[incident.kind].label if incident.kind in PLAYBOOKS else incident.kind),
    ]


def summary(incident: Incident, buttons: Sequence[Button]) -> Rendered:
    """The pinned message: facts, the runbook checklist for its type, and the first actions."""
    playbook = PLAYBOOKS.get(incident.kind, PLAYBOOKS["other"])
    steps = "\n".join(f"{i}. {s}" for i, s in enumerate(playbook.steps, start=1))
    built: list[Block] = [
        header(f"{incident.id} · {incident.severity.upper()} · {literal(incident.title, one_line=True)}"),
        *fields_block(_facts(incident)),
        section(f"*Runbook checklist — {escape(playbook.label)}*\n_{escape(playbook.section)}_\n{steps}"),
    ]
    if incident.is_open and buttons:
        built.append(actions(list(buttons), block_id=f"incident:{incident.id}"))
    if incident.resolved_at is not None:
        built.append(context(f":large_green_circle: Resolved {when(incident.resolved_at)} by "
                             f"{person(incident.resolved_by)} after "
                             f"{duration_text(incident.resolved_at - incident.declared_at)}."))
    else:
        built.append(context("`/cf incident update TEXT` · `/cf incident assign commander @someone` · "
                             "`/cf incident resolve` · `/cf incident timeline`"))
    return Rendered(text=clip(f"{incident.id} {incident.severity.upper()}: {literal(incident.title)}", 300),
                    blocks=[b.to_dict() for b in built])


def announcement(incident: Incident) -> Rendered:
    where = f"<#{incident.channel}>" if incident.channel else "(no channel could be created)"
    text = (f":rotating_light: *{incident.severity.upper()}* {incident.id} declared by {person(incident.declared_by)}: "
            f"*{literal(incident.title)}* — join {where}")
    if not incident.is_open and incident.resolved_at is not None:
        text = (f":large_green_circle: {incident.id} *{literal(incident.title)}* resolved after "
                f"{duration_text(incident.resolved_at - incident.declared_at)} — {where}")
    return Rendered(text=clip(f"{incident.id}: {literal(incident.title)}", 300), blocks=[section(text).to_dict()])


def update_message(incident: Incident, text: str, by: str, buttons: Sequence[Button]) -> Rendered:
    built: list[Block] = [
        section(f":loudspeaker: *Update* ({incident.status}) from {person(by)}\n{with_people(text)}"),
    ]
    if buttons:
        built.append(actions(list(buttons)))
    return Rendered(text=clip(f"{incident.id} update: {literal(text, one_line=True)}", 300),
                    blocks=[b.to_dict() for b in built])


def resolution_message(incident: Incident, open_actions: Sequence[str], buttons: Sequence[Button]) -> Rendered:
    assert incident.resolved_at is not None
    lines = [f":large_green_circle: *{incident.id} resolved* by {person(incident.resolved_by)} after "
             f"{duration_text(incident.resolved_at - incident.declared_at)}."]
    if open_actions:
        lines.append("*Still open:*\n" + "\n".join(f"• {with_people(a)}" for a in open_actions[:15]))
    else:
        lines.append("No change requests are still open.")
    built: list[Block] = [section("\n".join(lines))]
    if buttons:
        built.append(actions(list(buttons)))
    return Rendered(text=clip(f"{incident.id} resolved", 300), blocks=[b.to_dict() for b in built])


def reminder(incident: Incident, minutes: float) -> str:
    who = person(incident.commander) if incident.commander else "Commander (unassigned)"
    return (f":alarm_clock: No update on {incident.id} ({incident.severity.upper()}) for {minutes:g} min. "
            f"{who}, please post one with `/cf incident update TEXT`.")


# --- the declare modal -------------------------------------------------------------------------


def _option(value: str, label: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": clip(label, 75)}, "value": value}


def declare_modal(channel: str) -> dict[str, Any]:
    """Title, severity and type; `private_metadata` remembers where the command was typed."""
    severities = [_option(s, SEVERITY_LABEL[s]) for s in SEVERITIES]
    kinds = [_option(k, PLAYBOOKS[k].label) for k in KINDS]
    return {
        "type": "modal",
        "callback_id": DECLARE_CALLBACK,
        "private_metadata": channel,
        "title": {"type": "plain_text", "text": "Declare an incident"},
        "submit": {"type": "plain_text", "text": "Declare"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "input", "block_id": "title", "label": {"type": "plain_text", "text": "Title"},
             "element": {"type": "plain_text_input", "action_id": "value", "max_length": 150,
                         "placeholder": {"type": "plain_text", "text": "Editor is down"}}},
            {"type": "input", "block_id": "severity", "label": {"type": "plain_text", "text": "Severity"},
             "element": {"type": "static_select", "action_id": "value", "options": severities,
                         "initial_option": severities[1]}},
            {"type": "input", "block_id": "kind", "label": {"type": "plain_text", "text": "Type"},
             "element": {"type": "static_select", "action_id": "value", "options": kinds,
                         "initial_option": kinds[0]}},
        ],
    }


def read_modal(view: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(values, errors) from a submitted declare modal; errors are keyed by block id, as Slack wants."""
    state = (view.get("state") or {}).get("values") or {}

    def value(block: str) -> str:
        element = (state.get(block) or {}).get("value") or {}
        selected = element.get("selected_option") or {}
        return str(selected.get("value") or element.get("value") or "").strip()

    values = {"title": value("title"), "severity": value("severity") or "sev2", "kind": value("kind") or "other"}
    errors = {}
    if not values["title"]:
        errors["title"] = "Give the incident a short title."
    if values["severity"] not in SEVERITIES:
        errors["severity"] = "Choose sev1 to sev4."
    if values["kind"] not in KINDS:
        errors["kind"] = "Choose a type."
    return values, errors
