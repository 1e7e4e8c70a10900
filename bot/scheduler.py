"""Scheduled jobs (APScheduler 3, AsyncIOScheduler), each run once per tick across replicas.

Every replica schedules the same jobs. When a job fires, the replica first claims the tick in the
store (`claim_once("job:NAME:TICK")`, an INSERT that only one writer can win); the others skip it.
A tick is `floor(now / interval)`, so the claim is the same key on every replica whatever their
clocks' phase. If the store is down, nobody can claim and the job is skipped (it is retried next
tick) — safer than running twice.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.store import Store

log = logging.getLogger(__name__)

JobFn = Callable[[], Awaitable[Any]]


@dataclass
class Job:
    name: str
    interval: float
    fn: JobFn
    runs: int = 0
    skipped: int = 0
    failures: int = 0
    last_run: float | None = None


class Scheduler:
    def __init__(self, store: Store, instance_id: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.instance_id = instance_id
        self.clock = clock
        self.jobs: dict[str, Job] = {}
        self._aps: AsyncIOScheduler | None = None
        self.on_run: Callable[[str, str], None] | None = None  # (job, outcome) for metrics

    def every(self, name: str, seconds: float, fn: JobFn) -> None:
        if name in self.jobs:
            raise ValueError(f"job {name!r} is already scheduled")
        self.jobs[name] = Job(name, seconds, fn)

    async def tick(self, name: str) -> bool:
        """Run `name` for the current tick if no replica has yet; True if this call ran it."""
        job = self.jobs[name]
        now = self.clock()
        key = f"job:{name}:{math.floor(now / job.interval)}"
        try:
            if not await self.store.claim_once(key, now):
                job.skipped += 1
                self._report(name, "skipped")
                return False
        except Exception as exc:
            log.warning("job skipped: store unavailable", extra={"job": name, "error": str(exc)})
            self._report(name, "store_unavailable")
            return False
        job.last_run = now
        try:
            await job.fn()
        except Exception:
            job.failures += 1
            log.exception("scheduled job failed", extra={"job": name})
            self._report(name, "failed")
        else:
            self._report(name, "ok")
        job.runs += 1
        return True

    def _report(self, name: str, outcome: str) -> None:
        if self.on_run is not None:
            self.on_run(name, outcome)

    async def prune(self) -> None:
        """Drop claims older than a day; they only matter for the tick they name."""
        await self.store.driver.execute("DELETE FROM cf_once WHERE key LIKE 'job:%' AND at < ?",
                                        [self.clock() - 86400])

    def start(self) -> None:
        if self._aps is not None:
            return
        if "scheduler.prune" not in self.jobs:
            self.every("scheduler.prune", 3600, self.prune)
        self._aps = AsyncIOScheduler(timezone="UTC")
        for job in self.jobs.values():
            self._aps.add_job(
                self.tick, "interval", seconds=job.interval, args=[job.name], id=job.name,
                max_instances=1, coalesce=True, misfire_grace_time=max(1, int(job.interval)),
            )
        self._aps.start()

    def shutdown(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None
