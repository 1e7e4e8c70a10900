"""What goes wrong during the soak, on a schedule: replicas killed, the store restarted, Slack and the
Kubernetes API misbehaving for windows.

- A random live replica gets SIGKILL every `kill_every` seconds (±30%) and is started again after
  `down_seconds`; work it had acknowledged and not finished is lost with it, unless another replica
  picks it up (that is what the invariants measure).
- The store (the soak's own PostgreSQL) is restarted once with `pg_ctl restart -m fast`, at
  `pg_restart_at` of the load phase: every session is cut.
- Slack: `slack_base` chaos all along, and `slack_window` chaos for `slack_window_seconds` every
  `slack_every` seconds (`tests/slacksim/chaos.py`: 429 with Retry-After, 500/503, answers held past
  the client's timeout).
- Kubernetes: every `k8s_every` seconds a window of `k8s_window_seconds`, in turn: slow (every call
  under the namespace waits 1.5 s), failing (half the deployment and pod calls answer 503), and past the
  client's deadline (a restart's PATCH waits 11 s, longer than `kubernetes.timeout_seconds`: the bot
  gives up, then the API server applies it — a change that failed *and* took effect).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.soak_pg import Postgres
from bench.soak_procs import Replica, Sandbox
from tests.slacksim import Chaos, SlackSim

NS = "/apis/apps/v1/namespaces/collaboration"
K8S_WINDOWS: list[tuple[str, dict[str, Any]]] = [
    ("slow", {"path": r"/api(s/[^/]+)?/v1/namespaces/collaboration/.*", "delay": 1.5}),
    ("failing", {"path": rf"({NS}/deployments|/api/v1/namespaces/collaboration/pods).*", "status": 503,
                 "reason": "ServiceUnavailable", "share": 0.5}),
    ("answered past the client's deadline", {"path": rf"{NS}/deployments/soak-[0-9]+", "method": "PATCH",
                                             "hold": 11.0}),
]


@dataclass
class FaultPlan:
    kill_every: float = 30.0
    down_seconds: tuple[float, float] = (2.0, 5.0)
    pg_restart_at: float | None = 0.45  # share of the load phase; None: no restart
    # shares of Slack calls answered (429, 500/503, held past the client's timeout): all along, and in windows
    slack_base: tuple[float, float, float] = (0.02, 0.01, 0.002)
    slack_window: tuple[float, float, float] = (0.08, 0.03, 0.01)
    slack_every: float = 100.0
    slack_window_seconds: float = 15.0
    k8s_every: float = 60.0
    k8s_window_seconds: tuple[float, float] = (6.0, 10.0)
    first_fault_after: float = 8.0  # let the load start before anything breaks
    seed: int | None = None


class Faults:
    def __init__(self, plan: FaultPlan, replicas: list[Replica], pg: Postgres, sandbox: Sandbox,
                 sim: SlackSim) -> None:
        self.plan = plan
        self.replicas = replicas
        self.pg = pg
        self.sandbox = sandbox
        self.sim = sim
        self.rng = random.Random(plan.seed)
        self.counts: Counter[str] = Counter()
        self.events: list[tuple[float, str]] = []
        self.chaos: list[Chaos] = []
        self.pg_restart_seconds: float | None = None
        self._restarts: set[asyncio.Task[None]] = set()
        self._t0 = time.monotonic()

    def note(self, what: str) -> None:
        self.events.append((round(time.monotonic() - self._t0, 1), what))

    def _slack(self, rates: tuple[float, float, float]) -> Chaos:
        chaos = Chaos(rate_429=rates[0], rate_5xx=rates[1], rate_hold=rates[2], seed=self.rng.randrange(1 << 30))
        self.chaos.append(chaos)
        self.sim.chaos = chaos
        return chaos

    async def run(self, seconds: float) -> None:
        """Inject faults for `seconds`, then stop injecting; return once killed replicas are back."""
        self._t0 = time.monotonic()
        self._slack(self.plan.slack_base)
        loops = [self._kills(seconds), self._slack_windows(seconds), self._k8s_windows(seconds)]
        if self.plan.pg_restart_at is not None:
            loops.append(self._pg_restart(seconds * self.plan.pg_restart_at))
        try:
            await asyncio.gather(*loops)
        finally:
            self.sim.chaos = None
            await self.sandbox.clear_faults()
            if self._restarts:
                await asyncio.gather(*self._restarts)

    async def _kills(self, seconds: float) -> None:
        end = self._t0 + seconds
        await asyncio.sleep(self.plan.first_fault_after)
        while True:
            wait = self.plan.kill_every * self.rng.uniform(0.7, 1.3)
            if time.monotonic() + wait >= end:
                return
            await asyncio.sleep(wait)
            alive = [r for r in self.replicas if r.alive]
            if not alive:
                continue
            victim = self.rng.choice(alive)
            await victim.kill()
            self.counts["replica kills (SIGKILL)"] += 1
            self.note(f"SIGKILL replica {victim.index}")
            task = asyncio.create_task(self._restart(victim, self.rng.uniform(*self.plan.down_seconds)))
            self._restarts.add(task)
            task.add_done_callback(self._restarts.discard)

    async def _restart(self, replica: Replica, after: float) -> None:
        await asyncio.sleep(after)
        for attempt in (1, 2):
            try:
                await replica.start()
                self.note(f"replica {replica.index} back")
                return
            except RuntimeError as exc:  # did not come up in time on a busy machine: once more, then say so
                self.note(f"replica {replica.index} did not start (attempt {attempt}): {exc}")
                await replica.kill()

    async def _pg_restart(self, at: float) -> None:
        await asyncio.sleep(at)
        started = time.monotonic()
        await self.pg.restart()
        self.pg_restart_seconds = time.monotonic() - started
        self.counts["store restarts (pg_ctl restart -m fast)"] += 1
        self.note(f"PostgreSQL restarted ({self.pg_restart_seconds:.1f} s)")

    async def _slack_windows(self, seconds: float) -> None:
        end = self._t0 + seconds
        await asyncio.sleep(min(self.plan.first_fault_after * 2, seconds / 3))
        while time.monotonic() + self.plan.slack_window_seconds < end:
            self._slack(self.plan.slack_window)
            self.counts["Slack chaos windows"] += 1
            self.note(f"Slack chaos window ({self.plan.slack_window_seconds:g} s)")
            await asyncio.sleep(self.plan.slack_window_seconds)
            self._slack(self.plan.slack_base)
            await asyncio.sleep(min(self.plan.slack_every - self.plan.slack_window_seconds,
                                    max(0.0, end - time.monotonic())))

    async def _k8s_windows(self, seconds: float) -> None:
        end = self._t0 + seconds
        await asyncio.sleep(min(self.plan.first_fault_after * 1.5, seconds / 4))
        turn = 0
        while True:
            length = self.rng.uniform(*self.plan.k8s_window_seconds)
            if time.monotonic() + length >= end:
                return
            name, spec = K8S_WINDOWS[turn % len(K8S_WINDOWS)]
            turn += 1
            await self.sandbox.fault(**spec, seconds=length)
            self.counts[f"Kubernetes API windows: {name}"] += 1
            self.note(f"Kubernetes API {name} ({length:.0f} s)")
            await asyncio.sleep(max(length, self.plan.k8s_every * self.rng.uniform(0.8, 1.2)))

    def slack_counts(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for chaos in self.chaos:
            total.update(chaos.counts)
        return total
