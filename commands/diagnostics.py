"""Triage: read-only views of the cluster (the runbook's "Complete System Outage" first steps)."""

from __future__ import annotations

from commands.args import switch
from commands.base import Context, command
from commands.kubefmt import age, pod_ready, pod_restarts, pod_status
from commands.reply import Reply, Table

AREA = "Triage"


@command(
    "pods",
    summary="List pods with readiness, status, restarts and age (kubectl get pods).",
    area=AREA,
    args=[switch("--all-namespaces", "pods in every namespace, not just the default one", short="-A")],
    example="/cf pods",
    needs=["kube"],
)
async def pods(ctx: Context, all_namespaces: bool = False) -> Reply:
    items = await ctx.kube.list_pods(None if all_namespaces else ctx.namespace)
    items.sort(key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"]))
    columns = ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = [
        [p["metadata"]["name"], pod_ready(p), pod_status(p), str(pod_restarts(p)),
         age(p["metadata"].get("creationTimestamp"))]
        for p in items
    ]
    if all_namespaces:
        columns.insert(0, "NAMESPACE")
        rows = [[p["metadata"].get("namespace", ""), *row] for p, row in zip(items, rows, strict=True)]
    where = "all namespaces" if all_namespaces else f"namespace `{ctx.namespace}`"
    unhealthy = sum(1 for p in items if pod_status(p) not in ("Running", "Completed", "Succeeded"))
    summary = f"{len(items)} pods in {where}" + (f", {unhealthy} not running" if unhealthy else "")
    empty = f"No resources found in {ctx.namespace} namespace." if not all_namespaces else "No resources found."
    return Reply(title=summary, parts=[Table(columns, rows, empty=empty)], level="warn" if unhealthy else "ok")
