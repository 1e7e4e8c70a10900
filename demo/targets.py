"""Demo parts for the monitored PostgreSQL database and Redis cache (`demo.app.SETUPS`).

Each uses its `targets` environment variable when set (even if that server is down: the commands
then show the one-line failure a real deployment would). Otherwise it tries this machine's default
server with a short timeout and uses it if it answers; if not, the part contributes nothing and the
commands say the database or cache is not configured. For PostgreSQL the local fallback is a
`cf_demo` database with a small seeded `documents` table, so `db index-candidates` and
`db create-index` have something to show; the cache fallback is read as it is, never written.
"""

from __future__ import annotations

import asyncio
import logging
import os

import psycopg
from psycopg import sql

from bot.config import PostgresTarget, RedisTarget
from demo.parts import DemoEnv, DemoPart
from integrations.errors import IntegrationError
from integrations.postgres import Postgres
from integrations.redis import Redis

log = logging.getLogger(__name__)

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
DEMO_DB = "cf_demo"
PROBE_SECONDS = 2.0


async def postgres_part(env: DemoEnv) -> DemoPart:
    target = PostgresTarget()
    dsn = os.environ.get(target.dsn_env, "").strip() or await _local_demo_database()
    if dsn is None:
        return DemoPart(note=f"PostgreSQL: nothing answers at 127.0.0.1:5432 and {target.dsn_env} is not set, "
                                 "so the db commands say it is not configured")
    client = Postgres(dsn, connect_timeout=target.connect_timeout_seconds,
                      statement_timeout_ms=target.statement_timeout_ms)
    return DemoPart(services={"postgres": client}, note=f"PostgreSQL: {client.where}")


async def _local_demo_database() -> str | None:
    """postgres@127.0.0.1's `cf_demo` database (created and seeded once), `postgres` if that fails."""
    try:
        conn = await asyncio.wait_for(psycopg.AsyncConnection.connect(LOCAL_POSTGRES, autocommit=True,
                                                                       connect_timeout=2), PROBE_SECONDS)
    except (psycopg.Error, OSError, TimeoutError):
        return None
    base = LOCAL_POSTGRES.rpartition("/")[0]
    try:
        async with conn:
            exists = await (await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DB,))).fetchone()
            if exists is None:
                await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DB)))
        await _seed(f"{base}/{DEMO_DB}")
    except psycopg.Error as exc:
        log.warning("demo database not prepared, using postgres: %s", str(exc).splitlines()[0])
        return LOCAL_POSTGRES
    return f"{base}/{DEMO_DB}"


async def _seed(dsn: str) -> None:
    """A documents table without an index on owner_id or updated_at, statistics, and a few seq scans."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True, connect_timeout=2) as conn:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute("CREATE TABLE IF NOT EXISTS documents (id serial PRIMARY KEY, owner_id int NOT NULL, "
                           "updated_at timestamptz NOT NULL, title text NOT NULL)")
        row = await (await conn.execute("SELECT count(*) FROM documents")).fetchone()
        if row is not None and row[0] == 0:
            await conn.execute("INSERT INTO documents (owner_id, updated_at, title) SELECT (random() * 999)::int, "
                               "now() - random() * interval '90 days', md5(g::text) FROM generate_series(1, 20000) g")
            await conn.execute("ANALYZE documents")
            for owner in (7, 42, 99):
                await conn.execute("SELECT count(*) FROM documents WHERE owner_id = %s", (owner,))


async def redis_part(env: DemoEnv) -> DemoPart:
    """The runtime closes the client with the other services when the demo ends."""
    target = RedisTarget()
    url = os.environ.get(target.url_env, "").strip()
    client = Redis(url or LOCAL_REDIS, timeout=target.timeout_seconds if url else PROBE_SECONDS,
                   scan_count=target.scan_count)
    if not url:
        try:
            await client.ping()
        except IntegrationError:
            await client.close()
            return DemoPart(note=f"Redis: nothing answers at 127.0.0.1:6379 and {target.url_env} is not set, "
                                 "so the redis commands say it is not configured")
        await client.close()
        client = Redis(LOCAL_REDIS, timeout=target.timeout_seconds, scan_count=target.scan_count)
    return DemoPart(services={"redis": client}, note=f"Redis: {client.where}")
