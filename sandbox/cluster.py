"""The simulated cluster's moving parts, wired together once.

`Cluster` owns the store and everything that reads or writes it (event recorder, metrics,
controllers). The HTTP layer, the world seeder and the scenarios all work through it.

Two settings make time matter: `start_seconds`, how long a bound pod's containers take to start
(0: at once), and `hpa_sync_seconds`, how often the HPA controller puts targets scaled outside
their bounds back (None: never). Whoever owns the clock calls `tick()` when `seconds_to_next()`
says something is due: the served sandbox's clock task, or a test that drives time itself.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from .autoscaling import enforce_bounds
from .controllers import Controllers
from .events import Recorder
from .metrics import Metrics
from .pod_http import PodEndpoints
from .resources import Registry, ResourceType
from .store import Store


class Cluster:
    def __init__(self, seed: int = 0, start_seconds: float = 0.0, hpa_sync_seconds: float | None = None):
        if start_seconds < 0:
            raise ValueError("start_seconds must be >= 0")
        if hpa_sync_seconds is not None and hpa_sync_seconds <= 0:
            raise ValueError("hpa_sync_seconds must be > 0 (or None: the HPA controller does not act)")
        self.seed = seed
        self.registry = Registry()
        self.store = Store(self.registry, random.Random(seed))
        self.recorder = Recorder(self.store)
        self.metrics = Metrics(self.store)
        self.controllers = Controllers(self.store, self.recorder, self.metrics, start_seconds)
        self.timers = self.controllers.timers
        self.pod_http = PodEndpoints(self.store, self.metrics)  # what pods answer behind pods/proxy
        self.hpa_sync_seconds = hpa_sync_seconds
        self._next_hpa_sync: datetime | None = None

    def rt(self, kind: str, group: str = "") -> ResourceType:
        return self.registry.kind(kind, group)

    def settle(self) -> None:
        """Run the controllers until nothing changes (called after every API write)."""
        self.controllers.run()

    # --- time ----------------------------------------------------------------------------

    def run_due(self) -> None:
        """Do the timed work whose moment has come (containers that start now), then settle."""
        due = self.timers.pop_due(self.store.now())
        for item in due:
            self.controllers.handle(item)
        if due:
            self.settle()

    def sync_autoscalers(self) -> None:
        """One HPA controller sync: targets outside their bounds go back inside."""
        enforce_bounds(self.store, self.recorder)
        self.settle()

    def tick(self) -> None:
        """Everything due on the wall clock: timers, and the HPA sync when its period has passed."""
        self.run_due()
        if self.hpa_sync_seconds is None:
            return
        now = self.store.now()
        if self._next_hpa_sync is None:
            self._next_hpa_sync = now + timedelta(seconds=self.hpa_sync_seconds)
        elif now >= self._next_hpa_sync:
            self._next_hpa_sync = now + timedelta(seconds=self.hpa_sync_seconds)
            self.sync_autoscalers()

    def seconds_to_next(self) -> float | None:
        """How long until `tick()` has something to do (None: nothing is scheduled)."""
        now = self.store.now()
        moments = [m for m in (self.timers.next_due(), self._next_hpa_sync) if m is not None]
        if self.hpa_sync_seconds is not None and self._next_hpa_sync is None:
            return 0.0  # the first tick starts the HPA's period
        return max(0.0, (min(moments) - now).total_seconds()) if moments else None

    def advance(self, to: datetime | None) -> None:
        """Move the seeding clock to `to` (None: back to the wall clock), doing each timer at its moment."""
        target = to or datetime.now(UTC)
        while (due := self.timers.next_due()) is not None and due <= target:
            self.store.freeze_time(due)
            self.run_due()
        self.store.freeze_time(to)
