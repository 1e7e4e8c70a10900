"""Scheduled checks that speak only when something changes: the health SLA and the RPO.

Both run through `bot.scheduler` (once per tick across replicas) and keep their last verdict in the
store (`cf_state`), not in memory, so whichever replica runs the next tick knows what was already
said: a breach is posted once when it starts and once when it ends, never on every tick.

- Health: the registered status checks (`commands.checks.run_checks`, the same ones `/cf status`
  runs). The SLA is breached when a check fails, or when the p95 of a check's latency over its last
  `alerts.health_samples` runs is over `probes.sla_seconds` (2 s).
- RPO: the newest point the database can be restored to — the later of RDS's latest restorable time
  and its newest snapshot, through the "aws" service — must be at most `alerts.rpo_minutes` (15) old.

`AuditRetentionJob` (hourly, when `audit.retention_days` is set) is the one job here that says nothing in
Slack: it deletes aged audit entries the way the hash chain allows (see its docstring).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from base.durations import duration_text
from bot.config import Settings
from bot.messenger import DeliveryError, Messenger
from bot.store import Store
from commands.base import Context, Services
from commands.checks import Check, run_checks
from incidents.store import IncidentStore
from integrations.errors import IntegrationError

log = logging.getLogger(__name__)

HEALTH, RPO = "health", "rpo"
CheckRunner = Callable[[Context], Awaitable[list[Check]]]


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile (with few samples it is the slowest one)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


class _Job:
    def __init__(self, settings: Settings, records: IncidentStore, messenger: Messenger,
                 clock: Callable[[], float]) -> None:
        self.settings = settings
        self.records = records
        self.messenger = messenger
        self.clock = clock

    async def _say(self, text: str) -> None:
        try:
            await self.messenger.post(self.settings.incident_channel, text)
        except DeliveryError as exc:
            log.error("scheduled check could not post", extra={"error": exc.code})


class HealthJob(_Job):
    def __init__(self, settings: Settings, records: IncidentStore, messenger: Messenger,
                 make_context: Callable[[], Context], checks: CheckRunner = run_checks,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings, records, messenger, clock)
        self.make_context = make_context
        self.checks = checks

    async def run(self) -> dict[str, Any]:
        checks = await self.checks(self.make_context())
        now = self.clock()
        before = await self.records.get_state(HEALTH) or {"breached": False, "samples": {}}
        samples = self._samples(before.get("samples", {}), checks)
        reasons = self._reasons(checks, samples)
        breached = bool(reasons)
        since = before.get("since") if breached == bool(before.get("breached")) else now
        state = {"at": now, "breached": breached, "since": since if since is not None else now,
                 "reasons": reasons, "samples": samples,
                 "checks": [{"name": c.name, "status": c.status, "detail": c.detail, "latency_ms": c.latency_ms}
                            for c in checks]}
        await self.records.put_state(HEALTH, state, now)
        if breached and not before.get("breached"):
            await self._say(":red_circle: *SLA breached* — " + f"{len(reasons)} problem(s):\n"
                            + "\n".join(f"• {r}" for r in reasons)
                            + "\n_I will post again when it recovers. `/cf status` shows everything._")
        elif not breached and before.get("breached"):
            lasted = duration_text(now - float(before.get("since") or now))
            await self._say(f":large_green_circle: *SLA recovered* after {lasted}: every check passes and p95 "
                            f"latency is within {self.settings.probes.sla_seconds:g} s.")
        return state

    def _samples(self, old: dict[str, list[float]], checks: Sequence[Check]) -> dict[str, list[float]]:
        keep = self.settings.alerts.health_samples
        samples: dict[str, list[float]] = {}
        for check in checks:
            if check.status == "skip":
                continue
            history = list(old.get(check.name, []))
            if check.latency_ms is not None:
                history.append(round(check.latency_ms, 1))
            samples[check.name] = history[-keep:]
        return samples

    def _reasons(self, checks: Sequence[Check], samples: dict[str, list[float]]) -> list[str]:
        sla_ms = self.settings.probes.sla_seconds * 1000
        reasons = [f"{c.name}: {c.detail}" for c in checks if c.status == "fail"]
        failed = {c.name for c in checks if c.status == "fail"}
        for name, values in samples.items():
            if values and name not in failed and p95(values) > sla_ms:
                reasons.append(f"{name}: p95 {p95(values) / 1000:.2f} s over the "
                               f"{self.settings.probes.sla_seconds:g} s SLA ({len(values)} samples)")
        return reasons


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            return _moment(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


class RpoJob(_Job):
    def __init__(self, settings: Settings, records: IncidentStore, messenger: Messenger,
                 services: Services, clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings, records, messenger, clock)
        self.services = services
        self._skipped_logged = False

    async def run(self) -> dict[str, Any] | None:
        aws = self.services.get("aws")
        if aws is None:
            if not self._skipped_logged:
                log.info("RPO check skipped: the aws service is not configured (aws.enabled, credentials)")
                self._skipped_logged = True
            return None
        now = self.clock()
        verdict, text = await self._verdict(aws, now)
        before = await self.records.get_state(RPO) or {"verdict": "ok"}
        since = before.get("since", now) if before.get("verdict") == verdict else now
        state = {"at": now, "verdict": verdict, "detail": text, "since": since}
        await self.records.put_state(RPO, state, now)
        if verdict != before.get("verdict"):
            await self._say(text)
        return state

    async def _verdict(self, aws: Any, now: float) -> tuple[str, str]:
        db = self.settings.aws.rds_instance
        limit = self.settings.alerts.rpo_minutes
        try:
            instance = await aws.db_instance(db)
            snapshots = await aws.db_snapshots(instance=db)
        except IntegrationError as exc:
            return "error", f":warning: *RPO check failed* for `{db}`: {exc.message}"
        restorable = _moment(instance.get("LatestRestorableTime"))
        snapshot_times = [t for t in (_moment(s.get("SnapshotCreateTime")) for s in snapshots) if t]
        newest = max([t for t in (restorable, *snapshot_times) if t is not None], default=None)
        if newest is None:
            return "breach", (f":warning: *RPO at risk*: `{db}` has no restorable time and no snapshot "
                              f"(RPO {limit:g} min). Check its automated backups: `/cf db status`.")
        age = (now - newest.timestamp()) / 60
        seen = f"latest restorable {restorable:%H:%M} UTC" if restorable else "no point-in-time recovery"
        if age > limit:
            return "breach", (f":warning: *RPO at risk*: the newest recovery point of `{db}` is {age:.0f} min old "
                              f"(RPO {limit:g} min; {seen}). `/cf db status`, `/cf db snapshot`.")
        return "ok", (f":large_green_circle: *RPO back within {limit:g} min* for `{db}` "
                      f"(newest point {age:.0f} min old).")


RETENTION_EVERY = 3600.0  # seconds between audit retention runs (each run deletes at most what aged out since)


class AuditRetentionJob:
    """Deletes audit entries older than `audit.retention_days`, never one of an open incident.

    The audit is a hash chain, so retention cuts only its oldest contiguous part: everything before the
    oldest entry that must stay (newer than the cut-off, or filed under an incident still open) and records
    the cut in the chain first (`Store.prune_audit`), so `cfbot audit verify` tells it from tampering. An
    open incident that began long ago therefore holds back the entries after its first one until it is
    resolved. Nothing runs when the setting is unset (keep everything, the default).
    """

    def __init__(self, settings: Settings, store: Store, records: IncidentStore,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.records = records
        self.clock = clock

    async def run(self) -> int:
        days = self.settings.audit.retention_days
        if days is None:
            return 0
        now = self.clock()
        keep = [i.id for i in await self.records.open_incidents()]
        deleted = await self.store.prune_audit(before=now - days * 86400, keep_incidents=keep, now=now,
                                               detail={"retention_days": days})
        if deleted:
            log.info("audit retention deleted old entries", extra={"deleted": deleted, "retention_days": days,
                                                                   "kept_incidents": len(keep)})
        return deleted
