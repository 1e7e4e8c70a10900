"""Wiring for incidents, alerts, the Home tab and the scheduled checks (called by `build_runtime`).

Kept apart from `bot.runtime` so the platform's wiring stays short: `build_operations` makes the
services before the dispatcher exists (commands reach the incident service as "incidents", and the
dispatcher's `incident_lookup` is its `lookup`), `schedule_jobs` adds the jobs once the dispatcher
can make a `Context` for the health checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.audit import AuditTrail
from bot.config import Settings
from bot.dispatch import Dispatcher
from bot.messenger import Messenger
from bot.policy import Policy
from bot.runtime import Runtime
from bot.scheduler import Scheduler
from bot.store import Store
from commands.base import Registry, Role, Services
from incidents.alert_actions import AlertControls
from incidents.alert_graph import AlertGraphs
from incidents.alerts import AlertService
from incidents.home import HomeTab
from incidents.jobs import HealthJob, RpoJob
from incidents.service import IncidentService
from incidents.store import IncidentStore


@dataclass
class Operations:
    incidents: IncidentService
    alerts: AlertService
    home: HomeTab
    controls: AlertControls  # the alert message's Ack / Silence / Unsilence
    jobs: dict[str, Any] = field(default_factory=dict)


def operations(runtime: Runtime) -> Operations | None:
    """The incidents domain's services on a runtime that was assembled with it (app.assemble)."""
    return runtime.ops if isinstance(runtime.ops, Operations) else None


def build_operations(*, settings: Settings, store: Store, messenger: Messenger, audit: AuditTrail,
                     policy: Policy, registry: Registry, services: Services,
                     clock: Callable[[], float] = time.time) -> Operations:
    incidents = IncidentService(settings=settings, store=store, messenger=messenger, audit=audit, registry=registry,
                                policy=policy, services=services, clock=clock)
    alerts = AlertService(settings=settings, records=incidents.records, messenger=messenger, audit=audit,
                          incidents=incidents, registry=registry, policy=policy, services=services, clock=clock)
    alerts.graphs = AlertGraphs(services, messenger, clock)
    controls = AlertControls(records=incidents.records, messenger=messenger, audit=audit, policy=policy,
                             services=services, redraw=alerts.redraw, clock=clock)
    home = HomeTab(settings, store, incidents.records, messenger, clock)
    return Operations(incidents=incidents, alerts=alerts, home=home, controls=controls)


def schedule_jobs(ops: Operations, *, scheduler: Scheduler, dispatcher: Dispatcher, settings: Settings,
                  services: Services, clock: Callable[[], float] = time.time) -> None:
    """Reminders, the health SLA check and the RPO check, each once per tick across replicas."""
    records: IncidentStore = ops.incidents.records

    def context() -> Any:
        return dispatcher.make_context("cf", settings.incident_channel, frozenset({Role.viewer}))

    health = HealthJob(settings, records, dispatcher.messenger, context, clock=clock)
    rpo = RpoJob(settings, records, dispatcher.messenger, services, clock=clock)
    ops.jobs.update({"health.check": health, "rpo.check": rpo})
    scheduler.every("incidents.reminders", settings.incidents.reminder_check_seconds, ops.incidents.remind_due)
    scheduler.every("health.check", settings.alerts.health_check_seconds, health.run)
    scheduler.every("rpo.check", settings.alerts.rpo_check_seconds, rpo.run)
