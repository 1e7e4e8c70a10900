"""AWS infrastructure (the runbook's outage checks and cluster scaling): EKS, the ALB, S3, AWS Health.

Reads answer at once; `nodegroup scale` and `node terminate` are changes, validated against AWS
and the cluster when requested and again when approved. The `status` lines for EKS and ALB are
registered here too (RDS's are in commands/database/rds.py), so `/cf status` covers the AWS side.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from base.text import code, plural
from commands.args import k8s_name, opt, pos, switch, whole_number
from commands.base import CommandError, Context, Kind, Role, command
from commands.checks import Check, Status, status_check
from commands.parts import Failed, degraded, failed_parts, failures, optional
from commands.reply import Change, Fields, Level, Note, Outcome, Reply, Table, Text, Undo
from commands.support.awsfmt import ago, stamp, utc
from commands.support.node_verify import evictable, terminate_verified
from commands.support.verify_aws import nodegroup_config
from integrations.awserrors import ApiUnavailable
from integrations.errors import IntegrationError, NotFound, Unavailable

AREA = "AWS"
HEALTH_SERVICES = ["EKS", "RDS", "EC2"]


# --- EKS ----------------------------------------------------------------------------------------


def _scaling(ng: dict[str, Any]) -> str:
    s = ng.get("scalingConfig", {})
    return f"min {s.get('minSize')} / desired {s.get('desiredSize')} / max {s.get('maxSize')}"


def _group_row(g: dict[str, Any]) -> list[str]:
    size = g.get("scalingConfig", {})
    return [g["nodegroupName"], g.get("status", "?"), ",".join(g.get("instanceTypes") or ["—"]),
            *(str(size.get(k, "?")) for k in ("minSize", "desiredSize", "maxSize")), g.get("version", "—"),
            str(len(g.get("health", {}).get("issues") or []))]


@command("cluster", summary="EKS cluster status, version and node groups with their scaling (eks describe-cluster).",
         area=AREA, example="/cf cluster", needs=["aws"])
async def cluster(ctx: Context) -> Reply:
    """The cluster is the primary call; the node group list and each node group are auxiliary parts."""
    name = ctx.settings.aws.eks_cluster
    info = await ctx.aws.eks_cluster(name)
    names = await optional("Node groups", ctx.aws.nodegroups(name))
    found = [] if isinstance(names, Failed) else await asyncio.gather(
        *(optional(f"Node group {code(g)}", ctx.aws.nodegroup(name, g)) for g in names))
    groups = [g for g in found if not isinstance(g, Failed)]
    rows = [_group_row(g) for g in groups]
    healthy = info.get("status") == "ACTIVE" and all(g.get("status") == "ACTIVE" for g in groups)
    return Reply(
        title=f"EKS cluster {name}: {info.get('status')}, Kubernetes {info.get('version')}",
        parts=[Fields([("Status", str(info.get("status"))), ("Version", str(info.get("version"))),
                       ("Platform", str(info.get("platformVersion", "—"))), ("Created", stamp(info.get("createdAt"))),
                       ("Endpoint", str(info.get("endpoint", "—")))]),
               Table(["NODE GROUP", "STATUS", "INSTANCE TYPES", "MIN", "DESIRED", "MAX", "VERSION", "ISSUES"], rows,
                     empty="No managed node groups."),
               *failed_parts(names, *found)],
        level=degraded("ok" if healthy else "warn", names, *found),
    )


@command(
    "nodegroup scale",
    summary="Set the EKS node group's min, max and desired size (aws eks update-nodegroup-config), after approval.",
    area=AREA,
    args=[pos("MIN", whole_number, "the minimum number of nodes"),
          pos("MAX", whole_number, "the maximum number of nodes"),
          pos("DESIRED", whole_number, "the desired number of nodes, between MIN and MAX"),
          opt("--nodegroup", k8s_name, "the node group (default: aws.nodegroup)", metavar="NAME")],
    kind=Kind.change, role=Role.operator, example="/cf nodegroup scale 5 20 10", needs=["aws"],
)
async def nodegroup_scale(ctx: Context, min: int, max: int, desired: int, nodegroup: str | None = None) -> Change:
    if not 0 <= min <= desired <= max or max < 1:
        raise CommandError(f"Sizes must satisfy 0 <= MIN <= DESIRED <= MAX and MAX >= 1; got MIN {min}, "
                           f"DESIRED {desired}, MAX {max}. Nothing was changed.")
    cluster_name, name = ctx.settings.aws.eks_cluster, nodegroup or ctx.settings.aws.nodegroup
    ng = await ctx.aws.nodegroup(cluster_name, name)
    if ng.get("status") != "ACTIVE":
        raise CommandError(f"Node group `{name}` is {ng.get('status')}; EKS accepts a new size only when it is "
                           "ACTIVE. Try again when the current update has finished.")
    now = ng.get("scalingConfig", {})
    wanted = f"min {min} / desired {desired} / max {max}"
    warnings = []
    if desired < int(now.get("desiredSize", 0)):
        warnings.append(f"Desired drops from {now.get('desiredSize')} to {desired}: the Auto Scaling group will "
                        "terminate nodes it chooses. Drain the ones you want gone first (`/cf node drain NODE`).")
    if _scaling(ng) == wanted:
        warnings.append("The node group already has this size; approving changes nothing.")

    async def apply() -> Outcome:
        was = (await ctx.aws.nodegroup(cluster_name, name)).get("scalingConfig", {})
        update = await ctx.aws.scale_nodegroup(cluster_name, name, min, max, desired)
        after = _scaling(await ctx.aws.nodegroup(cluster_name, name))
        old = {"min": int(was.get("minSize", 0)), "max": int(was.get("maxSize", 0)),
               "desired": int(was.get("desiredSize", 0))}
        return Outcome(before=_scaling({"scalingConfig": was}),
                       after=f"{after} (EKS update {update.get('id')}: {update.get('status')})",
                       verify=nodegroup_config(cluster_name, name, min, max, desired),
                       undo=Undo("nodegroup scale", {**old, "nodegroup": name},
                                 f"scale node group {name} back to min {old['min']} / desired {old['desired']} / "
                                 f"max {old['max']}"))

    return Change(summary=f"Scale EKS node group {name} to {wanted}", current=_scaling(ng), desired=wanted,
                  apply=apply, target=f"nodegroup/{name} in {cluster_name}", warnings=warnings)


# --- node terminate -----------------------------------------------------------------------------


async def _node_instance(ctx: Context, node: str) -> tuple[dict[str, Any], str]:
    try:
        obj = await ctx.kube.get_node(node)
    except NotFound:
        names = sorted(n["metadata"]["name"] for n in await ctx.kube.list_nodes())
        raise CommandError(f"Node `{node}` was not found. Nodes: {', '.join(f'`{n}`' for n in names) or 'none'}."
                           ) from None
    provider = obj.get("spec", {}).get("providerID", "")
    if not provider.startswith("aws:///") or "/i-" not in provider:
        raise CommandError(f"Node `{node}` is not backed by an EC2 instance (providerID `{provider or 'unset'}`); "
                           "there is nothing for AWS to terminate.")
    return obj, provider.rsplit("/", 1)[1]


@command(
    "node terminate",
    summary="Terminate a drained node's EC2 instance (aws ec2 terminate-instances); its node group replaces it.",
    area=AREA, args=[pos("NODE", k8s_name, "the Kubernetes node whose instance to terminate")],
    kind=Kind.change, role=Role.operator, example="/cf node terminate ip-10-0-1-11.ec2.internal",
    needs=["aws", "kube"],
)
async def node_terminate(ctx: Context, node: str) -> Change:
    obj, instance_id = await _node_instance(ctx, node)
    left = evictable(await ctx.kube.pods_on_node(node))  # the drain verifier's own definition
    if left:
        shown = ", ".join(f"`{p['metadata'].get('namespace')}/{p['metadata']['name']}`" for p in left[:5])
        more = f" and {len(left) - 5} more" if len(left) > 5 else ""
        raise CommandError(f"Node `{node}` still runs {plural(len(left), 'evictable pod')} ({shown}{more}); "
                           f"terminating it now would kill them. Drain it first: `/cf node drain {node}`. "
                           "Nothing was changed.")
    instance = await ctx.aws.instance(instance_id)
    state = instance.get("State", {}).get("Name", "unknown")
    if not instance or state in ("terminated", "shutting-down"):
        raise CommandError(f"Instance `{instance_id}` of node `{node}` is {state if instance else 'not found'}; "
                           "there is nothing to terminate.")
    warnings = [] if obj.get("spec", {}).get("unschedulable") else [
        f"`{node}` is not cordoned: new pods could land on it before it goes. `/cf node cordon {node}` first."]
    zone = instance.get("Placement", {}).get("AvailabilityZone", "?")

    async def apply() -> Outcome:
        again = await ctx.kube.pods_on_node(node)
        if evictable(again):
            raise CommandError(f"Pods were scheduled onto `{node}` since the request; drain it again. "
                               "The instance was not terminated.")
        result = await ctx.aws.terminate_instance(instance_id)
        return Outcome(before=f"{instance_id} {result.get('PreviousState', {}).get('Name', state)}",
                       after=f"{instance_id} {result.get('CurrentState', {}).get('Name')}; the node group's Auto "
                             "Scaling group launches a replacement", verify=terminate_verified(instance_id))

    return Change(summary=f"Terminate EC2 instance {instance_id} (node {node}, {zone})",
                  current=f"{instance_id} {state}, {instance.get('InstanceType', '?')} in {zone}; no evictable pods",
                  basis=f"{instance_id} {state}",  # evictable pods are checked again when it runs
                  desired="terminated; the Auto Scaling group replaces it", apply=apply,
                  target=f"instance/{instance_id}", warnings=warnings,
                  no_undo="a terminated instance cannot come back; the node group's Auto Scaling group launches "
                          "a replacement")


# --- ALB, S3, AWS Health ------------------------------------------------------------------------


async def _groups(ctx: Context, lb_arn: str) -> tuple[list[dict[str, Any]], list[Failed]]:
    """The ALB's target groups, plus the configured one (the runbook's websocket group) if it is elsewhere.

    Both lists are auxiliary parts of `lb`: what could not be listed comes back as `Failed`.
    """
    listed = await optional("Target groups", ctx.aws.target_groups(lb_arn=lb_arn))
    groups = [] if isinstance(listed, Failed) else list(listed)
    missing = failures(listed)
    wanted = ctx.settings.aws.target_group
    if wanted and wanted not in {g["TargetGroupName"] for g in groups}:
        extra = await optional(f"Target group {code(wanted)}", ctx.aws.target_groups(names=[wanted]))
        groups += [] if isinstance(extra, Failed) else extra
        missing += failures(extra)
    return groups, missing


async def _target_rows(ctx: Context, lb_arn: str) -> tuple[list[list[str]], int, int, list[Failed]]:
    """(rows, healthy, total, parts that failed): each group's target health is an auxiliary part."""
    groups, missing = await _groups(ctx, lb_arn)
    healths = await asyncio.gather(*(optional(f"Targets of {code(tg['TargetGroupName'])}",
                                              ctx.aws.target_health(tg["TargetGroupArn"], tg["TargetGroupName"]))
                                     for tg in groups))
    rows, healthy, total = [], 0, 0
    for tg, targets in zip(groups, healths, strict=True):
        if isinstance(targets, Failed):
            missing.append(targets)
            continue
        for t in targets:
            state = t.get("TargetHealth", {})
            total += 1
            healthy += state.get("State") == "healthy"
            rows.append([tg["TargetGroupName"], f"{t['Target']['Id']}:{t['Target'].get('Port', tg.get('Port'))}",
                         state.get("State", "?"), state.get("Reason", "")])
    return rows, healthy, total, missing


@command("lb", summary="The ALB's state, its target groups and each target's health (aws elbv2 describe-*).",
         area=AREA, example="/cf lb", needs=["aws"])
async def lb(ctx: Context) -> Reply:
    """The load balancer is the primary call; its target groups and their targets' health are auxiliary."""
    info = await ctx.aws.load_balancer(ctx.settings.aws.alb)
    rows, healthy, total, missing = await _target_rows(ctx, info["LoadBalancerArn"])
    state = info.get("State", {}).get("Code", "?")
    zones = ", ".join(z["ZoneName"] for z in info.get("AvailabilityZones", []))
    level: Level = "ok" if state == "active" and healthy == total and total else ("error" if not healthy else "warn")
    if missing and not total:
        level = "warn"  # no target could be read: that says nothing about their health
    unread = f" ({plural(len(missing), 'part')} unavailable)" if missing else ""
    return Reply(
        title=f"ALB {ctx.settings.aws.alb}: {state}, {healthy}/{total} targets healthy{unread}",
        parts=[Fields([("DNS name", str(info.get("DNSName", "—"))), ("Scheme", str(info.get("Scheme", "—"))),
                       ("Zones", zones or "—"), ("Created", stamp(info.get("CreatedTime")))]),
               Table(["TARGET GROUP", "TARGET", "STATE", "REASON"], rows, empty="No registered targets."),
               *failed_parts(*missing)],
        level=degraded(level, *missing),
    )


PROBE_PREFIX = "cf-probe/"  # deploy/iam-policy.json allows s3:PutObject and s3:DeleteObject only under this prefix


@command("s3 check", summary="List the documents bucket to prove the bot can reach S3 (aws s3 ls); `--write` also "
                             "puts a unique probe object and deletes it (operator).", area=AREA,
         args=[switch("--write", "also write a probe object under cf-probe/ and delete it (needs the operator role)")],
         example="/cf s3 check", needs=["aws"])
async def s3_check(ctx: Context, write: bool = False) -> Reply:
    """Read by default. `--write` changes the bucket for a moment, so it is the operator's (see `_write_probe`)."""
    if write and not ctx.has_role(Role.operator):
        raise CommandError("`s3 check --write` writes to (and deletes from) the production documents bucket, so it "
                           "needs the operator role. `/cf s3 check` lists the bucket without writing.")
    bucket = ctx.settings.aws.bucket
    data = await ctx.aws.list_objects(bucket, 10)
    objects = data.get("Contents", [])
    rows = [[o["Key"], f"{o.get('Size', 0):,}", stamp(o.get("LastModified"))] for o in objects]
    more = " (more not shown)" if data.get("IsTruncated") else ""
    listing = Table(["KEY", "BYTES", "LAST MODIFIED"], rows, empty="The bucket is empty.")
    if not write:
        return Reply(title=f"S3 bucket {bucket} is reachable: {plural(len(objects), 'object')} listed{more}",
                     parts=[listing], level="ok")
    return await _write_probe(ctx, bucket, listing)


async def _write_probe(ctx: Context, bucket: str, listing: Table) -> Reply:
    """Put a probe object under a unique key, delete it, and list the key to show it is gone.

    It needs the operator role although it leaves nothing behind: it is a write to production storage,
    which the bucket's event notifications, replication or versioning may act on (a versioned bucket
    keeps a delete marker until its lifecycle rules expire it), and the audit trail names who asked.
    It needs no approval: the change is the bot's own probe object, gone again within the command.
    """
    key = f"{PROBE_PREFIX}{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}.txt"
    body = f"cf s3 check --write by {ctx.user}: a probe object, deleted right after it was written.\n".encode()
    where = f"s3://{bucket}/{key}"
    steps: list[list[str]] = []
    started = time.perf_counter()
    try:
        put = await ctx.aws.put_object(bucket, key, body)
    except IntegrationError as exc:
        steps.append(["put", "failed", _ms(started), exc.message])
        left = (f"The write may still have landed: `aws s3 ls s3://{bucket}/{PROBE_PREFIX}` shows it."
                if isinstance(exc, Unavailable) else f"AWS refused the write, so nothing was left at `{where}`.")
        return Reply(title=f"S3 bucket {bucket} is readable but the bot could not write to it", level="error",
                     parts=[_steps(steps), Note(left), listing])
    detail = f"{len(body)} bytes, ETag {put.get('ETag', '?')}" + (f", version {put['VersionId']}"
                                                                   if put.get("VersionId") else "")
    steps.append(["put", "ok", _ms(started), detail])
    started = time.perf_counter()
    try:
        deleted = await ctx.aws.delete_object(bucket, key)
    except IntegrationError as exc:
        steps.append(["delete", "failed", _ms(started), exc.message])
        return Reply(title=f"S3 bucket {bucket}: the probe object was written but could not be deleted", level="error",
                     parts=[_steps(steps), Text(f"The probe object `{where}` is still in the bucket: remove it with "
                                                f"`aws s3 rm {where}` once the cause is fixed."), listing])
    marker = " (the bucket is versioned: a delete marker remains until its lifecycle expires it)" \
        if deleted.get("DeleteMarker") else ""
    steps.append(["delete", "ok", _ms(started), f"deleted{marker}"])
    listed = await ctx.aws.list_objects(bucket, 1, prefix=key)
    gone = not any(o.get("Key") == key for o in listed.get("Contents", []))
    steps.append(["list the key", "gone" if gone else "still listed", "", where])
    title = (f"S3 bucket {bucket} is readable and writable: the probe object was put and deleted" if gone
             else f"S3 bucket {bucket}: the probe object is still listed after its delete")
    return Reply(title=title, level="ok" if gone else "warn", parts=[_steps(steps), listing])


def _steps(rows: list[list[str]]) -> Table:
    return Table(["STEP", "RESULT", "TIME", "DETAIL"], rows)


def _ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:,.0f} ms"


_STATUS_ORDER = {"open": 0, "upcoming": 1, "closed": 2}


def _event_order(event: dict[str, Any]) -> tuple[int, float]:
    """Open first, then upcoming, then closed; the most recently updated first within each."""
    updated = utc(event.get("lastUpdatedTime"))
    return _STATUS_ORDER.get(event.get("statusCode", ""), 3), -(updated.timestamp() if updated else 0.0)


@command("aws health", summary="AWS Health events for EKS, RDS and EC2 (aws health describe-events).", area=AREA,
         example="/cf aws health", needs=["aws"])
async def aws_health(ctx: Context) -> Reply:
    try:
        events = await ctx.aws.health_events(HEALTH_SERVICES, ctx.settings.aws.region)
    except ApiUnavailable as exc:
        return Reply(title="AWS Health is not available for this account", parts=[
            Text(exc.message), Note("Check https://health.aws.amazon.com/health/status for public service events.")],
            level="warn")
    events.sort(key=_event_order)
    rows = [[e.get("service", "?"), e.get("eventTypeCode", "?"), e.get("statusCode", "?"),
             e.get("availabilityZone") or e.get("region", ""), stamp(e.get("startTime")), ago(e.get("lastUpdatedTime"))]
            for e in events]
    open_ = sum(1 for e in events if e.get("statusCode") == "open")
    title = f"AWS Health ({', '.join(HEALTH_SERVICES)} in {ctx.settings.aws.region}): {plural(open_, 'open event')}"
    return Reply(title=title, parts=[Table(["SERVICE", "EVENT", "STATUS", "WHERE", "START", "UPDATED"], rows,
                                           empty="No events.")], level="warn" if open_ else "ok")


# --- status lines -------------------------------------------------------------------------------


@status_check("EKS", order=40, needs=["aws"], timeout=10)
async def eks_status(ctx: Context) -> list[Check]:
    """The cluster is the line's primary call; the node group is an auxiliary part of it."""
    name = ctx.settings.aws.eks_cluster
    info = await ctx.aws.eks_cluster(name)
    ng = await optional(f"node group {ctx.settings.aws.nodegroup}", ctx.aws.nodegroup(name, ctx.settings.aws.nodegroup))
    detail = f"{name} {info.get('status')} (Kubernetes {info.get('version')}); "
    if isinstance(ng, Failed):
        return [Check("EKS", "warn", detail + f"{ng.label}: {ng.detail}")]
    ok = info.get("status") == "ACTIVE" and ng.get("status") == "ACTIVE"
    detail += f"node group {ng['nodegroupName']} {ng.get('status')}, {_scaling(ng)}"
    return [Check("EKS", "ok" if ok else "warn", detail)]


@status_check("ALB", order=42, needs=["aws"], timeout=10)
async def alb_status(ctx: Context) -> list[Check]:
    """The load balancer is the line's primary call; target groups and health are auxiliary parts of it."""
    info = await ctx.aws.load_balancer(ctx.settings.aws.alb)
    _, healthy, total, missing = await _target_rows(ctx, info["LoadBalancerArn"])
    state = info.get("State", {}).get("Code", "?")
    status: Status = "ok" if state == "active" and total and healthy == total else ("fail" if not healthy else "warn")
    if missing and (status == "ok" or not total):
        status = "warn"
    unread = "".join(f"; {f.label}: {f.detail}" for f in missing)
    return [Check("ALB", status, f"{ctx.settings.aws.alb} {state}, {healthy}/{total} targets healthy{unread}")]
