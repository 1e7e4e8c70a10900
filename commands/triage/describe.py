"""`describe pod|node|deployment NAME`: what `kubectl describe` tells an engineer, condensed.

Conditions, requests and limits, the last termination reason (OOMKilled is the usual answer to a
restart), and the object's recent events. Environment variables are left out on purpose: they are
where credentials hide, and a Secret's data must never reach Slack.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from base.text import code, literal
from commands.args import choice, k8s_name, pos
from commands.base import Context, command
from commands.parts import Failed, degraded, optional
from commands.reply import Fields, Level, Note, Part, Reply, Table, Text
from commands.support.kube import (
    age,
    container_resources,
    controller_of,
    cpu_text,
    deployment_ready,
    event_row,
    find_deployment,
    find_node,
    find_pod,
    mem_text,
    newest_first,
    node_status,
    percent,
    pod_ready,
    pod_requests,
    pod_restarts,
    pod_status,
    quantity,
)

AREA = "Triage"
Obj = dict[str, Any]
EVENTS_SHOWN = 10


@command(
    "describe",
    summary="Conditions, requests/limits, last termination reason and recent events of a pod, node or deployment.",
    area=AREA,
    args=[
        pos("KIND", choice("pod", "node", "deployment"), "pod, node or deployment"),
        pos("NAME", k8s_name, "its name"),
    ],
    example="/cf describe pod graphql-api-5d9c855b84-abcde",
    needs=["kube"],
)
async def describe(ctx: Context, kind: str, name: str) -> Reply:
    if kind == "pod":
        return await _describe_pod(ctx, name)
    if kind == "node":
        return await _describe_node(ctx, name)
    return await _describe_deployment(ctx, name)


async def _events_for(ctx: Context, kind: str, name: str, namespace: str | None) -> Table | Failed:
    """The object's events: an auxiliary part of every `describe` (the object itself is the primary call)."""
    return await optional("Events", _events_table(ctx, kind, name, namespace))


async def _events_table(ctx: Context, kind: str, name: str, namespace: str | None) -> Table:
    selector = f"involvedObject.kind={kind},involvedObject.name={name}"
    items = await ctx.kube.list_events(namespace, field_selector=selector)
    rows = [event_row(e, with_object=False) for e in newest_first(items)[:EVENTS_SHOWN]]
    return Table(["LAST SEEN", "TYPE", "REASON", "MESSAGE"], rows, empty="No events in the last hour.")


def _events_parts(events: Table | Failed) -> list[Part]:
    return [events.part()] if isinstance(events, Failed) else [Text("*Events*"), events]


def _conditions(obj: Obj) -> str:
    conds = obj.get("status", {}).get("conditions") or []
    return literal(", ".join(f"{c.get('type')}={c.get('status')}" for c in conds)) or "none reported"


async def _describe_pod(ctx: Context, name: str) -> Reply:
    pod, events = await asyncio.gather(find_pod(ctx, name), _events_for(ctx, "Pod", name, ctx.namespace))
    owner = controller_of(pod)
    status = pod.get("status", {})
    fields = Fields([
        ("Status", f"{pod_status(pod)} ({pod_ready(pod)} ready, {pod_restarts(pod)} restarts)"),
        ("Node", str(pod.get("spec", {}).get("nodeName") or "not scheduled")),
        ("Started", f"{age(status.get('startTime'))} ago"),
        ("IP", str(status.get("podIP", "-"))),
        ("Controlled by", f"{owner['kind']}/{owner['name']}" if owner else "nothing (a bare pod)"),
        ("Conditions", _conditions(pod)),
    ])
    specs = {c["name"]: c for c in pod.get("spec", {}).get("containers") or []}
    lines = [_container_line(cs, specs.get(cs["name"], {})) for cs in status.get("containerStatuses") or []]
    oom = any(((cs.get("lastState") or {}).get("terminated") or {}).get("reason") == "OOMKilled"
              for cs in status.get("containerStatuses") or [])
    parts: list[Part] = [fields, Text("*Containers*\n" + ("\n".join(lines) or "none started yet")),
                         *_events_parts(events)]
    if oom:
        parts.append(Note("Last termination was OOMKilled: the container reached its memory limit."))
    level: Level = "ok" if pod_status(pod) == "Running" and not oom else "warn"
    return Reply(title=f"Pod {name} in namespace `{ctx.namespace}`", parts=parts, level=degraded(level, events))


def _container_line(cs: Obj, spec: Obj) -> str:
    state = cs.get("state") or {}
    now = next(iter(state), "unknown")
    reason = (state.get(now) or {}).get("reason")
    text = (f"• {code(cs['name'])} {code(spec.get('image', cs.get('image', '')))} — {literal(now)}"
            + (f" ({literal(reason)})" if reason else ""))
    text += f", ready={str(bool(cs.get('ready'))).lower()}, restarts={cs.get('restartCount', 0)}"
    last = (cs.get("lastState") or {}).get("terminated")
    if last:
        text += (f"\n    last terminated: *{literal(last.get('reason', 'Error'))}* "
                 f"(exit code {literal(last.get('exitCode', '?'))}) "
                 f"{age(last.get('finishedAt'))} ago")
    return text + f"\n    requests/limits: {container_resources(spec)}"


async def _describe_node(ctx: Context, name: str) -> Reply:
    """The node is the primary call; the pods on it (for the requests) and its events are auxiliary."""
    node, pods, events = await asyncio.gather(
        find_node(ctx, name), optional("Pods on the node", ctx.kube.pods_on_node(name)),
        _events_for(ctx, "Node", name, None))
    spec, status = node.get("spec", {}), node.get("status", {})
    alloc = status.get("allocatable") or {}
    taints = ", ".join(f"{t.get('key')}:{t.get('effect')}" for t in spec.get("taints") or []) or "none"
    info = status.get("nodeInfo") or {}
    pairs = [("Status", node_status(node)), ("Conditions", _conditions(node)), ("Taints", literal(taints))]
    if not isinstance(pods, Failed):
        running = [p for p in pods if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")]
        cpu = sum(pod_requests(p)[0] for p in running)
        mem = sum(pod_requests(p)[1] for p in running)
        pairs += [("Pods", f"{len(running)} of {alloc.get('pods', '?')}"),
                  ("CPU requests", _share(cpu, alloc.get("cpu"), cpu_text)),
                  ("Memory requests", _share(mem, alloc.get("memory"), mem_text))]
    pairs += [("Kubelet", str(info.get("kubeletVersion", "?"))),
              ("Age", age(node["metadata"].get("creationTimestamp")))]
    parts: list[Part] = [Fields(pairs)]
    if isinstance(pods, Failed):
        parts.append(pods.part())
    parts += _events_parts(events)
    level: Level = "ok" if node_status(node) == "Ready" else "warn"
    return Reply(title=f"Node {name}", parts=parts, level=degraded(level, pods, events))


def _share(used: float, allocatable: Any, fmt: Callable[[float], str]) -> str:
    whole = quantity(allocatable)
    return f"{fmt(used)} of {fmt(whole)} ({percent(used, whole)})"


async def _describe_deployment(ctx: Context, name: str) -> Reply:
    dep, events = await asyncio.gather(find_deployment(ctx, name), _events_for(ctx, "Deployment", name, ctx.namespace))
    spec, status = dep.get("spec", {}), dep.get("status", {})
    strategy = spec.get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    annotations = dep["metadata"].get("annotations") or {}
    fields = Fields([
        ("Replicas", f"{deployment_ready(dep)} ready, {status.get('updatedReplicas', 0)} updated, "
                     f"{status.get('unavailableReplicas', 0)} unavailable"),
        ("Strategy", f"{strategy.get('type', 'RollingUpdate')} (max surge {rolling.get('maxSurge', '25%')}, "
                     f"max unavailable {rolling.get('maxUnavailable', '25%')})"),
        ("Revision", str(annotations.get("deployment.kubernetes.io/revision", "?"))),
        ("Change cause", literal(annotations.get("kubernetes.io/change-cause", "-"), 300)),
        ("Conditions", _conditions(dep)),
        ("Age", age(dep["metadata"].get("creationTimestamp"))),
    ])
    containers = spec.get("template", {}).get("spec", {}).get("containers") or []
    lines = [f"• {code(c['name'])} {code(c.get('image', ''))}\n    requests/limits: {literal(container_resources(c))}"
             for c in containers]
    parts: list[Part] = [fields, Text("*Containers*\n" + "\n".join(lines)), *_events_parts(events)]
    ready = int(status.get("readyReplicas") or 0) >= int(spec.get("replicas") or 0)
    return Reply(title=f"Deployment {name} in namespace `{ctx.namespace}`", parts=parts,
                 level=degraded("ok" if ready else "warn", events))
