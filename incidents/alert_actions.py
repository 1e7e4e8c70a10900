"""The alert group's own buttons: Ack, Silence 1h / Silence 4h, Unsilence.

- **Ack** (anyone with the viewer role): records who and when on the group (the first click wins, a
  compare-and-set), which also stops the reminders of the incident the group declared
  (`IncidentStore.mark_reminded`), and the message shows `acked by @name`.
- **Silence** (operator role): a real Alertmanager silence through its v2 API, its matchers the labels
  every alert of the group shares (exact values), `createdBy` the clicker's Slack name and a comment
  linking the Slack message; the message shows `silenced by @name until T` and an Unsilence button.
  Silencing is exempt from approval (it hides notifications; it changes nothing in the platform and
  Unsilence undoes it at once).
- **Unsilence** (operator role): expires that silence (`DELETE /api/v2/silence/ID`).

Each is audited (`alert_acked`, `alert_silenced`, `alert_unsilenced`, with the group, the silence id,
matchers and end) and said in the message's thread. Nothing is recorded half-done: Alertmanager is
called first, and a silence the store then fails to record (or another click already recorded) is
expired again before the clicker is told. A refusal or failure is answered privately in one line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from base.text import code
from bot.audit import AuditTrail
from bot.messenger import Messenger, Origin
from bot.policy import Policy
from commands.base import Role, Services
from incidents.alert_views import ACK, SILENCE, UNSILENCE
from incidents.store import AlertGroup, IncidentStore
from incidents.views import when
from integrations.errors import IntegrationError, NotFound
from integrations.protocols import AlertmanagerClient

log = logging.getLogger(__name__)

Redraw = Callable[[AlertGroup], Awaitable[None]]
NOT_CONFIGURED = ("Alertmanager is not configured, so I cannot silence from Slack: set `alertmanager.url` in the "
                  "config (e.g. http://alertmanager:9093) and restart the bot.")


class AlertControls:
    def __init__(self, *, records: IncidentStore, messenger: Messenger, audit: AuditTrail, policy: Policy,
                 services: Services, redraw: Redraw, clock: Callable[[], float] = time.time) -> None:
        self.records = records
        self.messenger = messenger
        self.audit = audit
        self.policy = policy
        self.services = services
        self.redraw = redraw
        self.clock = clock

    async def handle(self, action_id: str, group_id: str, origin: Origin, team_domain: str | None = None) -> None:
        """One click on a group's button (the action id says which; its value is the group's id)."""
        group = await self.records.get_group(group_id)
        if group is None or not group.message_ts:
            await self.messenger.respond(origin, "That alert group is no longer known to me.")
            return
        if action_id == ACK:
            await self.ack(group, origin)
        elif action_id.startswith(f"{SILENCE}:"):
            await self.silence(group, float(action_id.split(":", 1)[1]), origin, team_domain)
        elif action_id == UNSILENCE:
            await self.unsilence(group, origin)

    async def _may(self, origin: Origin, role: Role, what: str) -> bool:
        roles = await self.policy.roles_of(origin.user)
        if Role.admin in roles or role in roles:
            return True
        await self.messenger.respond(origin, f"{what} needs the *{role.value}* role, which you do not have.")
        return False

    async def ack(self, group: AlertGroup, origin: Origin) -> None:
        if not await self._may(origin, Role.viewer, "Acknowledging an alert"):
            return
        acked = await self.records.ack_group(group.id, origin.user, self.clock())
        if acked is None:
            again = await self.records.get_group(group.id)
            by = again.acked_by if again else None
            await self.messenger.respond(origin, f"Already acknowledged{f' by <@{by}>' if by else ''}.")
            return
        stops = f" Reminders for {acked.incident_id} stop." if acked.incident_id else ""
        await self.audit.record("alert_acked", origin.user, "alert ack", channel=acked.channel,
                                thread_ts=acked.message_ts, incident_id=acked.incident_id,
                                text=f":eyes: Acknowledged by <@{origin.user}>.{stops}",
                                detail={"group": acked.id, "group_key": acked.group_key})
        await self.redraw(acked)

    async def silence(self, group: AlertGroup, hours: float, origin: Origin, team_domain: str | None) -> None:
        if not await self._may(origin, Role.operator, "Silencing an alert"):
            return
        manager = self.services.get("alertmanager")
        if manager is None:
            await self.messenger.respond(origin, NOT_CONFIGURED)
            return
        now = self.clock()
        if group.silence_id and (group.silenced_until or 0) > now:
            await self.messenger.respond(origin, f"Already silenced by <@{group.silenced_by}> until "
                                                 f"{when(group.silenced_until or now)}.")
            return
        labels = await self._common_labels(group)
        if not labels:
            await self.messenger.respond(origin, "The alerts of this group share no label to silence them by; "
                                                 "nothing was silenced.")
            return
        name = (await self.audit.names([origin.user])).get(origin.user, origin.user)
        until = now + hours * 3600
        comment = f"Silenced from Slack by @{name} for {hours:g}h: {_permalink(group, team_domain)}"
        try:
            silence_id = await manager.create_silence(labels, _moment(now), _moment(until), name, comment)
        except IntegrationError as exc:
            await self.messenger.respond(origin, f":warning: Could not silence: {exc.system}: {exc.message} "
                                                 "Nothing was silenced.")
            return
        await self._record_silence(manager, group, silence_id, origin, until, labels, hours)

    async def _record_silence(self, manager: AlertmanagerClient, group: AlertGroup, silence_id: str, origin: Origin,
                              until: float, labels: dict[str, str], hours: float) -> None:
        """Store the silence and audit it; on any failure (or a click that won first) expire it again."""
        stored: AlertGroup | None = None
        try:
            previous = group.silence_id if (group.silenced_until or 0) <= self.clock() else None
            stored = await self.records.set_silence(group.id, silence_id, origin.user, until, previous)
            if stored is None:
                await self._expire_quietly(manager, silence_id)
                await self.messenger.respond(origin, "Someone silenced this group a moment ago; "
                                                     "I removed the duplicate silence.")
                return
            matchers = " ".join(code(f"{k}={v}", 80) for k, v in sorted(labels.items()))
            await self.audit.record(
                "alert_silenced", origin.user, "alert silence", channel=stored.channel, thread_ts=stored.message_ts,
                incident_id=stored.incident_id,
                text=f":no_bell: Silenced for {hours:g}h by <@{origin.user}> until {when(until)} "
                     f"(Alertmanager silence {code(silence_id)}; matchers {matchers}).",
                detail={"group": group.id, "silence_id": silence_id, "matchers": labels, "until": until,
                        "hours": hours, "alertmanager": manager.where})
        except BaseException:
            if stored is not None:
                await self.records.clear_silence(group.id, silence_id)
            await self._expire_quietly(manager, silence_id)
            raise
        await self.redraw(stored)

    async def unsilence(self, group: AlertGroup, origin: Origin) -> None:
        if not await self._may(origin, Role.operator, "Unsilencing an alert"):
            return
        manager = self.services.get("alertmanager")
        if manager is None:
            await self.messenger.respond(origin, NOT_CONFIGURED)
            return
        if not group.silence_id:
            await self.messenger.respond(origin, "This group is not silenced.")
            return
        try:
            await manager.expire_silence(group.silence_id)
        except NotFound:
            log.info("silence already gone from Alertmanager", extra={"silence": group.silence_id})
        except IntegrationError as exc:
            await self.messenger.respond(origin, f":warning: Could not unsilence: {exc.system}: {exc.message} "
                                                 "The silence is unchanged.")
            return
        cleared = await self.records.clear_silence(group.id, group.silence_id)
        if cleared is None:
            await self.messenger.respond(origin, "The silence had already been removed.")
            return
        await self.audit.record("alert_unsilenced", origin.user, "alert unsilence", channel=cleared.channel,
                                thread_ts=cleared.message_ts, incident_id=cleared.incident_id,
                                text=f":bell: Unsilenced by <@{origin.user}> (silence {code(group.silence_id)} "
                                     "expired).",
                                detail={"group": group.id, "silence_id": group.silence_id})
        await self.redraw(cleared)

    async def _common_labels(self, group: AlertGroup) -> dict[str, str]:
        """The labels every alert of the group has with the same value: they identify the group's alerts."""
        members = await self.records.group_alerts(group.id)
        label_sets = [set((m.alert.get("labels") or {}).items()) for m in members]
        return dict(set.intersection(*label_sets)) if label_sets else {}

    async def _expire_quietly(self, manager: AlertmanagerClient, silence_id: str) -> None:
        try:
            await manager.expire_silence(silence_id)
        except IntegrationError as exc:
            log.error("a silence that was not recorded could not be expired; expire it by hand",
                      extra={"silence": silence_id, "error": str(exc)})


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _permalink(group: AlertGroup, team_domain: str | None) -> str:
    """The Slack message's address (the workspace's own domain when the click said it)."""
    host = f"https://{team_domain}.slack.com" if team_domain and team_domain.replace("-", "").isalnum() \
        else "https://slack.com"
    return f"{host}/archives/{group.channel}/p{(group.message_ts or '').replace('.', '')}"

