"""The *monitored* Redis cache, through redis.asyncio, every call bounded by a timeout.

The client is built once and keeps a small connection pool; connect and socket timeouts come from
config and there is at most one immediate retry, on a broken connection only (redis-py's default of
ten retries with backoff would turn a dead cache into a minute of silence).

Walking the keyspace (`bigkeys`, `hotkeys`, `expire_scan`) is always SCAN with a COUNT and a time
budget, never KEYS: each step costs the server one short command, and the walk stops when the
budget is spent and says how far it got. Errors become `integrations.errors` types with one-line
messages naming host, port and database, never the URL or its password.

A walk must not skew the hit rate it sits beside: Redis counts TYPE (and OBJECT, EXISTS, SCAN's TYPE
filter) as keyspace hits, but not MEMORY USAGE (checked against Redis 7: INFO stats before and after).
So each scanned key gets only its measure, and TYPE is asked once, at the end, of the keys kept:
`ScanResult.typed` says how many hits that added.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis import exceptions as rex
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from base.text import first_line
from integrations import telemetry
from integrations.errors import Forbidden, IntegrationError, Unavailable
from integrations.workers import waiting

SYSTEM = "Redis"
CLIENT_NAME = "cf-bot"
T = TypeVar("T")


@dataclass
class ScanResult:
    """The largest (or hottest) keys found, and how much of the keyspace the walk covered."""

    top: list[tuple[str, str, int]] = field(default_factory=list)  # (key, type, bytes or frequency)
    scanned: int = 0
    complete: bool = False
    seconds: float = 0.0
    dbsize: int = 0
    typed: int = 0  # keys asked their TYPE at the end: the keyspace hits (or misses) the walk added


class Redis:
    """A narrow async client: INFO, the keyspace walks the Cache commands need, and PING."""

    def __init__(self, url: str, *, timeout: float = 5.0, scan_count: int = 500) -> None:
        try:
            self._client = aioredis.Redis.from_url(
                url, socket_connect_timeout=timeout, socket_timeout=timeout, client_name=CLIENT_NAME,
                retry=Retry(NoBackoff(), 1, supported_errors=(rex.ConnectionError,)), decode_responses=False,
            )
        except ValueError:
            raise IntegrationError(SYSTEM, "the monitored cache's URL is not a valid redis:// URL.") from None
        kw = self._client.connection_pool.connection_kwargs
        place = kw.get("path") or f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}"
        self.db = int(kw.get("db", 0) or 0)
        self.where = f"{place}/{self.db}"
        self.timeout = timeout
        self.scan_count = scan_count

    def __repr__(self) -> str:  # never show the URL
        return f"Redis({self.where})"

    async def close(self) -> None:
        await self._client.aclose()

    async def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """One round trip, bounded twice (socket timeouts and a wall clock), errors as one line.

        The request's work slot is put down meanwhile (`integrations.workers.waiting`)."""
        try:
            async with waiting(), telemetry.timed(SYSTEM, getattr(make, "__name__", "call")):
                return await asyncio.wait_for(make(), timeout=self.timeout * 2 + 1)
        except (TimeoutError, rex.TimeoutError):
            raise Unavailable(SYSTEM, f"no answer from {self.where} within {self.timeout:g} s.") from None
        except (rex.AuthenticationError, rex.NoPermissionError) as exc:
            raise Forbidden(SYSTEM, f"{self.where} refused the bot: {first_line(exc)}") from None
        except rex.ConnectionError as exc:
            raise Unavailable(SYSTEM, f"could not connect to {self.where}: {_reason(exc)}") from None
        except rex.RedisError as exc:
            raise IntegrationError(SYSTEM, f"{self.where}: {first_line(exc)}") from None

    # --- read ---------------------------------------------------------------------------------

    async def ping(self) -> float:
        """PING's round trip in milliseconds."""
        started = time.perf_counter()
        await self.call(self._client.ping)
        return (time.perf_counter() - started) * 1000

    async def info(self, section: str | None = None) -> dict[str, Any]:
        return dict(await self.call(lambda: self._client.info(section) if section else self._client.info()))

    async def dbsize(self) -> int:
        return int(await self.call(self._client.dbsize))

    async def bigkeys(self, limit: int, budget_s: float) -> ScanResult:
        """The `limit` largest keys by MEMORY USAGE, from a SCAN walk within `budget_s`."""
        return await self._walk(limit, budget_s, lambda pipe, key: pipe.memory_usage(key, samples=5))

    async def hotkeys(self, limit: int, budget_s: float) -> ScanResult:
        """The `limit` most frequently used keys by OBJECT FREQ (needs an LFU eviction policy)."""
        return await self._walk(limit, budget_s, lambda pipe, key: pipe.execute_command("OBJECT", "FREQ", key))

    async def expire_scan(self, budget_s: float) -> tuple[ScanResult, dict[str, int], dict[str, int]]:
        """One SCAN pass over the database: Redis deletes each expired key the scan visits.

        Returns the walk and (expired_keys, used_memory, keys) before and after. `expired_keys`
        counts every expiry on the server in that time, the background expiry cycle's included.
        """
        before = await self._expiry_snapshot()
        walk = await self._walk(0, budget_s, None)
        return walk, before, await self._expiry_snapshot()

    async def _expiry_snapshot(self) -> dict[str, int]:
        stats, memory = await self.info("stats"), await self.info("memory")
        return {"expired_keys": int(stats.get("expired_keys", 0)), "used_memory": int(memory.get("used_memory", 0)),
                "keys": await self.dbsize()}

    async def _walk(self, limit: int, budget_s: float, measure: Callable[[Any, bytes], Any] | None) -> ScanResult:
        """SCAN in steps of `scan_count` until done or out of time; keep the top `limit` by `measure`."""
        result = ScanResult(dbsize=await self.dbsize())
        heap: list[tuple[int, bytes]] = []
        started = time.monotonic()
        cursor = 0
        while True:
            cursor, keys = await self._scan_step(cursor)
            result.scanned += len(keys)
            if keys and measure is not None:
                for key, value in await self._measure(keys, measure):
                    heapq.heappush(heap, (value, key))
                    if len(heap) > limit:
                        heapq.heappop(heap)
            if cursor == 0 or time.monotonic() - started > budget_s:
                break
        result.complete = cursor == 0
        result.seconds = time.monotonic() - started
        top = sorted(heap, reverse=True)
        kinds = await self._types([key for _, key in top])
        result.typed = len(top)
        result.top = [(_text(key), _text(kind), value) for (value, key), kind in zip(top, kinds, strict=True)
                      if kind not in (b"none", "none")]
        return result

    async def _types(self, keys: list[bytes]) -> list[bytes | str]:
        """TYPE of each key in one pipelined round trip (each one a keyspace hit: ask only for the few kept)."""
        if not keys:
            return []
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
        return list(await self.call(lambda: pipe.execute(raise_on_error=False)))

    async def _scan_step(self, cursor: int) -> tuple[int, list[bytes]]:
        async def step() -> tuple[int, list[bytes]]:
            next_cursor, keys = await self._client.scan(cursor, count=self.scan_count)
            return int(next_cursor), [k if isinstance(k, bytes) else k.encode() for k in keys]

        return await self.call(step)

    async def _measure(self, keys: list[bytes], measure: Callable[[Any, bytes], Any]) -> list[tuple[bytes, int]]:
        """The measure for each key in one pipelined round trip; vanished keys (a nil reply) are skipped."""
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            measure(pipe, key)
        replies = await self.call(lambda: pipe.execute(raise_on_error=False))
        return [(key, value) for key, value in zip(keys, replies, strict=True)
                if isinstance(value, int) and not isinstance(value, bool)]


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def _reason(exc: BaseException) -> str:
    """redis-py's connection errors without the repeated address ("Error 111 connecting to ...")."""
    line = first_line(exc)
    if "Error 111" in line or "refused" in line.lower():
        return "connection refused."
    return line
