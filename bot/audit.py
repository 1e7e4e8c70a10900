"""The audit trail: the durable store first, then the request's Slack thread.

`record` writes the entry to the store *before* anything it describes happens (write-ahead) and
raises if the store is unavailable, so a change cannot run unaudited. Posting to the thread comes
second; Slack's own retries cover transient failures, and a post that still fails is logged with
the entry id (the durable record is already there) rather than stopping the action half-way.

Reading it back (`/cf audit`) is `query`: filters applied in SQL by the store, people's names
looked up through the messenger (`UserNames`, cached) only for display. The store keeps raw ids.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from bot.messenger import DeliveryError, Messenger
from bot.store import Action, AuditEntry, AuditQuery, AuditView, Store

log = logging.getLogger(__name__)


USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")


class UserNames:
    """People's names for display, looked up by id (Slack's `users.info` via the messenger), cached.

    A name is kept for `ttl` seconds (people rarely rename themselves) and at most `size` are kept,
    the least recently used dropped first. A lookup that fails or takes longer than `timeout` shows
    the raw id and is tried again after `retry_after` seconds: a Slack outage costs one call per
    person per minute, and never the command. Anything that is not a user id (`cf`, `alertmanager`)
    is already a name.
    """

    def __init__(
        self,
        lookup: Callable[[str], Awaitable[str]],
        *,
        ttl: float = 3600.0,
        size: int = 1000,
        retry_after: float = 60.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lookup = lookup
        self.ttl, self.size, self.retry_after, self.timeout = ttl, size, retry_after, timeout
        self.clock = clock
        self._cache: OrderedDict[str, tuple[float, str]] = OrderedDict()  # id -> (good until, name)

    async def names(self, ids: Iterable[str]) -> dict[str, str]:
        """`{id: name}` for every id given; the id itself where no name could be had."""
        now = self.clock()
        out: dict[str, str] = {}
        missing: list[str] = []
        for user_id in dict.fromkeys(ids):
            cached = self._cache.get(user_id)
            if cached is not None and cached[0] > now:
                self._cache.move_to_end(user_id)
                out[user_id] = cached[1]
            elif USER_ID.fullmatch(user_id):
                missing.append(user_id)
            else:
                out[user_id] = user_id
        if missing:
            tasks: dict[str, asyncio.Future[str]] = {u: asyncio.ensure_future(self.lookup(u)) for u in missing}
            done, pending = await asyncio.wait(tasks.values(), timeout=self.timeout)
            for task in pending:
                task.cancel()
            for user_id, task in tasks.items():
                name = task.result() if task in done and task.exception() is None else None
                if task in done and task.exception() is not None:
                    log.warning("user name lookup failed", extra={"user": user_id, "error": repr(task.exception())})
                out[user_id] = name or user_id
                self._keep(user_id, name or user_id, self.ttl if name else self.retry_after)
        return out

    async def name(self, user_id: str) -> str:
        return (await self.names([user_id]))[user_id]

    def _keep(self, user_id: str, name: str, for_seconds: float) -> None:
        self._cache[user_id] = (self.clock() + for_seconds, name)
        self._cache.move_to_end(user_id)
        while len(self._cache) > self.size:
            self._cache.popitem(last=False)


class AuditTrail:
    def __init__(self, store: Store, messenger: Messenger, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.messenger = messenger
        self.clock = clock
        self.people = UserNames(messenger.user_name)

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

    async def query(
        self,
        limit: int,
        *,
        target: str | None = None,
        users: Iterable[str] = (),
        since_seconds: float | None = None,
        request_id: str | None = None,
    ) -> list[AuditView]:
        """Entries newest first, each with its change's target and command line (see `AuditView`)."""
        since = self.clock() - since_seconds if since_seconds is not None else None
        return await self.store.audit_query(
            AuditQuery(limit=limit, target=target, users=tuple(users), since=since, request_id=request_id)
        )

    async def names(self, user_ids: Iterable[str]) -> dict[str, str]:
        """Display names for user ids (cached; the raw id where Slack cannot say)."""
        return await self.people.names(user_ids)

    async def find_people(self, name: str) -> list[str]:
        """Ids of the people in the recent audit trail whose display name is `name` (any case, `@` optional)."""
        wanted = name.removeprefix("@").strip().casefold()
        ids = [a for a in await self.store.audit_people() if USER_ID.fullmatch(a)]
        names = await self.people.names(ids)
        return [user_id for user_id in ids if names[user_id].casefold() == wanted]

    async def change_request(self, request_id: str) -> Action | None:
        """A change request by id (`/cf undo` reads what the request did and how to revert it)."""
        return await self.store.get_action(request_id)

    async def for_incident(self, incident_id: str) -> list[AuditEntry]:
        return await self.store.audit_for_incident(incident_id)
