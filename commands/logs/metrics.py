"""Logs & Metrics, the scrapes and probes: `metrics` (curl .../metrics | grep) and `ws probe` (wscat -c wss://...).

Both first look from the outside, as the runbook does, at the URLs in config `probes`. Both can also look
from the inside, through the API server's pods proxy (no exec): `metrics --per-pod` scrapes every pod of
the app, because a load balancer answers from one pod at a time and one pod with an exhausted database
pool is otherwise missed; `ws probe --in-cluster` opens the WebSocket on each pod, so a failure through
the load balancer with pods that answer directly reads as a load-balancer fault, and a failure
everywhere as a service fault.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from base.patterns import UserPattern
from base.text import code, literal, one_line, plural
from commands.args import k8s_name, opt, pos, regex, switch
from commands.base import CommandError, Context, command
from commands.reply import Fields, Level, Note, Part, Reply, Table, Text
from commands.support import proxy as proxied
from commands.support.proxy import port_number, target_pods
from integrations import probes
from integrations.errors import IntegrationError

AREA = "Logs & Metrics"
PROBE_TIMEOUT = 5.0
CONCURRENCY = 8
MAX_PODS = 50
SIDE_BY_SIDE = 6  # `metrics --per-pod`: pods shown as columns up to this many, else one row per pod
WS_APP = "websocket-service"  # the runbook's WebSocket service (label app=websocket-service)
WS_PATH = "/graphql"  # wscat -c wss://ws.candlefish.ai/graphql (the configured URL's path wins)
WS_SUBPROTOCOLS = ["graphql-transport-ws", "graphql-ws"]
Obj = dict[str, Any]


@command(
    "metrics",
    summary="Scrape a service's Prometheus /metrics and show the series matching a pattern; `--per-pod` scrapes "
            "every pod of the app through the pods proxy, side by side.",
    area=AREA,
    args=[
        pos("SERVICE", k8s_name, "a service from config `probes.metrics`; with --per-pod, an app (label app=...)"),
        pos("PATTERN", regex, "a regular expression over the series (e.g. db_connections, go_gc)", default=None),
        switch("--per-pod", "scrape each pod's /metrics through the API server's pods proxy (no exec)"),
        opt("--port", port_number, "with --per-pod: the pods' metrics port (default: the port named metrics or http)",
            metavar="PORT"),
    ],
    example="/cf metrics graphql-api db_connections --per-pod",
    needs=["kube"],  # --per-pod
)
async def metrics(ctx: Context, service: str, pattern: UserPattern | None = None, per_pod: bool = False,
                  port: int | None = None) -> Reply:
    if per_pod:
        return await _metrics_per_pod(ctx, service, pattern, port)
    if port is not None:
        raise CommandError("`--port` goes with `--per-pod` (the service's own URL comes from `probes.metrics`).")
    urls: dict[str, str] = dict(ctx.settings.probes.metrics)
    if service not in urls:
        known = ", ".join(f"`{s}`" for s in sorted(urls)) or "none (set `probes.metrics` in the config)"
        raise CommandError(f"No metrics endpoint is configured for `{service}`. Services: {known}. "
                           f"`/cf metrics {service} --per-pod` scrapes its pods directly.")
    samples = await probes.scrape(urls[service], PROBE_TIMEOUT)
    notes = [Note(f"Scraped {urls[service]}")]
    if pattern:
        found = await pattern.filter(samples, key=lambda s: s.series)
        samples = found.items
        if not found.complete:
            notes.append(Note(f"The pattern was matched against {found.examined:,} of {found.total:,} series "
                              "within its time budget."))
    rows = [[s.series, _number(s.value)] for s in samples]
    matching = f" matching {code(pattern)}" if pattern else ""
    table = Table(["SERIES", "VALUE"], rows, empty=f"No series{matching}.")
    return Reply(title=f"{service} metrics: {plural(len(rows), 'series', 'series')}{matching}",
                 parts=[table, *notes])


async def _metrics_per_pod(ctx: Context, app: str, pattern: UserPattern | None, port: int | None) -> Reply:
    """Each pod's own /metrics: a load balancer in front answers from one pod at a time, so an outlier hides."""
    pods = [p for p in await target_pods(ctx, app) if proxied.running(p)]
    if not pods:
        raise CommandError(f"No running pod of `{app}` to scrape: `/cf pods {app}` shows why.")
    gate = asyncio.Semaphore(CONCURRENCY)

    async def scrape(pod: Obj) -> list[probes.Sample] | str:
        name, where = pod["metadata"]["name"], port or proxied.declared_port(pod)
        if where is None:
            return "declares no container port (give `--port`)"
        async with gate:
            try:
                answer = await ctx.kube.pod_proxy_get(ctx.namespace, name, where, "/metrics")
            except IntegrationError as exc:
                return one_line(exc.message, 200)
        if not answer.ok:
            return f"HTTP {answer.status} for /metrics on port {where}"
        try:
            return probes.parse_metrics(answer.body.decode("utf-8", "replace"), f"pod {name}")
        except IntegrationError as exc:
            return one_line(exc.message, 200)

    results = await asyncio.gather(*(scrape(p) for p in pods[:MAX_PODS]))
    scraped = {p["metadata"]["name"]: r for p, r in zip(pods, results, strict=False) if not isinstance(r, str)}
    problems = [f"{code(p['metadata']['name'])}: {literal(r)}" for p, r in zip(pods, results, strict=False)
                if isinstance(r, str)]
    if len(pods) > MAX_PODS:
        problems.insert(0, f"{len(pods) - MAX_PODS} of {len(pods)} pods (the first {MAX_PODS} are scraped)")
    exhausted = [f"{code(name)}: {text}" for name, samples in scraped.items() for text in _exhausted_pools(samples)]
    table, examined = await _per_pod_table(scraped, pattern)
    matching = f" matching {code(pattern)}" if pattern else ""
    parts: list[Part] = [table]
    if exhausted:
        parts.insert(0, Text("*Database pool exhausted* (every connection active, requests waiting):\n"
                             + "\n".join(f"• {e}" for e in exhausted)))
    if examined:
        parts.append(Note(examined))
    if problems:
        parts.append(Note("Not scraped: " + "; ".join(problems[:5]) + (" …" if len(problems) > 5 else "")))
    parts.append(Note("Each pod scraped through the API server's pods proxy (`pods/NAME:PORT/proxy/metrics`)."))
    level: Level = "warn" if exhausted or problems else "info"
    return Reply(title=f"{app} metrics from {plural(len(scraped), 'pod')}{matching}", parts=parts, level=level)


async def _per_pod_table(scraped: dict[str, list[probes.Sample]], pattern: UserPattern | None) -> tuple[Table, str]:
    """Series by pod: one column per pod while they fit side by side, else one row per pod and series."""
    values: dict[str, dict[str, float]] = {}
    for name, samples in scraped.items():
        for sample in samples:
            values.setdefault(sample.series, {})[name] = sample.value
    series = sorted(values)
    examined = ""
    if pattern:
        found = await pattern.filter(series, key=lambda s: s)
        series = found.items
        if not found.complete:
            examined = (f"The pattern was matched against {found.examined:,} of {found.total:,} series "
                        "within its time budget.")
    matching = f" matching {code(pattern)}" if pattern else ""
    names = sorted(scraped)
    if len(names) <= SIDE_BY_SIDE:
        many = len(names) > 1
        columns = ["SERIES", *(proxied.short(n, many) for n in names)]
        rows = [[s, *(_number(values[s][n]) if n in values[s] else "-" for n in names)] for s in series]
    else:
        columns = ["POD", "SERIES", "VALUE"]
        rows = [[n, s, _number(values[s][n])] for s in series for n in names if n in values[s]]
    return Table(columns, rows, empty=f"No series{matching}."), examined


def _exhausted_pools(samples: list[probes.Sample]) -> list[str]:
    """`db_connections{state="active"}` at `db_connections_max` for a pool: the runbook's pool check, per pod."""
    by_state: dict[tuple[str, str], float] = {}
    limits: dict[str, float] = {}
    for s in samples:
        pool = s.labels.get("pool", "")
        if s.name == "db_connections":
            by_state[(pool, s.labels.get("state", ""))] = s.value
        elif s.name == "db_connections_max":
            limits[pool] = s.value
    out = []
    for pool, limit in sorted(limits.items()):
        active, waiting = by_state.get((pool, "active"), 0.0), by_state.get((pool, "waiting"), 0.0)
        if limit > 0 and active >= limit:
            out.append(f"pool {code(pool or 'default')} {_number(active)}/{_number(limit)} active, "
                       f"{_number(waiting)} waiting")
    return out


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.6g}"


@command(
    "ws probe",
    summary="Open a WebSocket to the configured URL and report the connect time against the 100 ms target; "
            "`--in-cluster` also opens it on each pod through the pods proxy (load balancer or service?).",
    area=AREA,
    args=[switch("--in-cluster", f"also open it on every {WS_APP} pod through the API server's pods proxy, "
                                 "bypassing the load balancer")],
    example="/cf ws probe --in-cluster",
    needs=["kube"],  # --in-cluster
)
async def ws_probe(ctx: Context, in_cluster: bool = False) -> Reply:
    cfg = ctx.settings.probes
    if not cfg.websocket_url and not in_cluster:
        raise CommandError("No WebSocket URL is configured (set `probes.websocket_url`); "
                           "`/cf ws probe --in-cluster` probes the pods directly.")
    target = float(cfg.websocket_target_ms)
    public: float | str | None = None
    if cfg.websocket_url:
        try:
            public = await probes.websocket_connect_ms(cfg.websocket_url, PROBE_TIMEOUT)
        except IntegrationError as exc:
            public = exc.message
    if in_cluster:
        return await _ws_in_cluster(ctx, public, target)
    if isinstance(public, str):
        return Reply(title=f"WebSocket probe failed: {public}", level="error",
                     parts=[Note("`/cf ws probe --in-cluster` tells a load-balancer fault from a service fault; "
                                 "`/cf logs websocket-service --since 10m` and `/cf pods websocket-service` next.")])
    took = float(public or 0.0)
    fast = took <= target
    verdict = "within" if fast else "slower than"
    fields = Fields([("URL", str(cfg.websocket_url)), ("Connect time", f"{took:,.0f} ms"),
                     ("Target", f"{target:g} ms")])
    return Reply(title=f"WebSocket connected in {took:,.0f} ms, {verdict} the {target:g} ms target",
                 parts=[fields], level="ok" if fast else "warn")


async def _ws_in_cluster(ctx: Context, public: float | str | None, target: float) -> Reply:
    """The same handshake on each pod through the pods proxy, and what the two results together say."""
    path = urlsplit(ctx.settings.probes.websocket_url or "").path or WS_PATH
    pods = sorted((p for p in await ctx.kube.list_pods(ctx.namespace, label_selector=f"app={WS_APP}")
                   if proxied.running(p)), key=lambda p: p["metadata"]["name"])

    async def one(pod: Obj) -> float | str:
        port = proxied.declared_port(pod, ("ws", "http"))
        if port is None:
            return "declares no container port"
        try:
            return float(await ctx.kube.pod_websocket_ms(ctx.namespace, pod["metadata"]["name"], port, path,
                                                         PROBE_TIMEOUT, WS_SUBPROTOCOLS))
        except IntegrationError as exc:
            return one_line(exc.message, 200)

    results = list(await asyncio.gather(*(one(p) for p in pods[:MAX_PODS])))
    rows = [[p["metadata"]["name"], "yes" if proxied.ready(p) else "no",
             f"{r:,.0f} ms" if isinstance(r, float) else f"failed: {r}"] for p, r in zip(pods, results, strict=False)]
    accepted = sum(isinstance(r, float) for r in results)
    title, level, advice = _ws_verdict(public, accepted, len(results), target,
                                       max((r for r in results if isinstance(r, float)), default=0.0))
    pairs = [("Through the load balancer", "no URL configured (`probes.websocket_url`)" if public is None
              else f"{public:,.0f} ms" if isinstance(public, float) else f"failed: {literal(public)}"),
             ("On the pods directly", f"{accepted} of {plural(len(results), 'pod')} accepted"),
             ("Target", f"{target:g} ms")]
    parts: list[Part] = [Fields(pairs), Table(["POD", "READY", f"HANDSHAKE ON {path}"], rows,
                                              empty=f"No running {WS_APP} pods.")]
    if advice:
        parts.append(Text(advice))
    parts.append(Note("In-cluster handshakes go bot → API server → pod through the pods proxy: they include the API "
                      "server's hop and skip the load balancer, ingress and public TLS. They show whether the pods "
                      "accept a WebSocket; the public probe shows what users get."))
    return Reply(title=title, parts=parts, level=level)


def _ws_verdict(public: float | str | None, accepted: int, total: int, target: float,
                slowest_pod: float) -> tuple[str, Level, str]:
    """(title, level, what to look at next) from the public probe and the pods' own answers."""
    lb_next = "Look in front of the pods: `/cf lb` (target health) and `/cf describe ingress collaboration-ingress`."
    svc_next = f"Look at the service: `/cf logs {WS_APP} --since 10m`, `/cf pods {WS_APP}`, `/cf events --warnings`."
    if isinstance(public, str):
        if accepted:
            return ("Load-balancer fault: the WebSocket fails through the load balancer, but "
                    f"{accepted} of {plural(total, 'pod')} accept it directly", "error", lb_next)
        return ("Service fault: the WebSocket fails through the load balancer and on every pod directly"
                if total else f"Service fault: the WebSocket fails and no {WS_APP} pod is running", "error", svc_next)
    if total and accepted < total:
        return (f"{total - accepted} of {plural(total, 'pod')} refuse the WebSocket directly", "warn",
                svc_next + " Users routed to those pods fail.")
    if not total:
        return f"No running {WS_APP} pods to probe", "error", svc_next
    if public is None:
        return f"All {plural(total, 'pod')} accept the WebSocket directly", "ok", ""
    if public > target and slowest_pod <= target:
        return (f"WebSocket connects in {public:,.0f} ms through the load balancer, slower than the {target:g} ms "
                f"target; every pod answers within it directly", "warn",
                "The time is spent in front of the pods (load balancer, TLS, network). " + lb_next)
    level: Level = "ok" if public <= target else "warn"
    return (f"WebSocket connects in {public:,.0f} ms through the load balancer and on all "
            f"{plural(total, 'pod')} directly", level, "")
