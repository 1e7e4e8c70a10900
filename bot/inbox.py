"""The durable inbox: an acknowledged Slack delivery is answered even if the replica that took it dies.

Slack retries a delivery only until it is acknowledged; after the ack the work is ours alone. So each
delivery the platform acknowledges is written here first — its key (Slack's trigger or event id), what it
is (`kind`: a `/cf` command, an Approve click…) and what is needed to do it again (`payload`: the origin
and the text or request id) — and marked done when its work ends. The row doubles as the idempotency
key: a retry or a second replica receiving the same delivery finds it and does nothing.

While work runs, its replica heart-beats every row it owns (one UPDATE for all of them). A row left
undone whose heartbeat went stale belongs to a replica that died (SIGKILL, OOM, a node lost): any
replica claims it — one UPDATE, so one claimant — and replays it. Replays are safe by construction: a
change request made by a delivery gets an id derived from the delivery's key (`delivery_key`), so the
replay finds the request it already made instead of making a second; an approval is a compare-and-set,
so a replayed click cannot run a change twice, and a change cut short is reported as interrupted as
before. Read answers are at-least-once: a reply may come twice, never not at all. A row is replayed at
most `MAX_ATTEMPTS` times.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import asdict
from typing import Any

from bot.drivers import Driver, Migration, Row
from bot.messenger import Origin

MAX_ATTEMPTS = 3
# The delivery whose work is running (set around it by the runtime): change requests take their id from it.
delivery_key: ContextVar[str | None] = ContextVar("delivery_key", default=None)
# True while a delivery is being replayed (its first replica died): only then may an approval that finds its
# request already approved by the same person run it — a second click of a live double-click must not.
replaying: ContextVar[bool] = ContextVar("replaying", default=False)

MIGRATION = Migration(
    "0007_inbox",
    (
        """CREATE TABLE IF NOT EXISTS cf_inbox (
            key TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            owner TEXT NOT NULL,
            received_at DOUBLE PRECISION NOT NULL,
            heartbeat_at DOUBLE PRECISION NOT NULL,
            done_at DOUBLE PRECISION,
            attempts INTEGER NOT NULL DEFAULT 1
        )""",
        "CREATE INDEX IF NOT EXISTS cf_inbox_open ON cf_inbox (done_at, heartbeat_at)",
    ),
)


def action_id_for(key: str) -> str:
    """The change request id a delivery makes: the same on every replay of it."""
    return hashlib.sha256(f"cf-request:{key}".encode()).hexdigest()[:12]


def origin_payload(origin: Origin, **extra: Any) -> dict[str, Any]:
    return {"origin": asdict(origin), **extra}


def origin_of(payload: dict[str, Any]) -> Origin:
    return Origin(**payload["origin"])


class Inbox:
    def __init__(self, store: Any, owner: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store  # a bot.store.Store (which imports this module for its migration)
        self.owner = owner
        self.clock = clock

    @property
    def _driver(self) -> Driver:
        driver: Driver = self.store.driver
        return driver

    async def receive(self, key: str, kind: str, payload: dict[str, Any]) -> bool:
        """Record a delivery; False when it was recorded before (a retry, another replica): do nothing then."""
        now = self.clock()
        rows = await self._driver.fetch(
            "INSERT INTO cf_inbox (key, kind, payload, owner, received_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (key) DO NOTHING RETURNING key",
            [key, kind, json.dumps(payload, sort_keys=True), self.owner, now, now],
        )
        return bool(rows)

    async def done(self, key: str) -> None:
        await self._driver.execute("UPDATE cf_inbox SET done_at = ? WHERE key = ?", [self.clock(), key])

    async def beat(self) -> None:
        """Heart-beat every delivery this replica is still working on."""
        await self._driver.execute(
            "UPDATE cf_inbox SET heartbeat_at = ? WHERE owner = ? AND done_at IS NULL", [self.clock(), self.owner]
        )

    async def claim_orphans(self, stale_after: float, limit: int = 50) -> list[Row]:
        """Take over deliveries whose replica stopped heart-beating before finishing them."""
        now = self.clock()
        return await self._driver.fetch(
            "UPDATE cf_inbox SET owner = ?, heartbeat_at = ?, attempts = attempts + 1 WHERE key IN ("
            "SELECT key FROM cf_inbox WHERE done_at IS NULL AND heartbeat_at < ? AND attempts < ? "
            "ORDER BY received_at LIMIT ?) AND done_at IS NULL AND heartbeat_at < ? RETURNING *",
            [self.owner, now, now - stale_after, MAX_ATTEMPTS, limit, now - stale_after],
        )

    async def prune(self, older_than: float) -> int:
        return await self._driver.execute(
            "DELETE FROM cf_inbox WHERE done_at IS NOT NULL AND done_at < ?", [older_than]
        )


__all__ = ["MAX_ATTEMPTS", "MIGRATION", "Inbox", "action_id_for", "delivery_key", "origin_of", "origin_payload",
           "replaying"]
