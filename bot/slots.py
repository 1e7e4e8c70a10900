"""Work slots that a request puts down while it waits on an external system.

The runtime runs the work after each ack in a few slots, so that a burst of commands queues instead of
starving acks of the event loop (bench/RESULTS.md). A request that waits on Kubernetes, AWS or a
database uses no CPU meanwhile; if it kept its slot, a hung API server would queue `help` behind every
command waiting on it. So the slot is lent to the integrations (`integrations.workers.waiting`): put
down when a call starts waiting, taken up again before the request goes on.

A command may ask several things at once (`asyncio.gather`): the slot is put down by the first wait and
taken up when the last one ends. Every permit taken is given back exactly once, whatever the order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from integrations.workers import lend_slot, reset_slot


class Lease:
    """One request's hold on a slot of `slots` (an asyncio.Semaphore)."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots = slots
        self._held = False
        self._taking = False
        self._away = 0  # waits on external systems in progress
        self._closed = False

    async def take(self) -> None:
        await self._slots.acquire()
        self._held = True

    def put_down(self) -> None:
        self._away += 1
        if self._held:
            self._held = False
            self._slots.release()

    async def take_up(self) -> None:
        self._away -= 1
        if self._away or self._held or self._taking or self._closed:
            return
        self._taking = True
        try:
            await self._slots.acquire()
        finally:
            self._taking = False
        self._held = True
        if self._away or self._closed:  # another wait began, or the request ended, meanwhile
            self.release()

    def forget(self) -> None:
        """A wait ended by cancellation: the request unwinds without taking the slot up again."""
        self._away -= 1

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()

    def close(self) -> None:
        self._closed = True
        self.release()


@asynccontextmanager
async def lease(slots: asyncio.Semaphore) -> AsyncIterator[Lease]:
    """Hold a slot of `slots` for the block, lent to the integrations while they wait."""
    held = Lease(slots)
    await held.take()
    token = lend_slot(held)
    try:
        yield held
    finally:
        reset_slot(token)
        held.close()
