"""Stand-ins for the Candlefish services' public endpoints and their exporters, for the demo, drills and tests.

The runbook probes them from the outside: `curl -I https://editor.candlefish.ai`, `curl
https://api.candlefish.ai/health`, `curl .../metrics | grep db_connections` and `wscat -c
wss://ws.candlefish.ai/graphql`. Its alerts come from Prometheus, which scrapes the services and the usual
exporters. One small aiohttp app answers all of those on a local port:

    /                 the editor (HTML)            /health       the API's health (JSON)
    /metrics          graphql-api's metrics: http_requests_total{code}, http_request_duration_seconds,
                      db_connections, go_gc_duration_seconds ...
    /ws/metrics       websocket-service's metrics (websocket_active_connections ...)
    /graphql          a WebSocket speaking graphql-transport-ws far enough for a probe
    /exporters/postgres/metrics             postgres_exporter: pg_stat_activity_count, pg_stat_statements_*
    /exporters/redis/metrics                redis_exporter: redis_memory_used_bytes / redis_memory_max_bytes
    /exporters/kube-state-metrics/metrics   kube_pod_container_status_waiting_reason, ..._restarts_total
    /exporters/kubelet/metrics              cAdvisor: container_memory_working_set_bytes
    /exporters/node/NODE/metrics            node_exporter: node_cpu_seconds_total, node_memory_*

`scrape_configs()` is the Prometheus `scrape_configs` for all of them (job names as deploy/prometheus/rules.yml
expects). `knobs` is what a drill or a test turns to cross a runbook threshold: the error rate, the p95
latency, database connections, Redis memory, crash-looping pods, node CPU and memory. Counters grow with
wall time at the knobs' current values, so Prometheus' `rate()` sees them as it would live traffic.
`slow` and `broken` (path -> seconds / HTTP status) let a drill make one endpoint lag or fail (a broken
`/metrics` makes its target go down, and its series stale).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from .world import NODES

GC_QUANTILES = {"0": 2.1e-05, "0.25": 4.4e-05, "0.5": 6.9e-05, "0.75": 0.000131, "1": 0.004862}
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)  # 2.0 is a bound: the runbook's p95 threshold
LATENCY_SIGMA = 0.5  # request latency is log-normal with this spread; the knob sets its p95
P95_Z = 1.6448536269514722  # the standard normal's 95th percentile
NAMESPACE = "collaboration"
CPUS = 4  # per node (m5.xlarge)
PODS = {  # the pods kube-state-metrics and the kubelet report (name -> container)
    "graphql-api-6c9f7d8b5-2xkqp": "graphql-api", "graphql-api-6c9f7d8b5-8lmzt": "graphql-api",
    "websocket-service-7b5d9c6f4-h4rwn": "websocket-service", "document-service-5f8d6b7c9-q7vns": "document-service",
    "collaboration-editor-84c7f9d6b-tz5kx": "collaboration-editor",
}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Knobs:
    """The values the stand-ins report; defaults are a quiet, healthy day. Change them at any time."""

    requests_per_second: float = 40.0  # graphql-api's traffic
    error_rate: float = 0.004  # share of graphql-api requests answered 5xx (runbook alert: > 5 %)
    latency_p95_seconds: float = 0.35  # graphql-api's p95 request latency (runbook alert: > 2 s)
    db_connections: int = 48  # PostgreSQL backends in pg_stat_activity (runbook alert: > 160)
    db_max_connections: int = 200
    slow_query_mean_seconds: float = 0.04  # mean time of the slowest statement (runbook: slow above 1 s)
    redis_memory_ratio: float = 0.52  # used_memory / maxmemory (runbook alert: > 90 %)
    redis_max_bytes: int = 6_979_321_856  # cache.r6g.large's maxmemory
    crash_looping: set[str] = field(default_factory=set)  # pod names whose container waits in CrashLoopBackOff
    node_cpu: dict[str, float] = field(default_factory=lambda: {n: 0.31 + 0.07 * i for i, (n, _, _) in
                                                               enumerate(NODES)})  # busy share of all CPUs
    node_memory: dict[str, float] = field(default_factory=lambda: {n: 0.46 + 0.05 * i for i, (n, _, _) in
                                                                  enumerate(NODES)})  # 1 - available / total
    pod_memory: dict[str, int] = field(default_factory=dict)  # pod -> working-set bytes (else a steady value)


def _normal_cdf(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def latency_shares(p95: float) -> list[float]:
    """The share of requests at or under each of BUCKETS when the p95 is `p95` seconds (log-normal)."""
    median = max(p95, 1e-6) / math.exp(P95_Z * LATENCY_SIGMA)
    return [_normal_cdf(math.log(b / median) / LATENCY_SIGMA) for b in BUCKETS]


class _Traffic:
    """Counters that grow with wall time at the knobs' current values (what `rate()` reads)."""

    def __init__(self, knobs: Knobs, clock: Any = time.monotonic) -> None:
        self.knobs, self.clock = knobs, clock
        self.last = clock()
        self.ok, self.errors = 63_120.0, 212.0
        self.buckets = [n * 63_332.0 for n in latency_shares(knobs.latency_p95_seconds)]
        self.latency_sum = 7_890.4
        self.statements = {"1842736152": [401_220.0, 16_048.8], "77310552": [88_431.0, 176.9]}  # queryid: [calls, s]
        self.cpu: dict[str, dict[str, float]] = {n: {"idle": 5.2e5, "user": 2.4e5, "system": 3.1e4}
                                                 for n, _, _ in NODES}
        self.restarts: dict[str, float] = dict.fromkeys(PODS, 0.0)

    def advance(self) -> None:
        now = self.clock()
        dt, self.last = max(now - self.last, 0.0), now
        k = self.knobs
        n = k.requests_per_second * dt
        self.errors += n * k.error_rate
        self.ok += n * (1 - k.error_rate)
        for i, share in enumerate(latency_shares(k.latency_p95_seconds)):
            self.buckets[i] += n * share
        median = k.latency_p95_seconds / math.exp(P95_Z * LATENCY_SIGMA)
        self.latency_sum += n * median * math.exp(LATENCY_SIGMA ** 2 / 2)
        for i, counts in enumerate(self.statements.values()):
            calls = n * (0.6 if i == 0 else 0.1)
            counts[0] += calls
            counts[1] += calls * (k.slow_query_mean_seconds if i == 0 else 0.002)
        for node, modes in self.cpu.items():
            busy = min(max(k.node_cpu.get(node, 0.3), 0.0), 1.0)
            modes["idle"] += dt * (1 - busy)  # seconds of one CPU; every CPU of the node runs alike
            modes["user"] += dt * busy * 0.8
            modes["system"] += dt * busy * 0.2
        for pod in k.crash_looping:
            self.restarts[pod] = self.restarts.get(pod, 0.0) + dt / 30  # a restart every 30 s or so


class _Collector:
    """One exporter's metrics, computed at scrape time."""

    def __init__(self, targets: ProbeTargets, what: str):
        self.t, self.what = targets, what

    def collect(self) -> Iterator[Metric]:
        self.t.traffic.advance()
        if self.what in ("graphql-api", "websocket-service"):
            yield from self.t.service_metrics(self.what)
        elif self.what == "postgres":
            yield from self.t.postgres_metrics()
        elif self.what == "redis":
            yield from self.t.redis_metrics()
        elif self.what == "kube-state-metrics":
            yield from self.t.kube_state_metrics()
        elif self.what == "kubelet":
            yield from self.t.kubelet_metrics()
        else:
            yield from self.t.node_metrics(self.what.removeprefix("node/"))


class ProbeTargets:
    """The stand-in services on one local port. `url` is set once started."""

    EXPORTERS = ("postgres", "redis", "kube-state-metrics", "kubelet")

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)
        self.slow: dict[str, float] = {}
        self.broken: dict[str, int] = {}
        self.knobs = Knobs()
        self.traffic = _Traffic(self.knobs)
        self.url = ""
        self.gc_count = {"graphql-api": 18_204, "websocket-service": 9_311}
        self._registries = {name: self._registry(name) for name in
                            ("graphql-api", "websocket-service", *self.EXPORTERS, *(f"node/{n}" for n, _, _ in NODES))}
        self._runner: web.AppRunner | None = None

    def _registry(self, what: str) -> CollectorRegistry:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self, what))
        return registry

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._faults])
        app.router.add_get("/", self._editor)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics("graphql-api"))
        app.router.add_get("/ws/metrics", self._metrics("websocket-service"))
        for exporter in self.EXPORTERS:
            app.router.add_get(f"/exporters/{exporter}/metrics", self._metrics(exporter))
        for node, _, _ in NODES:
            app.router.add_get(f"/exporters/node/{node}/metrics", self._metrics(f"node/{node}"))
        app.router.add_get("/graphql", self._websocket)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        runner = web.AppRunner(self.app(), handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self.url = f"http://{bound_host}:{bound_port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def probes_config(self) -> dict[str, Any]:
        """The bot's `probes:` config section pointing at these endpoints."""
        ws = self.url.replace("http://", "ws://", 1)
        return {
            "health": [{"name": "editor", "url": f"{self.url}/"}, {"name": "api", "url": f"{self.url}/health"}],
            "metrics": {"graphql-api": f"{self.url}/metrics", "websocket-service": f"{self.url}/ws/metrics"},
            "websocket_url": f"{ws}/graphql",
        }

    def scrape_configs(self) -> list[dict[str, Any]]:
        """Prometheus' `scrape_configs` for every endpoint here, with the job names rules.yml expects.

        The node exporters get `instance` set to NODE:9100, as a Kubernetes service discovery would name them,
        so an alert on a node carries the node's name.
        """
        address = self.url.removeprefix("http://")

        def job(name: str, path: str) -> dict[str, Any]:
            return {"job_name": name, "metrics_path": path, "static_configs": [{"targets": [address]}]}

        jobs = [job("graphql-api", "/metrics"), job("websocket-service", "/ws/metrics"),
                *(job(e, f"/exporters/{e}/metrics") for e in self.EXPORTERS)]
        jobs.append({"job_name": "node", "static_configs": [
            {"targets": [address], "labels": {"instance": f"{node}:9100",
                                              "__metrics_path__": f"/exporters/node/{node}/metrics"}}
            for node, _, _ in NODES]})
        return jobs

    # --- what each endpoint reports ------------------------------------------------------

    def service_metrics(self, service: str) -> Iterator[Metric]:
        self.gc_count[service] += self.rng.randint(1, 4)
        yield self._gc(self.gc_count[service])
        memory = GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size in bytes.")
        memory.add_metric([], float(self.rng.randint(610, 690) * 2**20))
        yield memory
        if service == "graphql-api":
            yield from self._graphql()
            return
        active = GaugeMetricFamily("websocket_active_connections", "Open WebSocket connections.", labels=["pod"])
        for pod in ("websocket-service-0", "websocket-service-1", "websocket-service-2"):
            active.add_metric([pod], float(self.rng.randint(700, 860)))
        yield active

    def _gc(self, count: int) -> Metric:
        gc = Metric("go_gc_duration_seconds", "A summary of the pause duration of garbage collection cycles.",
                    "summary")
        for q, v in GC_QUANTILES.items():
            gc.add_sample("go_gc_duration_seconds", {"quantile": q}, v)
        gc.add_sample("go_gc_duration_seconds_sum", {}, round(count * 9.7e-05, 6))
        gc.add_sample("go_gc_duration_seconds_count", {}, float(count))
        return gc

    def _graphql(self) -> Iterator[Metric]:
        pool = GaugeMetricFamily("db_connections", "Database pool connections by state.", labels=["pool", "state"])
        active = self.rng.randint(14, 20)
        for state, value in (("active", active), ("idle", 20 - active), ("waiting", self.rng.randint(0, 6))):
            pool.add_metric(["primary", state], float(value))
        yield pool
        limit = GaugeMetricFamily("db_connections_max", "Configured pool size.", labels=["pool"])
        limit.add_metric(["primary"], 20.0)
        yield limit
        t = self.traffic
        requests = CounterMetricFamily("http_requests", "GraphQL requests by status code.", labels=["route", "code"])
        requests.add_metric(["/graphql", "200"], t.ok)
        requests.add_metric(["/graphql", "500"], t.errors)
        yield requests
        latency = HistogramMetricFamily("http_request_duration_seconds", "GraphQL request latency.",
                                        labels=["route"])
        buckets = [(str(b), n) for b, n in zip(BUCKETS, t.buckets, strict=True)]
        latency.add_metric(["/graphql"], [*buckets, ("+Inf", t.ok + t.errors)], sum_value=t.latency_sum)
        yield latency

    def postgres_metrics(self) -> Iterator[Metric]:
        k = self.knobs
        up = GaugeMetricFamily("pg_up", "Whether the last scrape of PostgreSQL succeeded.")
        up.add_metric([], 1.0)
        yield up
        activity = GaugeMetricFamily("pg_stat_activity_count", "Connections by database and state.",
                                     labels=["datname", "state"])
        active = max(k.db_connections // 4, 1) if k.db_connections else 0
        in_txn = k.db_connections // 10
        for state, n in (("active", active), ("idle in transaction", in_txn),
                         ("idle", k.db_connections - active - in_txn)):
            activity.add_metric(["collaboration_db", state], float(n))
        yield activity
        limit = GaugeMetricFamily("pg_settings_max_connections", "Server Parameter: max_connections.")
        limit.add_metric([], float(k.db_max_connections))
        yield limit
        calls = CounterMetricFamily("pg_stat_statements_calls", "Number of times executed.",
                                    labels=["datname", "queryid", "user"])
        seconds = CounterMetricFamily("pg_stat_statements_seconds", "Total time spent in the statement.",
                                      labels=["datname", "queryid", "user"])
        for queryid, (ran, spent) in self.traffic.statements.items():
            calls.add_metric(["collaboration_db", queryid, "collaboration_user"], ran)
            seconds.add_metric(["collaboration_db", queryid, "collaboration_user"], spent)
        yield calls
        yield seconds

    def redis_metrics(self) -> Iterator[Metric]:
        k = self.knobs
        for name, text, value in (
            ("redis_up", "Information about the Redis instance.", 1.0),
            ("redis_memory_used_bytes", "used_memory", float(int(k.redis_max_bytes * k.redis_memory_ratio))),
            ("redis_memory_max_bytes", "maxmemory", float(k.redis_max_bytes)),
            ("redis_connected_clients", "connected_clients", 212.0),
        ):
            gauge = GaugeMetricFamily(name, text)
            gauge.add_metric([], value)
            yield gauge

    def kube_state_metrics(self) -> Iterator[Metric]:
        waiting = GaugeMetricFamily("kube_pod_container_status_waiting_reason",
                                    "Describes the reason the container is currently in waiting state.",
                                    labels=["namespace", "pod", "container", "reason"])
        restarts = CounterMetricFamily("kube_pod_container_status_restarts",
                                       "The number of container restarts per container.",
                                       labels=["namespace", "pod", "container"])
        for pod in sorted(set(PODS) | self.knobs.crash_looping):
            container = PODS.get(pod) or pod.rsplit("-", 2)[0]
            if pod in self.knobs.crash_looping:
                waiting.add_metric([NAMESPACE, pod, container, "CrashLoopBackOff"], 1.0)
            restarts.add_metric([NAMESPACE, pod, container], float(int(self.traffic.restarts.get(pod, 0.0))))
        yield waiting
        yield restarts

    def kubelet_metrics(self) -> Iterator[Metric]:
        working = GaugeMetricFamily("container_memory_working_set_bytes", "Current working set in bytes.",
                                    labels=["namespace", "pod", "container"])
        for i, (pod, container) in enumerate(sorted(PODS.items())):
            steady = (310 + 45 * i + self.rng.randint(0, 12)) * 2**20
            working.add_metric([NAMESPACE, pod, container], float(self.knobs.pod_memory.get(pod, steady)))
        yield working

    def node_metrics(self, node: str) -> Iterator[Metric]:
        cpu = CounterMetricFamily("node_cpu_seconds", "Seconds the CPUs spent in each mode.", labels=["cpu", "mode"])
        for n in range(CPUS):
            for mode, seconds in self.traffic.cpu[node].items():
                cpu.add_metric([str(n), mode], seconds + 1_000 * n)
        yield cpu
        total = 16 * 2**30
        used = min(max(self.knobs.node_memory.get(node, 0.5), 0.0), 1.0)
        for name, value in (("node_memory_MemTotal_bytes", total), ("node_memory_MemAvailable_bytes",
                                                                    int(total * (1 - used)))):
            gauge = GaugeMetricFamily(name, f"Memory information field {name.split('_')[2]}.")
            gauge.add_metric([], float(value))
            yield gauge

    # --- handlers ------------------------------------------------------------------------

    @web.middleware
    async def _faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        delay = self.slow.get(request.path)
        if delay:
            await asyncio.sleep(delay)
        status = self.broken.get(request.path)
        if status:
            return web.json_response({"status": "error", "error": "injected fault"}, status=status)
        response: web.StreamResponse = await handler(request)
        return response

    async def _editor(self, request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>Candlefish Editor</title><div id=root></div>",
                            content_type="text/html")

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "database": "ok", "redis": "ok", "version": "2.14.3"})

    def _metrics(self, what: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            body = generate_latest(self._registries[what])
            return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

        return handler

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("graphql-transport-ws", "graphql-ws"), heartbeat=None)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and '"connection_init"' in msg.data:
                await ws.send_str('{"type":"connection_ack"}')
            elif msg.type == WSMsgType.TEXT and '"ping"' in msg.data:
                await ws.send_str('{"type":"pong"}')
        return ws
