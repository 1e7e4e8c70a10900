"""The bot with incidents: the platform (`bot`) assembled with this domain, as `cfbot run`, the demo and
the tests use it.

The platform knows nothing of incidents. This module hands it what the domain adds: the incident
tables (migrations), the services commands reach as "incidents", the channel -> incident lookup the
dispatcher audits under, the scheduled jobs, the form `incident declare` opens when typed alone, and
the Slack listeners and HTTP routes (the modal, command-line buttons, the Home tab, the Alertmanager
webhook).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot.artefacts import Artefacts
from bot.audit import AuditTrail
from bot.config import Settings
from bot.dispatch import Dispatcher, IncidentLookup
from bot.messenger import Messenger, Origin
from bot.metrics import Metrics
from bot.policy import GroupResolver, Policy
from bot.runtime import Runtime, new_instance_id
from bot.scheduler import Scheduler
from bot.slack_app import SlackBolt, build_bolt_app, build_web_app
from bot.store import MIGRATIONS, Store
from commands.base import Services
from commands.catalog import REGISTRY
from commands.clients import IncidentsClient
from incidents import schema
from incidents import slack as incident_slack
from incidents.jobs import RETENTION_EVERY, AuditRetentionJob
from incidents.wiring import build_operations, schedule_jobs

__all__ = ["build_runtime", "build_slack_app", "build_web_application"]


async def build_runtime(
    settings: Settings,
    *,
    database_url: str,
    messenger: Messenger,
    services: Services,
    resolve_group: GroupResolver | None = None,
    incident_lookup: IncidentLookup | None = None,
    clock: Callable[[], float] = time.time,
) -> Runtime:
    store = await Store.open(database_url, [*MIGRATIONS, *schema.MIGRATIONS])
    metrics = Metrics()
    audit = AuditTrail(store, messenger, clock)
    services = services.copy()
    services["audit"] = audit
    services["artefacts"] = Artefacts(store, clock)
    policy = Policy(settings, resolve_group)
    ops = build_operations(settings=settings, store=store, messenger=messenger, audit=audit, policy=policy,
                           registry=REGISTRY, services=services, clock=clock)
    # The service's methods take its own records where the Protocol says IncidentView: commands hand back
    # only records it gave them (commands/clients.py says so), which the structural check cannot see.
    services["incidents"] = cast(IncidentsClient, ops.incidents)
    dispatcher = Dispatcher(
        settings=settings,
        registry=REGISTRY,
        policy=policy,
        messenger=messenger,
        audit=audit,
        services=services,
        incident_lookup=incident_lookup or ops.incidents.lookup,
        clock=clock,
        on_command=metrics.command,
    )
    runtime_id = new_instance_id()
    scheduler = Scheduler(store, runtime_id, clock)
    scheduler.on_run = metrics.job
    approvals = dispatcher.approvals
    sweep = settings.approvals.sweep_seconds
    scheduler.every("approvals.expire", sweep, approvals.expire_due)
    scheduler.every("approvals.interrupted", sweep, approvals.recover_interrupted)
    schedule_jobs(ops, scheduler=scheduler, dispatcher=dispatcher, settings=settings, services=services, clock=clock)
    if settings.audit.retention_days is not None:  # unset: the audit keeps everything
        retention = AuditRetentionJob(settings, store, ops.incidents.records, clock)
        scheduler.every("audit.retention", RETENTION_EVERY, retention.run)
    runtime = Runtime(
        settings=settings,
        store=store,
        messenger=messenger,
        audit=audit,
        policy=policy,
        dispatcher=dispatcher,
        approvals=approvals,
        scheduler=scheduler,
        services=services,
        instance_id=runtime_id,
        metrics=metrics,
        ops=ops,
    )

    async def declare_form(origin: Origin) -> bool:
        return await incident_slack.open_declare_modal(runtime, origin)

    runtime.forms[incident_slack.DECLARE] = declare_form
    ops.alerts.spawn = runtime.track  # an alert's graph is drawn after its message, as tracked work
    return runtime


def build_slack_app(runtime: Runtime, client: AsyncWebClient, signing_secret: str) -> SlackBolt:
    """The Bolt app with the platform's and the incidents' listeners (Socket Mode serves this)."""
    return build_bolt_app(runtime, client, signing_secret, extra_listeners=[incident_slack.register])


def build_web_application(runtime: Runtime, client: AsyncWebClient, signing_secret: str,
                          bolt: SlackBolt | None = None) -> web.Application:
    """Slack's endpoint (HTTP mode) with health checks, metrics and the Alertmanager webhook."""
    bolt = bolt or build_slack_app(runtime, client, signing_secret)
    return build_web_app(bolt, runtime, extra_routes=[incident_slack.add_routes])
