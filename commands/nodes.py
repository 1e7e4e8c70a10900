"""Nodes: `nodes` (status and allocated requests) and `node cordon|uncordon|drain` (changes).

`node drain` is `kubectl drain --ignore-daemonsets --delete-emptydir-data`: cordon, then evict each
pod through the Eviction API so PodDisruptionBudgets are honoured (a 429 is retried every few
seconds until the timeout), skip DaemonSet and mirror pods, and wait for each evicted pod to be gone.
Progress goes to the request's thread; a drain that cannot finish stops with a message that names
the pods and budgets in the way, and leaves the node cordoned.

Every change here ends with a verdict read from the cluster (commands/support/node_verify.py): the cordon
flag read back, or for a drain no evictable pod left on the node. Cordon and uncordon undo each other; a
drain has no undo (its pods run elsewhere now), only the uncordon that makes the node schedulable again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from base.text import one_line, plural
from commands.args import duration, k8s_name, opt, pos, switch
from commands.base import CommandError, Context, Kind, Role, command
from commands.parts import Failed, degraded, optional
from commands.reply import Change, Note, Outcome, Part, Reply, Table, Undo
from commands.support.kube import (
    age,
    cpu_text,
    find_node,
    is_daemonset_pod,
    is_mirror_pod,
    mem_text,
    node_status,
    percent,
    pod_requests,
    quantity,
)
from commands.support.node_verify import cordon_verified, drain_verified
from integrations.errors import NotFound
from integrations.kube import TooManyRequests

AREA = "Nodes"
RETRY_SECONDS = 5.0  # kubectl drain's pause between evictions refused by a disruption budget
GONE_POLL_SECONDS = 1.0
CONCURRENCY = 5
PER_POD_LINES = 15  # drains of more pods than this report progress in steps, not pod by pod
Obj = dict[str, Any]


@command(
    "nodes",
    summary="Nodes with status, pods, and requested CPU/memory against what is allocatable.",
    area=AREA,
    aliases=["get nodes"],
    example="/cf nodes",
    needs=["kube"],
)
async def nodes(ctx: Context) -> Reply:
    """The nodes are the primary call; the pods (for the PODS and REQUESTS columns) are an auxiliary part."""
    items, pods = await asyncio.gather(ctx.kube.list_nodes(), optional("Pods and requests", ctx.kube.list_pods(None)))
    by_node: dict[str, list[Obj]] = {}
    for pod in [] if isinstance(pods, Failed) else pods:
        if pod.get("status", {}).get("phase") not in ("Succeeded", "Failed") and pod.get("spec", {}).get("nodeName"):
            by_node.setdefault(pod["spec"]["nodeName"], []).append(pod)
    rows = []
    for node in sorted(items, key=lambda n: n["metadata"]["name"]):
        name, alloc = node["metadata"]["name"], node.get("status", {}).get("allocatable") or {}
        placed = by_node.get(name, [])
        cpu = sum(pod_requests(p)[0] for p in placed)
        mem = sum(pod_requests(p)[1] for p in placed)
        requests = [] if isinstance(pods, Failed) else [
            f"{len(placed)}/{alloc.get('pods', '?')}", f"{cpu_text(cpu)} ({percent(cpu, quantity(alloc.get('cpu')))})",
            f"{mem_text(mem)} ({percent(mem, quantity(alloc.get('memory')))})"]
        rows.append([name, node_status(node), *requests,
                     str(node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "")),
                     age(node["metadata"].get("creationTimestamp"))])
    not_ready = sum(1 for r in rows if r[1].startswith("NotReady"))
    title = f"{plural(len(rows), 'node')}" + (f", {not_ready} not Ready" if not_ready else ", all Ready")
    columns = ["NAME", "STATUS", "PODS", "CPU REQUESTS", "MEMORY REQUESTS", "VERSION", "AGE"]
    if isinstance(pods, Failed):
        columns = ["NAME", "STATUS", "VERSION", "AGE"]
    parts: list[Part] = [Table(columns, rows)]
    parts.append(pods.part() if isinstance(pods, Failed) else Note(
        "Requests are what the scheduler counts; `/cf top nodes` shows what is in use."))
    return Reply(title=title, parts=parts, level=degraded("warn" if not_ready else "ok", pods))


# --- cordon / uncordon ---------------------------------------------------------------------------


def _cordoned(node: Obj) -> bool:
    return bool(node.get("spec", {}).get("unschedulable"))


def _flag(cordoned: bool) -> str:
    return "cordoned" if cordoned else "schedulable"


async def _cordon_change(ctx: Context, name: str, cordon: bool) -> Change:
    """Verified by `spec.unschedulable` read back; undone by the other one (when it changed anything)."""
    node = await find_node(ctx, name)
    verb = "Cordon" if cordon else "Uncordon"
    warnings, no_undo = [], ""
    if _cordoned(node) == cordon:
        warnings.append(f"It is already {_flag(cordon)}; approving changes nothing.")
        no_undo = f"nothing to undo: the node was already {_flag(cordon)}"

    async def apply() -> Outcome:
        was = await ctx.kube.get_node(name)
        after = node_status(await ctx.kube.set_unschedulable(name, cordon))
        undo = None
        if _cordoned(was) != cordon:
            undo = (Undo("node uncordon", {"node": name}, f"uncordon node {name}: schedulable again") if cordon
                    else Undo("node cordon", {"node": name}, f"cordon node {name} again"))
        return Outcome(before=node_status(was), after=after, verify=cordon_verified(name, cordon), undo=undo)

    desired = "SchedulingDisabled: no new pods; running pods stay" if cordon else "schedulable again"
    # readiness moves by itself; the approval is bound to the flag a person sets
    return Change(summary=f"{verb} node {name}", current=node_status(node), basis=_flag(_cordoned(node)),
                  desired=desired, apply=apply, target=f"node/{name}", warnings=warnings, no_undo=no_undo)


@command(
    "node cordon",
    summary="Mark a node unschedulable (kubectl cordon); its running pods stay.",
    area=AREA,
    args=[pos("NODE", k8s_name, "the node")],
    aliases=["cordon"],
    kind=Kind.change,
    role=Role.operator,
    example="/cf node cordon ip-10-0-3-13.ec2.internal",
    needs=["kube"],
)
async def node_cordon(ctx: Context, node: str) -> Change:
    return await _cordon_change(ctx, node, True)


@command(
    "node uncordon",
    summary="Make a node schedulable again (kubectl uncordon).",
    area=AREA,
    args=[pos("NODE", k8s_name, "the node")],
    aliases=["uncordon"],
    kind=Kind.change,
    role=Role.operator,
    example="/cf node uncordon ip-10-0-3-13.ec2.internal",
    needs=["kube"],
)
async def node_uncordon(ctx: Context, node: str) -> Change:
    return await _cordon_change(ctx, node, False)


# --- drain ---------------------------------------------------------------------------------------


@dataclass
class Plan:
    """The pods on a node, sorted the way kubectl drain sorts them."""

    evict: list[Obj] = field(default_factory=list)
    daemonsets: list[Obj] = field(default_factory=list)
    mirrors: list[Obj] = field(default_factory=list)
    unmanaged: list[Obj] = field(default_factory=list)
    local_data: list[Obj] = field(default_factory=list)


def plan_drain(pods: list[Obj], force: bool) -> Plan:
    plan = Plan()
    for pod in pods:
        if is_mirror_pod(pod):
            plan.mirrors.append(pod)
        elif is_daemonset_pod(pod):
            plan.daemonsets.append(pod)
        else:
            if not pod.get("metadata", {}).get("ownerReferences"):
                plan.unmanaged.append(pod)
                if not force:
                    continue
            if any("emptyDir" in v for v in pod.get("spec", {}).get("volumes") or []):
                plan.local_data.append(pod)
            plan.evict.append(pod)
    return plan


def _ref(pod: Obj) -> str:
    return f"{pod['metadata'].get('namespace', '')}/{pod['metadata']['name']}"


def _drain_timeout(raw: str) -> int:
    seconds = duration(raw)
    if seconds > 3600:
        raise ValueError("must be at most 1h.")
    return seconds


@command(
    "node drain",
    summary="Cordon a node and evict its pods (kubectl drain), honouring disruption budgets.",
    area=AREA,
    args=[
        pos("NODE", k8s_name, "the node"),
        opt("--timeout", _drain_timeout, "give up after this long (default 5m, at most 1h)", metavar="DURATION"),
        switch("--force", "also evict pods no controller will recreate (they are gone for good)"),
    ],
    aliases=["drain"],
    kind=Kind.change,
    role=Role.operator,
    example="/cf node drain ip-10-0-3-13.ec2.internal",
    needs=["kube"],
)
async def node_drain(ctx: Context, node: str, timeout: int | None = None, force: bool = False) -> Change:
    found = await find_node(ctx, node)
    plan = plan_drain(await ctx.kube.pods_on_node(node), force)
    if plan.unmanaged and not force:
        names = ", ".join(f"`{_ref(p)}`" for p in plan.unmanaged[:5])
        raise CommandError(f"Node {node} runs pods no controller manages ({names}); evicting them loses them for "
                           "good. Nothing was changed. Add `--force` to evict them anyway.")
    warnings = [f"{_ref(p)} has emptyDir data that will be deleted." for p in plan.local_data[:5]]
    warnings += [f"{_ref(p)} has no controller and will not come back." for p in plan.unmanaged[:5]]
    limit = timeout or 300
    skipped = plural(len(plan.daemonsets), "DaemonSet pod")

    async def apply() -> Outcome:
        return await _run_drain(ctx, node, force, limit)

    # Readiness and the pod count move by themselves (the scheduler); the approval is bound to the node itself
    # (its instance) and, with --force, to the unmanaged pods the approver was warned about.
    provider = found.get("spec", {}).get("providerID") or found["metadata"].get("uid", "?")
    unmanaged = f"; unmanaged pods: {', '.join(sorted(_ref(p) for p in plan.unmanaged))}" if plan.unmanaged else ""
    return Change(summary=f"Drain node {node}: cordon, evict {plural(len(plan.evict), 'pod')}, skip {skipped}",
                  current=f"{node_status(found)}, {plural(len(plan.evict), 'evictable pod')}",
                  basis=f"node {node} ({provider}){unmanaged}",
                  desired=f"cordoned, no evictable pods (gives up after {limit}s)", apply=apply,
                  target=f"node/{node}", warnings=warnings,
                  no_undo=f"evicted pods were rescheduled elsewhere; `/cf node uncordon {node}` makes the node "
                          "schedulable again")


async def _run_drain(ctx: Context, node: str, force: bool, limit: int) -> Outcome:
    deadline = time.monotonic() + limit
    before = node_status(await ctx.kube.get_node(node))
    cordoned = node_status(await ctx.kube.set_unschedulable(node, True))
    plan = plan_drain(await ctx.kube.pods_on_node(node), force)
    total = len(plan.evict)
    await ctx.progress(f":construction: Cordoned {node}. Evicting {plural(total, 'pod')} "
                       f"(skipping {plural(len(plan.daemonsets), 'DaemonSet pod')}).")
    report = _Reporter(ctx, total)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(pod: Obj) -> str | None:
        async with gate:
            problem = await _evict_until_gone(ctx, pod, deadline)
        await report.done(pod, problem)
        return problem

    problems = [p for p in await asyncio.gather(*(one(p) for p in plan.evict)) if p]
    if problems:
        evicted = total - len(problems)
        raise CommandError(
            f"Drain of {node} stopped after {limit}s: {plural(len(problems), 'pod')} could not be evicted — "
            + "; ".join(problems[:5]) + f". {evicted} of {total} were evicted; the node stays cordoned. "
            "Scale the blocked deployment up (or wait for its pods to be ready) and drain again.")
    after = f"{cordoned}, {plural(total, 'pod')} evicted, {plural(len(plan.daemonsets), 'DaemonSet pod')} left"
    detail = Reply(title=f"Drained {node}", parts=[Table(["POD", "RESULT"], [[_ref(p), "evicted"] for p in plan.evict],
                                                          empty="There was nothing to evict.")])
    return Outcome(before=f"{before}, {plural(total, 'evictable pod')}", after=after, detail=detail,
                   verify=drain_verified(node))


async def _evict_until_gone(ctx: Context, pod: Obj, deadline: float) -> str | None:
    """Evict, retrying while a budget refuses; then wait until the pod is gone. None, or what stopped it."""
    ns, name, uid = pod["metadata"].get("namespace", ""), pod["metadata"]["name"], pod["metadata"].get("uid")
    told = False
    while True:
        try:
            await ctx.kube.evict_pod(ns, name)
            break
        except NotFound:
            return None
        except TooManyRequests as exc:
            if not told:
                await ctx.progress(f":hourglass: {ns}/{name}: {one_line(exc.message, 200)}; retrying every "
                                   f"{RETRY_SECONDS:g}s until the timeout.")
                told = True
            left = deadline - time.monotonic()
            if left <= 0:
                return f"{ns}/{name} ({one_line(exc.message, 160)})"
            await asyncio.sleep(min(RETRY_SECONDS, left))
    while time.monotonic() < deadline:
        try:
            current = await ctx.kube.get_pod(ns, name)
        except NotFound:
            return None
        if current["metadata"].get("uid") != uid:
            return None
        await asyncio.sleep(GONE_POLL_SECONDS)
    return f"{ns}/{name} (evicted but still terminating)"


class _Reporter:
    """Progress lines in the thread: pod by pod for small drains, in steps for large ones."""

    def __init__(self, ctx: Context, total: int) -> None:
        self.ctx, self.total, self.count = ctx, total, 0
        self.step = 1 if total <= PER_POD_LINES else max(1, total // 10)

    async def done(self, pod: Obj, problem: str | None) -> None:
        self.count += 1
        if problem is not None:
            return
        if self.step == 1:
            await self.ctx.progress(f"evicted {_ref(pod)} ({self.count}/{self.total})")
        elif self.count % self.step == 0 or self.count == self.total:
            await self.ctx.progress(f"evicted {self.count}/{self.total} pods")
