"""The database as AWS sees it (the runbook's "Database Outage"): RDS status, events, snapshots,
reboot and failover.

The PostgreSQL-level commands (`db check`, `db slow`, ...) live in commands/database/postgres.py; these are
the AWS control-plane side. Restores, manual snapshots and replicas are in commands/database/rds_restore.py.
Failover follows AWS, not the runbook's letter: a cluster fails over with failover-db-cluster, a
Multi-AZ instance with reboot --force-failover, and a single-AZ instance has nothing to fail over to.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from base.durations import duration_text
from base.text import code, plural
from commands.args import duration, opt, pos, rds_identifier
from commands.base import CommandError, Context, Kind, Role, command
from commands.checks import Check, Status, status_check
from commands.parts import Failed, degraded, failed_parts, optional
from commands.reply import Change, Fields, Note, Outcome, Reply, Table
from commands.support.awsfmt import ago, stamp
from commands.support.verify_aws import instance_available, primary_moved, writer_moved
from integrations.errors import NotFound

AREA = "Database"
# Why a failover has no Undo button: going back is a failover too, with its own outage of writes.
FAIL_BACK = ("failing back is another failover, with its own drop of connections; request it on its own "
             "(`/cf db failover`) if the old primary is wanted back")
BUSY = {"backing-up", "modifying", "rebooting", "maintenance", "upgrading", "configuring-enhanced-monitoring",
        "configuring-log-exports", "renaming", "resetting-master-credentials", "storage-optimization"}


def _where(db: dict[str, Any]) -> str:
    if db.get("MultiAZ"):
        return f"primary in {db.get('AvailabilityZone')}, standby in {db.get('SecondaryAvailabilityZone') or '?'}"
    return f"single-AZ in {db.get('AvailabilityZone')}"


def _storage(db: dict[str, Any]) -> str:
    text = f"{db.get('AllocatedStorage')} GiB {db.get('StorageType', '')}".strip()
    return text + (f" (autoscaling to {db['MaxAllocatedStorage']} GiB)" if db.get("MaxAllocatedStorage") else "")


def _writer(cluster: dict[str, Any]) -> str:
    return next((m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", []) if m.get("IsClusterWriter")),
                "none")


async def _cluster_part(ctx: Context) -> list[Any]:
    name = ctx.settings.aws.rds_cluster
    if not name:
        return []
    try:
        cluster = await ctx.aws.db_cluster(name)
    except NotFound:
        return [Note(f"RDS cluster `{name}` (aws.rds_cluster) was not found.")]
    rows = [[m["DBInstanceIdentifier"], "writer" if m.get("IsClusterWriter") else "reader"]
            for m in cluster.get("DBClusterMembers", [])]
    return [Fields([("Cluster", name), ("Cluster status", str(cluster.get("Status"))),
                    ("Cluster engine", f"{cluster.get('Engine')} {cluster.get('EngineVersion', '')}".strip()),
                    ("Writer", _writer(cluster))]),
            Table(["CLUSTER MEMBER", "ROLE"], rows, empty="The cluster has no instances.")]


@command("db status", summary="RDS instance status, class, Multi-AZ, storage, restorable time, pending maintenance.",
         area=AREA, example="/cf db status", needs=["aws"])
async def db_status(ctx: Context) -> Reply:
    """The instance is the primary call; its pending maintenance and its cluster are auxiliary parts."""
    name = ctx.settings.aws.rds_instance
    db = await ctx.aws.db_instance(name)
    pending, cluster = await asyncio.gather(
        optional("Pending maintenance", ctx.aws.pending_maintenance(db["DBInstanceArn"])),
        optional("Cluster", _cluster_part(ctx)))
    endpoint = db.get("Endpoint") or {}
    fields = [
        ("Status", str(db.get("DBInstanceStatus"))), ("Class", str(db.get("DBInstanceClass"))),
        ("Engine", f"{db.get('Engine')} {db.get('EngineVersion', '')}".strip()),
        ("Multi-AZ", ("yes, " if db.get("MultiAZ") else "no, ") + _where(db)), ("Storage", _storage(db)),
        ("Endpoint", f"{endpoint.get('Address', '—')}:{endpoint.get('Port', '')}"),
        ("Backups", f"{db.get('BackupRetentionPeriod', 0)} days retained"),
        ("Latest restorable", f"{stamp(db.get('LatestRestorableTime'))} ({ago(db.get('LatestRestorableTime'))})"),
        ("Read replicas", ", ".join(db.get("ReadReplicaDBInstanceIdentifiers") or []) or "none"),
    ]
    parts: list[Any] = [Fields(fields)]
    if not isinstance(pending, Failed):
        rows = [[p.get("Action", "?"), p.get("Description", ""),
                 stamp(p.get("AutoAppliedAfterDate") or p.get("CurrentApplyDate"))] for p in pending]
        parts.append(Table(["PENDING MAINTENANCE", "DESCRIPTION", "AUTO-APPLIED AFTER"], rows,
                           empty="No pending maintenance."))
    if not isinstance(cluster, Failed):
        parts += cluster
    parts += failed_parts(pending, cluster)
    status = db.get("DBInstanceStatus")
    return Reply(title=f"RDS {name}: {status}", parts=parts,
                 level=degraded("ok" if status == "available" else ("warn" if status in BUSY else "error"),
                                pending, cluster))


@command("db events", summary="Recent RDS events for the instance and cluster (aws rds describe-events).", area=AREA,
         args=[opt("--since", duration, "how far back (default 1h, at most 14d)", default=3600, metavar="DURATION")],
         example="/cf db events --since 6h", needs=["aws"])
async def db_events(ctx: Context, since: int = 3600) -> Reply:
    """The instance's events are the primary call; the cluster's are an auxiliary part."""
    minutes = min(math.ceil(since / 60), 14 * 24 * 60)
    events = await ctx.aws.db_events(ctx.settings.aws.rds_instance, "db-instance", minutes)
    cluster: list[Any] | Failed = []
    if ctx.settings.aws.rds_cluster:
        cluster = await optional(f"Events of cluster {code(ctx.settings.aws.rds_cluster)}",
                                 ctx.aws.db_events(ctx.settings.aws.rds_cluster, "db-cluster", minutes))
    if not isinstance(cluster, Failed):
        events += cluster
    events.sort(key=lambda e: e.get("Date") or 0, reverse=True)
    rows = [[stamp(e.get("Date")), e.get("SourceIdentifier", ""), ",".join(e.get("EventCategories") or []),
             e.get("Message", "")] for e in events]
    return Reply(title=f"{plural(len(events), 'RDS event')} in the last {duration_text(minutes * 60)}",
                 parts=[Table(["TIME", "SOURCE", "CATEGORY", "MESSAGE"], rows, empty="No events."),
                        *failed_parts(cluster)], level=degraded("info", cluster))


@command("db snapshots", summary="The RDS instance's manual and automated snapshots, newest first.", area=AREA,
         example="/cf db snapshots", needs=["aws"])
async def db_snapshots(ctx: Context) -> Reply:
    name = ctx.settings.aws.rds_instance
    snaps = sorted(await ctx.aws.db_snapshots(instance=name), key=lambda s: s.get("SnapshotCreateTime") or 0,
                   reverse=True)
    rows = [[s["DBSnapshotIdentifier"], s.get("SnapshotType", "?"), s.get("Status", "?"),
             stamp(s.get("SnapshotCreateTime")), f"{s.get('AllocatedStorage', '?')} GiB"] for s in snaps[:25]]
    note = [Note(f"Showing the newest 25 of {len(snaps)}.")] if len(snaps) > 25 else []
    return Reply(title=f"{plural(len(snaps), 'snapshot')} of {name}",
                 parts=[Table(["SNAPSHOT", "TYPE", "STATUS", "CREATED", "SIZE"], rows, empty="No snapshots."), *note])


async def _available(ctx: Context, name: str) -> dict[str, Any]:
    db = await ctx.aws.db_instance(name)
    if db.get("DBInstanceStatus") != "available":
        raise CommandError(f"RDS instance `{name}` is {db.get('DBInstanceStatus')}; AWS accepts this only when it is "
                           "available. Nothing was changed.")
    return db


@command("db reboot", summary="Reboot the RDS instance without failover (aws rds reboot-db-instance), after approval.",
         area=AREA, kind=Kind.change, role=Role.operator, example="/cf db reboot", needs=["aws"])
async def db_reboot(ctx: Context) -> Change:
    name = ctx.settings.aws.rds_instance
    db = await _available(ctx, name)

    async def apply() -> Outcome:
        after = await ctx.aws.reboot_db(name)
        return Outcome(before=f"{name} available", after=f"{name} {after.get('DBInstanceStatus')}",
                       verify=instance_available(name, "reboot"))

    return Change(summary=f"Reboot RDS instance {name}", current=f"available, {_where(db)}",
                  desired="rebooted in place (no failover); connections drop for a few minutes", apply=apply,
                  target=f"rds/{name}", warnings=["Every connection to the database is dropped while it reboots."],
                  no_undo="a reboot cannot be taken back; it is over once the instance is available again")


@command(
    "db failover",
    summary="Fail over the database: an Aurora cluster to a reader, a Multi-AZ instance to its standby.",
    area=AREA,
    args=[pos("IDENTIFIER", rds_identifier, "instance or cluster (default: aws.rds_instance)", default=None)],
    kind=Kind.change, role=Role.operator, example="/cf db failover candlefish-collaboration-cluster", needs=["aws"],
)
async def db_failover(ctx: Context, identifier: str | None = None) -> Change:
    name = identifier or ctx.settings.aws.rds_instance
    try:
        return await _cluster_failover(ctx, await ctx.aws.db_cluster(name))
    except NotFound:
        pass
    db = await ctx.aws.db_instance(name)
    if db.get("DBClusterIdentifier"):
        return await _cluster_failover(ctx, await ctx.aws.db_cluster(db["DBClusterIdentifier"]))
    if not db.get("MultiAZ"):
        raise CommandError(f"`{name}` is a single-AZ instance: it has no standby to fail over to. "
                           f"{_no_standby_hint(ctx, name, db)} Nothing was changed.")
    await _available(ctx, name)

    async def apply() -> Outcome:
        was = await ctx.aws.db_instance(name)
        await ctx.aws.reboot_db(name, force_failover=True)
        return Outcome(before=_where(was), after=_where(await ctx.aws.db_instance(name)),
                       verify=primary_moved(name, str(was.get("AvailabilityZone"))))

    return Change(summary=f"Fail over Multi-AZ instance {name} to its standby (reboot --force-failover)",
                  current=_where(db),
                  desired=f"primary moves to {db.get('SecondaryAvailabilityZone') or 'the standby'}",
                  apply=apply, target=f"rds/{name}",
                  warnings=["Connections drop for the minute or two DNS takes to point at the new primary."],
                  no_undo=FAIL_BACK)


def _no_standby_hint(ctx: Context, name: str, db: dict[str, Any]) -> str:
    """What would help instead, naming only commands that act on `name` (or on an instance they name):
    `/cf db reboot` acts on aws.rds_instance alone, so it is offered only when that is `name`."""
    source = db.get("ReadReplicaSourceDBInstanceIdentifier")
    if source:
        return (f"It is a read replica of `{source}`: to fail over that primary, use `/cf db failover {source}`; "
                f"to make `{name}` a standalone writable instance, promote it (`aws rds promote-read-replica "
                f"--db-instance-identifier {name}`; cf has no command for that).")
    multi_az = (f"enable Multi-AZ (`aws rds modify-db-instance --db-instance-identifier {name} --multi-az "
                "--apply-immediately`)")
    if name == ctx.settings.aws.rds_instance:
        return f"Reboot it (`/cf db reboot`) or {multi_az} first."
    return f"To fail over later, {multi_az} first."


async def _cluster_failover(ctx: Context, cluster: dict[str, Any]) -> Change:
    name = cluster["DBClusterIdentifier"]
    members = cluster.get("DBClusterMembers", [])
    readers = [m["DBInstanceIdentifier"] for m in members if not m.get("IsClusterWriter")]
    if not readers:
        raise CommandError(f"Cluster `{name}` has no reader to fail over to (members: "
                           f"{', '.join(m['DBInstanceIdentifier'] for m in members) or 'none'}). Nothing was changed.")
    if cluster.get("Status") != "available":
        raise CommandError(f"Cluster `{name}` is {cluster.get('Status')}; it can fail over only when available.")
    writer = _writer(cluster)

    async def apply() -> Outcome:
        await ctx.aws.failover_db_cluster(name)
        now = _writer(await ctx.aws.db_cluster(name))
        after = f"writer {now}" if now != writer else f"failover started; writer is still {now} (see `/cf db status`)"
        return Outcome(before=f"writer {writer}", after=after, verify=writer_moved(name, writer))

    return Change(summary=f"Fail over RDS cluster {name} (failover-db-cluster)", current=f"writer {writer}",
                  desired=f"a reader ({', '.join(readers)}) becomes the writer", apply=apply,
                  target=f"rds-cluster/{name}",
                  warnings=["Writes fail for the seconds the cluster takes to promote the reader."], no_undo=FAIL_BACK)


@status_check("RDS", order=41, needs=["aws"], timeout=10)
async def rds_status(ctx: Context) -> list[Check]:
    db = await ctx.aws.db_instance(ctx.settings.aws.rds_instance)
    state = db.get("DBInstanceStatus")
    status: Status = "ok" if state == "available" else ("warn" if state in BUSY else "fail")
    return [Check("RDS", status, f"{db['DBInstanceIdentifier']} {state}, {db.get('DBInstanceClass')}, {_where(db)}")]
