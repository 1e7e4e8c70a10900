"""Verifiers for AWS changes: RDS instances, snapshots and failovers, the EKS node group, ElastiCache replicas.

Each reads one describe call (two for a cluster failover) and says what it sees in AWS's own words:
the status, a snapshot's PercentProgress, a node group's health issues. They only read.

AWS takes minutes for most of these (moto none), so each builder sets how long the watch lasts
(`WAIT_SECONDS`, from what AWS documents and what on-call sees in practice) instead of the configured
default: a restore that is still `creating` after five minutes is normal, not *Not verified*.
"""

from __future__ import annotations

from typing import Any

from base.text import plural
from commands.base import Context
from commands.reply import Probe, Verification
from commands.verify import verifier
from integrations.errors import NotFound

Obj = dict[str, Any]

# How long to watch, by change. RDS: a reboot is "a few minutes", a Multi-AZ failover 60-120 s plus the
# reboot around it; snapshots, restores and new replicas copy the data (tens of minutes for hundreds of
# GiB). ElastiCache adds or removes a replica node in 10-20 minutes. An EKS node group applies a new
# scaling config in seconds, so it keeps the configured default.
WAIT_SECONDS: dict[str, float] = {
    "reboot": 900, "failover": 900, "snapshot": 1800, "restore": 1800, "replica": 1800, "redis": 1800,
}
# RDS states from which an instance does not become available by itself.
RDS_STUCK = {"failed", "incompatible-restore", "incompatible-parameters", "incompatible-network", "storage-full",
             "inaccessible-encryption-credentials", "restore-error", "incompatible-option-group"}
RDS_LOOK = "/cf db events"


# --- builders (what a command's Outcome carries) -------------------------------------------------


def instance_available(instance: str, wait: str, replica_of: str | None = None,
                       look_further: str = RDS_LOOK) -> Verification:
    """Verified when the RDS instance is `available` (and, for a new replica, replicates `replica_of`)."""
    params: Obj = {"instance": instance}
    if replica_of:
        params["replica_of"] = replica_of
    return Verification("rds-instance-available", params, timeout=WAIT_SECONDS[wait], look_further=look_further)


def primary_moved(instance: str, was_zone: str) -> Verification:
    """Verified when the Multi-AZ instance is available with its primary out of `was_zone`."""
    return Verification("rds-primary-moved", {"instance": instance, "was_zone": was_zone},
                        timeout=WAIT_SECONDS["failover"], look_further="/cf db status")


def writer_moved(cluster: str, was_writer: str) -> Verification:
    """Verified when the cluster is available and another instance, itself available, is the writer."""
    return Verification("rds-writer-moved", {"cluster": cluster, "was_writer": was_writer},
                        timeout=WAIT_SECONDS["failover"], look_further="/cf db status")


def snapshot_available(snapshot: str) -> Verification:
    return Verification("rds-snapshot-available", {"snapshot": snapshot}, timeout=WAIT_SECONDS["snapshot"],
                        look_further="/cf db snapshots")


def nodegroup_config(cluster: str, nodegroup: str, min_size: int, max_size: int, desired_size: int) -> Verification:
    """Verified when the node group is ACTIVE with exactly this scaling config."""
    return Verification("nodegroup-config", {"cluster": cluster, "nodegroup": nodegroup, "min_size": min_size,
                                             "max_size": max_size, "desired_size": desired_size},
                        look_further="/cf cluster")


def replicas_available(group: str, replicas: int) -> Verification:
    """Verified when the replication group is available with this many replicas (per shard)."""
    return Verification("elasticache-replicas", {"group": group, "replicas": replicas},
                        timeout=WAIT_SECONDS["redis"],  # cf has no read of the group itself
                        look_further=f"aws elasticache describe-replication-groups --replication-group-id {group}")


def replica_count(group: Obj) -> int:
    """Replicas per shard of an ElastiCache replication group (its members less the primary)."""
    shards = group.get("NodeGroups") or []
    if shards:
        return max(len(shards[0].get("NodeGroupMembers") or []) - 1, 0)
    return max(len(group.get("MemberClusters") or []) - 1, 0)


# --- RDS ----------------------------------------------------------------------------------------


def _stuck(status: str) -> str:
    return f" — RDS does not leave `{status}` by itself" if status in RDS_STUCK else ""


@verifier("rds-instance-available", needs=["aws"])
async def rds_instance_available(ctx: Context, instance: str, replica_of: str | None = None) -> Probe:
    try:
        db = await ctx.aws.db_instance(instance)
    except NotFound:
        return Probe(False, f"{instance} is not listed by RDS yet", problem=f"RDS does not list {instance}")
    status = str(db.get("DBInstanceStatus"))
    line = f"{instance} {status}"
    source = db.get("ReadReplicaSourceDBInstanceIdentifier")
    if replica_of and source != replica_of:
        line += f", not a read replica of {replica_of} (source: {source or 'none'})"
        return Probe(False, line, problem=line)
    if status == "available":
        return Probe(True, line + (f", replicating {replica_of}" if replica_of else ""))
    return Probe(False, line, problem=line + _stuck(status))


@verifier("rds-primary-moved", needs=["aws"])
async def rds_primary_moved(ctx: Context, instance: str, was_zone: str) -> Probe:
    db = await ctx.aws.db_instance(instance)
    status, zone = str(db.get("DBInstanceStatus")), str(db.get("AvailabilityZone"))
    line = f"{instance} {status}, primary in {zone}"
    if zone == was_zone:
        line += f" (still where it was: the standby in {db.get('SecondaryAvailabilityZone') or '?'} "\
                "has not taken over)"
        return Probe(False, line, problem=line + _stuck(status))
    if status != "available":
        return Probe(False, line, problem=line + _stuck(status))
    return Probe(True, f"{line} (was {was_zone})")


def _writer(cluster: Obj) -> str:
    return next((m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", []) if m.get("IsClusterWriter")),
                "none")


@verifier("rds-writer-moved", needs=["aws"])
async def rds_writer_moved(ctx: Context, cluster: str, was_writer: str) -> Probe:
    found = await ctx.aws.db_cluster(cluster)
    status, writer = str(found.get("Status")), _writer(found)
    line = f"cluster {cluster} {status}, writer {writer}"
    if writer in (was_writer, "none"):
        line += " (the writer has not moved)" if writer == was_writer else " (no writer)"
        return Probe(False, line, problem=line)
    member = str((await ctx.aws.db_instance(writer)).get("DBInstanceStatus"))
    line += f" ({member}; was {was_writer})"
    if status != "available" or member != "available":
        return Probe(False, line, problem=line + _stuck(member))
    return Probe(True, line)


@verifier("rds-snapshot-available", needs=["aws"])
async def rds_snapshot_available(ctx: Context, snapshot: str) -> Probe:
    try:
        found = await ctx.aws.db_snapshots(snapshot=snapshot)
    except NotFound:
        found = []
    if not found:
        return Probe(False, f"snapshot {snapshot} is not listed by RDS yet", problem=f"RDS does not list {snapshot}")
    snap = found[0]
    status, progress = str(snap.get("Status")), snap.get("PercentProgress")
    line = f"snapshot {snapshot} {status}" + (f", {progress}% copied" if progress is not None else "")
    if status == "available":
        return Probe(True, f"snapshot {snapshot} available ({snap.get('AllocatedStorage', '?')} GiB)")
    return Probe(False, line, problem=line + _stuck(status))


# --- EKS ----------------------------------------------------------------------------------------


def _size(config: Obj) -> str:
    return f"min {config.get('minSize')} / desired {config.get('desiredSize')} / max {config.get('maxSize')}"


@verifier("nodegroup-config", needs=["aws"])
async def nodegroup_config_verified(ctx: Context, cluster: str, nodegroup: str, min_size: int, max_size: int,
                                    desired_size: int) -> Probe:
    ng = await ctx.aws.nodegroup(cluster, nodegroup)
    status, config = str(ng.get("status")), ng.get("scalingConfig") or {}
    wanted = {"minSize": min_size, "maxSize": max_size, "desiredSize": desired_size}
    same = all(int(config.get(k, -1)) == v for k, v in wanted.items())
    line = f"node group {nodegroup} {status}, {_size(config)}"
    if status == "ACTIVE" and same:
        return Probe(True, line)
    issues = (ng.get("health") or {}).get("issues") or []
    why = [f"{i.get('code')}: {i.get('message', '')}".strip() for i in issues[:3]]
    problems = [line] + ([] if same else [f"not {_size(wanted)}"]) + why
    return Probe(False, line, problem="; ".join(problems))


# --- ElastiCache --------------------------------------------------------------------------------


@verifier("elasticache-replicas", needs=["aws"])
async def elasticache_replicas(ctx: Context, group: str, replicas: int) -> Probe:
    found = await ctx.aws.replication_group(group)
    status, count = str(found.get("Status")), replica_count(found)
    line = f"{group} {status}, {plural(count, 'replica')}"
    if status == "available" and count == replicas:
        return Probe(True, line)
    if count != replicas:
        line += f" (wanted {replicas})"
    return Probe(False, line, problem=line)


__all__ = ["RDS_STUCK", "WAIT_SECONDS", "elasticache_replicas", "instance_available", "nodegroup_config",
           "nodegroup_config_verified", "primary_moved", "rds_instance_available", "rds_primary_moved",
           "rds_snapshot_available", "rds_writer_moved", "replica_count", "replicas_available", "snapshot_available",
           "writer_moved"]
