"""Helpers shared by the Kubernetes command modules (triage, logs, nodes, scaling, security).

Plain functions over the JSON dicts `integrations.kube` returns: objects the way kubectl prints them
(ages, pod status, readiness), resource quantities, events, owners, the replica limit `scale` and
`scale all` share, and lookups that turn a 404 into a sentence naming what does exist. Kept here (a
private module the catalog does not import as commands) because one command module never imports another.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Iterable
from datetime import UTC, datetime
from typing import Any

from base.text import one_line
from commands.base import CommandError, Context
from commands.parts import Failed, optional
from integrations.errors import NotFound

Obj = dict[str, Any]

_SUFFIX = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
           "E": 1e18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?\d+)?)(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


# --- as kubectl prints them ------------------------------------------------------------------


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(value: str | None, now: datetime | None = None) -> str:
    """kubectl's HumanDuration: 45s, 12m, 5h3m, 3d4h, 90d."""
    start = parse_time(value)
    if start is None:
        return "<unknown>"
    seconds = int(((now or datetime.now(UTC)) - start).total_seconds())
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    return f"{days}d"


def pod_ready(pod: Obj) -> str:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    total = len(pod.get("spec", {}).get("containers") or statuses)
    ready = sum(1 for c in statuses if c.get("ready"))
    return f"{ready}/{total}"


def pod_restarts(pod: Obj) -> int:
    return sum(int(c.get("restartCount", 0)) for c in pod.get("status", {}).get("containerStatuses") or [])


def pod_status(pod: Obj) -> str:
    """The STATUS column of `kubectl get pods` (waiting/terminated reasons win over the phase)."""
    meta, status = pod.get("metadata", {}), pod.get("status", {})
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for c in status.get("initContainerStatuses") or []:
        state = c.get("state", {})
        if state.get("terminated", {}).get("exitCode", 0) != 0:
            return f"Init:{state['terminated'].get('reason') or 'Error'}"
        if state.get("waiting", {}).get("reason") not in (None, "PodInitializing"):
            return f"Init:{state['waiting']['reason']}"
    for c in reversed(status.get("containerStatuses") or []):
        state = c.get("state", {})
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated", {}).get("reason"):
            reason = state["terminated"]["reason"]
    if meta.get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def deployment_ready(dep: Obj) -> str:
    status = dep.get("status", {})
    return f"{status.get('readyReplicas', 0) or 0}/{dep.get('spec', {}).get('replicas', 0)}"


# --- the replica limit ---------------------------------------------------------------------


def check_replicas(ctx: Context, replicas: int, lowest: int = 0) -> None:
    """The one limit `scale` and `scale all` share: `lowest` to `limits.max_replicas`, else a refusal."""
    limit = int(ctx.settings.limits.max_replicas)
    if not lowest <= replicas <= limit:
        raise CommandError(f"REPLICAS must be between {lowest} and {limit} (limits.max_replicas); {replicas} is not.")


# --- quantities and resources --------------------------------------------------------------


def quantity(value: Any) -> float:
    """A Kubernetes quantity ("250m", "512Mi", "1.5", 2) as a float of base units (cores, bytes)."""
    if value is None or value == "":
        return 0.0
    match = _QUANTITY.match(str(value).strip())
    if not match:
        return 0.0
    return float(match[1]) * _SUFFIX[match[2] or ""]


def cpu_text(cores: float) -> str:
    """Millicores, as `kubectl top` prints them."""
    return f"{round(cores * 1000)}m"


def mem_text(size: float) -> str:
    """Mebibytes (or gibibytes past 10Gi), as `kubectl top` prints them."""
    mib = size / 2**20
    return f"{mib / 1024:.1f}Gi" if mib >= 10240 else f"{round(mib)}Mi"


def percent(part: float, whole: float) -> str:
    return f"{round(100 * part / whole)}%" if whole else "-"


def container_resources(container: Obj) -> str:
    """`cpu 500m/1, memory 512Mi/1Gi` (requests/limits; `-` where unset)."""
    res = container.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    return ", ".join(f"{r} {req.get(r, '-')}/{lim.get(r, '-')}" for r in ("cpu", "memory"))


def pod_requests(pod: Obj) -> tuple[float, float]:
    """Summed container requests (cores, bytes): what the scheduler counts against a node."""
    cpu = mem = 0.0
    for c in pod.get("spec", {}).get("containers") or []:
        req = (c.get("resources") or {}).get("requests") or {}
        cpu += quantity(req.get("cpu"))
        mem += quantity(req.get("memory"))
    return cpu, mem


def memory_limit(pod: Obj) -> float:
    return sum(quantity(((c.get("resources") or {}).get("limits") or {}).get("memory"))
               for c in pod.get("spec", {}).get("containers") or [])


def usage(metrics: Obj | None) -> tuple[float, float]:
    """(cores, bytes) from a PodMetrics (summed over containers) or NodeMetrics object."""
    if not metrics:
        return 0.0, 0.0
    if "usage" in metrics:
        return quantity(metrics["usage"].get("cpu")), quantity(metrics["usage"].get("memory"))
    cpu = sum(quantity(c.get("usage", {}).get("cpu")) for c in metrics.get("containers") or [])
    mem = sum(quantity(c.get("usage", {}).get("memory")) for c in metrics.get("containers") or [])
    return cpu, mem


MEMORY_NEAR_LIMIT = 0.9  # the runbook's memory threshold: at 90% of the limit, OOM kills are near


def memory_share(metrics: Obj, limit: float) -> float | None:
    """Memory in use (metrics.k8s.io) as a share of the pod's container limits; None without a limit."""
    return usage(metrics)[1] / limit if limit else None


def near_memory_limit(metrics: Iterable[Obj], pods: Iterable[Obj]) -> list[tuple[str, float]]:
    """(pod, share of its memory limit) for each pod at `MEMORY_NEAR_LIMIT` or more, highest first."""
    limits = {p["metadata"]["name"]: memory_limit(p) for p in pods}
    hot = []
    for m in metrics:
        name = m["metadata"]["name"]
        share = memory_share(m, limits.get(name, 0.0))
        if share is not None and share >= MEMORY_NEAR_LIMIT:
            hot.append((name, share))
    return sorted(hot, key=lambda h: (-h[1], h[0]))


def hpa_replicas(hpa: Obj) -> tuple[int, int, int]:
    """(current, min, max) replicas of a HorizontalPodAutoscaler."""
    spec, status = hpa.get("spec", {}), hpa.get("status", {})
    return int(status.get("currentReplicas") or 0), int(spec.get("minReplicas", 1)), int(spec.get("maxReplicas") or 0)


def hpa_at_max(hpa: Obj) -> bool:
    """At its maximum: it cannot add a replica however high the load goes."""
    current, _, cap = hpa_replicas(hpa)
    return bool(cap) and current >= cap


def hpa_for(hpas: Iterable[Obj], deployment: str) -> Obj | None:
    """The autoscaler whose target is the deployment, if any."""
    return next((h for h in hpas if (h.get("spec", {}).get("scaleTargetRef") or {}).get("kind") == "Deployment"
                 and h["spec"]["scaleTargetRef"].get("name") == deployment), None)


def controller_of(obj: Obj) -> Obj | None:
    return next((o for o in obj.get("metadata", {}).get("ownerReferences") or [] if o.get("controller")), None)


def is_daemonset_pod(pod: Obj) -> bool:
    owner = controller_of(pod)
    return owner is not None and owner.get("kind") == "DaemonSet"


def is_mirror_pod(pod: Obj) -> bool:
    return "kubernetes.io/config.mirror" in (pod.get("metadata", {}).get("annotations") or {})


def node_ready(node: Obj) -> str:
    """The Ready condition's status ("True", "False", "Unknown")."""
    cond = next((c for c in node.get("status", {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    return str(cond.get("status", "Unknown")) if cond else "Unknown"


def node_status(node: Obj) -> str:
    """The STATUS column of `kubectl get nodes`."""
    status = "Ready" if node_ready(node) == "True" else "NotReady"
    return status + (",SchedulingDisabled" if node.get("spec", {}).get("unschedulable") else "")


# --- events ---------------------------------------------------------------------------------


def event_time(event: Obj) -> datetime:
    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        found = parse_time(event.get(key) or (event.get("metadata") or {}).get("creationTimestamp"))
        if found is not None:
            return found
    return datetime.fromtimestamp(0, UTC)


def newest_first(events: Iterable[Obj]) -> list[Obj]:
    return sorted(events, key=event_time, reverse=True)


def event_row(event: Obj, with_object: bool = True) -> list[str]:
    obj = event.get("involvedObject") or {}
    count = int(event.get("count") or 1)
    seen = age(event_time(event).isoformat()) + (f" (x{count})" if count > 1 else "")
    row = [seen, str(event.get("type", "")), str(event.get("reason", ""))]
    if with_object:
        row.append(f"{str(obj.get('kind', '')).lower()}/{obj.get('name', '')}")
    row.append(one_line(str(event.get("message", "")), 160))
    return row


# --- lookups that explain a miss ------------------------------------------------------------


def _known(names: Iterable[str] | Failed, limit: int = 12) -> str:
    """The names that do exist, for a refusal; the list is an auxiliary part (a 404 says enough alone)."""
    if isinstance(names, Failed):
        return f"(the list is {names.detail})"
    ordered = sorted(names)
    shown = ", ".join(f"`{n}`" for n in ordered[:limit]) or "none"
    return shown + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")


async def find_deployment(ctx: Context, name: str) -> Obj:
    try:
        return dict(await ctx.kube.get_deployment(ctx.namespace, name))
    except NotFound:
        names = await optional("Deployments", _names(ctx.kube.list_deployments(ctx.namespace)))
        raise CommandError(f"Deployment `{name}` was not found in namespace `{ctx.namespace}`. "
                           f"Deployments there: {_known(names)}.") from None


async def find_pod(ctx: Context, name: str) -> Obj:
    try:
        return dict(await ctx.kube.get_pod(ctx.namespace, name))
    except NotFound:
        pods = await optional("Pods", _names(ctx.kube.list_pods(ctx.namespace)))
        close = [] if isinstance(pods, Failed) else [p for p in pods if name in p]
        hint = f" Pods with that in their name: {_known(close)}." if close else " `/cf pods` lists them."
        raise CommandError(f"Pod `{name}` was not found in namespace `{ctx.namespace}`.{hint}") from None


async def find_node(ctx: Context, name: str) -> Obj:
    try:
        return dict(await ctx.kube.get_node(name))
    except NotFound:
        names = await optional("Nodes", _names(ctx.kube.list_nodes()))
        raise CommandError(f"Node `{name}` was not found. Nodes: {_known(names)}.") from None


async def _names(listing: Awaitable[list[Obj]]) -> list[str]:
    return [o["metadata"]["name"] for o in await listing]


def app_names(pods: Iterable[Obj]) -> list[str]:
    return sorted({str(p["metadata"].get("labels", {}).get("app")) for p in pods
                   if p["metadata"].get("labels", {}).get("app")})


async def pods_of_app(ctx: Context, app: str) -> list[Obj]:
    """Pods labelled app=APP; none is a refusal that lists the apps there are."""
    pods = await ctx.kube.list_pods(ctx.namespace, label_selector=f"app={app}")
    if not pods:
        listed = await optional("Apps", ctx.kube.list_pods(ctx.namespace))
        apps = listed if isinstance(listed, Failed) else app_names(listed)
        raise CommandError(f"No pods with label `app={app}` in namespace `{ctx.namespace}`. "
                           f"Apps there: {_known(apps)}.")
    return sorted(pods, key=lambda p: p["metadata"]["name"])
