"""What the sandbox's pods answer on their ports: the far side of `pods/NAME:PORT/proxy/PATH`.

The real API server dials the pod's IP and relays whatever the container says. Here the "container"
is this table, driven by the pod's `app` label and the cluster's state:

    graphql-api          Go: /healthz /ready /metrics (db_connections pool by state) /debug/pprof/heap
    websocket-service    Go: /healthz /metrics (websocket_active_connections) /debug/pprof/heap, and a
                         WebSocket at /graphql (the upgrade itself is served by `proxy.py`)
    document-service     Node: /health/live /health/ready /metrics; anything else is Express's 404
    collaboration-editor nginx serving a single-page app: every path is index.html
    anything else        Go's default mux: "404 page not found"

Each pod's numbers are its own and stable (a function of its name and of metrics.k8s.io's memory for
it), so a test can scrape through kubectl and through the bot and compare. A pod whose container is
not running, whose node is down, or a port the pod does not declare, refuses the dial, as it would.
Scenarios and tests turn knobs: `exhausted_pools` (pod names whose database pool is used up) and
`failing` ((app, path) -> HTTP status the app answers there).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, HistogramMetricFamily, Metric

from . import errors, pprof
from .metrics import Metrics
from .pods import node_ready
from .store import Store
from .util import dig, fnv32a, parse_quantity, parse_time

POOL_SIZE = 20  # graphql-api's DB_POOL_MAX
TEXT = "text/plain; charset=utf-8"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
EDITOR_HTML = b"<!doctype html><title>Candlefish Editor</title><div id=root></div>"


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _text(status: int, text: str, content_type: str = TEXT) -> Answer:
    return Answer(status, content_type, text.encode())


def _share(seed: str, low: float, high: float) -> float:
    return low + (fnv32a(seed.encode()) % 10_000) / 10_000 * (high - low)


def refused(pod: dict[str, Any], port: int | str, why: str = "connect: connection refused") -> errors.ApiError:
    """The proxy's answer when the dial fails (apimachinery's NewServiceUnavailable)."""
    ip = dig(pod, "status", "podIP", default="")
    return errors.ApiError(503, "ServiceUnavailable", f"error trying to reach service: dial tcp {ip}:{port}: {why}")


@dataclass
class PodEndpoints:
    store: Store
    metrics: Metrics
    exhausted_pools: set[str] = field(default_factory=set)
    failing: dict[tuple[str, str], int] = field(default_factory=dict)

    # --- reaching the container ----------------------------------------------------------

    def container_on(self, pod: dict[str, Any], port: int | str) -> dict[str, Any]:
        """The container listening on `port`, or the refusal an engineer would see for that dial."""
        node = self.store.get(self.store.registry.kind("Node"), "", dig(pod, "spec", "nodeName", default=""))
        if node is None or not node_ready(node):
            raise refused(pod, port, "i/o timeout")
        for container in dig(pod, "spec", "containers", default=[]):
            ports = [p.get("containerPort") for p in container.get("ports") or []]
            if str(port) in {str(p) for p in ports}:
                if not self._running(pod, container["name"]):
                    break
                return dict(container)
        raise refused(pod, port)

    def _running(self, pod: dict[str, Any], container: str) -> bool:
        for cs in dig(pod, "status", "containerStatuses", default=[]):
            if cs.get("name") == container:
                return "running" in (cs.get("state") or {})
        return False

    def websocket(self, pod: dict[str, Any], port: int | str, path: str) -> int:
        """0 when the pod accepts a WebSocket upgrade at `path`, else the HTTP status it answers instead."""
        self.container_on(pod, port)
        app = dig(pod, "metadata", "labels", "app", default="")
        if app != "websocket-service" or path != "/graphql":
            return 404
        return self.failing.get((app, path), 0)

    # --- HTTP ----------------------------------------------------------------------------

    def answer(self, pod: dict[str, Any], port: int | str, method: str, path: str) -> Answer:
        container = self.container_on(pod, port)
        app = str(dig(pod, "metadata", "labels", "app", default=""))
        status = self.failing.get((app, path))
        if status:
            return _text(status, f"{status} injected fault\n")
        if app == "collaboration-editor":
            return Answer(200, "text/html", EDITOR_HTML)
        if method not in ("GET", "HEAD"):
            return _text(405, "Method Not Allowed\n")
        if app == "document-service":
            return self._node_app(pod, container, path)
        if app in ("graphql-api", "websocket-service"):
            return self._go_app(app, pod, container, path)
        return _text(404, "404 page not found\n")

    def _go_app(self, app: str, pod: dict[str, Any], container: dict[str, Any], path: str) -> Answer:
        if path in ("/healthz", "/ready"):
            return _text(200, "ok")
        if path == "/metrics":
            return Answer(200, PROMETHEUS, generate_latest(self._registry(app, pod, container)))
        if path == "/debug/pprof/heap":
            resident = self.metrics.container_usage(pod, container)[1]
            limit = parse_quantity(dig(container, "resources", "limits", "memory", default="0"))
            body = pprof.heap_profile(app, pod["metadata"]["name"], resident, limit,
                                      int(self.store.now().timestamp() * 1e9))
            return Answer(200, "application/octet-stream", body,
                          {"Content-Disposition": 'attachment; filename="heap"', "X-Content-Type-Options": "nosniff"})
        if path in ("/debug/pprof", "/debug/pprof/"):
            return Answer(200, "text/html; charset=utf-8",
                          b"<html><head><title>/debug/pprof/</title></head><body>/debug/pprof/<br>"
                          b"<a href='heap?debug=1'>heap</a></body></html>")
        if app == "websocket-service" and path == "/graphql":
            return _text(400, "Bad Request\nwebsocket: the client is not using the websocket protocol: "
                              "'upgrade' token not found in 'Connection' header\n")
        return _text(404, "404 page not found\n")

    def _node_app(self, pod: dict[str, Any], container: dict[str, Any], path: str) -> Answer:
        if path in ("/health/live", "/health/ready"):
            return Answer(200, "application/json; charset=utf-8", b'{"status":"ok"}')
        if path == "/metrics":
            return Answer(200, PROMETHEUS, generate_latest(self._registry("document-service", pod, container)))
        html = f"<!DOCTYPE html><html><body><pre>Cannot GET {path}</pre></body></html>\n"
        return _text(404, html, "text/html; charset=utf-8")

    # --- metrics -------------------------------------------------------------------------

    def _registry(self, app: str, pod: dict[str, Any], container: dict[str, Any]) -> CollectorRegistry:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_PodCollector(self, app, pod, container))
        return registry

    def uptime(self, pod: dict[str, Any]) -> float:
        started = parse_time(dig(pod, "status", "startTime"))
        return max((self.store.now() - started).total_seconds(), 1.0) if started else 1.0

    def pool(self, pod: dict[str, Any]) -> dict[str, float]:
        """graphql-api's database pool by state: a few active normally, all of it and a queue when exhausted."""
        name = pod["metadata"]["name"]
        if name in self.exhausted_pools:
            return {"active": float(POOL_SIZE), "idle": 0.0, "waiting": float(23 + fnv32a(name.encode()) % 15)}
        active = float(round(_share(name + "/pool", 5, 13)))
        return {"active": active, "idle": POOL_SIZE - active, "waiting": 0.0}


class _PodCollector:
    def __init__(self, endpoints: PodEndpoints, app: str, pod: dict[str, Any], container: dict[str, Any]):
        self.e, self.app, self.pod, self.container = endpoints, app, pod, container
        self.name = pod["metadata"]["name"]

    def collect(self) -> Iterator[Metric]:
        resident = self.e.metrics.container_usage(self.pod, self.container)[1]
        uptime = self.e.uptime(self.pod)
        memory = GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size in bytes.")
        memory.add_metric([], float(int(resident)))
        yield memory
        if self.app == "document-service":
            heap = GaugeMetricFamily("nodejs_heap_size_used_bytes", "Process heap size used from Node.js in bytes.")
            heap.add_metric([], float(int(resident * 0.61)))
            yield heap
            return
        yield from self._go(resident, uptime)
        if self.app == "graphql-api":
            yield from self._graphql(uptime)
        else:
            active = GaugeMetricFamily("websocket_active_connections", "Open WebSocket connections.")
            active.add_metric([], float(round(_share(self.name + "/ws", 640, 880))))
            yield active

    def _go(self, resident: float, uptime: float) -> Iterator[Metric]:
        stuck = self.name in self.e.exhausted_pools
        goroutines = GaugeMetricFamily("go_goroutines", "Number of goroutines that currently exist.")
        goroutines.add_metric([], float(round(_share(self.name + "/g", 170, 260)) + (412 if stuck else 0)))
        yield goroutines
        heap = GaugeMetricFamily("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.")
        heap.add_metric([], float(int(resident * pprof.HEAP_SHARE)))
        yield heap
        cycles = int(uptime / 2.3)
        gc = Metric("go_gc_duration_seconds", "A summary of the pause duration of garbage collection cycles.",
                    "summary")
        for q, v in (("0", 2.1e-05), ("0.25", 4.4e-05), ("0.5", 6.9e-05), ("0.75", 0.000131), ("1", 0.004862)):
            gc.add_sample("go_gc_duration_seconds", {"quantile": q}, v)
        gc.add_sample("go_gc_duration_seconds_sum", {}, round(cycles * 9.7e-05, 6))
        gc.add_sample("go_gc_duration_seconds_count", {}, float(cycles))
        yield gc

    def _graphql(self, uptime: float) -> Iterator[Metric]:
        pool = GaugeMetricFamily("db_connections", "Database pool connections by state.", labels=["pool", "state"])
        for state, value in self.e.pool(self.pod).items():
            pool.add_metric(["primary", state], value)
        yield pool
        limit = GaugeMetricFamily("db_connections_max", "Configured pool size.", labels=["pool"])
        limit.add_metric(["primary"], float(POOL_SIZE))
        yield limit
        requests = int(uptime * 7)
        slow = self.name in self.e.exhausted_pools
        shares = (0.42, 0.61, 0.74, 0.86) if slow else (0.81, 0.965, 0.988, 0.998)
        buckets = [(b, float(int(requests * s))) for b, s in zip(("0.1", "0.5", "1.0", "2.0"), shares, strict=True)]
        latency = HistogramMetricFamily("http_request_duration_seconds", "GraphQL request latency.", labels=["route"])
        latency.add_metric(["/graphql"], [*buckets, ("+Inf", float(requests))],
                           sum_value=round(requests * (1.9 if slow else 0.125), 1))
        yield latency
