"""`Sandbox`: a seeded Candlefish cluster served over HTTP on the current asyncio loop.

    sb = Sandbox(scenario="crashloop", extra_pods=0, seed=0, start_seconds=2, hpa_sync_seconds=15)
    url = await sb.start()              # "http://127.0.0.1:PORT"
    sb.write_kubeconfig("kubeconfig")   # kubectl / kubernetes client point here
    ...
    await sb.stop()

`start_seconds`: how long a new pod stays ContainerCreating before it runs and is ready (the
Python default, 0, starts pods in the same write, so a test that is not about time does not
wait for it). `hpa_sync_seconds`: the HPA controller's period (None, the Python default: HPAs
report but never act). While serving, a clock task does the timed work on the wall clock.

`serve_forever` is the blocking form the `cfbot sandbox` and `python -m sandbox` CLIs use, with
the CLI defaults: pods start in `START_SECONDS`, HPAs sync every `HPA_SYNC_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

import yaml
from aiohttp import web

from .cluster import Cluster
from .scenarios import SCENARIOS, apply_scenario
from .server import Server
from .world import World

CONTEXT = "candlefish-sandbox"
START_SECONDS = 2.0  # the CLIs' and the demo's: long enough to see ContainerCreating and a rollout wait
HPA_SYNC_SECONDS = 15.0  # kube-controller-manager's --horizontal-pod-autoscaler-sync-period
log = logging.getLogger("sandbox")


class Sandbox:
    def __init__(self, scenario: str | None = None, extra_pods: int = 0, seed: int = 0,
                 start_seconds: float = 0.0, hpa_sync_seconds: float | None = None):
        if scenario is not None and scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; valid scenarios: {', '.join(sorted(SCENARIOS))}")
        if extra_pods < 0:
            raise ValueError("extra_pods must be >= 0")
        self.scenario = scenario
        self.cluster = Cluster(seed, start_seconds=start_seconds, hpa_sync_seconds=hpa_sync_seconds)
        World(self.cluster).build(extra_pods)
        apply_scenario(self.cluster, scenario)
        self.cluster.store.dirty.clear()
        self.server = Server(self.cluster)
        self._runner: web.AppRunner | None = None
        self._clock_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
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
        self._wake = asyncio.Event()
        self.cluster.timers.wake = self._wake.set
        self._clock_task = asyncio.create_task(self._clock(), name="sandbox-clock")
        return self.url

    async def stop(self) -> None:
        if self._runner is None:
            return
        if self._clock_task is not None:
            self._clock_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock_task
            self._clock_task = None
        self.cluster.timers.wake = None
        self.server.shutdown()
        await self._runner.cleanup()
        self._runner = None

    async def _clock(self) -> None:
        """Do the cluster's timed work when it falls due: pods whose containers start, HPA syncs.

        Sleeps until the next moment (or until new timed work wakes it); a failure is logged and
        the clock goes on, as a controller manager's loops do.
        """
        while True:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.cluster.seconds_to_next())
            try:
                self.cluster.tick()
            except Exception:
                log.exception("sandbox: timed work failed")

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
                  host: str = "127.0.0.1", start_seconds: float = START_SECONDS,
                  hpa_sync_seconds: float | None = HPA_SYNC_SECONDS) -> None:
    """Serve a sandbox until SIGINT/SIGTERM, after printing its URL and the KUBECONFIG export line."""

    async def main() -> None:
        sandbox = Sandbox(scenario=scenario, extra_pods=extra_pods, start_seconds=start_seconds,
                          hpa_sync_seconds=hpa_sync_seconds)
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
