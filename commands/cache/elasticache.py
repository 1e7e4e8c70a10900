"""Scaling the ElastiCache replication group (the runbook's "Scale Redis cluster").

The runbook's `modify-replication-group --num-cache-clusters` does not exist; ElastiCache changes
the number of replicas with increase-replica-count / decrease-replica-count, which is what this
does. N counts replicas (the primary is extra), as those APIs do; the prompt shows both numbers.
The cache's own diagnostics (`redis info`, ...) are in commands/cache/redis.py.
"""

from __future__ import annotations

from base.text import plural
from commands.args import pos, whole_number
from commands.base import CommandError, Context, Kind, Role, command
from commands.reply import Change, Outcome, Undo
from commands.support.verify_aws import replica_count, replicas_available

MAX_REPLICAS = 5  # per shard, ElastiCache's limit


def _nodes(replicas: int) -> str:
    return f"{plural(replicas, 'replica')} ({replicas + 1} nodes with the primary)"


@command(
    "redis scale",
    summary="Set the ElastiCache replica count (increase/decrease-replica-count), after approval.",
    area="Cache", args=[pos("N", whole_number, f"replicas per shard, 0 to {MAX_REPLICAS} (the primary is extra)")],
    kind=Kind.change, role=Role.operator, example="/cf redis scale 4", needs=["aws"],
)
async def redis_scale(ctx: Context, n: int) -> Change:
    name = ctx.settings.aws.elasticache_group
    group = await ctx.aws.replication_group(name)
    floor = 1 if group.get("AutomaticFailover") in ("enabled", "enabling") else 0
    if not floor <= n <= MAX_REPLICAS:
        why = " (automatic failover needs at least one replica)" if floor and n < floor else ""
        raise CommandError(f"N must be between {floor} and {MAX_REPLICAS} replicas for `{name}`{why}; {n} is not.")
    if group.get("Status") != "available":
        raise CommandError(f"Replication group `{name}` is {group.get('Status')}; it can be resized once available.")
    current = replica_count(group)
    if current == n:
        raise CommandError(f"`{name}` already has {_nodes(n)}; nothing to do.")

    async def apply() -> Outcome:
        before = replica_count(await ctx.aws.replication_group(name))
        result = await ctx.aws.set_replica_count(name, before, n)
        after = replica_count(await ctx.aws.replication_group(name))
        return Outcome(before=_nodes(before), after=f"{_nodes(after)}, {result.get('Status', 'modifying')}",
                       verify=replicas_available(name, n),
                       undo=Undo("redis scale", {"n": before}, f"scale {name} back to {_nodes(before)}"))

    verb = "Add" if n > current else "Remove"
    return Change(summary=f"{verb} ElastiCache replicas of {name}: {current} -> {n}", current=_nodes(current),
                  desired=_nodes(n), apply=apply, target=f"elasticache/{name}",
                  warnings=[] if n > current else ["Removing replicas lowers read capacity and redundancy."])
