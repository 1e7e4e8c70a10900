"""Incidents: declare, assign, update, resolve, list, and the postmortem timeline.

The work (channels, pins, topics, the audit) is the "incidents" service's; these functions parse,
check and answer. Run inside an incident's channel they act on that incident; elsewhere on the only
open one, or on the one named with `--id INC-N`.

Where people appear outside a Slack message (a table, the postmortem file), they are named through the
audit trail's lookup (`AuditClient.names`: users.info, cached), the one `/cf audit` uses; in message
text they stay `<@U…>` mentions, which Slack shows as names.
"""

from __future__ import annotations

import time
from typing import Any

from base.text import USER_MENTION, literal
from base.vocabulary import KINDS, OPEN_STATUSES, ROLES, SEVERITIES
from commands.args import choice, opt, pos, text
from commands.base import CommandError, Context, Role, command
from commands.clients import AuditClient
from commands.parts import degraded, failed_parts
from commands.reply import Fields, File, Note, Reply, Table, Text
from commands.support.incident_args import slack_user, trailing_options

AREA = "Incidents"


def _id_opt() -> Any:
    return opt("--id", str, "the incident (INC-N); default: this channel's incident", metavar="INC-N")


@command(
    "incident declare",
    summary="Declare an incident: a channel, responders, the runbook checklist pinned, an announcement. "
            "Alone, it opens a form.",
    area=AREA,
    args=[pos("SEV", choice(*SEVERITIES), "severity: sev1 (worst) to sev4", default=None),
          pos("TITLE", text, "what is wrong, in a few words", default=None, greedy=True),
          opt("--type", choice(*KINDS), "which runbook checklist to pin (default: guessed from the title)",
              metavar="TYPE")],
    role=Role.operator,
    example="/cf incident declare sev1 Editor is down",
    needs=["incidents"],
    ephemeral=True,
)
async def declare(ctx: Context, sev: str | None = None, title: str | None = None, type: str | None = None) -> Reply:
    title, extra = trailing_options(title, {"--type": choice(*KINDS)}, "incident declare")
    type = extra.get("type", type)
    if sev is None or title is None:
        raise CommandError("Give a severity and a title: `/cf incident declare sev1 Editor is down` "
                           "(in Slack, `/cf incident declare` alone opens a form).")
    # The record and the channel are the primary steps; topic, invites, pin and announcement are parts
    # that degrade to one line each (the service has noted them in the channel too).
    incident, problems = await ctx.incidents.declare_steps(title=title, severity=sev, kind=type, user=ctx.user)
    done = ("Responders are invited and the checklist is pinned there. " if not problems
            else "The steps above did not happen; the rest did. ")
    return Reply(title=f"{incident.id} declared: <#{incident.channel}>", level=degraded("ok", *problems),
                 ephemeral=True, parts=[
                     Text(f"*{incident.severity.upper()}* {literal(incident.title)}"),
                     *failed_parts(*problems),
                     Note(done + f"Commands run in that channel are audited under {incident.id}."),
                     *([] if type else [_guessed(incident.kind)]),
                 ])


def _guessed(kind: str) -> Note:
    """A guessed type is said so, with the way to choose one (a wrong checklist misleads responders)."""
    how = ("the general checklist was pinned, as the title names no type unambiguously" if kind == "other"
           else "its checklist was pinned")
    return Note(f"Type `{kind}` was guessed from the title: {how}. To choose the type, declare with "
                f"`--type KIND` (one of {', '.join(KINDS)}), e.g. `/cf incident declare sev2 TITLE --type memory`.")


@command(
    "incident assign",
    summary="Give someone a role on the incident: commander, comms or scribe.",
    area=AREA,
    args=[pos("ROLE", choice(*ROLES), "commander, comms or scribe"),
          pos("USER", slack_user, "the person (@mention)"), _id_opt()],
    role=Role.operator,
    example="/cf incident assign commander @olivia",
    needs=["incidents"],
    ephemeral=True,
)
async def assign(ctx: Context, role: str, user: str, id: str | None = None) -> Reply:
    service = ctx.incidents
    incident = await service.find(ctx.incident_id, id)
    await service.assign(incident, role, user, ctx.user)
    return Reply(title=f"<@{user}> is now the {role} of {incident.id}.", level="ok", ephemeral=True)


@command(
    "incident update",
    summary="Post a status update in the incident channel (and offer it to the status page).",
    area=AREA,
    args=[opt("--status", choice(*OPEN_STATUSES), "the incident's new status"),
          _id_opt(), pos("TEXT", text, "the update", greedy=True)],
    role=Role.operator,
    example="/cf incident update --status identified Connection pool exhausted; scaling graphql-api",
    needs=["incidents"],
    ephemeral=True,
)
async def update(ctx: Context, text: str, status: str | None = None, id: str | None = None) -> Reply:
    peeled, extra = trailing_options(text, {"--status": choice(*OPEN_STATUSES), "--id": str}, "incident update")
    text, status, id = peeled or text, extra.get("status", status), extra.get("id", id)
    service = ctx.incidents
    incident = await service.find(ctx.incident_id, id)
    updated = await service.post_update(incident, text, ctx.user, status)
    return Reply(title=f"Update posted to {updated.id} ({updated.status}).", level="ok", ephemeral=True)


@command(
    "incident resolve",
    summary="Resolve the incident: duration, open actions, pages resolved, status page offered.",
    area=AREA,
    args=[_id_opt()],
    role=Role.operator,
    example="/cf incident resolve",
    needs=["incidents"],
    ephemeral=True,
)
async def resolve(ctx: Context, id: str | None = None) -> Reply:
    service = ctx.incidents
    incident, open_items = await service.resolve(await service.find(ctx.incident_id, id), ctx.user)
    minutes = ((incident.resolved_at or time.time()) - incident.declared_at) / 60
    parts: list[Any] = [Text(f"Lasted {minutes:.0f} min.")]
    if open_items:
        parts.append(Text("*Still open:*\n" + "\n".join(f"• {i}" for i in open_items)))
    return Reply(title=f"{incident.id} resolved.", level="ok", ephemeral=True, parts=parts)


@command(
    "incident timeline",
    summary="Every audited step of the incident with times, uploaded as a Markdown postmortem draft.",
    area=AREA,
    args=[_id_opt()],
    example="/cf incident timeline",
    needs=["incidents", "audit"],
)
async def timeline(ctx: Context, id: str | None = None) -> Reply:
    service = ctx.incidents
    incident = await service.find(ctx.incident_id, id)
    body, steps = await service.timeline(incident)
    body = await _named(ctx.audit, body)
    name = f"postmortem-{incident.id.lower()}.md"
    return Reply(
        title=f"{incident.id} timeline: {steps} audited steps — postmortem draft attached",
        parts=[Fields([("Incident", incident.title), ("Status", incident.status)]),
               Note(f"`{name}` in this thread: the timeline plus the sections to write.")],
        files=[File(name, body.encode(), f"Postmortem draft — {incident.id}")],
    )


@command(
    "incident list",
    summary="Open incidents with severity, status, commander, age and channel.",
    area=AREA,
    example="/cf incident list",
    needs=["incidents", "audit"],
)
async def list_(ctx: Context) -> Reply:
    incidents = await ctx.incidents.open_incidents()
    names = await ctx.audit.names(i.commander for i in incidents if i.commander)
    now = time.time()
    rows = [[i.id, i.severity.upper(), i.status, names.get(i.commander, i.commander) if i.commander else "-",
             f"{(now - i.declared_at) / 60:.0f}m",
             f"#{i.channel_name or '-'}", i.title[:60]] for i in incidents]
    table = Table(["ID", "SEV", "STATUS", "COMMANDER", "AGE", "CHANNEL", "TITLE"], rows, empty="No open incidents.")
    return Reply(title=f"{len(incidents)} open incident{'s' if len(incidents) != 1 else ''}", parts=[table])


async def _named(audit: AuditClient, text: str) -> str:
    """Every `<@U…>` mention in a text that leaves Slack (a file) as `@name`, by the audit trail's lookup."""
    names = await audit.names(m.group(1) for m in USER_MENTION.finditer(text))
    return USER_MENTION.sub(lambda m: "@" + names.get(m.group(1), m.group(1)).replace("|", "\\|"), text)
