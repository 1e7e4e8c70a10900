"""Wiring: settings + store + messenger + integrations -> one `Runtime` the transports share.

Both the Slack app (HTTP or Socket Mode) and the demo console build a Runtime; they differ only in
the `Messenger` they pass and in how requests reach `runtime.dispatcher.handle`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot import slots
from bot.approvals import Approvals
from bot.audit import AuditTrail
from bot.config import Settings
from bot.dispatch import Dispatcher
from bot.inbox import Inbox, delivery_key, origin_of, replaying
from bot.listening import guarded
from bot.messenger import Messenger, Origin
from bot.metrics import Metrics
from bot.policy import Policy
from bot.scheduler import Scheduler
from bot.store import Store, StoreUnavailable
from commands.base import Services

log = logging.getLogger(__name__)


def new_instance_id() -> str:
    """Names this process in scheduler claims and logs: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class Runtime:
    settings: Settings
    store: Store
    messenger: Messenger
    audit: AuditTrail
    policy: Policy
    dispatcher: Dispatcher
    approvals: Approvals
    scheduler: Scheduler
    services: Services
    metrics: Metrics = field(default_factory=Metrics)
    instance_id: str = field(default_factory=new_instance_id)
    inflight: set[asyncio.Task[Any]] = field(default_factory=set)
    # Work after an ack runs in a few slots so that a burst of commands queues cheaply instead of
    # starving acks of the event loop and the GIL (measured: bench/RESULTS.md). Approved changes may
    # wait minutes on the systems they change (a drain, a rollout), so they have slots of their own.
    work_slots: int = 4
    action_slots: int = 16
    _slots: asyncio.Semaphore = field(init=False, repr=False)
    _action_slots: asyncio.Semaphore = field(init=False, repr=False)
    # What a domain on top of the platform adds (incidents: its services, set by app.assemble), and the
    # handler of `/cf` text (a domain may answer some itself, e.g. the declare modal; else the dispatcher).
    ops: object | None = None
    # Commands a domain answers with a form when typed alone (incidents: `incident declare` opens the declare
    # modal). The opener returns False when it did not open one (no permission, Slack refused): the text then
    # goes to the dispatcher like any other.
    forms: dict[str, Callable[[Origin], Awaitable[bool]]] = field(default_factory=dict)
    # How to do again a delivery of each kind the inbox records (bot/inbox.py): the platform's own below; a
    # domain may add its kinds. Each takes the recorded payload (the origin plus what the kind needs).
    replayers: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = field(default_factory=dict)
    inbox: Inbox = field(init=False, repr=False)
    _beat: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.work_slots)
        self._action_slots = asyncio.Semaphore(self.action_slots)
        self.inbox = Inbox(self.store, self.instance_id)
        self.replayers.update({
            "command": lambda p: self.handle_command(origin_of(p), str(p.get("text", ""))),
            "approve": lambda p: guarded(self.messenger, origin_of(p),
                                         lambda: self.approvals.approve(str(p["value"]), origin_of(p))),
            "deny": lambda p: guarded(self.messenger, origin_of(p),
                                      lambda: self.approvals.deny(str(p["value"]), origin_of(p))),
        })

    async def deliver(self, kind: str, payload: dict[str, Any], key: str | None, long: bool = False) -> Any:
        """Do one acknowledged Slack delivery durably: recorded in the inbox first (so a dead replica's work is
        done by another), once across retries and replicas, then marked done. `payload` is what `replayers[kind]`
        needs; the listeners build it with `bot.inbox.origin_payload`."""
        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
        try:
            if key is not None:
                try:
                    first = await self.inbox.receive(key, kind, payload)
                except StoreUnavailable:
                    first = True  # read commands must keep working; changes fail closed later anyway
                    key = None
                if not first:
                    self.metrics.slack_retries_skipped.labels("duplicate").inc()
                    log.info("duplicate Slack delivery acknowledged, not run again", extra={"key": key})
                    return None
            return await self._run_delivery(kind, payload, key, long)
        finally:
            if task is not None:
                self.inflight.discard(task)

    async def _run_delivery(self, kind: str, payload: dict[str, Any], key: str | None, long: bool) -> Any:
        token = delivery_key.set(key)
        try:
            async with slots.lease(self._action_slots if long else self._slots):
                return await self.replayers[kind](payload)
        except Exception as exc:  # the replayers answer their own failures; this is the last line
            log.error("delivery failed", extra={"kind": kind, "error": type(exc).__name__})
            return None
        finally:
            delivery_key.reset(token)
            if key is not None:
                try:
                    await self.inbox.done(key)
                except StoreUnavailable:
                    log.warning("delivery done but not marked so in the inbox", extra={"key": key})

    async def recover_deliveries(self, stale_after: float | None = None) -> int:
        """Replay deliveries a dead replica acknowledged but did not finish (any replica may; one claims each)."""
        window = stale_after if stale_after is not None else self.settings.approvals.heartbeat_seconds * 3
        orphans = await self.inbox.claim_orphans(window)
        for row in orphans:
            log.warning("replaying a delivery its replica did not finish",
                        extra={"key": row["key"], "kind": row["kind"], "attempt": row["attempts"]})
            payload = json.loads(row["payload"])
            task = asyncio.create_task(self._replay(str(row["kind"]), payload, str(row["key"])))
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)
        return len(orphans)

    async def _replay(self, kind: str, payload: dict[str, Any], key: str) -> None:
        if kind not in self.replayers:
            log.error("no replayer for a recorded delivery", extra={"kind": kind, "key": key})
            await self.inbox.done(key)
            return
        token = replaying.set(True)
        try:
            await self._run_delivery(kind, payload, key, long=True)
        finally:
            replaying.reset(token)

    async def _heartbeat(self) -> None:
        """Heart-beat this replica's deliveries; every few beats, take over a dead replica's and prune old rows."""
        beat = self.settings.approvals.heartbeat_seconds
        rounds = 0
        while True:
            await asyncio.sleep(beat)
            rounds += 1
            try:
                await self.inbox.beat()
                if rounds % 3 == 0:
                    await self.recover_deliveries()
                if rounds % 720 == 0:
                    await self.inbox.prune(time.time() - 86400)
            except Exception as exc:  # the store may blip; the next beat tries again
                log.warning("inbox heartbeat failed", extra={"error": str(exc)})

    async def track(self, work: Awaitable[Any], key: str | None = None, long: bool = False) -> Any:
        """Run request work after its ack: at most `work_slots` at a time (so acks are never starved
        by a backlog of work), counted for graceful shutdown and tests, and, when `key` names the
        Slack delivery, only once across retries and replicas (the first to claim it in the store)."""
        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
        try:
            async with slots.lease(self._action_slots if long else self._slots):  # put down while waiting on I/O
                if key is not None and not await self._first_delivery(key):
                    close = getattr(work, "close", None)
                    if callable(close):
                        close()
                    return None
                return await work
        finally:
            if task is not None:
                self.inflight.discard(task)

    async def handle_command(self, origin: Origin, text: str) -> None:
        """The `/cf` listener's work, after its ack."""
        opener = self.forms.get(" ".join(text.lower().split())) if origin.trigger_id else None
        if opener is not None and await opener(origin):
            return
        await self.dispatcher.handle(origin, text)

    async def _first_delivery(self, key: str) -> bool:
        try:
            first = await self.store.claim_once(f"slack:{key}", time.time())
        except StoreUnavailable:
            return True  # read commands must keep working; changes fail closed later anyway
        if not first:
            self.metrics.slack_retries_skipped.labels("duplicate").inc()
            log.info("duplicate Slack delivery acknowledged, not run again", extra={"key": key})
        return first

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` for in-flight requests (a running approval, say) to finish."""
        pending = {t for t in self.inflight if t is not asyncio.current_task()}
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        return not any(not t.done() for t in pending)

    async def start(self) -> None:
        """Report actions a previous process left running, then start the scheduled jobs and the inbox's beat."""
        await self.approvals.recover_interrupted()
        await self.approvals.expire_due()
        self.scheduler.start()
        self._beat = asyncio.create_task(self._heartbeat(), name="inbox-heartbeat")

    async def close(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beat
        self.scheduler.shutdown()
        await self.approvals.verdicts.stop()  # left `verifying`: the next process (or a peer) resumes the watch
        self.metrics.close()
        for svc in self.services.values():
            closer = getattr(svc, "close", None)
            if callable(closer) and svc is not self.audit:
                result = closer()
                if hasattr(result, "__await__"):
                    await result
        closer = getattr(self.messenger, "close", None)
        if callable(closer):
            await closer()
        await self.store.close()

