"""The simulated cluster's moving parts, wired together once.

`Cluster` owns the store and everything that reads or writes it (event recorder, metrics,
controllers). The HTTP layer, the world seeder and the scenarios all work through it.
"""

from __future__ import annotations

import random

from .controllers import Controllers
from .events import Recorder
from .metrics import Metrics
from .pod_http import PodEndpoints
from .resources import Registry, ResourceType
from .store import Store


class Cluster:
    def __init__(self, seed: int = 0):
        self.seed = seed
        self.registry = Registry()
        self.store = Store(self.registry, random.Random(seed))
        self.recorder = Recorder(self.store)
        self.metrics = Metrics(self.store)
        self.controllers = Controllers(self.store, self.recorder, self.metrics)
        self.pod_http = PodEndpoints(self.store, self.metrics)  # what pods answer behind pods/proxy

    def rt(self, kind: str, group: str = "") -> ResourceType:
        return self.registry.kind(kind, group)

    def settle(self) -> None:
        """Run the controllers until nothing changes (called after every API write)."""
        self.controllers.run()
