"""The audit trail: the durable store first, then the request's Slack thread.

`record` writes the entry to the store *before* anything it describes happens (write-ahead) and
raises if the store is unavailable, so a change cannot run unaudited. Posting to the thread comes
second; Slack's own retries cover transient failures, and a post that still fails is logged with
the entry id (the durable record is already there) rather than stopping the action half-way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from bot.messenger import DeliveryError, Messenger
from bot.store import AuditEntry, Store

log = logging.getLogger(__name__)


class AuditTrail:
    def __init__(self, store: Store, messenger: Messenger, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.messenger = messenger
        self.clock = clock

    async def record(
        self,
        event: str,
        actor: str,
        command: str,
        *,
        action_id: str | None = None,
        channel: str | None = None,
        thread_ts: str | None = None,
        text: str | None = None,
        detail: dict[str, Any] | None = None,
        incident_id: str | None = None,
        request_id: str | None = None,
    ) -> int:
        entry_id = await self.store.append_audit(
            at=self.clock(),
            event=event,
            actor=actor,
            command=command,
            action_id=action_id,
            channel=channel,
            detail=detail,
            incident_id=incident_id,
            request_id=request_id,
        )
        if text and channel and thread_ts:
            await self.post(channel, thread_ts, text, entry_id)
        return entry_id

    async def post(self, channel: str, thread_ts: str, text: str, entry_id: int | None = None) -> None:
        try:
            await self.messenger.post(channel, text, thread_ts=thread_ts)
        except DeliveryError as exc:
            log.error(
                "audit entry stored but not posted to its thread",
                extra={"audit_id": entry_id, "channel": channel, "error": exc.code},
            )

    async def tail(self, limit: int) -> list[AuditEntry]:
        return await self.store.audit_tail(limit)

    async def for_incident(self, incident_id: str) -> list[AuditEntry]:
        return await self.store.audit_for_incident(incident_id)
