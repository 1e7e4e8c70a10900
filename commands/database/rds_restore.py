"""Backup and recovery on RDS (the runbook's "Backup and Recovery"): manual snapshots,
point-in-time and snapshot restores, and read replicas. All are changes, so all need approval.

A restore never touches the original: it creates a new instance (default `<instance>-restored`),
which is what the runbook does too; switching the applications over stays a human decision.
A point-in-time restore is checked against the restorable window first: from the start of the
backup retention period (or the instance's creation, if later) to RDS's latest restorable time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from base.text import plural
from commands.args import opt, point_in_time, rds_identifier
from commands.base import CommandError, Context, Kind, Role, command
from commands.reply import Change, Outcome
from commands.support.awsfmt import stamp, utc
from commands.support.verify_aws import instance_available, snapshot_available
from integrations.errors import NotFound

AREA = "Database"
MAX_REPLICAS = 15  # RDS for PostgreSQL's limit per source instance


async def _require_free(ctx: Context, name: str) -> None:
    try:
        await ctx.aws.db_instance(name)
    except NotFound:
        return
    raise CommandError(f"An RDS instance named `{name}` already exists; choose another name. Nothing was changed.")


async def _source(ctx: Context) -> dict[str, Any]:
    name = ctx.settings.aws.rds_instance
    db = await ctx.aws.db_instance(name)
    if db.get("DBInstanceStatus") != "available":
        raise CommandError(f"RDS instance `{name}` is {db.get('DBInstanceStatus')}; try again when it is available.")
    return db


@command("db snapshot", summary="Take a manual RDS snapshot (aws rds create-db-snapshot), after approval.", area=AREA,
         args=[opt("--name", rds_identifier, "snapshot name (default: manual-backup-YYYYMMDD-HHMMSS)")],
         kind=Kind.change, role=Role.operator, example="/cf db snapshot", needs=["aws"])
async def db_snapshot(ctx: Context, name: str | None = None) -> Change:
    db = await _source(ctx)
    instance = db["DBInstanceIdentifier"]
    if name and await _snapshot_exists(ctx, name):
        raise CommandError(f"A snapshot named `{name}` already exists; choose another --name. Nothing was changed.")

    async def apply() -> Outcome:
        snap_name = name or datetime.now(UTC).strftime("manual-backup-%Y%m%d-%H%M%S")
        snap = await ctx.aws.create_db_snapshot(instance, snap_name)
        return Outcome(before=f"{instance} available", after=f"snapshot {snap_name} {snap.get('Status')}",
                       verify=snapshot_available(snap_name))

    return Change(summary=f"Take a manual snapshot of {instance}", current=f"{instance} available",
                  desired=f"snapshot {name or 'manual-backup-<UTC time when it runs>'}", apply=apply,
                  target=f"rds/{instance}",
                  no_undo="deleting a backup is a decision of its own, not an undo (cf deletes no snapshots; "
                          "`aws rds delete-db-snapshot` does)")


async def _snapshot_exists(ctx: Context, name: str) -> bool:
    try:
        return bool(await ctx.aws.db_snapshots(snapshot=name))
    except NotFound:
        return False


def _window(db: dict[str, Any]) -> tuple[datetime, datetime]:
    """RDS can restore to any second from the start of the retention period to LatestRestorableTime."""
    latest = utc(db.get("LatestRestorableTime")) or datetime.now(UTC)
    earliest = latest - timedelta(days=int(db.get("BackupRetentionPeriod") or 0))
    created = utc(db.get("InstanceCreateTime"))
    return (max(earliest, created) if created else earliest), latest


@command(
    "db restore",
    summary="Restore the database to a point in time or from a snapshot, as a new instance, after approval.",
    area=AREA,
    args=[opt("--to", point_in_time, 'the time to restore to ("15 minutes ago" or ISO-8601)', metavar="TIME"),
          opt("--snapshot", rds_identifier, "the snapshot to restore from", metavar="ID"),
          opt("--target", rds_identifier, "the new instance's name (default: <instance>-restored)", metavar="NAME")],
    kind=Kind.change, role=Role.operator, example='/cf db restore --to "15 minutes ago"', needs=["aws"],
)
async def db_restore(ctx: Context, to: str | None = None, snapshot: str | None = None,
                     target: str | None = None) -> Change:
    if (to is None) == (snapshot is None):
        raise CommandError('Say what to restore: either `--to TIME` (e.g. `--to "15 minutes ago"`) or '
                           "`--snapshot ID` (see `/cf db snapshots`), not both.")
    source = ctx.settings.aws.rds_instance
    new = target or f"{source}-restored"
    await _require_free(ctx, new)
    warnings = [f"This creates a new instance `{new}`; `{source}` is not touched. Point the applications at it "
                "only after checking its data."]
    if snapshot is not None:
        return await _from_snapshot(ctx, snapshot, new, warnings)
    assert to is not None
    db = await ctx.aws.db_instance(source)
    if not db.get("BackupRetentionPeriod"):
        raise CommandError(f"`{source}` has automated backups turned off, so it has no point-in-time window.")
    when = datetime.fromisoformat(to.replace("Z", "+00:00"))
    earliest, latest = _window(db)
    if not earliest <= when <= latest:
        raise CommandError(f"{stamp(when)} is outside `{source}`'s restorable window, {stamp(earliest)} to "
                           f"{stamp(latest)}. Nothing was changed.")

    async def apply() -> Outcome:
        made = await ctx.aws.restore_db_to_time(source, new, when)
        return Outcome(before=f"{source} as of {to}", after=f"{new} {made.get('DBInstanceStatus')} (restoring)",
                       verify=instance_available(new, "restore"))

    # The window's ends move by themselves (RDS advances the latest restorable time every few minutes), so
    # the approval is bound to what stays: the moment asked for lies inside it (checked again above).
    return Change(summary=f"Restore {source} as of {to} into new instance {new}",
                  current=f"restorable from {stamp(earliest)} to {stamp(latest)}",
                  basis=f"{stamp(when)} inside {source}'s restorable window",
                  desired=f"new instance {new} with the data as of {stamp(when)}", apply=apply,
                  target=f"rds/{new}", warnings=warnings, no_undo=_restore_no_undo(source, new))


def _restore_no_undo(source: str, new: str) -> str:
    return (f"the restore made a new instance and left {source} untouched; deleting {new} is a decision of its own "
            "(cf deletes no databases)")


async def _from_snapshot(ctx: Context, snapshot: str, new: str, warnings: list[str]) -> Change:
    try:
        found = await ctx.aws.db_snapshots(snapshot=snapshot)
    except NotFound:
        found = []
    if not found:
        raise CommandError(f"Snapshot `{snapshot}` was not found; `/cf db snapshots` lists them.")
    snap = found[0]
    if snap.get("Status") != "available":
        raise CommandError(f"Snapshot `{snapshot}` is {snap.get('Status')}; it can be restored once available.")

    async def apply() -> Outcome:
        made = await ctx.aws.restore_db_from_snapshot(snapshot, new)
        return Outcome(before=f"snapshot {snapshot}", after=f"{new} {made.get('DBInstanceStatus')} (restoring)",
                       verify=instance_available(new, "restore"))

    return Change(summary=f"Restore snapshot {snapshot} into new instance {new}",
                  current=f"snapshot {snapshot} taken {stamp(snap.get('SnapshotCreateTime'))}",
                  desired=f"new instance {new} from that snapshot", apply=apply, target=f"rds/{new}",
                  warnings=warnings, no_undo=_restore_no_undo(f"snapshot {snapshot}", new))


def _next_replica(source: str, replicas: list[str]) -> str:
    numbers = [int(m.group(1)) for r in replicas if (m := re.fullmatch(rf"{re.escape(source)}-replica-(\d+)", r))]
    return f"{source}-replica-{max(numbers, default=0) + 1}"


@command("db replica add", summary="Add a read replica of the RDS instance (aws rds create-db-instance-read-replica).",
         area=AREA, args=[opt("--name", rds_identifier, "the replica's name (default: <instance>-replica-N)")],
         kind=Kind.change, role=Role.operator, example="/cf db replica add", needs=["aws"])
async def db_replica_add(ctx: Context, name: str | None = None) -> Change:
    db = await _source(ctx)
    source = db["DBInstanceIdentifier"]
    replicas = list(db.get("ReadReplicaDBInstanceIdentifiers") or [])
    if not db.get("BackupRetentionPeriod"):
        raise CommandError(f"`{source}` has automated backups turned off; RDS needs them on to create read replicas.")
    if len(replicas) >= MAX_REPLICAS:
        raise CommandError(f"`{source}` already has {len(replicas)} read replicas, the most RDS allows.")
    new = name or _next_replica(source, replicas)
    await _require_free(ctx, new)

    async def apply() -> Outcome:
        made = await ctx.aws.create_read_replica(source, new)
        return Outcome(before=plural(len(replicas), "read replica"),
                       after=f"{plural(len(replicas) + 1, 'read replica')}: {new} {made.get('DBInstanceStatus')}",
                       verify=instance_available(new, "replica", replica_of=source))

    return Change(summary=f"Add read replica {new} of {source}",
                  current=f"{plural(len(replicas), 'read replica')}: {', '.join(replicas) or 'none'}",
                  desired=f"new replica {new} ({db.get('DBInstanceClass')})", apply=apply, target=f"rds/{new}",
                  no_undo=f"cf has no command to delete an RDS instance; once nothing reads from {new}, "
                          f"`aws rds delete-db-instance --db-instance-identifier {new}` removes it")
