"""Incidents: declare (channel, topic, invites, pinned checklist, announcement), assign, update, resolve.

`IncidentService` is the one place that knows what an incident is in Slack. The `incident` commands
(commands/incidents/incidents.py) reach it as the "incidents" service, the declare modal and the Alertmanager
webhook call it directly, and the dispatcher asks it (`lookup`) which incident a channel belongs to,
so that every command run in an incident channel is audited under that incident.

Every step is recorded — row first, audit entry next — before its Slack effect, so the timeline is
complete even when Slack is not. A Slack step that fails after the channel exists (a topic, one
invite, the pin) degrades to a one-line note in the channel instead of failing the declaration, and
`declare_steps` hands those steps (the announcement too) back as `commands.parts.Failed`, so whoever
declared is told which ones (`Topic: failed (ratelimited)`). Creating the channel is the one step
that fails the declaration: without it there is nothing to dress.
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from base.text import clip
from base.vocabulary import KINDS, OPEN_STATUSES, RESOLVED, ROLES
from bot.audit import AuditTrail
from bot.config import Settings
from bot.messenger import DeliveryError, Messenger
from bot.policy import Policy
from bot.render import Button
from bot.store import APPROVED, PENDING, RUNNING, Store, StoreUnavailable
from commands.base import CommandError, Registry
from commands.parts import Failed
from incidents import views
from incidents.playbooks import guess_kind, plain_quotes, slug
from incidents.postmortem import markdown, open_action_lines
from incidents.store import Incident, IncidentStore, StatuspageRecord

log = logging.getLogger(__name__)

_NAME_ROOM = 80 - len("inc-YYYYMMDD-") - len("-99")


def is_person(user: str | None) -> bool:
    return bool(user) and str(user)[:1] in ("U", "W")


class IncidentService:
    def __init__(self, *, settings: Settings, store: Store, messenger: Messenger, audit: AuditTrail,
                 registry: Registry, policy: Policy, services: Mapping[str, Any],
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.records = IncidentStore(store)
        self.messenger = messenger
        self.audit = audit
        self.registry = registry
        self.policy = policy
        self.services = services
        self.clock = clock

    # --- which incident ------------------------------------------------------------------------

    async def lookup(self, channel: str) -> str | None:
        """The dispatcher's hook. A store outage must not stop read commands, so it answers None then."""
        try:
            incident = await self.records.incident_in_channel(channel)
        except StoreUnavailable as exc:
            log.warning("incident lookup failed; auditing without an incident", extra={"error": str(exc)})
            return None
        return incident.id if incident else None

    async def find(self, incident_id: str | None, explicit: str | None = None) -> Incident:
        """`--id` if given, else the channel's incident, else the only open one; a clear refusal otherwise."""
        if explicit:
            wanted = explicit.strip().upper()
            wanted = wanted if wanted.startswith("INC-") else f"INC-{wanted.lstrip('#')}"
            found = await self.records.get_incident(wanted)
            if found is None:
                raise CommandError(f"There is no incident `{clip(explicit, 40)}`. `/cf incident list` shows them.")
            return found
        if incident_id:
            found = await self.records.get_incident(incident_id)
            if found is not None:
                return found
        open_ = await self.records.open_incidents()
        if len(open_) == 1:
            return open_[0]
        if not open_:
            raise CommandError("No incident is open. Declare one with `/cf incident declare sev2 TITLE`.")
        ids = ", ".join(i.id for i in open_[:10])
        raise CommandError(f"Several incidents are open ({ids}): run this in the incident's channel, "
                           "or add `--id INC-N`.")

    async def open_incidents(self) -> list[Incident]:
        return await self.records.open_incidents()

    # --- declare -------------------------------------------------------------------------------

    async def declare(self, *, title: str, severity: str, kind: str | None, user: str,
                      source: str | None = None) -> Incident:
        """Record it, make its channel, dress it, pin the checklist, announce it (no kind: guessed)."""
        return (await self.declare_steps(title=title, severity=severity, kind=kind, user=user, source=source))[0]

    async def declare_steps(self, *, title: str, severity: str, kind: str | None, user: str,
                            source: str | None = None) -> tuple[Incident, list[Failed]]:
        """`declare`, and the Slack steps that failed (each already noted in the channel, but the
        announcement's)."""
        title = clip(plain_quotes(" ".join(title.split())), 150) or "Untitled incident"
        kind = kind if kind in KINDS else guess_kind(title)
        incident = await self.records.create_incident(title=title, severity=severity, kind=kind, declared_by=user,
                                                      now=self.clock(), source=source)
        await self.audit.record("declared", user, "incident declare", incident_id=incident.id,
                                detail={"title": title, "severity": severity, "kind": kind, "source": source})
        channel, name = await self._create_channel(incident)
        incident = await self._save(incident.id, channel=channel, channel_name=name,
                                    commander=user if is_person(user) else None)
        problems = await self._dress(incident)
        summary = views.summary(incident, self._summary_buttons())
        summary_ts = await self._post_step(channel, summary.text, summary.blocks, "Summary")
        if isinstance(summary_ts, Failed):
            problems.append(summary_ts)
        else:
            problems += await self._quietly(self.messenger.pin(channel, summary_ts), "Pinning the summary")
        if problems:
            await self._note(channel, ":warning: " + "; ".join(f"{f.label}: {f.detail}" for f in problems) + ".")
        announce = views.announcement(incident)
        announce_ts = await self._post_step(self.settings.incident_channel, announce.text, announce.blocks,
                                            "Announcement")
        problems += [announce_ts] if isinstance(announce_ts, Failed) else []
        saved = await self._save(incident.id, summary_ts=None if isinstance(summary_ts, Failed) else summary_ts,
                                 announce_ts=None if isinstance(announce_ts, Failed) else announce_ts)
        return saved, problems

    def channel_base(self, incident: Incident) -> str:
        day = time.strftime("%Y%m%d", time.gmtime(incident.declared_at))
        return f"inc-{day}-{slug(incident.title, _NAME_ROOM)}"

    async def _create_channel(self, incident: Incident) -> tuple[str, str]:
        """`inc-YYYYMMDD-slug`, then `-2`, `-3`, ... while Slack says the name is taken."""
        base = self.channel_base(incident)
        private = self.settings.incidents.private_channels
        for n in range(1, 100):
            name = base if n == 1 else f"{base}-{n}"
            try:
                return await self.messenger.create_channel(name, private), name
            except DeliveryError as exc:
                if exc.code == "name_taken":
                    continue
                await self.audit.record("channel_failed", "cf", "incident declare", incident_id=incident.id,
                                        detail={"error": exc.code, "name": name})
                raise CommandError(f"{incident.id} is recorded, but its channel `#{name}` could not be created "
                                   f"(Slack said `{exc.code}`). Check the bot's channels:manage scope.") from None
        raise CommandError(f"{incident.id} is recorded, but every channel name from `#{base}` to `-99` is taken.")

    async def _dress(self, incident: Incident) -> list[Failed]:
        """Topic, purpose and invites; what failed comes back as one `Failed` each."""
        assert incident.channel is not None
        problems = await self._quietly(self.messenger.set_topic(incident.channel, views.topic(incident)), "Topic")
        problems += await self._quietly(self.messenger.set_purpose(incident.channel, views.purpose(incident)),
                                        "Purpose")
        users, group_problems = await self._invitees(incident.declared_by)
        problems += group_problems
        if users:
            problems += await self._quietly(self.messenger.invite(incident.channel, users), "Inviting the responders")
        return problems

    async def _invitees(self, declarer: str) -> tuple[list[str], list[Failed]]:
        users: list[str] = [declarer] if is_person(declarer) else []
        problems: list[Failed] = []
        for entry in self.settings.incidents.responders:
            if entry.startswith("S"):
                try:
                    users.extend(await self.messenger.group_members(entry))
                except DeliveryError as exc:
                    problems.append(Failed(f"User group {entry}", exc.code))
            else:
                users.append(entry)
        return list(dict.fromkeys(u for u in users if is_person(u))), problems

    def _summary_buttons(self) -> list[Button]:
        steps = [("Run triage", "status"), ("Page on-call", "page primary"), ("Update status page", "statuspage open")]
        return views.command_buttons(self.registry, self.policy, steps)

    # --- assign, update, resolve ---------------------------------------------------------------

    async def assign(self, incident: Incident, role: str, user: str, by: str) -> Incident:
        if role not in ROLES:
            raise CommandError(f"ROLE must be one of: {', '.join(ROLES)}.")
        updated = await self._save(incident.id, **{role: user})
        await self.audit.record("assigned", by, "incident assign", channel=incident.channel,
                                incident_id=incident.id, detail={"role": role, "user": user})
        if incident.channel:
            await self._quietly(self.messenger.invite(incident.channel, [user]), "invite")
            await self._post_quietly(incident.channel, f":bust_in_silhouette: {views.person(by)} made "
                                     f"{views.person(user)} the {role} of {incident.id}.")
        await self.refresh(updated)
        return updated

    async def post_update(self, incident: Incident, text: str, by: str, status: str | None = None) -> Incident:
        if not incident.is_open:
            raise CommandError(f"{incident.id} is resolved; updates go in its postmortem (`/cf incident timeline`).")
        if status is not None and status not in OPEN_STATUSES:
            raise CommandError("--status must be investigating, identified or monitoring.")
        fields: dict[str, Any] = {"last_update_at": self.clock()}
        if status is not None:
            fields["status"] = status
        updated = await self._save(incident.id, **fields)
        await self.audit.record("updated", by, "incident update", channel=incident.channel, incident_id=incident.id,
                                detail={"text": text, "status": updated.status})
        if updated.channel:
            message = views.update_message(updated, text, by, await self._statuspage_buttons(updated, text, status))
            await self._post_quietly(updated.channel, message.text, message.blocks)
        if status is not None and status != incident.status:
            await self.refresh(updated)
        return updated

    async def _statuspage_buttons(self, incident: Incident, text: str, status: str | None) -> list[Button]:
        if self.services.get("statuspage") is None:
            return []
        if not await self.records.open_statuspages(incident.id):
            return views.command_buttons(self.registry, self.policy, [("Open status page incident", "statuspage open")])
        flag = f"--status {status} " if status in ("identified", "monitoring") else ""
        line = f"statuspage update {flag}{shlex.quote(plain_quotes(text))}"
        return views.command_buttons(self.registry, self.policy, [("Post to status page", line)])

    async def resolve(self, incident: Incident, by: str) -> tuple[Incident, list[str]]:
        """Resolve once; resolve its pages; offer the status page; say what is still open."""
        resolved = await self.records.resolve_incident(incident.id, by, self.clock())
        if resolved is None:
            raise CommandError(f"{incident.id} is already resolved.")
        assert resolved.resolved_at is not None
        await self.audit.record("resolved", by, "incident resolve", channel=resolved.channel,
                                incident_id=resolved.id,
                                detail={"duration_s": round(resolved.resolved_at - resolved.declared_at)})
        notes = await self._resolve_pages(resolved, by)
        open_actions = open_action_lines(await self.open_actions(resolved.id))
        steps = [("Postmortem draft", "incident timeline")]
        if await self.records.open_statuspages(resolved.id):
            steps.insert(0, ("Resolve status page", "statuspage resolve"))
        buttons = views.command_buttons(self.registry, self.policy, steps)
        if resolved.channel:
            message = views.resolution_message(resolved, open_actions + notes, buttons)
            await self._post_quietly(resolved.channel, message.text, message.blocks)
        await self.refresh(resolved)
        return resolved, open_actions + notes

    async def _resolve_pages(self, incident: Incident, by: str) -> list[str]:
        pagerduty = self.services.get("pagerduty")
        if pagerduty is None or not incident.page_keys:
            return []
        notes = []
        for key in incident.page_keys:
            try:
                await pagerduty.resolve(key)
            except Exception as exc:  # one page that cannot be resolved must not stop the others
                notes.append(f"PagerDuty alert {key} not resolved: {exc}")
                continue
            await self.audit.record("page_resolved", by, "incident resolve", incident_id=incident.id,
                                    channel=incident.channel, detail={"dedup_key": key})
        return notes

    async def open_actions(self, incident_id: str) -> list[Any]:
        return [a for a in await self.store.actions_in(PENDING, APPROVED, RUNNING) if a.incident_id == incident_id]

    async def refresh(self, incident: Incident) -> None:
        """Topic, pinned summary and announcement follow the incident's current state."""
        if incident.channel:
            await self._quietly(self.messenger.set_topic(incident.channel, views.topic(incident)), "topic")
            if incident.summary_ts:
                summary = views.summary(incident, self._summary_buttons())
                await self._quietly(self.messenger.update(incident.channel, incident.summary_ts, summary.text,
                                                          summary.blocks), "summary")
        if incident.announce_ts and incident.status == RESOLVED:
            announce = views.announcement(incident)
            await self._quietly(self.messenger.update(self.settings.incident_channel, incident.announce_ts,
                                                      announce.text, announce.blocks), "announcement")

    async def timeline(self, incident: Incident) -> tuple[str, int]:
        """The postmortem draft and how many audited steps it holds."""
        entries = await self.audit.for_incident(incident.id)
        actions = open_action_lines(await self.open_actions(incident.id))
        return markdown(incident, entries, actions, self.clock()), len(entries)

    async def record_page(self, incident: Incident, dedup_key: str, by: str, detail: dict[str, Any]) -> None:
        current = await self.records.get_incident(incident.id) or incident
        if dedup_key not in current.page_keys:
            await self._save(incident.id, page_keys=[*current.page_keys, dedup_key])
        await self.audit.record("paged", by, "page", channel=incident.channel, incident_id=incident.id,
                                detail={**detail, "dedup_key": dedup_key})

    # --- status-page incidents (the statuspage commands keep their records here) ---------------

    async def statuspages(self, incident_id: str | None) -> list[StatuspageRecord]:
        return await self.records.open_statuspages(incident_id)

    async def statuspage_target(self, incident_id: str | None) -> StatuspageRecord:
        """The incident's open status-page incident, or the only open one; a clear refusal otherwise."""
        found = await self.records.open_statuspages(incident_id)
        if incident_id and not found:
            raise CommandError(f"{incident_id} has no open status page incident; open one with `/cf statuspage open`.")
        if not found:
            raise CommandError("No status page incident is open; open one with `/cf statuspage open TITLE`.")
        if len(found) > 1:
            titles = ", ".join(f"“{r.title}”" for r in found[:5])
            raise CommandError(f"Several status page incidents are open ({titles}): run this in the incident's "
                               "channel.")
        return found[0]

    async def statuspage_opened(self, *, sp_id: str, incident_id: str | None, title: str, status: str, impact: str,
                                components: list[str], shortlink: str | None, by: str) -> None:
        now = self.clock()
        await self.records.add_statuspage(StatuspageRecord(
            id=sp_id, incident_id=incident_id, title=title, status=status, impact=impact, opened_by=by,
            opened_at=now, updated_at=now, components=components, shortlink=shortlink))
        await self.audit.record("statuspage_opened", by, "statuspage open", incident_id=incident_id,
                                detail={"title": title, "status": status, "impact": impact, "id": sp_id})

    async def statuspage_changed(self, record: StatuspageRecord, status: str, by: str, text: str) -> None:
        await self.records.set_statuspage_status(record.id, status, self.clock())
        await self.audit.record(f"statuspage_{'resolved' if status == RESOLVED else 'updated'}", by,
                                "statuspage", incident_id=record.incident_id,
                                detail={"status": status, "text": text, "id": record.id})

    # --- reminders (scheduled) -----------------------------------------------------------------

    async def remind_due(self) -> int:
        """Remind each open incident that has had no update for its severity's interval, once per interval."""
        now, sent = self.clock(), 0
        for incident in await self.records.open_incidents():
            minutes = self.settings.incidents.reminder_minutes.get(incident.severity)
            if not incident.channel or not minutes:
                continue
            if now - max(incident.last_update_at, incident.last_reminder_at or 0) < minutes * 60:
                continue
            if not await self.records.mark_reminded(incident.id, incident.last_reminder_at, now):
                continue
            silent = (now - incident.last_update_at) / 60
            await self._post_quietly(incident.channel, views.reminder(incident, round(silent)))
            sent += 1
        return sent

    # --- helpers -------------------------------------------------------------------------------

    async def _save(self, incident_id: str, **fields: Any) -> Incident:
        updated = await self.records.update_incident(incident_id, **fields)
        if updated is None:
            raise CommandError(f"{incident_id} disappeared from the store.")
        return updated

    async def _quietly(self, call: Awaitable[Any], what: str) -> list[Failed]:
        """A Slack step whose failure is one line (`Topic: failed (ratelimited)`), not the end of the flow."""
        try:
            await call
        except DeliveryError as exc:
            log.warning("incident step failed", extra={"step": what, "error": exc.code})
            return [Failed(what, exc.code, "failed")]
        return []

    async def _post_step(self, channel: str, text: str, blocks: list[dict[str, Any]], what: str) -> str | Failed:
        try:
            return await self.messenger.post(channel, text, blocks)
        except DeliveryError as exc:
            log.error("incident message not posted", extra={"channel": channel, "error": exc.code})
            return Failed(what, exc.code, "not posted")

    async def _post_quietly(self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None) -> str | None:
        try:
            return await self.messenger.post(channel, text, blocks)
        except DeliveryError as exc:
            log.error("incident message not posted", extra={"channel": channel, "error": exc.code})
            return None

    async def _note(self, channel: str, text: str) -> None:
        await self._post_quietly(channel, text)
