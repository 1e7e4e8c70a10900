"""Every answer degrades per part (issue 11 §3): the Database and Cache commands, and `scale all`.

The bot talks to the real PostgreSQL and Redis through a fault-injecting proxy (`tests.faultproxy`)
that makes the real server refuse one chosen statement or command: the answer must still carry the
other parts and one line naming the failed part; the primary call failing is the usual one-line
error. `scale all`'s autoscaler list is failed at the sandbox API server.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from integrations.postgres import Postgres
from integrations.redis import Redis
from tests.conftest import REDIS_URL
from tests.data.test_database import _seed
from tests.faultproxy import PgFaultProxy, RedisFaultProxy
from tests.harness import OPERATOR, VIEWER, BotHarness, start_bot
from tests.k8s_support import reply_text

MAX_CONNECTIONS = "current_setting('max_connections')"
CONNECTIONS = "GROUP BY 1, 2, 3, 4, 5"  # integrations.pg_queries.CONNECTIONS
HEAVY_SEQ_SCANS = "ORDER BY seq_tup_read DESC"
NOPERM = "NOPERM this user has no permissions to run the 'info' command"


@dataclass
class Env:
    bot: BotHarness
    pg: PgFaultProxy
    redis: RedisFaultProxy


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"{parts.username + '@' if parts.username else ''}127.0.0.1:{port}").geturl()


@pytest.fixture
async def env(sim, tmp_path: Path, pg_database: str) -> AsyncIterator[Env]:
    pg_target, redis_target = urlsplit(pg_database), urlsplit(REDIS_URL)
    pg = await PgFaultProxy(pg_target.hostname or "127.0.0.1", pg_target.port or 5432).start()
    redis = await RedisFaultProxy(redis_target.hostname or "127.0.0.1", redis_target.port or 6379).start()
    services = {"postgres": Postgres(_through(pg_database, pg.port), connect_timeout=2, statement_timeout_ms=3000),
                "redis": Redis(_through(REDIS_URL, redis.port), timeout=2)}
    bot = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services=services)
    try:
        yield Env(bot, pg, redis)
    finally:
        await bot.close()
        await pg.stop()
        await redis.stop()


def said(bot: BotHarness) -> str:
    """The last message in the channel, as Slack shows it."""
    return reply_text(bot.messages()[-1])


def line_of(text: str, start: str) -> str:
    found = [line for line in text.splitlines() if line.startswith(start)]
    assert len(found) == 1, f"no single line starting {start!r} in:\n{text}"
    return found[0]


# --- Database -------------------------------------------------------------------------------------


async def test_db_connections_keeps_the_sessions_when_max_connections_fails(env: Env, pg_database: str) -> None:
    env.pg.fail(MAX_CONNECTIONS)
    async with await psycopg.AsyncConnection.connect(pg_database, application_name="cf-test-degrade"):
        await env.bot.slash("db connections", user=VIEWER)
    text = said(env.bot)
    assert re.search(r"\d+ client connections \(threshold 160\)", text)
    assert "*This database*\n1" in text and "cf-test-degrade" in text  # the sessions are all there
    assert "*max_connections*\nunavailable (NotFound)" in text
    assert ":warning: max_connections: unavailable (NotFound)" in text
    assert env.pg.hits == 1

    env.pg.clear_faults()
    await env.bot.slash("db connections", user=VIEWER)
    assert re.search(r"\(threshold 160, max_connections \d+\)", said(env.bot))
    assert "unavailable (" not in said(env.bot)

    env.pg.clear_faults()
    env.pg.fail(CONNECTIONS)  # the primary call
    before = len(env.bot.messages())
    await env.bot.slash("db connections", user=VIEWER)
    line = env.bot.private_texts()[-1]
    assert 'PostgreSQL: relation "cf_injected_failure_no_such_table" does not exist' in line
    assert "unavailable (" not in line and len(env.bot.messages()) == before


async def test_db_index_candidates_keeps_the_columns_when_the_scan_list_fails(env: Env, pg_database: str) -> None:
    _seed(pg_database)  # a `documents` table whose owner_id and title are index candidates
    env.pg.fail(HEAVY_SEQ_SCANS)
    await env.bot.slash("db index-candidates", user=VIEWER)
    text = said(env.bot)
    assert re.search(r"Index candidates: \d+ columns", text) and "heavy sequential scans\"" not in text
    assert "CORRELATION" in text and "SEQ SCANS" not in text
    assert ":warning: Tables with heavy sequential scans: unavailable (NotFound)" in text


async def test_status_lines_keep_their_primary_part(env: Env) -> None:
    env.pg.fail(CONNECTIONS)
    env.redis.fail("INFO", "memory", error=NOPERM)
    await env.bot.slash("status", user=VIEWER)
    text = said(env.bot)
    db = line_of(text, ":large_yellow_circle: *Database*")
    assert "answers; connections: unavailable (NotFound)" in db
    cache = line_of(text, ":large_yellow_circle: *Cache*")
    assert "Redis answers; memory: unavailable (Forbidden)" in cache

    env.pg.clear_faults()
    env.redis.clear_faults()
    env.pg.fail("SELECT 1 AS one")  # the Database line's primary call
    await env.bot.slash("status", user=VIEWER)
    text = said(env.bot)
    assert 'cf_injected_failure_no_such_table" does not exist' in line_of(text, ":red_circle: *Database*")
    assert "maxmemory" in line_of(text, ":large_green_circle: *Cache*")


# --- Cache ----------------------------------------------------------------------------------------


async def test_redis_hitrate_keeps_the_counts_when_info_server_fails(env: Env) -> None:
    env.redis.fail("INFO", "server", error=NOPERM)
    await env.bot.slash("redis hitrate", user=VIEWER)
    text = said(env.bot)
    assert "Redis hit rate:" in text and "Hits" in text and "Evicted keys" in text
    assert ":warning: Uptime (INFO server): unavailable (Forbidden)" in text and "server started (" not in text
    assert env.redis.hits == 1

    env.redis.clear_faults()
    env.redis.fail("INFO", "stats")  # the primary call: `-ERR injected failure`
    before = len(env.bot.messages())
    await env.bot.slash("redis hitrate", user=VIEWER)
    assert f":warning: Redis: 127.0.0.1:{env.redis.port}/0: injected failure" in env.bot.private_texts()[-1]
    assert len(env.bot.messages()) == before


# --- scale all ------------------------------------------------------------------------------------


async def test_scale_all_asks_anyway_when_the_autoscalers_cannot_be_listed(bot, sandbox) -> None:
    sandbox.sandbox.fail(r"/apis/autoscaling/v\d+/namespaces/collaboration/horizontalpodautoscalers$", 403,
                         "Forbidden")
    mark = len(bot.requests())
    await bot.slash("scale all 5", user=OPERATOR)
    assert len(bot.requests()) == mark + 1, bot.private_texts()[-1:]
    request = json.dumps(bot.last_request()["blocks"])
    assert "Scale all 4 deployments in collaboration to 5" in request
    assert "Autoscalers: unavailable (Forbidden)" in request and "is managed by HPA" not in request

    sandbox.sandbox.clear_faults()
    sandbox.sandbox.fail(r"/apis/apps/v1/namespaces/collaboration/deployments$", 500)
    await bot.slash("scale all 5", user=OPERATOR)
    assert len(bot.requests()) == mark + 1
    assert "the API server answered 500" in bot.private_texts()[-1]
