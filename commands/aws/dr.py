"""Disaster-recovery readiness (the runbook's "Disaster Recovery"): `dr check`.

Before a cluster rebuild, and as a drill, the prerequisites of a recovery are checked, each with a
verdict (ok / warn / fail) and its reason, the overall verdict first:

- Restorable window: automated backups are on and RDS's latest restorable time is within the RPO
  (`alerts.rpo_minutes`, the runbook's 15 minutes); the window's start and end are shown.
- Newest snapshot: the newest available snapshot of the instance. RDS takes one a day, so one older
  than a day (or none) is a warning: point-in-time recovery is then the only way back. When automated
  backups are off the snapshot is the newest recovery point, and is held against the RPO itself.
- Documents bucket: reachable (one LIST); the documents live outside the cluster and must outlive it.
- Node group: ACTIVE with nodes, so restored workloads have somewhere to run.
- Configuration backup: the latest `/cf backup config` the bot kept for the namespace; ok within a day
  (the runbook exports one a day), older is a warning, none is a failure (`/cf restore config` would
  have nothing to restore).

Each check runs on its own under a timeout: one that fails, hangs or whose integration is missing is
one line saying so, and the others still answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from base.text import code, literal
from commands.base import Context, NotConfigured, command
from commands.checks import Check, Status
from commands.reply import Level, Note, Reply, Text
from commands.support.awsfmt import ago, stamp, utc
from commands.support.backups import ARTEFACT
from integrations.errors import IntegrationError

AREA = "AWS"
TIMEOUT = 10.0  # seconds per check
DAY = timedelta(days=1)
_RANK: dict[Status, int] = {"ok": 0, "skip": 1, "warn": 1, "fail": 2}
_LEVEL: dict[Status, Level] = {"ok": "ok", "skip": "warn", "warn": "warn", "fail": "error"}
_VERDICT = {"ok": "ready", "skip": "ready with warnings", "warn": "ready with warnings", "fail": "NOT ready"}


@command(
    "dr check",
    summary="Disaster-recovery prerequisites with a verdict each: RPO, snapshots, bucket, node group, config backup.",
    area=AREA,
    example="/cf dr check",
    needs=["aws", "artefacts"],
)
async def dr_check(ctx: Context) -> Reply:
    checks = await asyncio.gather(*(_run(ctx, name, fn) for name, fn in CHECKS))
    worst = max((c.status for c in checks), key=lambda s: _RANK[s])
    failing = [c.name for c in checks if c.status != "ok"]
    why = f": {', '.join(failing)}" if failing else ": every prerequisite verified"
    return Reply(title=f"Disaster recovery: {_VERDICT[worst]}{why}", level=_LEVEL[worst],
                 parts=[Text("\n".join(c.line() for c in checks)),
                        Note(f"RPO {_rpo(ctx):g} min, RTO 4 h (the runbook). For the recovery itself, "
                             "`/cf incident declare sev1 TITLE --type disaster-recovery` pins its checklist.")])


async def _run(ctx: Context, name: str, fn: Callable[[Context], Awaitable[Check]]) -> Check:
    try:
        return await asyncio.wait_for(fn(ctx), TIMEOUT)
    except NotConfigured as exc:
        return Check(name, "warn", f"not checked: {exc}")
    except TimeoutError:
        return Check(name, "fail", f"not verified: no answer within {TIMEOUT:g}s")
    except IntegrationError as exc:
        return Check(name, "fail", f"not verified: {literal(exc.message, 300, one_line=True)}")


def _rpo(ctx: Context) -> float:
    return float(ctx.settings.alerts.rpo_minutes)


# --- the checks --------------------------------------------------------------------------------------


async def _window(ctx: Context) -> Check:
    name = "Restorable window"
    db = await ctx.aws.db_instance(ctx.settings.aws.rds_instance)
    rpo = _rpo(ctx)
    days = int(db.get("BackupRetentionPeriod") or 0)
    latest = utc(db.get("LatestRestorableTime"))
    instance = code(ctx.settings.aws.rds_instance)
    if not days or latest is None:
        return Check(name, "fail", f"{instance} has automated backups off: no point-in-time recovery, so the "
                                   f"RPO of {rpo:g} min rests on snapshots alone")
    now = datetime.now(UTC)
    created = utc(db.get("InstanceCreateTime"))
    earliest = max(latest - timedelta(days=days), created) if created else latest - timedelta(days=days)
    behind = (now - latest).total_seconds() / 60
    window = f"{instance}: {stamp(earliest)} to {stamp(latest)} ({days}-day retention)"
    if behind > rpo:
        return Check(name, "fail", f"{window}; the latest restorable point is {behind:.0f} min old, "
                                   f"past the RPO of {rpo:g} min")
    return Check(name, "ok", f"{window}; the latest restorable point is {max(behind, 0):.0f} min old "
                             f"(RPO {rpo:g} min)")


async def _snapshot(ctx: Context) -> Check:
    name = "Newest snapshot"
    instance = ctx.settings.aws.rds_instance
    db, snaps = await asyncio.gather(ctx.aws.db_instance(instance), ctx.aws.db_snapshots(instance=instance))
    usable = [s for s in snaps if s.get("Status") == "available" and utc(s.get("SnapshotCreateTime"))]
    pitr = bool(db.get("BackupRetentionPeriod")) and db.get("LatestRestorableTime") is not None
    if not usable:
        if pitr:
            return Check(name, "warn", f"{code(instance)} has no available snapshot: point-in-time recovery is "
                                       "the only way back (`/cf db snapshot` takes one)")
        return Check(name, "fail", f"{code(instance)} has no available snapshot and no point-in-time recovery: "
                                   "nothing to restore it from")
    newest = max(usable, key=lambda s: utc(s["SnapshotCreateTime"]) or datetime.min.replace(tzinfo=UTC))
    taken = utc(newest["SnapshotCreateTime"])
    assert taken is not None
    age = datetime.now(UTC) - taken
    what = f"{code(newest.get('DBSnapshotIdentifier', '?'))} ({newest.get('SnapshotType', 'manual')}), " \
           f"taken {stamp(taken)}, {ago(taken)}"
    if not pitr and age.total_seconds() / 60 > _rpo(ctx):
        return Check(name, "fail", f"{what}: the newest recovery point, past the RPO of {_rpo(ctx):g} min")
    if age > DAY:
        return Check(name, "warn", f"{what}: older than a day")
    return Check(name, "ok", what)


async def _bucket(ctx: Context) -> Check:
    bucket = ctx.settings.aws.bucket
    data = await ctx.aws.list_objects(bucket, 1)
    empty = not data.get("KeyCount") and not data.get("Contents")
    return Check("Documents bucket", "ok", f"{code(bucket)} answers a LIST" + (" (it is empty)" if empty else ""))


async def _nodegroup(ctx: Context) -> Check:
    name = "Node group"
    group = await ctx.aws.nodegroup(ctx.settings.aws.eks_cluster, ctx.settings.aws.nodegroup)
    scaling = group.get("scalingConfig") or {}
    status = str(group.get("status", "?"))
    what = (f"{code(ctx.settings.aws.nodegroup)} of {code(ctx.settings.aws.eks_cluster)} {literal(status)}, "
            f"min {scaling.get('minSize')} / desired {scaling.get('desiredSize')} / max {scaling.get('maxSize')}")
    if status != "ACTIVE":
        return Check(name, "warn" if status in ("UPDATING", "CREATING") else "fail", what)
    if not scaling.get("desiredSize"):
        return Check(name, "fail", f"{what}: no nodes to run restored workloads on")
    return Check(name, "ok", what)


async def _config_backup(ctx: Context) -> Check:
    name = "Configuration backup"
    kept = await ctx.artefacts.latest(ARTEFACT, ctx.namespace)
    if kept is None:
        return Check(name, "fail", f"the bot has no backup of namespace `{ctx.namespace}`: `/cf backup config`")
    age = time.time() - kept.created_at
    made = datetime.fromtimestamp(kept.created_at, UTC)
    what = f"{code(kept.name)}, {ago(made)} ({kept.size:,} bytes, sha256 {kept.sha256[:12]}…)"
    if age > DAY.total_seconds():
        return Check(name, "warn", f"{what}: older than a day; `/cf backup config` makes a new one")
    return Check(name, "ok", what)


CHECKS: tuple[tuple[str, Callable[[Context], Awaitable[Check]]], ...] = (
    ("Restorable window", _window),
    ("Newest snapshot", _snapshot),
    ("Documents bucket", _bucket),
    ("Node group", _nodegroup),
    ("Configuration backup", _config_backup),
)
