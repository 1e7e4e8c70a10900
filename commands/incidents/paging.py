"""Paging and public communication: `oncall`, `page`, `statuspage open|update|resolve`.

`page` triggers PagerDuty (Events API v2) at once — waking someone up must not wait for an approval
— with a dedup key tied to the incident, so paging twice updates one alert and resolving the
incident resolves it. The status page is public communication, so its commands are changes: they
go through approval unless config `statuspage.require_approval` is false. Each ends with a verdict read
back from Statuspage; opening one can be undone (resolving it), an update or a resolution cannot: what
subscribers were told stays told.
"""

from __future__ import annotations

import re
import uuid

from base.settings import Settings
from base.text import link, literal
from base.vocabulary import (
    OPEN_STATUSES,
    PAGERDUTY_SEVERITIES,
    PAGERDUTY_SEVERITY,
    STATUSPAGE_IMPACT,
    STATUSPAGE_IMPACTS,
)
from commands.args import choice, opt, pos, text
from commands.base import CommandError, Context, Kind, NotConfigured, Role, command
from commands.clients import IncidentView, StatuspageView
from commands.reply import Change, Fields, Note, Outcome, Part, Reply, Table, Text, Undo
from commands.support.incident_args import trailing_options
from commands.support.verify_statuspage import incident_state

AREA = "Incidents"
PUBLIC = "This is public: the status page's subscribers are notified."


@command(
    "oncall",
    summary="The runbook's contacts: the on-call escalation list (primary, secondary, manager, CTO), the team "
            "emails, AWS Support, PagerDuty and the emergency channel.",
    area=AREA,
    example="/cf oncall",
)
async def oncall(ctx: Context) -> Reply:
    entries = ctx.settings.incidents.oncall
    contacts = ctx.settings.incidents.contacts
    rows = [[str(i), e.role, e.name, e.contact] for i, e in enumerate(entries, start=1)]
    paging = "`/cf page LEVEL TEXT` pages through PagerDuty." if ctx.configured("pagerduty") else \
        "PagerDuty is not configured for the bot (PAGERDUTY_ROUTING_KEY): call the number."
    teams = Fields([(literal(team), link(f"mailto:{email}", email)) for team, email in contacts.teams.items()])
    external = Fields([
        ("AWS Support", link(contacts.aws_support, "AWS Support Center")),
        ("PagerDuty", link(contacts.pagerduty, contacts.pagerduty.removeprefix("https://"))),
        ("Slack emergency", f"<#{ctx.settings.incident_channel}>"),
    ])
    parts: list[Part] = [Table(["#", "LEVEL", "WHO", "CONTACT"], rows, empty="No escalation list configured.")]
    parts += [Text("*Teams*"), teams] if contacts.teams else []
    parts += [Text("*External*"), external, Note(paging)]
    return Reply(title="On-call escalation and contacts", parts=parts)


async def _incident(ctx: Context) -> IncidentView | None:
    """The incident this command runs in, or None (outside an incident channel)."""
    if not ctx.configured("incidents") or ctx.incident_id is None:
        return None
    return await ctx.incidents.find(ctx.incident_id)


@command(
    "page",
    summary="Page on-call through PagerDuty (primary by default); resolved when the incident is.",
    area=AREA,
    args=[pos("LEVEL", str, "primary, secondary or manager (default primary)", default="primary"),
          pos("TEXT", text, "what is wrong (default: the incident's title)", default=None, greedy=True),
          opt("--severity", choice(*PAGERDUTY_SEVERITIES),
              "PagerDuty severity (default: from the incident, else critical)")],
    role=Role.operator,
    example="/cf page primary Editor returns 502 for everyone --severity critical",
    needs=["pagerduty", "incidents"],
)
async def page(ctx: Context, level: str = "primary", text: str | None = None, severity: str | None = None) -> Reply:
    text, extra = trailing_options(text, {"--severity": choice(*PAGERDUTY_SEVERITIES)}, "page")
    severity = extra.get("severity", severity)
    levels = {e.role: e for e in ctx.settings.incidents.oncall}
    if level.lower() not in levels:  # the first word was the text, not a level
        text, level = f"{level} {text or ''}".strip(), "primary"
    entry = levels.get(level.lower())
    if entry is None:
        raise CommandError(f"No on-call level `{level}` in config (`incidents.oncall`).")
    incident = await _incident(ctx)
    if incident is not None and not incident.is_open:
        incident = None  # a page now is about something new; it must not reopen the resolved incident's alert
    summary = text or (incident.title if incident else None)
    if not summary:
        raise CommandError("Say what is wrong: `/cf page primary Editor is down`.")
    if not ctx.configured("pagerduty"):
        raise NotConfigured(f"PagerDuty is not configured (set PAGERDUTY_ROUTING_KEY). Call the {entry.name} "
                            f"directly: {entry.contact}.")
    pagerduty = ctx.pagerduty
    sev = severity or (PAGERDUTY_SEVERITY.get(incident.severity, "critical") if incident else "critical")
    prefix = f"[{incident.id} {incident.severity.upper()}] " if incident else ""
    key = f"cf-{incident.id.lower()}-{entry.role}" if incident else f"cf-page-{uuid.uuid4().hex[:12]}"
    details = {"escalation_level": entry.role, "escalate_to": entry.name, "requested_by": ctx.user,
               "slack_channel": ctx.channel, "incident": incident.id if incident else None}
    dedup = await pagerduty.trigger(summary=prefix + summary, severity=sev, dedup_key=key, group=ctx.namespace,
                                    event_class="cf-page", component=incident.kind if incident else None,
                                    details=details)
    if incident is not None:
        await ctx.incidents.record_page(incident, dedup, ctx.user, {"level": entry.role, "text": summary})
    after = f" It is resolved when {incident.id} is." if incident else " Resolve it in PagerDuty when done."
    return Reply(title=f"Paged {entry.name} ({sev})", level="ok", parts=[
        Text(f"*{prefix}{summary}*"), Note(f"PagerDuty dedup key `{dedup}`.{after} Phone: {entry.contact}."),
    ])


# --- status page ---------------------------------------------------------------------------------


def _component_ids(ctx: Context, names: str | None) -> tuple[list[str], list[str]]:
    """Component names (`editor,api`) -> (names, ids) from config `statuspage.components`."""
    if not names:
        return [], []
    known: dict[str, str] = ctx.settings.statuspage.components
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        listing = ", ".join(f"`{n}`" for n in sorted(known)) or "none configured"
        raise CommandError(f"Unknown status page component {', '.join(unknown)}. Components: {listing}.")
    return wanted, [known[n] for n in wanted]


def _status_page_approval(settings: Settings) -> bool:
    """Public communication needs a second person unless `statuspage.require_approval` is false."""
    return settings.statuspage.require_approval


@command(
    "statuspage open",
    summary="Open a public status page incident (investigating by default), after approval.",
    area=AREA,
    args=[opt("--status", choice(*OPEN_STATUSES), "investigating, identified or monitoring", default="investigating"),
          opt("--components", str, "affected components by name, comma-separated", metavar="A,B"),
          opt("--impact", choice(*STATUSPAGE_IMPACTS), "none, minor, major or critical (default: from the severity)"),
          pos("TITLE", text, "the public title (default: the incident's title)", default=None, greedy=True)],
    kind=Kind.change,
    role=Role.operator,
    approval=_status_page_approval,
    example="/cf statuspage open Editor unavailable --status investigating --components editor,api --impact major",
    needs=["statuspage", "incidents"],
)
async def statuspage_open(ctx: Context, title: str | None = None, status: str = "investigating",
                          components: str | None = None, impact: str | None = None) -> Change:
    title, extra = trailing_options(title, {"--status": choice(*OPEN_STATUSES), "--components": str,
                                            "--impact": choice(*STATUSPAGE_IMPACTS)}, "statuspage open")
    status, components = extra.get("status", status), extra.get("components", components)
    impact = extra.get("impact", impact)
    client = ctx.statuspage
    incident = await _incident(ctx)
    title = title or (incident.title if incident else None)
    if not title:
        raise CommandError("Give the public title: `/cf statuspage open Editor unavailable`.")
    names, ids = _component_ids(ctx, components)
    impact = impact or (STATUSPAGE_IMPACT.get(incident.severity, "major") if incident else "major")
    if incident is not None and await ctx.incidents.statuspages(incident.id):
        raise CommandError(f"{incident.id} already has a status page incident: use `/cf statuspage update TEXT`.")
    body = "We are investigating this issue and will post updates here."
    where = ", ".join(names) or "no components"

    async def apply() -> Outcome:
        created = await client.create_incident(title, status, body, impact, ids)
        await ctx.incidents.statuspage_opened(
            sp_id=str(created.get("id")), incident_id=incident.id if incident else None, title=title, status=status,
            impact=impact, components=names, shortlink=created.get("shortlink"), by=ctx.user)
        link = created.get("shortlink") or created.get("id")
        sp_id = str(created.get("id"))
        return Outcome(before="no public incident", after=f"public incident {link} ({status})",
                       verify=incident_state(sp_id, status),
                       undo=Undo("statuspage resolve", {"id": sp_id}, f"resolve the public incident “{title}”"))

    warnings = [PUBLIC] + ([] if ids else ["No components are marked affected (add `--components`)."])
    return Change(summary=f"Open a public status page incident: “{title}”", current="no public incident open",
                  desired=f"{status}, impact {impact}, {where}", apply=apply, target=client.where, warnings=warnings)


async def _target(ctx: Context) -> StatuspageView:
    incident = await _incident(ctx)
    return await ctx.incidents.statuspage_target(incident.id if incident else None)


@command(
    "statuspage update",
    summary="Post an update to the open status page incident, after approval.",
    area=AREA,
    args=[opt("--status", choice(*OPEN_STATUSES), "the new status (default: unchanged)"),
          pos("TEXT", text, "the public update", greedy=True)],
    kind=Kind.change,
    role=Role.operator,
    approval=_status_page_approval,
    example="/cf statuspage update --status identified We found the cause and are fixing it.",
    needs=["statuspage", "incidents"],
)
async def statuspage_update(ctx: Context, text: str, status: str | None = None) -> Change:
    peeled, extra = trailing_options(text, {"--status": choice(*OPEN_STATUSES)}, "statuspage update")
    text, status = peeled or text, extra.get("status", status)
    client = ctx.statuspage
    record = await _target(ctx)
    new_status = status or record.status

    async def apply() -> Outcome:
        await client.update_incident(record.id, new_status, text)
        await ctx.incidents.statuspage_changed(record, new_status, ctx.user, text)
        return Outcome(before=record.status, after=f"{new_status}: {text[:100]}",
                       verify=incident_state(record.id, new_status, text))

    return Change(summary=f"Update the public status page incident “{record.title}”", current=record.status,
                  desired=f"{new_status}: “{text[:300]}”", apply=apply, target=client.where, warnings=[PUBLIC],
                  no_undo="a public update cannot be unsaid; correct it with another update (`/cf statuspage update`)")


_SP_ID = re.compile(r"[A-Za-z0-9]{1,64}")


def statuspage_id(raw: str) -> str:
    """A Statuspage incident id (letters and digits, as the API issues them)."""
    if not _SP_ID.fullmatch(raw):
        raise ValueError(f"{literal(raw[:40])} is not a status page incident id (letters and digits).")
    return raw


async def _open_record(ctx: Context, sp_id: str) -> StatuspageView:
    """The open public incident with this id (an undo names the one it opened, wherever it is run)."""
    for record in await ctx.incidents.statuspages(None):
        if record.id == sp_id:
            return record
    raise CommandError(f"No open status page incident has id `{sp_id}` (resolved already?). Nothing was changed.")


@command(
    "statuspage resolve",
    summary="Resolve the open status page incident and mark its components operational, after approval.",
    area=AREA,
    args=[opt("--id", statuspage_id, "the status page incident (default: this incident's, or the only open one)"),
          pos("TEXT", text, "the closing message (default: a standard one)", default=None, greedy=True)],
    kind=Kind.change,
    role=Role.operator,
    approval=_status_page_approval,
    example="/cf statuspage resolve",
    needs=["statuspage", "incidents"],
)
async def statuspage_resolve(ctx: Context, text: str | None = None, id: str | None = None) -> Change:
    text, extra = trailing_options(text, {"--id": statuspage_id}, "statuspage resolve")
    id = extra.get("id", id)
    client = ctx.statuspage
    record = await (_open_record(ctx, id) if id else _target(ctx))
    body = text or "This incident has been resolved. Thank you for your patience."
    ids = [ctx.settings.statuspage.components[n] for n in record.components
           if n in ctx.settings.statuspage.components]

    async def apply() -> Outcome:
        await client.resolve_incident(record.id, body, ids)
        await ctx.incidents.statuspage_changed(record, "resolved", ctx.user, body)
        return Outcome(before=record.status, after="resolved, components operational",
                       verify=incident_state(record.id, "resolved"))

    return Change(summary=f"Resolve the public status page incident “{record.title}”", current=record.status,
                  desired="resolved; components operational", apply=apply, target=client.where, warnings=[PUBLIC],
                  no_undo="subscribers were told it is resolved, and that cannot be unsaid; if it is not over, "
                          "open a new public incident (`/cf statuspage open`)")
