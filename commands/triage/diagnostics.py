"""Triage: read-only views of the cluster (the runbook's "Complete System Outage" first steps,
"High Memory/CPU Usage" and "Pod Crash Looping").

Each command makes a fixed handful of list calls (pods, metrics, events) and joins them here,
never one call per pod, so it answers in the same time on a cluster of ten pods or a thousand.
"""

from __future__ import annotations

import asyncio
from typing import Any

from base.text import code, plural
from commands.args import choice, k8s_label, k8s_name, opt, pos, switch
from commands.base import Context, command
from commands.parts import Failed, degraded, failed_parts, optional
from commands.reply import Code, Level, Note, Part, Reply, Table, Text
from commands.support.kube import (
    age,
    container_resources,
    cpu_text,
    event_row,
    find_pod,
    mem_text,
    memory_limit,
    near_memory_limit,
    newest_first,
    node_status,
    percent,
    pod_ready,
    pod_restarts,
    pod_status,
    pods_of_app,
    quantity,
    usage,
)

AREA = "Triage"
Obj = dict[str, Any]


@command(
    "pods",
    summary="Pods with readiness, status, restarts and age; one app's, sorted by memory, cpu or restarts.",
    area=AREA,
    args=[
        pos("APP", k8s_label, "only this app's pods (label app=APP)", default=None),
        opt("--sort", choice("memory", "cpu", "restarts"), "order by memory, cpu or restarts (highest first)"),
        switch("--all-namespaces", "pods in every namespace, not just the default one", short="-A"),
    ],
    aliases=["get pods"],
    example="/cf pods graphql-api --sort memory",
    needs=["kube"],
)
async def pods(ctx: Context, app: str | None = None, sort: str | None = None, all_namespaces: bool = False) -> Reply:
    namespace = None if all_namespaces else ctx.namespace
    if app:
        items = await pods_of_app(ctx, app) if namespace else await ctx.kube.list_pods(None, f"app={app}")
    else:
        items = await ctx.kube.list_pods(namespace)
    items.sort(key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"]))
    got = await optional("Metrics", _metrics_by_pod(ctx, namespace)) if sort in ("memory", "cpu") else None
    metrics = None if isinstance(got, Failed) else got
    if sort == "restarts":
        items.sort(key=pod_restarts, reverse=True)
    elif metrics is not None:
        index = 1 if sort == "memory" else 0
        items.sort(key=lambda p: usage(metrics.get(_key(p)))[index], reverse=True)
    table = _pods_table(items, metrics, all_namespaces, ctx.namespace)
    where = "all namespaces" if all_namespaces else f"namespace `{ctx.namespace}`"
    unhealthy = sum(1 for p in items if pod_status(p) not in ("Running", "Completed", "Succeeded"))
    what = f"{app} pods" if app else "pods"
    summary = f"{len(items)} {what} in {where}" + (f", {unhealthy} not running" if unhealthy else "")
    parts: list[Part] = [table, *failed_parts(got)]
    if sort and not isinstance(got, Failed):
        parts.append(Note(f"Sorted by {sort}, highest first."))
    return Reply(title=summary, parts=parts, level=degraded("warn" if unhealthy else "ok", got))


def _key(pod: Obj) -> tuple[str, str]:
    return pod["metadata"].get("namespace", ""), pod["metadata"]["name"]


async def _metrics_by_pod(ctx: Context, namespace: str | None) -> dict[tuple[str, str], Obj]:
    items = await ctx.kube.pod_metrics(namespace)
    return {(m["metadata"].get("namespace", ""), m["metadata"]["name"]): m for m in items}


def _pods_table(items: list[Obj], metrics: dict[tuple[str, str], Obj] | None, all_ns: bool, ns: str) -> Table:
    columns = ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = []
    for p in items:
        row = [p["metadata"]["name"], pod_ready(p), pod_status(p), str(pod_restarts(p)),
               age(p["metadata"].get("creationTimestamp"))]
        if metrics is not None:
            found = metrics.get(_key(p))
            cpu, mem = usage(found)
            row += [cpu_text(cpu), mem_text(mem)] if found else ["-", "-"]
        if all_ns:
            row.insert(0, p["metadata"].get("namespace", ""))
        rows.append(row)
    if metrics is not None:
        columns += ["CPU", "MEMORY"]
    if all_ns:
        columns.insert(0, "NAMESPACE")
    empty = "No resources found." if all_ns else f"No resources found in {ns} namespace."
    return Table(columns, rows, empty=empty)


@command(
    "top",
    summary="CPU and memory in use by pods or nodes (kubectl top, from metrics.k8s.io).",
    area=AREA,
    args=[
        pos("WHAT", choice("pods", "nodes"), "pods or nodes"),
        opt("--sort", choice("memory", "cpu"), "order by memory or cpu (highest first)"),
    ],
    example="/cf top pods --sort memory",
    needs=["kube"],
)
async def top(ctx: Context, what: str, sort: str | None = None) -> Reply:
    return await (_top_nodes(ctx, sort) if what == "nodes" else _top_pods(ctx, sort))


def _by(sort: str | None, cpu: float, mem: float, name: str) -> tuple[float, str]:
    if sort == "cpu":
        return -cpu, name
    if sort == "memory":
        return -mem, name
    return 0.0, name


async def _top_pods(ctx: Context, sort: str | None) -> Reply:
    """The metrics are the primary call; the pods (for their memory limits) are an auxiliary part."""
    metrics, pod_list = await asyncio.gather(ctx.kube.pod_metrics(ctx.namespace),
                                             optional("Memory limits", ctx.kube.list_pods(ctx.namespace)))
    pods = [] if isinstance(pod_list, Failed) else pod_list
    limits = {p["metadata"]["name"]: memory_limit(p) for p in pods}
    rows: list[tuple[tuple[float, str], list[str]]] = []
    hot = len(near_memory_limit(metrics, pods))
    for m in metrics:
        name = m["metadata"]["name"]
        cpu, mem = usage(m)
        limit = limits.get(name, 0.0)
        rows.append((_by(sort, cpu, mem, name), [name, cpu_text(cpu), mem_text(mem), percent(mem, limit)]))
    rows.sort(key=lambda r: r[0])
    table = Table(["NAME", "CPU(cores)", "MEMORY(bytes)", "MEMORY/LIMIT"], [r for _, r in rows],
                  empty=f"No metrics for pods in namespace `{ctx.namespace}` (is metrics-server running?).")
    parts: list[Part] = [table, *failed_parts(pod_list)]
    if hot:
        parts.append(Text(f":warning: {plural(hot, 'pod')} at 90% or more of the memory limit: OOM kills are near. "
                          "`/cf describe pod NAME` shows the limits and the last termination reason."))
    title = f"Pod usage in namespace `{ctx.namespace}`" + (f" by {sort}" if sort else "")
    return Reply(title=title, parts=parts, level=degraded("warn" if hot else "info", pod_list))


async def _top_nodes(ctx: Context, sort: str | None) -> Reply:
    """The metrics are the primary call; the nodes (allocatable, for the percentages, and status) are auxiliary."""
    metrics, listed = await asyncio.gather(ctx.kube.node_metrics(), optional("Allocatable and status",
                                                                            ctx.kube.list_nodes()))
    by_name = {m["metadata"]["name"]: m for m in metrics}
    nodes = [{"metadata": {"name": n}} for n in by_name] if isinstance(listed, Failed) else listed
    rows: list[tuple[tuple[float, str], list[str]]] = []
    for node in nodes:
        name = node["metadata"]["name"]
        alloc = node.get("status", {}).get("allocatable") or {}
        found = by_name.get(name)
        if found is None:
            rows.append(((1.0, name), [name, "<unknown>", "<unknown>", "<unknown>", "<unknown>", node_status(node)]))
            continue
        cpu, mem = usage(found)
        status = "-" if isinstance(listed, Failed) else node_status(node)
        rows.append((_by(sort, cpu, mem, name), [name, cpu_text(cpu), percent(cpu, quantity(alloc.get("cpu"))),
                                                 mem_text(mem), percent(mem, quantity(alloc.get("memory"))), status]))
    rows.sort(key=lambda r: r[0])
    table = Table(["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%", "STATUS"], [r for _, r in rows])
    missing = len(nodes) - len([n for n in nodes if n["metadata"]["name"] in by_name])
    parts: list[Part] = [table, *failed_parts(listed)]
    if missing:
        parts.append(Note(f"{plural(missing, 'node')} without metrics (not Ready: metrics-server cannot scrape it)."))
    return Reply(title="Node usage" + (f" by {sort}" if sort else ""), parts=parts,
                 level=degraded("warn" if missing else "info", listed))


@command(
    "events",
    summary="Events in the namespace, newest first; --warnings for warnings only.",
    area=AREA,
    args=[switch("--warnings", "only Warning events", short="-w")],
    aliases=["get events"],
    example="/cf events --warnings",
    needs=["kube"],
)
async def events(ctx: Context, warnings: bool = False) -> Reply:
    items = await ctx.kube.list_events(ctx.namespace)
    if warnings:
        items = [e for e in items if e.get("type") == "Warning"]
    rows = [event_row(e) for e in newest_first(items)]
    kind = "warning events" if warnings else "events"
    table = Table(["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], rows,
                  empty=f"No {kind} in namespace `{ctx.namespace}` (events are kept for an hour).")
    level: Level = "warn" if any(e.get("type") == "Warning" for e in items) else "info"
    return Reply(title=f"{len(items)} {kind} in namespace `{ctx.namespace}`, newest first", parts=[table], level=level)


# --- crash loops ------------------------------------------------------------------------------

CRASHLOOP_PODS = 5  # a crash-looping rollout can take dozens of pods; the first few tell the story
PREVIOUS_LINES = 15


def _crashlooping(pod: Obj) -> bool:
    return any((c.get("state", {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
               for c in pod.get("status", {}).get("containerStatuses") or [])


@command(
    "crashloop",
    summary="Crash-looping pods at once: last state and exit reason, previous logs, requests/limits.",
    area=AREA,
    args=[pos("POD", k8s_name, "one pod to examine (default: every pod in CrashLoopBackOff)", default=None)],
    example="/cf crashloop",
    needs=["kube"],
)
async def crashloop(ctx: Context, pod: str | None = None) -> Reply:
    if pod:
        found = [await find_pod(ctx, pod)]
    else:
        found = [p for p in await ctx.kube.list_pods(ctx.namespace) if _crashlooping(p)]
        found.sort(key=pod_restarts, reverse=True)
    if not found:
        return Reply(title=f"No pods in CrashLoopBackOff in namespace `{ctx.namespace}`", level="ok",
                     parts=[Note("`/cf pods --sort restarts` shows pods that restarted but are running now.")])
    shown = found[:CRASHLOOP_PODS]
    sections = await asyncio.gather(*(_crash_parts(ctx, p) for p in shown))
    parts: list[Part] = [part for section in sections for part in section]
    if len(found) > len(shown):
        parts.append(Note(f"{len(found) - len(shown)} more crash-looping pods not shown; `/cf pods --sort restarts`."))
    title = (f"{plural(len(found), 'pod')} crash-looping in namespace `{ctx.namespace}`" if not pod
             else f"Pod {pod}: {pod_status(found[0])}")
    return Reply(title=title, parts=parts, level="error" if _crashlooping(found[0]) else "warn")


async def _crash_parts(ctx: Context, pod: Obj) -> list[Part]:
    name = pod["metadata"]["name"]
    specs = {c["name"]: c for c in pod.get("spec", {}).get("containers") or []}
    parts: list[Part] = []
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        container = cs["name"]
        last = (cs.get("lastState") or {}).get("terminated") or {}
        parts.append(Text(_crash_summary(name, cs, specs.get(container, {}), last)))
        if last:  # the previous log is an auxiliary part: the pod's state above is what was asked
            tail = await optional(f"Previous log of {code(name)} / {code(container)}",
                                  _previous_tail(ctx, name, container))
            parts.append(tail.part() if isinstance(tail, Failed)
                         else Code(tail, empty="(the previous container logged nothing)"))
    return parts


def _crash_summary(pod: str, cs: Obj, spec: Obj, last: Obj) -> str:
    state = cs.get("state") or {}
    now = next(iter(state), "unknown")
    reason = (state.get(now) or {}).get("reason", "")
    lines = [f"*{pod}* / `{cs['name']}` — {now}{f' ({reason})' if reason else ''}, "
             f"{plural(int(cs.get('restartCount', 0)), 'restart')}"]
    if last:
        lines.append(f"Last termination: *{last.get('reason', 'Error')}*, exit code {last.get('exitCode', '?')}, "
                     f"finished {age(last.get('finishedAt'))} ago")
    lines.append(f"Requests/limits: {container_resources(spec)}")
    if last.get("reason") == "OOMKilled":
        lines.append(":bulb: OOMKilled: the container used its whole memory limit. Raise the limit or find the "
                     "leak (`/cf top pods --sort memory`).")
    return "\n".join(lines)


async def _previous_tail(ctx: Context, pod: str, container: str) -> str:
    text = await ctx.kube.pod_log(ctx.namespace, pod, container=container, previous=True, tail=PREVIOUS_LINES)
    return str(text).rstrip("\n")
