"""`Sandbox`: a seeded Candlefish cluster served over HTTP on the current asyncio loop.

    sb = Sandbox(scenario="crashloop", extra_pods=0, seed=0)
    url = await sb.start()              # "http://127.0.0.1:PORT"
    sb.write_kubeconfig("kubeconfig")   # kubectl / kubernetes client point here
    ...
    await sb.stop()

`serve_forever` is the blocking form the `cfbot sandbox` and `python -m sandbox` CLIs use.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import yaml
from aiohttp import web

from .cluster import Cluster
from .scenarios import SCENARIOS, apply_scenario
from .server import Server
from .world import World

CONTEXT = "candlefish-sandbox"


class Sandbox:
    def __init__(self, scenario: str | None = None, extra_pods: int = 0, seed: int = 0):
        if scenario is not None and scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; valid scenarios: {', '.join(sorted(SCENARIOS))}")
        if extra_pods < 0:
            raise ValueError("extra_pods must be >= 0")
        self.scenario = scenario
        self.cluster = Cluster(seed)
        World(self.cluster).build(extra_pods)
        apply_scenario(self.cluster, scenario)
        self.cluster.store.dirty.clear()
        self.server = Server(self.cluster)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def fail(self, path: str, code: int = 500, reason: str = "InternalError", message: str = "injected fault",
             method: str = "GET", query: dict[str, str] | None = None, times: int | None = None) -> None:
        """Answer API requests whose path matches the regex `path` with an error (see `Server.fail`)."""
        self.server.fail(path, code, reason, message, method, query, times)

    def clear_faults(self) -> None:
        self.server.faults.clear()

    @property
    def api_calls(self) -> int:
        """API requests served so far (discovery included), for benchmarks."""
        return self.server.api_calls

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._runner is not None:
            raise RuntimeError("sandbox already started")
        self.server.reopen()
        runner = web.AppRunner(self.server.app(), handle_signals=False, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self.url = f"http://{bound_host}:{bound_port}"
        self.server.url = self.url
        return self.url

    async def stop(self) -> None:
        if self._runner is None:
            return
        self.server.shutdown()
        await self._runner.cleanup()
        self._runner = None

    def write_kubeconfig(self, path: str | Path) -> Path:
        """A kubeconfig with one cluster/context/user: plain http, no auth, namespace collaboration."""
        if not self.url:
            raise RuntimeError("start the sandbox before writing its kubeconfig")
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": CONTEXT, "cluster": {"server": self.url}}],
            "users": [{"name": CONTEXT, "user": {}}],
            "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT,
                                                       "namespace": "collaboration"}}],
            "current-context": CONTEXT,
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target


def serve_forever(port: int, kubeconfig: str, scenario: str | None = None, extra_pods: int = 0,
                  host: str = "127.0.0.1") -> None:
    """Serve a sandbox until SIGINT/SIGTERM, after printing its URL and the KUBECONFIG export line."""

    async def main() -> None:
        sandbox = Sandbox(scenario=scenario, extra_pods=extra_pods)
        url = await sandbox.start(host=host, port=port)
        path = sandbox.write_kubeconfig(kubeconfig).resolve()
        print(f"Candlefish sandbox API server at {url} (scenario: {scenario or 'none'})", flush=True)
        print(f"export KUBECONFIG={path}", flush=True)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopped.set)
        try:
            await stopped.wait()
        finally:
            await sandbox.stop()

    asyncio.run(main())
