"""`describe hpa NAME` and `describe ingress NAME`: what `kubectl describe` tells about scaling and routing.

The runbook's "Check current HPA status" (`kubectl describe hpa`) and "Check load balancer
configuration" (`kubectl describe ingress collaboration-ingress`). For an autoscaler: its metrics
against their targets, the replica range, and the conditions that say why it does or does not scale.
For an ingress: the load balancer's address, TLS, and every rule's backend with the ready pod
endpoints behind it, as kubectl lists them; a path whose service has no ready pod is what the load
balancer answers 503 for, so it is named. Kept beside `describe pod|node|deployment` (commands/triage/describe.py)
as commands of their own: `describe hpa` and `describe ingress` are matched before `describe KIND`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from base.text import code, literal, one_line, plural
from commands.args import k8s_name, pos
from commands.base import CommandError, Context, command
from commands.reply import Fields, Level, Note, Part, Reply, Table, Text
from commands.support.kube import age, event_row, newest_first
from integrations.errors import IntegrationError, NotFound

AREA = "Triage"
EVENTS_SHOWN = 10
ENDPOINTS_SHOWN = 4
Obj = dict[str, Any]


async def _get(ctx: Context, kind: str, name: str, listing: str) -> Obj:
    try:
        return dict(await ctx.kube.get_object(kind, ctx.namespace, name))
    except NotFound:
        names = sorted(o["metadata"]["name"] for o in await ctx.kube.list_objects(kind, ctx.namespace))
        known = ", ".join(f"`{n}`" for n in names) or "none"
        raise CommandError(f"{listing} `{name}` was not found in namespace `{ctx.namespace}`. "
                           f"There: {known}.") from None


async def _events(ctx: Context, kind: str, name: str) -> list[Part]:
    """The object's recent events; a failure to read them is one line, not the end of the answer."""
    selector = f"involvedObject.kind={kind},involvedObject.name={name}"
    try:
        items = await ctx.kube.list_events(ctx.namespace, field_selector=selector)
    except IntegrationError as exc:
        return [Note(f"Events could not be read: {literal(exc.message)}")]
    rows = [event_row(e, with_object=False) for e in newest_first(items)[:EVENTS_SHOWN]]
    return [Text("*Events*"),
            Table(["LAST SEEN", "TYPE", "REASON", "MESSAGE"], rows, empty="No events in the last hour.")]


def _conditions(obj: Obj) -> Table:
    rows = [[str(c.get("type", "")), str(c.get("status", "")), str(c.get("reason", "")),
             one_line(str(c.get("message", "")), 160)] for c in (obj.get("status") or {}).get("conditions") or []]
    return Table(["CONDITION", "STATUS", "REASON", "MESSAGE"], rows, empty="No conditions reported yet.")


# --- hpa -----------------------------------------------------------------------------------------


@command(
    "describe hpa",
    summary="An autoscaler as `kubectl describe hpa` shows it: metrics against targets, min/max, replicas, the "
            "conditions that say why it scales or not, and its events.",
    area=AREA,
    args=[pos("NAME", k8s_name, "the autoscaler (`/cf hpa` lists them)")],
    example="/cf describe hpa graphql-api",
    needs=["kube"],
)
async def describe_hpa(ctx: Context, name: str) -> Reply:
    hpa, events = await asyncio.gather(_get(ctx, "HorizontalPodAutoscaler", name, "Autoscaler"),
                                       _events(ctx, "HorizontalPodAutoscaler", name))
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    low, high = int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 0)
    current, desired = int(status.get("currentReplicas") or 0), int(status.get("desiredReplicas") or 0)
    last = status.get("lastScaleTime")
    fields = Fields([
        ("Reference", code(f"{ref.get('kind', '?')}/{ref.get('name', '?')}")),
        ("Replicas", f"{current} current / {desired} desired"),
        ("Min / max", f"{low} / {high}"),
        ("Last scaled", f"{age(last)} ago" if last else "never"),
        ("Age", age(hpa["metadata"].get("creationTimestamp"))),
    ])
    notes = _hpa_notes(hpa, current, high)
    parts: list[Part] = [fields, _hpa_metrics(hpa), _conditions(hpa), *events, *(Note(n) for n in notes)]
    level: Level = "warn" if notes else "ok"
    return Reply(title=f"Autoscaler {name} in namespace `{ctx.namespace}`: {current} of {low}..{high} replicas",
                 parts=parts, level=level)


def _hpa_metrics(hpa: Obj) -> Table:
    """Each spec metric with the current value the controller observed, `kubectl describe hpa` style."""
    current = {(m.get("type"), (m.get("resource") or {}).get("name")): (m.get("resource") or {}).get("current") or {}
               for m in (hpa.get("status") or {}).get("currentMetrics") or []}
    rows = []
    for m in (hpa.get("spec") or {}).get("metrics") or []:
        kind = str(m.get("type", "?"))
        if kind != "Resource":
            rows.append([f"{kind.lower()} metric", "-", "-"])
            continue
        res = m.get("resource") or {}
        target, now = res.get("target") or {}, current.get((kind, res.get("name"))) or {}
        if target.get("type") == "Utilization" or "averageUtilization" in target:
            label = f"resource {res.get('name')} on pods (as a percentage of request)"
            shown = (f"{now['averageUtilization']}% ({now.get('averageValue', '?')})"
                     if "averageUtilization" in now else "<unknown>")
            wanted = f"{target.get('averageUtilization', '?')}%"
        else:
            label = f"resource {res.get('name')} on pods"
            shown, wanted = str(now.get("averageValue", "<unknown>")), str(target.get("averageValue", "?"))
        rows.append([label, shown, wanted])
    return Table(["METRIC", "CURRENT", "TARGET"], rows, empty="No metrics in the spec.")


def _hpa_notes(hpa: Obj, current: int, high: int) -> list[str]:
    conditions = {c.get("type"): c for c in (hpa.get("status") or {}).get("conditions") or []}
    notes = []
    if high and current >= high:
        notes.append(f"At its maximum ({high}): it cannot scale further. Raise maxReplicas, or add nodes "
                     "if pods would not fit (`/cf nodes`).")
    active = conditions.get("ScalingActive")
    if active is not None and active.get("status") != "True":
        notes.append(f"Not scaling: {literal(active.get('reason', ''))}. Check that metrics-server answers "
                     "(`/cf top pods`).")
    return notes


# --- ingress -------------------------------------------------------------------------------------


@command(
    "describe ingress",
    summary="An ingress as `kubectl describe ingress` shows it: the load balancer's address, TLS, each rule's "
            "backend and the ready pods behind it, annotations and events.",
    area=AREA,
    args=[pos("NAME", k8s_name, "the ingress (the runbook's is collaboration-ingress)")],
    example="/cf describe ingress collaboration-ingress",
    needs=["kube"],
)
async def describe_ingress(ctx: Context, name: str) -> Reply:
    ing, services, pods, events = await asyncio.gather(
        _get(ctx, "Ingress", name, "Ingress"), ctx.kube.list_objects("Service", ctx.namespace),
        ctx.kube.list_pods(ctx.namespace), _events(ctx, "Ingress", name))
    spec, meta = ing.get("spec") or {}, ing["metadata"]
    by_name = {s["metadata"]["name"]: s for s in services}
    rows, empty = [], []
    for rule in spec.get("rules") or []:
        host = str(rule.get("host") or "*")
        for path in (rule.get("http") or {}).get("paths") or []:
            backend, endpoints, served = _backend(path.get("backend") or {}, by_name, pods)
            rows.append([host, str(path.get("path", "/")), backend, endpoints])
            if not served:
                empty.append(f"{code(host + str(path.get('path', '/')))} → {code(backend)}: {literal(endpoints)}")
    default = spec.get("defaultBackend")
    addresses = [a.get("hostname") or a.get("ip") for a in
                 ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]
    tls = ["{} ({})".format(", ".join(t.get("hosts") or ["*"]), t.get("secretName") or "certificate from annotations")
           for t in spec.get("tls") or []]
    fields = Fields([
        ("Address", literal(", ".join(a for a in addresses if a)) or "none yet (no load balancer assigned)"),
        ("Class", code(spec.get("ingressClassName") or meta.get("annotations", {}).get(
            "kubernetes.io/ingress.class", "<none>"))),
        ("Default backend", code(_backend(default, by_name, pods)[0]) if default else "<default>"),
        ("TLS", literal("; ".join(tls)) or "none"),
        ("Age", age(meta.get("creationTimestamp"))),
    ])
    annotations = meta.get("annotations") or {}
    parts: list[Part] = [fields, Table(["HOST", "PATH", "BACKEND", "ENDPOINTS (ready pods)"], rows,
                                       empty="No rules.")]
    if annotations:
        parts.append(Text("*Annotations*\n" + "\n".join(f"• {code(k)}: {literal(v, 200)}"
                                                         for k, v in sorted(annotations.items()))))
    parts += events
    if empty:
        parts.append(Note("No ready endpoints (the load balancer answers 503 there): " + "; ".join(empty)))
    if not addresses:
        parts.append(Note("No load balancer address: the ingress controller has not provisioned one."))
    level: Level = "warn" if empty or not addresses else "ok"
    return Reply(title=f"Ingress {name} in namespace `{ctx.namespace}`: {plural(len(rows), 'path')}, "
                       f"{len(rows) - len(empty)} with ready endpoints", parts=parts, level=level)


def _backend(backend: Obj, services: dict[str, Obj], pods: list[Obj]) -> tuple[str, str, bool]:
    """(`service:port`, the ready endpoints behind it or why there are none, whether there are any)."""
    service = backend.get("service")
    if not service:
        resource = backend.get("resource") or {}
        return f"{resource.get('kind', '?')}/{resource.get('name', '?')}", "-", True
    port = service.get("port") or {}
    wanted = port.get("number", port.get("name", "?"))
    label = f"{service.get('name')}:{wanted}"
    svc = services.get(str(service.get("name")))
    if svc is None:
        return label, "<error: service not found>", False
    sport = next((p for p in (svc.get("spec") or {}).get("ports") or []
                  if p.get("port") == wanted or (p.get("name") and p.get("name") == wanted)), None)
    if sport is None:
        return label, f"<error: the service has no port {wanted}>", False
    selector = (svc.get("spec") or {}).get("selector") or {}
    if not selector:
        return label, "<no selector: endpoints are managed by hand>", True
    members = [p for p in pods if _ready(p) and all(
        (p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
    if not members:
        return label, "<none: no ready pod matches the service>", False
    found = [f"{p['status']['podIP']}:{_target_port(sport, p)}" for p in members]
    more = f" + {len(found) - ENDPOINTS_SHOWN} more" if len(found) > ENDPOINTS_SHOWN else ""
    return label, ", ".join(found[:ENDPOINTS_SHOWN]) + more, True


def _ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return bool(status.get("podIP")) and any(c.get("type") == "Ready" and c.get("status") == "True"
                                             for c in status.get("conditions") or [])


def _target_port(service_port: Obj, pod: Obj) -> Any:
    """A service port's targetPort on this pod: a number, or a named container port resolved."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    for container in (pod.get("spec") or {}).get("containers") or []:
        for p in container.get("ports") or []:
            if p.get("name") == target:
                return p.get("containerPort")
    return target
