"""The Database changes end in a verdict read from PostgreSQL's own catalogs (issue 13 §1-§2): `db kill-long`
(the sessions gone), `db analyze` (last_analyze moved past the moment ANALYZE began), `db create-index`
(pg_index.indisvalid). None has an undo, and each says why. pg_stat_activity, pg_stat_user_tables and
pg_index, read by the test's own connection, are the judges.

The *Not verified* cases are ones production meets: a bot role that may read every session but not
terminate a superuser's (RDS's master user is no superuser), and one that does not own the table, whose
ANALYZE PostgreSQL skips with nothing but a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from base.settings import Settings
from bot.config import parse_settings
from commands.base import Context, Services
from commands.support.verify_pg import pg_index_valid
from integrations.postgres import Postgres
from tests.conftest import PG_ADMIN_URL
from tests.data.test_database import _alive, _seed, _session
from tests.harness import APPROVER, BASE_CONFIG, OPERATOR, BotHarness, start_bot


@pytest.fixture
def target_url(pg_database: str) -> str:
    _seed(pg_database)
    return pg_database


@pytest.fixture
def limited_url(target_url: str) -> Iterator[str]:
    """A login role that reads every session (pg_read_all_stats) but owns nothing and may signal no one."""
    role = f"cf_limited_{uuid.uuid4().hex[:8]}"
    db = target_url.rpartition("/")[2]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT pg_read_all_stats TO {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(db), sql.Identifier(role)))
    base = target_url.rpartition("@")
    try:
        yield f"postgresql://{role}@{base[2]}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
        with psycopg.connect(target_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


async def _bot(sim: Any, tmp_path: Path, url: str, timeout: float = 30) -> BotHarness:
    services: Services = {"postgres": Postgres(url, connect_timeout=2, statement_timeout_ms=3000)}
    return await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services=services,
                           config={"approvals": {"verify_timeout_seconds": timeout}})


@pytest.fixture
async def dbbot(sim: Any, tmp_path: Path, target_url: str) -> AsyncIterator[BotHarness]:
    harness = await _bot(sim, tmp_path, target_url)
    yield harness
    await harness.close()


def message(bot: BotHarness, ts: str) -> dict[str, Any]:
    return next(m for m in bot.messages() if m["ts"] == ts)


def blocks_text(msg: dict[str, Any]) -> str:
    return json.dumps(msg["blocks"], ensure_ascii=False)


def buttons(msg: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"]]


async def request_and_approve(bot: BotHarness, text: str) -> tuple[dict[str, Any], str]:
    await bot.slash(text, user=OPERATOR)
    request = bot.last_request()
    await bot.click(request["ts"], "cf_approve", APPROVER)
    return request, " ".join(bot.thread_texts(request["ts"]))


def _last_analyzed(url: str, table: str = "documents") -> datetime | None:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT greatest(last_analyze, last_autoanalyze) FROM pg_stat_user_tables "
                           "WHERE relname = %s", (table,)).fetchone()
    return row[0] if row else None


def _valid(url: str, index: str) -> bool | None:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT x.indisvalid FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                           "WHERE i.relname = %s", (index,)).fetchone()
    return row[0] if row else None


@contextlib.asynccontextmanager
async def sleeping(url: str, app: str, count: int = 1) -> AsyncIterator[list[int]]:
    """`count` sessions running `SELECT pg_sleep(60)`; their pids. Cancelled and closed afterwards."""
    conns = [await _session(url, app) for _ in range(count)]
    tasks = [asyncio.create_task(c.execute("SELECT pg_sleep(60)")) for c in conns]
    try:
        yield [c.info.backend_pid for c in conns]
    finally:
        for conn in conns:
            with contextlib.suppress(Exception):
                await conn.cancel_safe(timeout=2)
        for task in tasks:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 5)
        for conn in conns:
            with contextlib.suppress(Exception):
                await conn.close()


# --- kill-long ----------------------------------------------------------------------------------


async def test_kill_long_is_verified_when_the_sessions_are_gone(dbbot: BotHarness, target_url: str) -> None:
    async with sleeping(target_url, "cf-test-victim") as first:
        await asyncio.sleep(2.2)
        await dbbot.slash("db kill-long --older 2s", user=OPERATOR)
        request = dbbot.last_request()
        async with sleeping(target_url, "cf-test-victim-late") as late:
            # the list shown moves by itself while the request waits: that does not make it stale, the
            # approval is for the rule "older than 2s" and the change re-selects when it runs
            await asyncio.sleep(2.2)
            await dbbot.click(request["ts"], "cf_approve", APPROVER)
            assert _alive(target_url, first + late) == set()  # pg_stat_activity: both sessions are gone
    thread = " ".join(dbbot.thread_texts(request["ts"]))
    assert "2 terminated" in thread and "Stale" not in thread
    assert "Verified in" in thread and "2 terminated sessions gone from pg_stat_activity" in thread
    final = blocks_text(message(dbbot, request["ts"]))
    assert "Verified in" in final and "cf_undo" not in final
    assert "No undo: a terminated query cannot be resumed" in final


async def test_kill_long_refused_by_postgres_is_not_verified(sim: Any, tmp_path: Path, target_url: str,
                                                             limited_url: str) -> None:
    bot = await _bot(sim, tmp_path, limited_url, timeout=3)
    try:
        async with sleeping(target_url, "cf-test-superuser") as [pid]:  # the admin URL's role: a superuser
            await asyncio.sleep(2.2)
            request, thread = await request_and_approve(bot, "db kill-long --older 2s")
            assert _alive(target_url, [pid]) == {pid}  # pg_stat_activity: it still runs
        assert "0 terminated, 1 not terminated" in thread
        assert "Not verified after" in thread and f"pid {pid}" in thread
        assert "not terminated: permission denied" in thread and "/cf db long-running" in thread
        assert "Not verified" in blocks_text(message(bot, request["ts"]))
    finally:
        await bot.close()


# --- analyze ------------------------------------------------------------------------------------


async def test_analyze_is_verified_when_last_analyze_moves(dbbot: BotHarness, target_url: str) -> None:
    before = _last_analyzed(target_url)
    request, thread = await request_and_approve(dbbot, "db analyze documents")
    after = _last_analyzed(target_url)
    assert before is not None and after is not None and after > before  # pg_stat_user_tables
    assert "Verified in" in thread and "public.documents analyzed since the request" in thread
    final = blocks_text(message(dbbot, request["ts"]))
    assert "No undo: planner statistics keep no previous version" in final and "cf_undo" not in buttons(
        message(dbbot, request["ts"]))

    request, thread = await request_and_approve(dbbot, "db analyze")
    assert "Verified in" in thread and "analyzed since the request" in thread


async def test_analyze_skipped_by_postgres_is_not_verified(sim: Any, tmp_path: Path, target_url: str,
                                                           limited_url: str) -> None:
    bot = await _bot(sim, tmp_path, limited_url, timeout=3)
    try:
        before = _last_analyzed(target_url)
        request, thread = await request_and_approve(bot, "db analyze documents")
        assert _last_analyzed(target_url) == before  # PostgreSQL skipped it, with only a warning
        assert "analyzed in" in thread  # the statement itself succeeded
        assert "Not verified after" in thread and "public.documents last analyzed" in thread
        assert "does not own" in thread
        assert "Not verified" in blocks_text(message(bot, request["ts"]))
    finally:
        await bot.close()


# --- create-index -------------------------------------------------------------------------------


async def test_create_index_is_verified_valid_and_has_no_undo(dbbot: BotHarness, target_url: str) -> None:
    request, thread = await request_and_approve(dbbot, "db create-index documents title --name documents_title_ix")
    assert _valid(target_url, "documents_title_ix") is True  # pg_index
    assert "Verified in" in thread and "index public.documents_title_ix on documents is valid" in thread
    final = blocks_text(message(dbbot, request["ts"]))
    assert "No undo: cf has no command to drop an index" in final
    assert "DROP INDEX CONCURRENTLY public.documents_title_ix" in final


def _settings() -> Settings:
    return parse_settings(BASE_CONFIG)


async def test_an_invalid_index_is_not_verified(target_url: str) -> None:
    """A CREATE UNIQUE INDEX CONCURRENTLY that fails on duplicates leaves an INVALID index behind: the
    verifier says so, and how to clear it; a missing index is not verified either."""
    with psycopg.connect(target_url, autocommit=True) as conn, contextlib.suppress(psycopg.errors.UniqueViolation):
        conn.execute("CREATE UNIQUE INDEX CONCURRENTLY documents_owner_unique ON documents (owner_id)")
    assert _valid(target_url, "documents_owner_unique") is False
    ctx = Context("U1", "C1", "ns", _settings(), {"postgres": Postgres(target_url)}, needs=frozenset({"postgres"}))
    try:
        probe = await pg_index_valid(ctx, schema="public", table="documents", index="documents_owner_unique")
        assert not probe.done and "exists but is INVALID" in probe.problem
        assert "DROP INDEX CONCURRENTLY public.documents_owner_unique" in probe.problem
        gone = await pg_index_valid(ctx, schema="public", table="documents", index="no_such_index")
        assert not gone.done and "does not exist" in gone.problem
    finally:
        with psycopg.connect(target_url, autocommit=True) as conn:
            conn.execute("DROP INDEX CONCURRENTLY IF EXISTS documents_owner_unique")
