"""A closed-loop load generator for signed slash commands: `concurrency` requests always in flight."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable

import aiohttp

from bench.procs import SECRET
from tests.slack_sim import sign, slash_body

BodyFn = Callable[[int], str]


def slash(text: str, user: str, response_urls: list[str]) -> BodyFn:
    """Signed-ready `/cf TEXT` bodies, each with its own trigger and a real response_url."""

    def make(i: int) -> str:
        return slash_body(text, user, "C0INCIDENT", response_url=response_urls[i % len(response_urls)],
                          trigger_id=f"bench.{time.time_ns()}.{i}")

    return make


async def run(url: str, body: BodyFn, concurrency: int, total: int) -> list[float]:
    """Latency (seconds) of each of `total` requests, keeping `concurrency` in flight."""
    latencies: list[float] = []
    counter = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for i in counter:
                payload = body(i)
                headers = {**sign(payload, SECRET), "Content-Type": "application/x-www-form-urlencoded"}
                started = time.perf_counter()
                async with session.post(url, data=payload.encode(), headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"{url} answered {resp.status}")
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[idx]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": pct(values, 50) * 1000, "p99_ms": pct(values, 99) * 1000,
            "mean_ms": statistics.fmean(values) * 1000 if values else float("nan")}
