"""`POST /alerts/alertmanager`: Alertmanager's webhook (version 4) -> one Slack message per alert.

    Authorization: Bearer <token>   (the token is in the env var named by config `alerts.token_env`)

Each firing alert occurrence (its fingerprint plus its start time: Alertmanager re-sends a firing
alert every `repeat_interval` with the same pair) is claimed in the store before it is posted, so a
repeat, a retry or a second replica never posts it twice. The message carries the runbook procedure
for the alert's name as buttons (incidents.alert_rules). A resolved notification redraws that message as
resolved. With `alerts.declare_incident_on_critical`, a critical alert declares an incident (one per
Alertmanager group while it is open) and is posted in the incident's channel.

A payload that is not JSON (or nests absurdly deep) or not version 4 is answered 400; a wrong token
401 — each with one log line; a Slack or store failure 503, after releasing the claim, so that
Alertmanager's retry can post the alert. The token is registered with `bot.logs` for masking.
"""

from __future__ import annotations

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
from bot.store import StoreUnavailable
from commands.base import Registry
from incidents import alert_views
from incidents.alert_rules import AlertRule, rule_for
from incidents.service import IncidentService
from incidents.store import AlertRecord, Incident, IncidentStore
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
    def __init__(self, *, settings: Settings, records: IncidentStore, messenger: Messenger, audit: AuditTrail,
                 incidents: IncidentService, registry: Registry, policy: Policy,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.records = records
        self.messenger = messenger
        self.audit = audit
        self.incidents = incidents
        self.registry = registry
        self.policy = policy
        self.clock = clock

    async def receive(self, hook: AmWebhook) -> dict[str, int]:
        counts = {"posted": 0, "updated": 0, "duplicate": 0}
        for alert in hook.alerts:
            handler = self._firing if alert.status == "firing" else self._resolved
            counts[await handler(alert, hook)] += 1
        return counts

    def _rule(self, alert: AmAlert) -> AlertRule:
        return rule_for(alert.name, self.settings.alerts.aliases)

    def _buttons(self, rule: AlertRule, labels: dict[str, str]) -> list[Any]:
        steps = [(label, line) for label, line in alert_views.steps(rule, labels) if line]
        return command_buttons(self.registry, self.policy, steps)

    async def _firing(self, alert: AmAlert, hook: AmWebhook) -> str:
        rule = self._rule(alert)
        stored = alert.stored(hook, rule)
        record = AlertRecord(key=alert.key(), fingerprint=stored["fingerprint"], alertname=alert.name,
                             status="firing", received_at=self.clock(), alert=stored,
                             channel=self.settings.incident_channel)
        if not await self.records.claim_alert(record):
            return "duplicate"
        try:
            incident = await self._incident_for(alert, hook, rule)
            channel = incident.channel if incident and incident.channel else self.settings.incident_channel
            view = alert_views.alert_message(stored, rule, self._buttons(rule, alert.labels),
                                             incident_id=incident.id if incident else None)
            ts = await self.messenger.post(channel, view.text, view.blocks)
        except BaseException:
            await self.records.release_alert(record.key)
            raise
        incident_id = incident.id if incident else None
        await self.records.update_alert(record.key, message_ts=ts, channel=channel, incident_id=incident_id)
        await self.audit.record("alert_firing", "alertmanager", alert.name, channel=channel, incident_id=incident_id,
                                detail={"alertname": alert.name, "severity": alert.labels.get("severity"),
                                        "summary": alert.annotations.get("summary"), "rule": rule.key})
        raced = await self.records.get_alert(record.key)  # a "resolved" that arrived while we were posting
        if raced is not None and raced.status == "resolved" and raced.resolved_at is not None:
            await self._redraw(raced, raced.resolved_at)
        return "posted"

    async def _incident_for(self, alert: AmAlert, hook: AmWebhook, rule: AlertRule) -> Incident | None:
        """The group's open incident, or a new one, when config declares incidents for critical alerts."""
        cfg = self.settings.alerts
        if not cfg.declare_incident_on_critical or alert.labels.get("severity") != "critical":
            return None
        source = f"alertmanager:{hook.group_key}"[:500]
        existing = await self.records.open_incident_from(source)
        if existing is not None:
            return existing
        title = alert.annotations.get("summary") or (rule.title if rule.key != "generic" else alert.name)
        try:
            return await self.incidents.declare(title=title, severity=cfg.critical_incident_severity, kind=rule.kind,
                                                user="alertmanager", source=source)
        except Exception as exc:  # the alert itself must still be posted
            log.error("incident for a critical alert not declared", extra={"alert": alert.name, "error": str(exc)})
            return await self.records.open_incident_from(source)

    async def _resolved(self, alert: AmAlert, hook: AmWebhook) -> str:
        now = self.clock()
        record = await self.records.resolve_alert(alert.key(), now)
        if record is None:
            if await self.records.get_alert(alert.key()) is not None:
                return "duplicate"
            return await self._resolved_unseen(alert, hook, now)
        await self._redraw(record, now)
        await self.audit.record("alert_resolved", "alertmanager", alert.name, channel=record.channel,
                                incident_id=record.incident_id, detail={"alertname": alert.name})
        return "updated"

    async def _redraw(self, record: AlertRecord, resolved_at: float) -> None:
        if not record.message_ts or not record.channel:
            return
        rule = rule_for(record.alertname, self.settings.alerts.aliases)
        view = alert_views.alert_message(record.alert, rule, [], resolved_at=resolved_at,
                                         incident_id=record.incident_id)
        await self.messenger.update(record.channel, record.message_ts, view.text, view.blocks)
        try:
            await self.messenger.post(record.channel, alert_views.resolved_note(record.alert, resolved_at),
                                      thread_ts=record.message_ts)
        except DeliveryError as exc:
            log.warning("resolved note not posted", extra={"error": exc.code})

    async def _resolved_unseen(self, alert: AmAlert, hook: AmWebhook, now: float) -> str:
        """Resolved before we ever saw it fire (a restart, a lost notification): say so once."""
        rule = self._rule(alert)
        stored = alert.stored(hook, rule)
        record = AlertRecord(key=alert.key(), fingerprint=stored["fingerprint"], alertname=alert.name,
                             status="resolved", received_at=now, alert=stored, channel=self.settings.incident_channel,
                             resolved_at=now)
        if not await self.records.claim_alert(record):
            return "duplicate"
        try:
            view = alert_views.alert_message(stored, rule, [], resolved_at=now)
            ts = await self.messenger.post(self.settings.incident_channel, view.text, view.blocks)
        except BaseException:
            await self.records.release_alert(record.key)
            raise
        await self.records.update_alert(record.key, message_ts=ts, status="resolved", resolved_at=now)
        return "posted"


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
