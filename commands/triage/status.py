"""`/cf status`: the runbook's "Complete System Outage" triage as one message.

Two kinds of lines feed it. The Kubernetes picture (deployments ready, pods not ready or restarting,
nodes not Ready, warnings of the last 15 minutes) comes from one list call per kind, whatever the pod
count. Everything else comes from the registered status checks (`commands.checks`): the HTTP health
probes registered here, and the database, cache and AWS checks other modules register. All run side
by side, each under its own timeout, so a dead endpoint is one red line and the rest still report.

The Kubernetes lines are registered as a check too, so the scheduled health check reuses them; the
`status` command computes them from its own snapshot instead, because it also needs the tables.
Each of the four lists is a part of its own (`commands.parts`): one that fails or hangs turns its
line red (`Events — unavailable (Forbidden)`) and the other three still report; only when all four
fail is Kubernetes one red line. Two more lists judge what the others cannot (issue 13 §4): the pod
metrics (pods at 90% or more of their memory limit, the runbook's threshold) and the autoscalers (one
at its maximum cannot add replicas). Each is a warning line naming them; when one of those two lists
fails, its line is a warning saying so, never a red line.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from base.text import one_line, plural
from commands.base import Context, command
from commands.checks import STATUS_CHECKS, Check, run_checks, status_check
from commands.parts import Failed, failures, optional
from commands.reply import Level, Note, Part, Reply, Table, Text
from commands.support.kube import (
    event_row,
    event_time,
    hpa_at_max,
    hpa_replicas,
    near_memory_limit,
    newest_first,
    node_ready,
    node_status,
    parse_time,
    pod_ready,
    pod_restarts,
    pod_status,
)
from integrations import probes
from integrations.errors import IntegrationError

AREA = "Triage"
RECENT = timedelta(minutes=15)
KUBE_TIMEOUT = 10.0
PART_TIMEOUT = KUBE_TIMEOUT - 1  # each list's own deadline, so a hung one is its line, not the whole snapshot
PROBE_TIMEOUT_CAP = 10.0  # a health probe configured with a longer timeout is cut to this
Obj = dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    """One list of each kind the triage needs: six API calls in all. A list that failed is empty and
    named in `missing` (by the line it feeds)."""

    deployments: list[Obj]
    pods: list[Obj]
    nodes: list[Obj]
    events: list[Obj]
    pod_metrics: list[Obj] = field(default_factory=list)
    hpas: list[Obj] = field(default_factory=list)
    missing: dict[str, Failed] = field(default_factory=dict)


async def take_snapshot(ctx: Context) -> Snapshot:
    """The six lists, each an auxiliary part; when the four core ones all fail, the first failure is raised.

    The pod metrics (metrics.k8s.io, for the Memory line) and the autoscalers are colour: without them
    the rest of the picture stands, so they never make Kubernetes one red line."""
    kube = ctx.kube
    got = await asyncio.gather(
        optional("Deployments", kube.list_deployments(ctx.namespace), timeout=PART_TIMEOUT),
        optional("Pods", kube.list_pods(ctx.namespace), timeout=PART_TIMEOUT),
        optional("Nodes", kube.list_nodes(), timeout=PART_TIMEOUT),
        optional("Events", kube.list_events(ctx.namespace), timeout=PART_TIMEOUT),
        optional("Memory", kube.pod_metrics(ctx.namespace), timeout=PART_TIMEOUT),
        optional("Autoscalers", kube.list_objects("HorizontalPodAutoscaler", ctx.namespace), timeout=PART_TIMEOUT))
    core = failures(*got[:4])
    if len(core) == 4 and core[0].error is not None:
        raise core[0].error
    deployments, pods, nodes, events, metrics, hpas = ([] if isinstance(g, Failed) else list(g) for g in got)
    return Snapshot(deployments, pods, nodes, events, metrics, hpas, {f.label: f for f in failures(*got)})


def _unready_deployments(snap: Snapshot) -> list[Obj]:
    return [d for d in snap.deployments
            if int(d.get("status", {}).get("readyReplicas") or 0) < int(d.get("spec", {}).get("replicas") or 0)]


def _scaled_to_zero(snap: Snapshot) -> list[Obj]:
    """Deployments asked for 0 replicas (isolated, or scaled down): nothing to be unready, nothing serving."""
    return [d for d in snap.deployments if d.get("spec", {}).get("replicas") == 0]


def _restarting(pod: Obj, now: datetime) -> bool:
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        if (cs.get("state", {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff":
            return True
        finished = parse_time(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        if finished is not None and now - finished <= RECENT:
            return True
    return False


def _pod_ready(pod: Obj) -> bool:
    ready, total = pod_ready(pod).split("/")
    return pod.get("status", {}).get("phase") == "Running" and ready == total


def _troubled_pods(snap: Snapshot, now: datetime) -> list[Obj]:
    return [p for p in snap.pods if p.get("status", {}).get("phase") != "Succeeded"
            and (not _pod_ready(p) or _restarting(p, now))]


def _recent_warnings(snap: Snapshot, now: datetime) -> list[Obj]:
    return newest_first(e for e in snap.events if e.get("type") == "Warning" and now - event_time(e) <= RECENT)


def kube_checks(snap: Snapshot, now: datetime) -> list[Check]:
    """The Kubernetes lines of the report (also what the scheduled health check posts)."""
    deps, troubled, zero = _unready_deployments(snap), _troubled_pods(snap, now), _scaled_to_zero(snap)
    bad_nodes = [n for n in snap.nodes if node_ready(n) != "True"]
    warnings = _recent_warnings(snap, now)
    ready_deps = len(snap.deployments) - len(deps) - len(zero)
    lines = [
        Check("Deployments", "fail" if any(_none_ready(d) for d in deps) else "warn" if deps or zero else "ok",
              f"{ready_deps}/{len(snap.deployments)} fully ready"
              + (f"; not ready: {', '.join(d['metadata']['name'] for d in deps[:5])}" if deps else "")
              + (f"; scaled to 0: {', '.join(d['metadata']['name'] for d in zero[:5])}" if zero else "")),
        Check("Pods", "ok" if not troubled else "warn",
              f"{plural(len(snap.pods), 'pod')}, {len(troubled)} not ready or restarting"),
        Check("Nodes", "ok" if not bad_nodes else "fail",
              f"{len(snap.nodes) - len(bad_nodes)}/{len(snap.nodes)} Ready"
              + (f"; not Ready: {', '.join(n['metadata']['name'] for n in bad_nodes[:3])}" if bad_nodes else "")),
        Check("Events", "ok" if not warnings else "warn",
              f"{plural(len(warnings), 'warning')} in the last {int(RECENT.total_seconds() // 60)} minutes"),
    ]
    lines += _memory_and_autoscaler_checks(snap)
    return [Check(c.name, "warn" if c.name in AUXILIARY else "fail", snap.missing[c.name].detail)
            if c.name in snap.missing else c for c in lines]


AUXILIARY = {"Memory", "Autoscalers"}  # a failed one is a warning (not verified), not a red line


def _memory_and_autoscaler_checks(snap: Snapshot) -> list[Check]:
    """Pods at 90% or more of their memory limit, and autoscalers at their maximum: each named."""
    hot = near_memory_limit(snap.pod_metrics, snap.pods)
    names = ", ".join(f"{name} ({share:.0%})" for name, share in hot[:5]) + (" …" if len(hot) > 5 else "")
    memory = Check("Memory", "warn", f"{plural(len(hot), 'pod')} at 90% or more of the memory limit "
                                     f"(OOM kills are near): {names}") if hot else \
        Check("Memory", "ok", f"none near their memory limit ({plural(len(snap.pod_metrics), 'pod')} measured)")
    full = [h for h in snap.hpas if hpa_at_max(h)]
    if full:
        shown = ", ".join(f"{h['metadata']['name']} ({hpa_replicas(h)[0]}/{hpa_replicas(h)[2]} replicas)"
                          for h in full[:5])
        hpas = Check("Autoscalers", "warn", f"{len(full)} at its maximum: {shown}; it cannot add replicas "
                                            "(raise maxReplicas or add nodes)")
    else:
        hpas = Check("Autoscalers", "ok", f"{plural(len(snap.hpas), 'autoscaler')}, none at its maximum")
    return [memory, hpas]


def _none_ready(dep: Obj) -> bool:
    return int(dep.get("spec", {}).get("replicas") or 0) > 0 and not dep.get("status", {}).get("readyReplicas")


@status_check("Kubernetes", order=10, needs=["kube"], timeout=KUBE_TIMEOUT)
async def kubernetes_status(ctx: Context) -> list[Check]:
    return kube_checks(await take_snapshot(ctx), datetime.now(UTC))


@status_check("HTTP health", order=20, timeout=PROBE_TIMEOUT_CAP + 2)
async def http_health_status(ctx: Context) -> list[Check]:
    """`probes.health` from config, all at once: status code and latency against the SLA."""
    cfg = ctx.settings.probes
    targets = [(p.name, p.url, min(p.timeout_seconds, PROBE_TIMEOUT_CAP)) for p in cfg.health]
    if not targets:
        return [Check("HTTP health", "skip", "no endpoints configured (`probes.health`)")]
    return [_health_line(r, cfg.sla_seconds) for r in await probes.http_health(targets)]


def _health_line(result: probes.HttpResult, sla: float) -> Check:
    if result.error:
        return Check(f"HTTP {result.name}", "fail", f"failed: {one_line(result.error, 160)}", result.latency_ms)
    if not result.ok:
        return Check(f"HTTP {result.name}", "fail", f"HTTP {result.status}", result.latency_ms)
    if result.latency_ms > sla * 1000:
        slow = f"HTTP {result.status}, slower than the {sla:g} s SLA"
        return Check(f"HTTP {result.name}", "warn", slow, result.latency_ms)
    return Check(f"HTTP {result.name}", "ok", f"HTTP {result.status}", result.latency_ms)


# --- the command ---------------------------------------------------------------------------------


async def _guarded_snapshot(ctx: Context) -> Snapshot | Check:
    if not ctx.configured("kube"):
        return Check("Kubernetes", "skip", "not configured")
    started = time.perf_counter()
    try:
        return await asyncio.wait_for(take_snapshot(ctx), KUBE_TIMEOUT)
    except TimeoutError:
        return Check("Kubernetes", "fail", f"no answer within {KUBE_TIMEOUT:g}s", (time.perf_counter() - started) * 1e3)
    except IntegrationError as exc:
        return Check("Kubernetes", "fail", exc.message, (time.perf_counter() - started) * 1000)


@command(
    "status",
    summary="Outage triage in one message: deployments, pods, nodes, warnings, health probes and checks.",
    area=AREA,
    example="/cf status",
    needs=["kube", "audit"],  # the snapshot, and who scaled a deployment to 0; each status check has its own
)
async def status(ctx: Context) -> Reply:
    started = time.perf_counter()
    others = [spec for spec in STATUS_CHECKS if spec.name != "Kubernetes"]
    snap, checks = await asyncio.gather(_guarded_snapshot(ctx), run_checks(ctx, others))
    now = datetime.now(UTC)
    lines = kube_checks(snap, now) if isinstance(snap, Snapshot) else [snap]
    lines += checks
    parts: list[Part] = _line_parts([c.line() for c in lines])
    if isinstance(snap, Snapshot):
        parts += await _zero_lines(ctx, _scaled_to_zero(snap))
        parts += _kube_tables(snap, now)
    took = (time.perf_counter() - started) * 1000
    parts.append(Note(f"{len(lines)} checks, run side by side, in {took:,.0f} ms · namespace `{ctx.namespace}`"))
    failing = sum(1 for c in lines if c.status == "fail")
    warning = sum(1 for c in lines if c.status == "warn")
    level: Level = "error" if failing else "warn" if warning else "ok"
    if failing or warning:
        title = f"Status: {plural(failing, 'check')} failing, {plural(warning, 'warning')}"
    else:
        title = "Status: all clear"
    return Reply(title=title, parts=parts, level=level)


async def _zero_lines(ctx: Context, zero: list[Obj]) -> list[Part]:
    """Each deployment at 0 replicas, with cf's own record of who took it there, when, and which request."""
    if not zero:
        return []
    lines = []
    for dep in zero[:10]:
        name = dep["metadata"]["name"]
        lines.append(f"• `{name}` scaled to 0{await _who_scaled(ctx, name)}")
    return [Text("*Deployments at 0 replicas (not serving)*\n" + "\n".join(lines))]


async def _who_scaled(ctx: Context, name: str) -> str:
    """`— isolated by @a, approved by @b, 2024-05-01 10:02 UTC (request `X`)`, or "" when cf has no record
    (done by hand, or the audit trail is not configured or not reachable: the line still names it)."""
    if not ctx.configured("audit"):
        return ""
    try:
        entries = await asyncio.wait_for(ctx.audit.query(20, target=f"deployment/{name}"), PART_TIMEOUT)
    except Exception:  # the audit is colour on this line, never a reason to lose the report
        return " (the audit trail could not be read)"
    for e in entries:
        to_zero = e.command == "isolate" or (e.command == "scale" and e.command_line.split()[-1:] == ["0"])
        if e.event == "done" and to_zero:
            verb = "isolated" if e.command == "isolate" else "scaled to 0"
            who = f"<@{e.requester}>" if e.requester else "someone"
            by = f", approved by <@{e.approver}>" if e.approver else ""
            at = datetime.fromtimestamp(e.at, UTC).strftime("%Y-%m-%d %H:%M UTC")
            request = f" (request `{e.action_id}`: `{one_line(e.command_line, 80)}`)" if e.action_id else ""
            return f" — {verb} by {who}{by}, {at}{request}"
    return ""


def _line_parts(lines: list[str], budget: int = 2900) -> list[Part]:
    """Check lines in as few sections as fit (a section holds 3,000 characters)."""
    parts: list[Part] = []
    chunk: list[str] = []
    for line in lines:
        if chunk and sum(len(x) + 1 for x in chunk) + len(line) > budget:
            parts.append(Text("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        parts.append(Text("\n".join(chunk)))
    return parts


def _kube_tables(snap: Snapshot, now: datetime) -> list[Part]:
    parts: list[Part] = []
    deps = _unready_deployments(snap)
    if deps:
        rows = [[d["metadata"]["name"], f"{d.get('status', {}).get('readyReplicas', 0) or 0}/"
                 f"{d.get('spec', {}).get('replicas', 0)}", str(d.get("status", {}).get("updatedReplicas", 0) or 0),
                 str(d.get("status", {}).get("availableReplicas", 0) or 0)] for d in deps]
        parts += [Text("*Deployments not fully ready*"), Table(["NAME", "READY", "UP-TO-DATE", "AVAILABLE"], rows)]
    troubled = _troubled_pods(snap, now)
    if troubled:
        rows = [[p["metadata"]["name"], pod_ready(p), pod_status(p), str(pod_restarts(p)),
                 str(p.get("spec", {}).get("nodeName") or "-")] for p in troubled]
        parts += [Text("*Pods not ready or restarting*"), Table(["NAME", "READY", "STATUS", "RESTARTS", "NODE"], rows)]
    bad_nodes = [n for n in snap.nodes if node_ready(n) != "True"]
    if bad_nodes:
        parts += [Text("*Nodes not Ready*"), Table(["NAME", "STATUS", "REASON"], [
            [n["metadata"]["name"], node_status(n), _ready_reason(n)] for n in bad_nodes])]
    warnings = _recent_warnings(snap, now)
    if warnings:
        parts += [Text(f"*Warning events, last {int(RECENT.total_seconds() // 60)} minutes*"),
                  Table(["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], [event_row(e) for e in warnings])]
    return parts


def _ready_reason(node: Obj) -> str:
    cond: Obj = next((c for c in node.get("status", {}).get("conditions") or [] if c.get("type") == "Ready"), {})
    return one_line(f"{cond.get('reason', '')}: {cond.get('message', '')}".strip(": "), 120)
