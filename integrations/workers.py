"""Worker threads of their own for each blocking client, and one deadline per call that covers them.

The Kubernetes client and boto3 block, so their calls run in threads. They used to share the event
loop's default executor (`asyncio.to_thread`) with each other and with the SQLite store: a frozen API
server kept those few threads busy long after the commands had given up (the client retried each
read timeout three times), and every command, `help` included, queued behind them. Now:

- each client has its own pool (`Workers`), sized to what it may hold, so one hung system can only
  exhaust its own threads;
- a call's deadline starts when the call is made and covers the wait for a thread as well as the
  work: a call still queued when it passes is taken out of the queue and fails with TimeoutError, as
  one that got no answer does, instead of running late or queueing forever;
- the work is handed the seconds left when a thread picks it up and bounds its own blocking I/O (and
  its client's retries) by them, so a thread is free again by the call's deadline;
- while a request waits on an external system it puts down its work slot (`waiting`), so requests
  that do not need that system are not queued behind requests that wait on it. The platform lends the
  slot through `lend_slot`; integrations never import the platform.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from contextvars import ContextVar, Token
from typing import Protocol, TypeVar

T = TypeVar("T")


class NoWorker(TimeoutError):
    """The deadline passed before any thread was free for the call: it was dropped, never run."""


class Workers:
    """A named, bounded pool of threads for one blocking client."""

    def __init__(self, name: str, size: int) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one thread")
        self.name = name
        self.size = size
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._busy = 0  # calls running in a thread now
        self._queued = 0  # calls waiting for a thread

    @property
    def busy(self) -> int:
        return self._busy

    @property
    def queued(self) -> int:
        return self._queued

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:  # first use, or used again after close()
                self._pool = ThreadPoolExecutor(self.size, thread_name_prefix=f"cf-{self.name}")
            return self._pool

    async def run(self, fn: Callable[[float], T], timeout: float) -> T:
        """`fn(seconds_left)` in one of the threads, within `timeout` seconds from now, queueing included.

        Raises TimeoutError when the deadline passes first, NoWorker (a TimeoutError) if the call
        never got a thread: it is dropped from the queue. `fn` must bound its own blocking I/O by the
        seconds it is given.
        """
        deadline = time.monotonic() + timeout

        def work() -> T:
            with self._lock:
                self._queued -= 1
                self._busy += 1
            try:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NoWorker(f"no {self.name} thread was free within {timeout:g}s")
                return fn(left)
            finally:
                with self._lock:
                    self._busy -= 1

        with self._lock:
            self._queued += 1
        future = self._executor().submit(work)
        future.add_done_callback(self._unqueue_if_cancelled)
        async with waiting():
            try:
                return await asyncio.wait_for(asyncio.wrap_future(future), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                if future.cancel():  # still queued: it never got a thread, and now never will
                    raise NoWorker(f"no {self.name} thread was free within {timeout:g}s") from None
                raise

    def _unqueue_if_cancelled(self, future: Future[T]) -> None:
        if future.cancelled():  # taken out of the queue before a thread picked it up
            with self._lock:
                self._queued -= 1

    def close(self) -> None:
        """Let the threads go once their calls end (each by its own deadline); the next call starts a new pool."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)


# --- work slots -------------------------------------------------------------------------------


class Slot(Protocol):
    """A request's work slot as the platform lends it: put down while waiting, taken up again after."""

    def put_down(self) -> None: ...

    async def take_up(self) -> None: ...

    def forget(self) -> None: ...


_slot: ContextVar[Slot | None] = ContextVar("cf_work_slot", default=None)


def lend_slot(slot: Slot | None) -> Token[Slot | None]:
    """Called by the platform around a request's work; `reset_slot(token)` when the request ends."""
    return _slot.set(slot)


def reset_slot(token: Token[Slot | None]) -> None:
    _slot.reset(token)


@asynccontextmanager
async def waiting() -> AsyncIterator[None]:
    """Around a wait on an external system: the request's work slot, if it has one, is free meanwhile.

    It is taken up again before the request goes on (after a failure too: the error still has to be
    rendered), but not when the request is being cancelled, which needs no slot to unwind.
    """
    slot = _slot.get()
    if slot is None:
        yield
        return
    slot.put_down()
    try:
        yield
    except Exception:
        await slot.take_up()
        raise
    except BaseException:
        slot.forget()
        raise
    await slot.take_up()
