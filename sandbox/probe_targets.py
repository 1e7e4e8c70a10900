"""Stand-ins for the Candlefish services' public endpoints, for the demo and fire drills.

The runbook probes them from the outside: `curl -I https://editor.candlefish.ai`, `curl
https://api.candlefish.ai/health`, `curl .../metrics | grep db_connections` and `wscat -c
wss://ws.candlefish.ai/graphql`. One small aiohttp app answers all of those on a local port:

    /                 the editor (HTML)            /health       the API's health (JSON)
    /metrics          graphql-api's Prometheus metrics (db_connections, go_gc_duration_seconds ...)
    /ws/metrics       websocket-service's metrics (websocket_active_connections ...)
    /graphql          a WebSocket speaking graphql-transport-ws far enough for a probe

`slow` and `broken` (path -> seconds / HTTP status) let a drill make one endpoint lag or fail.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

from aiohttp import WSMsgType, web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, HistogramMetricFamily, Metric

GC_QUANTILES = {"0": 2.1e-05, "0.25": 4.4e-05, "0.5": 6.9e-05, "0.75": 0.000131, "1": 0.004862}


class _Collector:
    """Plausible values that move a little between scrapes, as live ones do."""

    def __init__(self, service: str, rng: random.Random):
        self.service = service
        self.rng = rng
        self.gc_count = 18_204 if service == "graphql-api" else 9_311

    def collect(self) -> Iterator[Metric]:
        self.gc_count += self.rng.randint(1, 4)
        yield self._gc()
        memory = GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size in bytes.")
        memory.add_metric([], float(self.rng.randint(610, 690) * 2**20))
        yield memory
        if self.service == "graphql-api":
            yield from self._graphql()
        else:
            active = GaugeMetricFamily("websocket_active_connections", "Open WebSocket connections.",
                                       labels=["pod"])
            for pod in ("websocket-service-0", "websocket-service-1", "websocket-service-2"):
                active.add_metric([pod], float(self.rng.randint(700, 860)))
            yield active

    def _gc(self) -> Metric:
        gc = Metric("go_gc_duration_seconds", "A summary of the pause duration of garbage collection cycles.",
                    "summary")
        for q, v in GC_QUANTILES.items():
            gc.add_sample("go_gc_duration_seconds", {"quantile": q}, v)
        gc.add_sample("go_gc_duration_seconds_sum", {}, round(self.gc_count * 9.7e-05, 6))
        gc.add_sample("go_gc_duration_seconds_count", {}, float(self.gc_count))
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
        buckets = [("0.1", 51_200), ("0.5", 60_950), ("1.0", 62_400), ("2.0", 63_010), ("+Inf", 63_120)]
        latency = HistogramMetricFamily("http_request_duration_seconds", "GraphQL request latency.",
                                        labels=["route"])
        latency.add_metric(["/graphql"], [(b, float(n)) for b, n in buckets], sum_value=7_890.4)
        yield latency


class ProbeTargets:
    """The stand-in services on one local port. `url` is set once started."""

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)
        self.slow: dict[str, float] = {}
        self.broken: dict[str, int] = {}
        self.url = ""
        self._registries = {name: self._registry(name) for name in ("graphql-api", "websocket-service")}
        self._runner: web.AppRunner | None = None

    def _registry(self, service: str) -> CollectorRegistry:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(service, self.rng))
        return registry

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._faults])
        app.router.add_get("/", self._editor)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics("graphql-api"))
        app.router.add_get("/ws/metrics", self._metrics("websocket-service"))
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

    def _metrics(self, service: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            body = generate_latest(self._registries[service])
            return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

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
