"""Work that is due at a moment rather than at once: a pod's containers starting N seconds after it is bound.

Controllers put (when, work item) here; whoever owns the clock takes the items whose moment has come:
the served sandbox's clock task (`Sandbox._clock`) on the wall clock, and the world seeder on its
frozen clock as it replays history (`Cluster.advance`). `wake` is called when an item is added, so a
sleeping clock task can look again at when it must next wake up.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import datetime

Work = tuple[str, ...]


class Timers:
    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, Work]] = []
        self._serial = 0
        self.wake: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def at(self, when: datetime, item: Work) -> None:
        self._serial += 1
        heapq.heappush(self._heap, (when, self._serial, item))
        if self.wake is not None:
            self.wake()

    def next_due(self) -> datetime | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: datetime) -> list[Work]:
        """Every item due at or before `now`, in the order they fall due."""
        due = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due
