"""Logs & Metrics, the scrapes and probes: `metrics` (curl .../metrics | grep) and `ws probe` (wscat -c wss://...).

Both first look from the outside, as the runbook does, at the URLs in config `probes`. Both can also look
from the inside, through the API server's pods proxy (no exec): `metrics --per-pod` scrapes every pod of
the app, because a load balancer answers from one pod at a time and one pod with an exhausted database
pool is otherwise missed; `ws probe --in-cluster` opens the WebSocket on each pod, so a failure through
the load balancer with pods that answer directly reads as a load-balancer fault, and a failure
everywhere as a service fault.

`metrics` judges what it scrapes rather than listing it:
- A histogram (`NAME_bucket` series with `le`) becomes p50/p95/p99, estimated as Prometheus'
  `histogram_quantile` does: linear interpolation within the bucket the rank falls in; a quantile in the
  `+Inf` bucket is only known to be above the largest finite bound, and is shown as `> BOUND`. Request
  latency histograms (`*_seconds` with `request` or `response` in the name) are judged against the SLA,
  p95 under `probes.sla_seconds` (runbook: 2 s at the 95th percentile). The buckets count since the process
  started, so these are lifetime quantiles, not the recent window Prometheus' `rate()` gives.
- Connection-pool gauges become one verdict per pool (`POOL_GAUGES`): exhausted when every connection is
  active, a warning while requests wait.
- Values of series named `*_bytes` (or `*_bytes_total`, and quantiles of `*_bytes` histograms) are shown
  in B/KiB/MiB/GiB.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from base.patterns import UserPattern
from base.text import code, literal, one_line, plural
from commands.args import k8s_name, opt, pos, regex, switch
from commands.base import CommandError, Context, command
from commands.reply import Fields, Level, Note, Part, Reply, Table, Text
from commands.support import proxy as proxied
from commands.support.proxy import human_bytes, port_number, target_pods
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
    summary="Scrape a service's Prometheus /metrics and judge it: latency histograms as p50/p95/p99 against the "
            "SLA, connection pools, bytes in KiB/MiB/GiB; PATTERN selects series; `--per-pod` scrapes every pod "
            "of the app through the pods proxy, side by side.",
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
    sla = float(ctx.settings.probes.sla_seconds)
    histograms, summarised = _histograms(samples)
    verdicts = [(f"{code(h.series)}: {text}", level) for h in histograms if _judged(h.name)
                for text, level in [_sla_verdict(h, sla)]]
    verdicts += [_pool_verdict(name, pool) for name, pool in _pools(samples).items()]
    rest = [s for s in samples if s.series not in summarised]
    matching = f" matching {code(pattern)}" if pattern else ""
    parts: list[Part] = []
    if verdicts:
        parts.append(Text("*Verdicts*\n" + "\n".join(f"• {text}" for text, _ in verdicts)))
    if histograms:
        parts.append(Table(["HISTOGRAM", "COUNT", "P50", "P95", "P99"],
                           [[h.series, _number(h.count), *(_quantile_text(h, q) for q in QUANTILES)]
                            for h in histograms]))
        notes.append(Note("Quantiles as Prometheus' histogram_quantile estimates them, over every observation since "
                          "the process started (the buckets are cumulative)."))
    if rest or not histograms:
        parts.append(Table(["SERIES", "VALUE"], [[s.series, _value(s.name, s.value)] for s in rest],
                           empty=f"No series{matching}."))
    count = f"{plural(len(samples), 'series', 'series')}{matching or ' scraped'}"
    if not verdicts:
        return Reply(title=f"{service} metrics: {count}", parts=[*parts, *notes])
    worst = _worst(level for _, level in verdicts)
    headline = [text for text, level in verdicts if level == worst] if worst != "ok" else [t for t, _ in verdicts]
    shown = "; ".join(headline[:2]) + (f" (and {len(headline) - 2} more)" if len(headline) > 2 else "")
    return Reply(title=f"{service}: {shown}", parts=[*parts, Note(f"{count}."), *notes], level=worst)


# --- histograms -----------------------------------------------------------------------------------

QUANTILES = (0.5, 0.95, 0.99)
_LATENCY = ("request", "response")  # a `*_seconds` histogram with one of these in its name is judged on the SLA


def _judged(name: str) -> bool:
    return name.endswith("_seconds") and any(word in name for word in _LATENCY)


@dataclass(frozen=True)
class Histogram:
    """One classic Prometheus histogram: its cumulative buckets, `(upper bound, count)` sorted by bound."""

    name: str
    labels: tuple[tuple[str, str], ...]
    buckets: tuple[tuple[float, float], ...]

    @property
    def series(self) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.name}{{{inner}}}" if inner else self.name

    @property
    def count(self) -> float:
        return self.buckets[-1][1] if self.buckets else 0.0

    def quantile(self, q: float) -> tuple[float, bool]:
        """(value, above): Prometheus' bucketQuantile. `above`: the rank is in the +Inf bucket, and the value
        (the largest finite bound, as Prometheus answers) is only a lower limit. NaN where there is none."""
        buckets = self.buckets
        if len(buckets) < 2 or not math.isinf(buckets[-1][0]) or buckets[-1][1] <= 0:
            return math.nan, False
        rank = q * buckets[-1][1]
        b = next(i for i, (_, count) in enumerate(buckets) if count >= rank)
        if b == len(buckets) - 1:
            return buckets[-2][0], True
        if b == 0 and buckets[0][0] <= 0:
            return buckets[0][0], False
        start, end, count = 0.0, buckets[b][0], buckets[b][1]
        if b > 0:
            start, count, rank = buckets[b - 1][0], count - buckets[b - 1][1], rank - buckets[b - 1][1]
        return start + (end - start) * (rank / count), False


def _histograms(samples: list[probes.Sample]) -> tuple[list[Histogram], set[str]]:
    """The histograms among the samples, and the series they stand for (buckets, `_sum`, `_count`)."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], dict[float, float]] = {}
    for s in samples:
        if s.name.endswith("_bucket") and "le" in s.labels:
            try:
                bound = float(s.labels["le"])
            except ValueError:
                continue
            rest = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            bounds = found.setdefault((s.name.removesuffix("_bucket"), rest), {})
            bounds[bound] = bounds.get(bound, 0.0) + s.value  # equal bounds add up, as Prometheus coalesces them
    histograms = []
    for (name, labels), bounds in sorted(found.items()):
        buckets, highest = [], 0.0
        for bound in sorted(bounds):
            highest = max(highest, bounds[bound])  # counts never fall with the bound (Prometheus' ensureMonotonic)
            buckets.append((bound, highest))
        if buckets and math.isinf(buckets[-1][0]):
            histograms.append(Histogram(name, labels, tuple(buckets)))
    names = {h.name for h in histograms}
    consumed = {s.series for s in samples if _histogram_of(s.name) in names}
    return histograms, consumed


def _histogram_of(name: str) -> str | None:
    """The histogram a series belongs to by its name (`X_bucket`, `X_sum`, `X_count` -> `X`), if any."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return None


def _quantile_text(h: Histogram, q: float) -> str:
    value, above = h.quantile(q)
    if math.isnan(value):
        return "-"
    return f"> {_in_unit(h.name, value)}" if above else _in_unit(h.name, value)


def _sla_verdict(h: Histogram, sla: float) -> tuple[str, Level]:
    """A request-latency histogram's p95 against the SLA (runbook: under 2 s)."""
    p95, above = h.quantile(0.95)
    if math.isnan(p95):
        return "no requests observed yet", "info"
    if above and p95 >= sla:
        return f"p95 over the {sla:g} s SLA: more than 5% of requests took over {_duration(p95)}", "error"
    if above:
        return (f"p95 over {_duration(p95)}, the largest bucket: the histogram cannot tell it against the "
                f"{sla:g} s SLA", "warn")
    if p95 > sla:
        return f"p95 {_duration(p95)}, over the {sla:g} s SLA", "error"
    return f"p95 {_duration(p95)}, within the {sla:g} s SLA", "ok"


# --- connection pools -----------------------------------------------------------------------------

# Connection-pool gauges recognised, per pool (label `pool`; without one, `default`), and the part each is.
# `db_connections{state="active|idle|waiting"}` with `db_connections_max` is what the Candlefish services
# expose (the runbook's `curl .../metrics | grep db_connections`; sandbox/probe_targets.py, sandbox/pod_http.py);
# the same pool as separate gauges, and HikariCP's (through Micrometer) `hikaricp_connections_*`, read alike.
POOL_STATES = {"active": "active", "idle": "idle", "waiting": "waiting", "pending": "waiting"}
POOL_GAUGES = {
    "db_connections_max": "max", "db_connections_active": "active", "db_connections_idle": "idle",
    "db_connections_waiting": "waiting", "db_connections_pending": "waiting",
    "hikaricp_connections_max": "max", "hikaricp_connections_active": "active",
    "hikaricp_connections_idle": "idle", "hikaricp_connections_pending": "waiting",
}


def _pools(samples: list[probes.Sample]) -> dict[str, dict[str, float]]:
    """Pool name -> {active, idle, waiting, max} from the recognised gauges (pools with no active count left out)."""
    pools: dict[str, dict[str, float]] = {}
    for s in samples:
        part = POOL_STATES.get(s.labels.get("state", "")) if s.name == "db_connections" else POOL_GAUGES.get(s.name)
        if part is not None:
            pool = pools.setdefault(s.labels.get("pool") or "default", {})
            pool[part] = pool.get(part, 0.0) + s.value
    return {name: pool for name, pool in sorted(pools.items()) if "active" in pool}


def _pool_verdict(name: str, pool: dict[str, float]) -> tuple[str, Level]:
    """`pool `primary` exhausted: 20/20 active, 6 waiting`: every connection busy is the runbook's pool check."""
    active, waiting, size = pool["active"], pool.get("waiting", 0.0), pool.get("max", 0.0)
    used = f"{_number(active)}/{_number(size)}" if size > 0 else _number(active)
    counts = f"{used} active, {_number(waiting)} waiting"
    if size > 0 and active >= size:
        return f"pool {code(name)} exhausted: {counts}", "error"
    if waiting > 0:
        return f"pool {code(name)}: {counts} (requests are queueing for a connection)", "warn"
    return f"pool {code(name)}: {counts}", "ok"


# --- values ---------------------------------------------------------------------------------------

_SEVERITY: tuple[Level, ...] = ("info", "ok", "warn", "error")


def _worst(levels: Iterable[Level]) -> Level:
    return max(levels, key=_SEVERITY.index, default="info")


def _value(name: str, value: float) -> str:
    """A series value as read: bytes humanised (`*_bytes`, `*_bytes_total`), else the number."""
    return human_bytes(value) if name.endswith(("_bytes", "_bytes_total")) else _number(value)


def _in_unit(name: str, value: float) -> str:
    """A histogram's quantile in its unit (from the name's suffix, as Prometheus names units)."""
    if name.endswith("_seconds"):
        return _duration(value)
    return human_bytes(value) if name.endswith("_bytes") else _number(value)


def _duration(seconds: float) -> str:
    """`1.15 s`, `460 ms`, `0.35 ms`."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    ms = seconds * 1000
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.2g} ms"


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.6g}"


# --- per pod --------------------------------------------------------------------------------------


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
    sla = float(ctx.settings.probes.sla_seconds)
    exhausted = [f"{code(name)}: {text}" for name, samples in scraped.items()
                 for text, level in (_pool_verdict(p, pool) for p, pool in _pools(samples).items()) if level == "error"]
    slow = [f"{code(name)}: {code(h.series)} {text}" for name, samples in scraped.items()
            for h in _histograms(samples)[0] if _judged(h.name)
            for text, level in [_sla_verdict(h, sla)] if level in ("error", "warn")]
    table, examined = await _per_pod_table(scraped, pattern)
    matching = f" matching {code(pattern)}" if pattern else ""
    parts: list[Part] = [table]
    if slow:
        parts.insert(0, Text(f"*p95 over the {sla:g} s SLA* (or beyond what the buckets can tell):\n"
                             + "\n".join(f"• {e}" for e in slow)))
    if exhausted:
        parts.insert(0, Text("*Database pool exhausted* (every connection active, requests waiting):\n"
                             + "\n".join(f"• {e}" for e in exhausted)))
    if examined:
        parts.append(Note(examined))
    if problems:
        parts.append(Note("Not scraped: " + "; ".join(problems[:5]) + (" …" if len(problems) > 5 else "")))
    parts.append(Note("Each pod scraped through the API server's pods proxy (`pods/NAME:PORT/proxy/metrics`)."))
    level: Level = "warn" if exhausted or slow or problems else "info"
    return Reply(title=f"{app} metrics from {plural(len(scraped), 'pod')}{matching}", parts=parts, level=level)


async def _per_pod_table(scraped: dict[str, list[probes.Sample]], pattern: UserPattern | None) -> tuple[Table, str]:
    """Rows by pod: one column per pod while they fit side by side, else one row per pod and row.

    A row is a series, or a histogram's quantile (`NAME{...} p95`) where the pattern kept its buckets."""
    every = sorted({s.series for samples in scraped.values() for s in samples})
    examined = ""
    kept = set(every)
    if pattern:
        found = await pattern.filter(every, key=lambda s: s)
        kept = set(found.items)
        if not found.complete:
            examined = (f"The pattern was matched against {found.examined:,} of {found.total:,} series "
                        "within its time budget.")
    values: dict[str, dict[str, str]] = {}
    for name, samples in scraped.items():
        for label, text in _pod_rows([s for s in samples if s.series in kept]):
            values.setdefault(label, {})[name] = text
    rows_of = sorted(values)
    matching = f" matching {code(pattern)}" if pattern else ""
    names = sorted(scraped)
    if len(names) <= SIDE_BY_SIDE:
        many = len(names) > 1
        columns = ["SERIES", *(proxied.short(n, many) for n in names)]
        rows = [[r, *(values[r].get(n, "-") for n in names)] for r in rows_of]
    else:
        columns = ["POD", "SERIES", "VALUE"]
        rows = [[n, r, values[r][n]] for r in rows_of for n in names if n in values[r]]
    return Table(columns, rows, empty=f"No series{matching}."), examined


def _pod_rows(samples: list[probes.Sample]) -> list[tuple[str, str]]:
    """(row label, value as shown) for one pod: its histograms as quantiles, every other series as its value."""
    histograms, summarised = _histograms(samples)
    rows = [(f"{h.series} p{q * 100:g}", _quantile_text(h, q)) for h in histograms for q in QUANTILES]
    return rows + [(s.series, _value(s.name, s.value)) for s in samples if s.series not in summarised]


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
