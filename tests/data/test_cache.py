"""The Cache commands end to end: signed Slack requests -> the bot -> a real Redis.

Each test gets a private `redis-server` on a free port (no persistence), because these tests reset
statistics, change maxmemory and the eviction policy, and flush: never do that to the machine's
shared server on 6379, which other suites use at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

import demo.targets as demo_targets
from bot.config import parse_settings
from bot.services import redis as build_redis
from commands.base import Context, Services
from commands.checks import STATUS_CHECKS, run_checks
from demo.app import DemoEnv
from integrations.errors import IntegrationError
from integrations.redis import Redis
from tests.harness import APPROVER, BASE_CONFIG, OPERATOR, BotHarness, start_bot


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of our own: its URL, a raw client for planting data, and its process."""

    def __init__(self, tmp: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--enable-debug-command", "yes", "--dir", str(tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 5
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            assert time.monotonic() < deadline, "private redis-server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)  # in case a test paused it
        self.proc.terminate()
        self.proc.wait(5)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
async def raw(private_redis: PrivateRedis) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(private_redis.url)
    yield client
    await client.aclose()


async def _bot(sim, tmp_path: Path, url: str | None, **config) -> BotHarness:
    target = {"timeout_seconds": 1, "scan_count": 100, **config}
    services: Services = {"redis": Redis(url, timeout=target["timeout_seconds"], scan_count=target["scan_count"])} \
        if url else {}
    return await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services=services,
                           config={"targets": {"redis": target}})


@pytest.fixture
async def cachebot(sim, tmp_path: Path, private_redis: PrivateRedis) -> AsyncIterator[BotHarness]:
    harness = await _bot(sim, tmp_path, private_redis.url)
    yield harness
    await harness.close()


def last_text(bot: BotHarness) -> str:
    message = bot.messages()[-1]
    return message["text"] + "\n" + json.dumps(message["blocks"])


def private_lines(bot: BotHarness) -> list[str]:
    return [str(c.args.get("text", "")) for c in bot.sim.calls if c.method == "response_url"]


# --- read commands ------------------------------------------------------------------------------


async def test_info_overview_and_sections(cachebot: BotHarness, raw: aioredis.Redis) -> None:
    await raw.mset({"a": 1, "b": 2, "c": 3})
    await cachebot.slash("redis info")
    assert "Eviction policy" in last_text(cachebot) and "db0: 3 keys" in last_text(cachebot)
    await cachebot.slash("redis info keyspace")
    assert "db0:keys=3" in last_text(cachebot)
    await cachebot.slash("redis info secrets")
    assert any("is not one of: memory, stats, clients, keyspace" in t for t in cachebot.private_texts())


async def test_memory_against_maxmemory_and_threshold(cachebot: BotHarness, raw: aioredis.Redis) -> None:
    await cachebot.slash("redis memory")
    assert "no maxmemory set" in cachebot.messages()[-1]["text"]
    used = int((await raw.info("memory"))["used_memory"])
    await raw.config_set("maxmemory", str(used * 10))
    await cachebot.slash("redis memory")
    text = cachebot.messages()[-1]["text"]
    assert re.search(r"\(\d+\.\d%, threshold 90%\)", text) and ":large_green_circle:" in last_text(cachebot)
    await raw.config_set("maxmemory", str(int(used / 0.95)))
    await cachebot.slash("redis memory")
    assert ":large_yellow_circle:" in last_text(cachebot) and "threshold 90%" in last_text(cachebot)
    assert "bigkeys" in last_text(cachebot)


async def test_hit_rate_after_known_hits_and_misses(cachebot: BotHarness, raw: aioredis.Redis) -> None:
    await raw.set("present", "x")
    await raw.config_resetstat()
    for _ in range(3):
        assert await raw.get("present") == b"x"
    assert await raw.get("absent") is None
    await cachebot.slash("redis hitrate")
    assert "Redis hit rate: 75.0% (3 hits, 1 misses)" in cachebot.messages()[-1]["text"]


async def test_bigkeys_finds_the_planted_keys_without_keys(cachebot: BotHarness, raw: aioredis.Redis) -> None:
    await raw.set("big:blob", b"x" * 300_000)
    await raw.rpush("big:list", *[b"y" * 100] * 1500)
    await raw.hset("big:hash", mapping={f"f{i}": "v" * 50 for i in range(800)})
    async with raw.pipeline(transaction=False) as pipe:
        for i in range(3000):
            pipe.set(f"small:{i}", i)
        await pipe.execute()
    await raw.config_resetstat()
    await cachebot.slash("redis bigkeys --limit 3")
    rows = re.findall(r"(big:\w+)\s+(\w+)\s+[\d.]+ (?:KiB|MiB)", last_text(cachebot))
    assert rows == [("big:blob", "string"), ("big:list", "list"), ("big:hash", "hash")]
    assert "Scanned all 3003 keys" in last_text(cachebot)
    commands = await raw.info("commandstats")
    assert "cmdstat_scan" in commands and "cmdstat_keys" not in commands
    assert commands["cmdstat_scan"]["calls"] > 10  # SCAN COUNT 100: many short steps


async def test_bigkeys_leaves_the_hit_rate_alone(cachebot: BotHarness, raw: aioredis.Redis) -> None:
    async with raw.pipeline(transaction=False) as pipe:
        for i in range(500):
            pipe.set(f"k:{i}", "v" * (i + 1))
        await pipe.execute()
    await raw.config_resetstat()
    await raw.get("k:1")
    await raw.get("absent")
    await cachebot.slash("redis bigkeys --limit 3")
    assert "Scanned all 500 keys" in last_text(cachebot)
    assert "3 keyspace hits" in last_text(cachebot)  # the TYPE of each key listed, and nothing more
    await cachebot.slash("redis hitrate")
    assert "Redis hit rate: 80.0% (4 hits, 1 misses)" in cachebot.messages()[-1]["text"]
    assert "`/cf redis bigkeys` adds one hit per key it lists" in last_text(cachebot)


async def test_bigkeys_stops_at_its_time_budget(sim, tmp_path, private_redis, raw) -> None:
    async with raw.pipeline(transaction=False) as pipe:
        for i in range(5000):
            pipe.set(f"k:{i}", i)
        await pipe.execute()
    bot = await _bot(sim, tmp_path, private_redis.url, scan_budget_seconds=0.001)
    try:
        await bot.slash("redis bigkeys")
        assert re.search(r"Partial: the walk stopped after its 0.001 s budget, having scanned \d+ of about 5000",
                         last_text(bot))
    finally:
        await bot.close()


async def test_hotkeys_need_lfu_and_then_find_the_hot_key(cachebot: BotHarness, raw: aioredis.Redis) -> None:
    await raw.mset({"hot": 1, "cold": 2, "warm": 3})
    await cachebot.slash("redis hotkeys")
    assert "CONFIG SET maxmemory-policy allkeys-lfu" in last_text(cachebot)
    await raw.config_set("maxmemory-policy", "allkeys-lfu")
    for _ in range(300):
        await raw.get("hot")
    for _ in range(20):
        await raw.get("warm")
    await cachebot.slash("redis hotkeys --limit 2")
    rows = re.findall(r"(hot|warm|cold)\s+string\s+(\d+)", last_text(cachebot))
    assert [k for k, _ in rows] == ["hot", "warm"], last_text(cachebot)


# --- expire-scan --------------------------------------------------------------------------------


async def test_expire_scan_reclaims_expired_keys_after_approval(cachebot: BotHarness, raw: aioredis.Redis) -> None:
    await raw.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")  # only access or SCAN reclaims now
    async with raw.pipeline(transaction=False) as pipe:
        for i in range(400):
            pipe.set(f"gone:{i}", "x" * 100, px=20)
        for i in range(100):
            pipe.set(f"kept:{i}", i)
        await pipe.execute()
    await asyncio.sleep(0.1)
    assert await raw.dbsize() == 500  # expired, but not yet reclaimed
    await cachebot.slash("redis expire-scan", user=OPERATOR)
    request = cachebot.last_request()
    assert "500 keys, 400 with a TTL" in json.dumps(request["blocks"])
    assert await raw.dbsize() == 500  # nothing before approval
    await cachebot.click(request["ts"], "cf_approve", APPROVER)
    done = " ".join(cachebot.thread_texts(request["ts"]))
    assert "500 keys" in done and "100 keys" in done and "400 expired keys reclaimed" in done, done
    assert await raw.dbsize() == 100 and await raw.exists("kept:7")


# --- down, slow, not configured -----------------------------------------------------------------


async def test_a_cache_that_is_down_fails_in_one_line(sim, tmp_path) -> None:
    port = _free_port()
    bot = await _bot(sim, tmp_path, f"redis://:hunter2@127.0.0.1:{port}/0")
    try:
        await bot.slash("redis memory")
        assert [t for t in private_lines(bot) if "Redis" in t] == [
            f":warning: Redis: could not connect to 127.0.0.1:{port}/0: connection refused."]
        assert "hunter2" not in json.dumps([c.args for c in sim.calls])
    finally:
        await bot.close()


async def test_a_cache_that_hangs_times_out_while_the_bot_answers_others(
    sim, tmp_path, private_redis
) -> None:
    bot = await _bot(sim, tmp_path, private_redis.url)
    os.kill(private_redis.proc.pid, signal.SIGSTOP)  # accepts connections, answers nothing
    try:
        started = time.monotonic()
        await bot.driver.slash("/cf redis memory", user=OPERATOR)
        await bot.driver.slash("/cf help redis memory", user=OPERATOR)
        await sim.wait_for(lambda s: any("Usage:" in t for t in bot.private_texts()), timeout=0.9)
        assert bot.runtime.inflight, "redis memory should still be waiting for the cache"
        await bot.settle()
        said = [t for t in private_lines(bot) if "Redis" in t]
        assert said == [f":warning: Redis: no answer from 127.0.0.1:{private_redis.port}/0 within 1 s."], said
        assert time.monotonic() - started < 4.0
    finally:
        os.kill(private_redis.proc.pid, signal.SIGCONT)
        await bot.close()


async def test_not_configured_says_which_variable_to_set(sim, tmp_path) -> None:
    bot = await _bot(sim, tmp_path, None)
    try:
        await bot.slash("redis hitrate")
        assert any("not configured" in t and "CF_TARGET_REDIS_URL" in t for t in bot.private_texts())
    finally:
        await bot.close()


async def test_status_line(private_redis: PrivateRedis, raw: aioredis.Redis) -> None:
    settings = parse_settings(BASE_CONFIG)
    spec = [c for c in STATUS_CHECKS if c.name == "Cache"]
    client = Redis(private_redis.url, timeout=1)
    try:
        ok = await run_checks(Context("U1", "C1", "ns", settings, {"redis": client}), spec)
        assert ok[0].status == "ok" and ok[0].latency_ms is not None and "no maxmemory set" in ok[0].detail
        used = int((await raw.info("memory"))["used_memory"])
        await raw.config_set("maxmemory", str(int(used / 0.95)))
        warn = await run_checks(Context("U1", "C1", "ns", settings, {"redis": client}), spec)
        assert warn[0].status == "warn" and "threshold 90%" in warn[0].detail
    finally:
        await client.close()
    down = Redis(f"redis://127.0.0.1:{_free_port()}/0", timeout=1)
    failed = await run_checks(Context("U1", "C1", "ns", settings, {"redis": down}), spec)
    assert failed[0].status == "fail" and "connection refused" in failed[0].detail
    await down.close()


def test_builder_reads_the_configured_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = parse_settings({**BASE_CONFIG, "targets": {"redis": {"url_env": "CF_TEST_TARGET_REDIS"}}})
    monkeypatch.delenv("CF_TEST_TARGET_REDIS", raising=False)
    assert build_redis(settings) is None
    monkeypatch.setenv("CF_TEST_TARGET_REDIS", "redis://:s3cret@cache.internal:6380/2")
    client = build_redis(settings)
    assert client is not None
    assert client.where == "cache.internal:6380/2" and "s3cret" not in repr(client)
    monkeypatch.setenv("CF_TEST_TARGET_REDIS", "http://not-redis")
    with pytest.raises(IntegrationError, match="not a valid redis:// URL"):
        build_redis(settings)


async def test_demo_part_without_a_reachable_server_is_not_configured(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.delenv("CF_TARGET_REDIS_URL", raising=False)
    monkeypatch.setattr(demo_targets, "LOCAL_REDIS", f"redis://127.0.0.1:{_free_port()}/0")
    async with contextlib.AsyncExitStack() as stack:
        part = await demo_targets.redis_part(DemoEnv(tmp_path, stack))
    assert part.services == {} and "not configured" in part.note
