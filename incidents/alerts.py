"""`POST /alerts/alertmanager`: Alertmanager's webhook (version 4) -> one Slack message per alert group.

    Authorization: Bearer <token>   (the token is in the env var named by config `alerts.token_env`)

Alertmanager sends a notification group (`groupKey`: the route's `group_by` labels) whole: its alerts,
firing and resolved. The group has one message, updated in place (`cf_alert_groups`); an *episode*
of a group runs from its first firing alert until all of its alerts are resolved, and a group that
fires again after that gets a new message. Each firing alert occurrence (its fingerprint plus its
start time: Alertmanager re-sends a firing alert every `repeat_interval` with the same pair) is
claimed in the store before it is shown, so a repeat, a retry or a second replica never shows it
twice; the replica that claims a new episode posts its message, the others wait for that message and
redraw it. Before the first post the episode's context is gathered (incidents.alert_context: each
part within its own budget), and afterwards its graph is drawn into the thread (incidents.alert_graph).

The message carries the runbook procedure of its rules as buttons (incidents.alert_rules) and the
group's own buttons, Ack and Silence (incidents.alert_actions). A resolution redraws it and says so
in its thread. With `alerts.declare_incident_on_critical`, a critical alert declares an incident
(one per Alertmanager group while it is open) and the group is posted in the incident's channel.

A payload that is not JSON (or nests absurdly deep) or not version 4 is answered 400; a wrong token
401 — each with one log line; a Slack or store failure 503, after releasing what this notification
claimed, so that Alertmanager's retry can show it. The token is registered with `bot.logs` for masking.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot import jsonbody, logs
from bot.audit import AuditTrail
from bot.config import Settings
from bot.messenger import DeliveryError, Messenger
from bot.policy import Policy
from bot.render import Rendered
from bot.store import StoreUnavailable
from commands.base import Context, Registry, Role, Services
from incidents import alert_context, alert_views
from incidents.alert_graph import AlertGraphs
from incidents.alert_rules import AlertRule, rule_for
from incidents.service import IncidentService
from incidents.store import AlertGroup, AlertRecord, Incident, IncidentStore
from incidents.views import command_buttons

log = logging.getLogger(__name__)


class AmAlert(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(None, alias="endsAt")
    generator_url: str = Field("", alias="generatorURL")
    fingerprint: str = Field("", max_length=200)

    @property
    def name(self) -> str:
        return self.labels.get("alertname") or "unnamed-alert"

    def key(self) -> str:
        """The occurrence: Alertmanager keeps fingerprint and startsAt while an alert keeps firing."""
        fingerprint = self.fingerprint or _fingerprint(self.labels)
        return f"{fingerprint}@{self.starts_at.isoformat()}"

    def stored(self, hook: AmWebhook, rule: AlertRule) -> dict[str, Any]:
        return {"alertname": self.name, "labels": self.labels, "annotations": self.annotations,
                "startsAt": self.starts_at.isoformat(), "generatorURL": self.generator_url,
                "fingerprint": self.fingerprint or _fingerprint(self.labels), "rule": rule.key,
                "receiver": hook.receiver, "groupKey": hook.group_key}


class AmWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: Literal["4"]
    group_key: str = Field(alias="groupKey")
    status: Literal["firing", "resolved"]
    receiver: str = ""
    alerts: list[AmAlert]
    external_url: str = Field("", alias="externalURL")


def _fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager always sends one; this is for hand-made payloads (a stable hash of the labels)."""
    return hashlib.sha256(repr(sorted(labels.items())).encode()).hexdigest()[:16]


class AlertService:
    """Alertmanager's notifications -> one Slack message per group, kept up to date (module docstring)."""

    def __init__(self, *, settings: Settings, records: IncidentStore, messenger: Messenger, audit: AuditTrail,
                 incidents: IncidentService, registry: Registry, policy: Policy, services: Services | None = None,
                 gather: alert_context.Gatherer = alert_context.gather,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.records = records
        self.messenger = messenger
        self.audit = audit
        self.incidents = incidents
        self.registry = registry
        self.policy = policy
        self.services = services if services is not None else Services()
        self.gather = gather
        self.clock = clock
        self.graphs: AlertGraphs | None = None  # the graph of a new group's expression, in its thread
        self.spawn: Callable[[Awaitable[Any]], Awaitable[Any]] | None = None  # runs work after the answer
        self._later: set[asyncio.Future[Any]] = set()

    async def receive(self, hook: AmWebhook) -> dict[str, int]:
        counts = {"posted": 0, "updated": 0, "duplicate": 0}
        now = self.clock()
        episode = await self._episode(hook)
        claimed: list[str] = []
        resolved: list[AlertRecord] = []
        groups: dict[str, None] = {}
        for alert in sorted(hook.alerts, key=lambda a: a.status != "firing"):  # firing first: the episode stays open
            record = await self.records.resolve_alert(alert.key(), now) if alert.status == "resolved" else None
            if record is not None:
                resolved.append(record)
                counts["updated"] += 1
                if record.group_id:
                    groups[record.group_id] = None
            elif await self._claim(alert, hook, episode, now):
                claimed.append(alert.key())
                counts["posted"] += 1
                groups[episode.id] = None
            else:
                counts["duplicate"] += 1
        try:
            for group_id in groups:
                await self._show(group_id, episode if group_id == episode.id else None, hook, claimed, resolved)
        except BaseException:
            for key in claimed:
                await self.records.release_alert(key)
            for record in resolved:
                await self.records.unresolve_alert(record.key)
            raise
        return counts

    # --- which episode, which alerts ------------------------------------------------------------

    async def _episode(self, hook: AmWebhook) -> AlertGroup:
        """The group's open episode, or the next one (not yet in the store) when it has none open."""
        current = await self.records.current_group(hook.group_key)
        if current is not None:
            members = await self.records.group_alerts(current.id)
            if current.message_ts is None or any(m.status == "firing" for m in members):
                return current
        number = current.episode + 1 if current else 1
        digest = hashlib.sha256(hook.group_key.encode()).hexdigest()[:16]
        return AlertGroup(id=f"{digest}-{number}", group_key=hook.group_key, episode=number,
                          channel=self.settings.incident_channel, created_at=self.clock())

    async def _claim(self, alert: AmAlert, hook: AmWebhook, episode: AlertGroup, now: float) -> bool:
        """A firing occurrence, or a resolution never seen firing (a restart, a lost notification), claimed once."""
        stored = alert.stored(hook, self._rule(alert))
        firing = alert.status == "firing"
        if not firing and await self.records.get_alert(alert.key()) is not None:
            return False  # already resolved
        record = AlertRecord(key=alert.key(), fingerprint=stored["fingerprint"], alertname=alert.name,
                             status=alert.status, received_at=now, alert=stored, channel=episode.channel,
                             resolved_at=None if firing else now, group_id=episode.id)
        return await self.records.claim_alert(record)

    def _rule(self, alert: AmAlert) -> AlertRule:
        return rule_for(alert.name, self.settings.alerts.aliases)

    # --- the message ------------------------------------------------------------------------------

    async def _show(self, group_id: str, episode: AlertGroup | None, hook: AmWebhook, claimed: list[str],
                    resolved: list[AlertRecord]) -> None:
        group = await self.records.get_group(group_id)
        if group is None and episode is not None:
            opened = await self._open(episode, hook)
            if opened is not None:
                await self._announce(opened, claimed, resolved)
                return
        group = await self._posted(group_id)
        if group is None:
            raise DeliveryError("group_message_missing", "alert group")  # its opener failed: Alertmanager retries
        await self.redraw(group)
        await self._announce(group, claimed, resolved)

    async def _open(self, episode: AlertGroup, hook: AmWebhook) -> AlertGroup | None:
        """Claim the episode and post its message with its context; None when another replica claimed it."""
        members = await self.records.group_alerts(episode.id)
        lead = next((m for m in members if m.status == "firing"), members[0] if members else None)
        if lead is None:
            return None
        incident = await self._incident_for(lead, hook) if lead.status == "firing" else None
        episode.incident_id = incident.id if incident else None
        episode.channel = incident.channel if incident and incident.channel else self.settings.incident_channel
        if not await self.records.claim_group(episode):
            return None
        try:
            parts = await self._context(lead) if lead.status == "firing" else []
            episode.context = [p.as_dict() for p in parts]
            await self.records.update_group(episode.id, context=episode.context)
            view = await self._view(episode, await self.records.group_alerts(episode.id))
            ts = await self.messenger.post(episode.channel, view.text, view.blocks)
        except BaseException:
            await self.records.release_group(episode.id)
            raise
        episode.message_ts = ts
        await self.records.update_group(episode.id, message_ts=ts)
        await self.records.attach_alerts(episode.id, episode.channel, ts, episode.incident_id)
        await self.redraw(episode, only_if_changed=view)  # alerts that joined while it was being posted
        if self.graphs is not None and lead.status == "firing":
            self._after(self.graphs.attach(episode.channel, ts, lead.alert))
        return episode

    def _after(self, work: Awaitable[Any]) -> None:
        """Work that must not delay the message (or the webhook's answer): on `spawn` when there is one."""
        task = asyncio.ensure_future(self.spawn(work) if self.spawn is not None else work)
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def _context(self, lead: AlertRecord) -> list[alert_context.ContextPart]:
        ctx = Context(user="alertmanager", channel=self.settings.incident_channel, namespace=self.settings.namespace,
                      settings=self.settings, services=self.services, roles=frozenset({Role.viewer}))
        rule = rule_for(lead.alertname, self.settings.alerts.aliases)
        try:
            return await asyncio.wait_for(self.gather(ctx, rule, dict(lead.alert.get("labels") or {})),
                                          alert_context.BUDGET + 0.5)
        except TimeoutError:  # each part has its own budget; this is the net under all of them
            log.warning("alert context not gathered within its budget", extra={"alert": lead.alertname})
            return [alert_context.ContextPart("Context", failed="Timeout")]

    async def _posted(self, group_id: str) -> AlertGroup | None:
        """The group once its opener (another request, another replica) has posted its message."""
        deadline = time.monotonic() + POST_WAIT
        while True:
            group = await self.records.get_group(group_id)
            if group is None or group.message_ts or time.monotonic() > deadline:
                return group if group is not None and group.message_ts else None
            await asyncio.sleep(0.2)

    async def redraw(self, group: AlertGroup, only_if_changed: Rendered | None = None) -> None:
        """Update the group's message from the store (any replica can: everything it shows is stored)."""
        if not group.message_ts:
            return
        view = await self._view(group, await self.records.group_alerts(group.id))
        if only_if_changed is not None and view == only_if_changed:
            return
        await self.messenger.update(group.channel, group.message_ts, view.text, view.blocks)

    async def _view(self, group: AlertGroup, members: list[AlertRecord]) -> Rendered:
        rules = [rule_for(m.alertname, self.settings.alerts.aliases) for m in members]
        resolved = [m.resolved_at if m.status == "resolved" else None for m in members]
        steps = [(label, line) for i in alert_views.leads(resolved, rules)
                 for label, line in alert_views.steps(rules[i], members[i].alert.get("labels") or {}) if line]
        people = await self.audit.names(p for p in (group.acked_by, group.silenced_by) if p)
        state = alert_views.GroupState(
            group_id=group.id, incident_id=group.incident_id,
            acked_by=people.get(group.acked_by or "", group.acked_by), acked_at=group.acked_at,
            silenced_by=people.get(group.silenced_by or "", group.silenced_by), silenced_until=group.silenced_until,
            context=[alert_context.ContextPart.from_dict(p) for p in group.context], context_at=group.created_at)
        return alert_views.group_message([m.alert for m in members], resolved, rules, state,
                                         command_buttons(self.registry, self.policy, steps), self.clock())

    async def _announce(self, group: AlertGroup, claimed: list[str], resolved: list[AlertRecord]) -> None:
        """Audit what this notification changed in the group, and say each resolution in the thread."""
        members = await self.records.group_alerts(group.id)
        if group.message_ts:
            await self.records.attach_alerts(group.id, group.channel, group.message_ts, group.incident_id)
        still = sum(1 for m in members if m.status == "firing")
        for member in members:
            if member.key in claimed and member.status == "firing":
                await self.audit.record("alert_firing", "alertmanager", member.alertname, channel=group.channel,
                                        incident_id=group.incident_id, detail=_detail(member, group))
        for record in resolved:
            if record.group_id != group.id:
                continue
            await self.audit.record("alert_resolved", "alertmanager", record.alertname, channel=group.channel,
                                    incident_id=group.incident_id, detail=_detail(record, group))
            if group.message_ts:
                try:
                    await self.messenger.post(group.channel, alert_views.resolved_note(
                        record.alert, record.resolved_at or self.clock(), still), thread_ts=group.message_ts)
                except DeliveryError as exc:
                    log.warning("resolved note not posted", extra={"error": exc.code})

    async def _incident_for(self, lead: AlertRecord, hook: AmWebhook) -> Incident | None:
        """The group's open incident, or a new one, when config declares incidents for critical alerts."""
        cfg = self.settings.alerts
        labels, notes = lead.alert.get("labels") or {}, lead.alert.get("annotations") or {}
        if not cfg.declare_incident_on_critical or labels.get("severity") != "critical":
            return None
        source = f"alertmanager:{hook.group_key}"[:500]
        existing = await self.records.open_incident_from(source)
        if existing is not None:
            return existing
        rule = rule_for(lead.alertname, cfg.aliases)
        title = notes.get("summary") or (rule.title if rule.key != "generic" else lead.alertname)
        try:
            return await self.incidents.declare(title=title, severity=cfg.critical_incident_severity, kind=rule.kind,
                                                user="alertmanager", source=source)
        except Exception as exc:  # the alert itself must still be posted
            log.error("incident for a critical alert not declared", extra={"alert": lead.alertname, "error": str(exc)})
            return await self.records.open_incident_from(source)


POST_WAIT = 10.0  # seconds a replica waits for another to post a group's message before it gives up (503)


def _detail(record: AlertRecord, group: AlertGroup) -> dict[str, Any]:
    labels, notes = record.alert.get("labels") or {}, record.alert.get("annotations") or {}
    return {"alertname": record.alertname, "severity": labels.get("severity"), "summary": notes.get("summary"),
            "rule": record.alert.get("rule"), "group": group.id, "fingerprint": record.fingerprint}


# --- the HTTP endpoint ---------------------------------------------------------------------------

Track = Callable[[Awaitable[Any]], Awaitable[Any]]


def webhook_handler(service: AlertService, track: Track, token_env: str,
                    env: dict[str, str] | None = None) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler. The token is read once, at start-up; without one every request gets 401."""
    token = (os.environ if env is None else env).get(token_env, "").strip()
    logs.register_secrets(token)
    if not token:
        log.warning("alerts endpoint disabled: %s is not set, so every request is refused", token_env)

    async def handle(request: web.Request) -> web.Response:
        if not token or not _authorized(request.headers.get("Authorization", ""), token):
            log.warning("alert webhook refused: unauthorized", extra={"remote": request.remote})
            return web.json_response({"ok": False, "error": "unauthorized"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})
        hook, problem = await _parse(request, service.settings.alerts.max_alerts_per_request)
        if hook is None:
            log.warning("alert webhook refused: %s", problem, extra={"remote": request.remote})
            return web.json_response({"ok": False, "error": problem}, status=400)
        try:
            counts = await track(service.receive(hook))
        except (DeliveryError, StoreUnavailable) as exc:
            log.error("alerts not delivered; Alertmanager will retry", extra={"error": str(exc)})
            return web.json_response({"ok": False, "error": "temporarily unable to deliver"}, status=503)
        return web.json_response({"ok": True, **counts})

    return handle


def _authorized(header: str, token: str) -> bool:
    """Constant time: SHA-256 digests of the given and the real token (one length whatever was sent)
    compared with `hmac.compare_digest`, so neither the token's content nor its length leaks."""
    scheme, _, given = header.partition(" ")
    same = hmac.compare_digest(hashlib.sha256(given.strip().encode()).digest(),
                               hashlib.sha256(token.encode()).digest())
    return same and scheme.lower() == "bearer"


async def _parse(request: web.Request, max_alerts: int) -> tuple[AmWebhook | None, str]:
    """(payload, "") or (None, a one-line reason): bad JSON, wrong version, missing fields, too many alerts."""
    try:
        raw = jsonbody.loads(await request.read())  # at most limits.max_body_bytes (bot.slack_app.body_limit: 413)
    except jsonbody.BodyError as exc:
        return None, str(exc)
    if not isinstance(raw, dict):
        return None, "the body is not a JSON object"
    if raw.get("version") != "4":
        return None, f"unsupported webhook version {str(raw.get('version'))[:10]!r}; expected '4'"
    alerts = raw.get("alerts")
    if isinstance(alerts, list) and len(alerts) > max_alerts:  # before validating each one
        return None, f"too many alerts in one request ({len(alerts)} > {max_alerts})"
    try:
        hook = AmWebhook.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return None, f"invalid payload at {where}: {first['msg']}"[:300]
    return hook, ""
