"""The Database commands end to end: signed Slack requests -> the bot -> the real PostgreSQL.

The monitored database is this session's throwaway database (`pg_database`); a second throwaway
database stands in for "another database on the same server". Every look at pg_stat_activity is
filtered by database name, since other suites share the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import sql

import demo.targets as demo_targets
from bot.config import parse_settings
from bot.services import postgres as build_postgres
from commands.base import Context, Services
from commands.checks import STATUS_CHECKS, run_checks
from commands.support.pg import column_name, table_name
from demo.app import DemoEnv
from integrations.errors import IntegrationError, Unavailable
from integrations.postgres import Postgres
from tests.conftest import PG_ADMIN_URL
from tests.harness import APPROVER, BASE_CONFIG, OPERATOR, BotHarness, start_bot

TABLE_ROWS = 5000


def _seed(url: str) -> None:
    """A fresh `documents` table: owner_id and title are index candidates, created_at is not."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("DROP TABLE IF EXISTS documents CASCADE")
        conn.execute("CREATE TABLE documents (id serial PRIMARY KEY, owner_id int NOT NULL, "
                     "created_at timestamptz NOT NULL, title text NOT NULL)")
        conn.execute("INSERT INTO documents (owner_id, created_at, title) SELECT (random() * 999)::int, "
                     "'2024-01-01'::timestamptz + g * interval '1 minute', md5(g::text) "
                     f"FROM generate_series(1, {TABLE_ROWS}) g")
        conn.execute("ANALYZE documents")


@pytest.fixture
def target_url(pg_database: str) -> str:
    _seed(pg_database)
    return pg_database


@pytest.fixture
def other_database() -> Iterator[str]:
    """A second throwaway database on the same server (no pg_stat_statements in it)."""
    name = f"cf_test_other_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def _bot(sim, tmp_path: Path, url: str | None, **config) -> BotHarness:
    services: Services = {"postgres": Postgres(url, connect_timeout=1, statement_timeout_ms=3000)} if url else {}
    return await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services=services,
                           config={"targets": {"postgres": config}} if config else None)


@pytest.fixture
async def dbbot(sim, tmp_path: Path, target_url: str) -> AsyncIterator[BotHarness]:
    harness = await _bot(sim, tmp_path, target_url)
    yield harness
    await harness.close()


def private_lines(bot: BotHarness) -> list[str]:
    """The plain text of each private answer (errors and refusals are one line each)."""
    return [str(c.args.get("text", "")) for c in bot.sim.calls if c.method == "response_url"]


def last_text(bot: BotHarness) -> str:
    message = bot.messages()[-1]
    return message["text"] + "\n" + json.dumps(message["blocks"])


async def _session(url: str, app: str) -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(url, autocommit=True, application_name=app)


def _alive(url: str, pids: list[int]) -> set[int]:
    db = url.rpartition("/")[2]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid = ANY(%s)",
                            (db, pids)).fetchall()
    return {r[0] for r in rows}


# --- read commands ------------------------------------------------------------------------------


async def test_db_check_answers_with_latency(dbbot: BotHarness, target_url: str) -> None:
    await dbbot.slash("db check")
    text = last_text(dbbot)
    assert "PostgreSQL is up: SELECT 1 in" in text and target_url.rpartition("/")[2] in text


async def test_db_connections_counts_this_database_by_application(sim, tmp_path, target_url) -> None:
    bot = await _bot(sim, tmp_path, target_url, max_connections_threshold=2)
    idle = [await _session(target_url, "cf-test-idle") for _ in range(3)]
    try:
        await bot.slash("db connections")
        text = last_text(bot)
        assert re.search(r"cf-test-idle\s+3", text), text
        assert "threshold 2" in text and ":large_yellow_circle:" in text  # over the threshold: a warning
    finally:
        for conn in idle:
            await conn.close()
        await bot.close()


@pytest.mark.needs_pg_stat_statements
async def test_db_slow_reads_pg_stat_statements(dbbot: BotHarness, target_url: str) -> None:
    async with await _session(target_url, "cf-test-slow") as conn:
        for _ in range(2):
            await conn.execute("SELECT pg_sleep(0.15) /* cf-test-slow */")
    await dbbot.slash("db slow --min-ms 100 --limit 5")
    assert "pg_sleep" in last_text(dbbot)
    await dbbot.slash("db slow")  # by mean, the default floor is the 1000 ms threshold (--by total: none)
    assert "pg_sleep" not in last_text(dbbot)


async def test_db_slow_without_the_extension_says_how_to_enable_it(sim, tmp_path, other_database) -> None:
    bot = await _bot(sim, tmp_path, other_database)
    try:
        await bot.slash("db slow")
        said = " ".join(bot.private_texts())
        assert "pg_stat_statements is not installed in" in said
        assert "shared_preload_libraries" in said and "CREATE EXTENSION pg_stat_statements" in said
    finally:
        await bot.close()


async def test_index_candidates_lists_unindexed_scattered_columns(dbbot: BotHarness, target_url: str) -> None:
    with psycopg.connect(target_url, autocommit=True) as conn:
        for _ in range(3):
            conn.execute("SELECT count(*) FROM documents WHERE title = 'nope'")
        conn.execute("SELECT pg_stat_force_next_flush()")
    deadline = time.monotonic() + 5
    async with await _session(target_url, "cf-test-stats") as conn:
        query = "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'documents'"
        while (await (await conn.execute(query)).fetchone())[0] < 3:  # type: ignore[index]
            assert time.monotonic() < deadline, "table statistics never arrived"
            await asyncio.sleep(0.05)
    await dbbot.slash("db index-candidates")
    text = last_text(dbbot)
    assert re.search(r"public\.documents\s+owner_id", text) and re.search(r"public\.documents\s+title", text)
    assert "created_at" not in text  # in physical order: an index would help little
    assert re.search(r"public\.documents\s+\d+\s+\d+\s+0\s+\d+", text)  # heavy sequential scans, no index scans


# --- kill-long ----------------------------------------------------------------------------------


async def test_kill_long_ends_the_old_query_and_nothing_else(
    sim, tmp_path, target_url, other_database
) -> None:
    bot = await _bot(sim, tmp_path, target_url)
    victim = await _session(target_url, "cf-test-victim")
    elsewhere = await _session(other_database, "cf-test-elsewhere")
    in_tx = await _session(target_url, "cf-test-idle-in-tx")
    young = await _session(target_url, "cf-test-young")
    conns = [victim, elsewhere, in_tx, young]
    victim_pid, young_pid = victim.info.backend_pid, young.info.backend_pid
    victim_q = asyncio.create_task(victim.execute("SELECT pg_sleep(60)"))
    elsewhere_q = asyncio.create_task(elsewhere.execute("SELECT pg_sleep(60)"))
    await in_tx.execute("BEGIN")
    await in_tx.execute("SELECT 1")
    young_q: asyncio.Task | None = None
    try:
        await asyncio.sleep(3.2)
        young_q = asyncio.create_task(young.execute("SELECT pg_sleep(60)"))
        await asyncio.sleep(0.1)
        await bot.slash("db long-running --older 3s")
        listed = last_text(bot)
        assert str(victim_pid) in listed and str(young_pid) not in listed
        assert str(elsewhere.info.backend_pid) not in listed

        await bot.slash("db kill-long --older 3s", user=OPERATOR)
        request = bot.last_request()
        assert f"pid {victim_pid}" in json.dumps(request["blocks"])
        assert f"pid {young_pid}" not in json.dumps(request["blocks"])
        await bot.click(request["ts"], "cf_approve", APPROVER)

        with pytest.raises(psycopg.OperationalError):
            await asyncio.wait_for(victim_q, 5)
        thread = " ".join(bot.thread_texts(request["ts"]))
        assert "1 terminated" in thread and str(victim_pid) in thread
        survivors = [elsewhere.info.backend_pid, in_tx.info.backend_pid, young_pid]
        assert _alive(target_url, survivors) | _alive(other_database, survivors) == set(survivors)
        assert not young_q.done() and not elsewhere_q.done()
    finally:
        for conn in conns:
            with contextlib.suppress(Exception):
                await conn.cancel_safe(timeout=2)
        for task in (victim_q, elsewhere_q, young_q):
            if task is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(task, 5)
        for conn in conns:
            await conn.close()
        await bot.close()


async def test_kill_long_with_nothing_to_kill_is_refused(dbbot: BotHarness) -> None:
    await dbbot.slash("db kill-long", user=OPERATOR)
    assert any("nothing to terminate" in t for t in dbbot.private_texts())
    assert dbbot.requests() == []


# --- analyze and create-index -------------------------------------------------------------------


def _last_analyze(url: str) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'documents'").fetchone()[0]  # type: ignore[index]


async def test_analyze_a_table_after_approval(dbbot: BotHarness, target_url: str) -> None:
    before = _last_analyze(target_url)
    await dbbot.slash("db analyze documents", user=OPERATOR)
    request = dbbot.last_request()
    assert "last analyzed" in json.dumps(request["blocks"])
    await dbbot.click(request["ts"], "cf_approve", APPROVER)
    assert any("analyzed in" in t for t in dbbot.thread_texts(request["ts"]))
    assert _last_analyze(target_url) > before  # type: ignore[operator]


def _indexes(url: str) -> dict[str, bool]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT i.relname, x.indisvalid FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                            "WHERE x.indrelid = 'documents'::regclass").fetchall()
    return dict(rows)


async def test_create_index_concurrently_after_approval(dbbot: BotHarness, target_url: str) -> None:
    await dbbot.slash("db create-index documents owner_id --name documents_owner_ix", user=OPERATOR)
    request = dbbot.last_request()
    assert "documents_pkey" in json.dumps(request["blocks"])
    assert "documents_owner_ix" not in _indexes(target_url)  # nothing happens before approval
    await dbbot.click(request["ts"], "cf_approve", APPROVER)
    assert _indexes(target_url).get("documents_owner_ix") is True
    await dbbot.slash("db create-index documents owner_id --name documents_owner_ix", user=OPERATOR)
    assert any("already exists" in t for t in dbbot.private_texts())


async def test_create_index_validates_table_and_column(dbbot: BotHarness) -> None:
    await dbbot.slash("db create-index nosuch owner_id", user=OPERATOR)
    await dbbot.slash("db create-index documents nosuch", user=OPERATOR)
    await dbbot.slash("db create-index pg_catalog.pg_class relname", user=OPERATOR)
    said = " ".join(dbbot.private_texts())
    assert "Table `nosuch` was not found" in said and "`documents`" in said
    assert "has no column `nosuch`" in said and "`owner_id`" in said
    assert "Table `pg_catalog.pg_class` was not found" in said
    assert dbbot.requests() == []


INJECTIONS = [
    'db create-index "documents; DROP TABLE documents" owner_id',
    "db create-index documents \"owner_id); DROP TABLE documents; --\"",
    "db create-index 'documents\"' owner_id",
    'db create-index documents owner_id --name "x ON documents (id); DROP TABLE documents; --"',
    'db analyze "documents; DROP TABLE documents"',
    "db analyze 'public.documents\"; DROP TABLE documents; --'",
    "db create-index pg_catalog.pg_class.x relname",
]


@pytest.mark.needs_pg_stat_statements
async def test_injected_identifiers_are_refused_and_reach_no_sql(dbbot: BotHarness, target_url: str) -> None:
    indexes = _indexes(target_url)
    for text in INJECTIONS:
        await dbbot.slash(text, user=OPERATOR)
    said = dbbot.private_texts()
    assert len([t for t in said if "is not a plain" in t]) == len(INJECTIONS), said
    assert dbbot.requests() == []
    with psycopg.connect(target_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM documents").fetchone() == (TABLE_ROWS,)
        dropped = conn.execute(
            "SELECT count(*) FROM pg_stat_statements WHERE query ILIKE '%drop table documents%' "
            "AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())").fetchone()
    assert dropped == (0,) and _indexes(target_url) == indexes


@given(st.text(max_size=80))
def test_names_that_pass_are_plain_identifiers(raw: str) -> None:
    for convert in (table_name, column_name):
        try:
            name = convert(raw)
        except ValueError:
            continue
        for part in name.split("."):
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]{0,62}", part)
            assert sql.Identifier(part).as_string() == f'"{part}"'


# --- down, slow, not configured, read-only ------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_database_that_is_down_fails_in_one_line(sim, tmp_path) -> None:
    port = _closed_port()
    bot = await _bot(sim, tmp_path, f"postgresql://postgres:hunter2@127.0.0.1:{port}/gone")
    try:
        await bot.slash("db check")
        said = [t for t in private_lines(bot) if "PostgreSQL" in t]
        assert said == [f":warning: PostgreSQL: could not talk to 127.0.0.1:{port}/gone: Connection refused"], said
        assert "hunter2" not in json.dumps([c.args for c in sim.calls])
    finally:
        await bot.close()


async def test_a_database_that_hangs_times_out_while_the_bot_answers_others(sim, tmp_path) -> None:
    held: list[asyncio.StreamWriter] = []

    async def swallow(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept the connection and never answer

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    bot = await _bot(sim, tmp_path, f"postgresql://postgres@127.0.0.1:{port}/slow")
    try:
        started = time.monotonic()
        await bot.driver.slash("/cf db check", user=OPERATOR)
        await bot.driver.slash("/cf help db slow", user=OPERATOR)
        await sim.wait_for(lambda s: any("Usage:" in t for t in bot.private_texts()), timeout=1.0)
        assert bot.runtime.inflight, "the db check should still be waiting for the database"
        await bot.settle()
        said = [t for t in bot.private_texts() if "PostgreSQL" in t]
        assert said and ("no answer from" in said[0] or "timeout" in said[0].lower()), said
        assert time.monotonic() - started < 4.0
    finally:
        await bot.close()
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_diagnostic_sessions_are_read_only_and_bounded(target_url: str) -> None:
    client = Postgres(target_url, statement_timeout_ms=200)
    with pytest.raises(IntegrationError, match="read-only"):
        await client.rows("CREATE TABLE cf_should_not_exist ()")
    with pytest.raises(Unavailable, match="statement timeout"):
        await client.rows("SELECT pg_sleep(2)")
    assert await client.find_table(None, "cf_should_not_exist") is None


async def test_not_configured_says_which_variable_to_set(sim, tmp_path) -> None:
    bot = await _bot(sim, tmp_path, None)
    try:
        await bot.slash("db check")
        assert any("not configured" in t and "CF_TARGET_DATABASE_URL" in t for t in bot.private_texts())
    finally:
        await bot.close()


async def test_status_line(target_url: str) -> None:
    settings = parse_settings(BASE_CONFIG)
    spec = [c for c in STATUS_CHECKS if c.name == "Database"]
    ok = await run_checks(Context("U1", "C1", "ns", settings, {"postgres": Postgres(target_url)}), spec)
    assert ok[0].status == "ok" and ok[0].latency_ms is not None and "threshold 160" in ok[0].detail
    down = Postgres(f"postgresql://postgres@127.0.0.1:{_closed_port()}/x", connect_timeout=1)
    failed = await run_checks(Context("U1", "C1", "ns", settings, {"postgres": down}), spec)
    assert failed[0].status == "fail" and "refused" in failed[0].line().lower()
    skipped = await run_checks(Context("U1", "C1", "ns", settings, {}), spec)
    assert skipped[0].status == "skip"


def test_builder_reads_the_configured_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = parse_settings({**BASE_CONFIG, "targets": {"postgres": {"dsn_env": "CF_TEST_TARGET_DB"}}})
    monkeypatch.delenv("CF_TEST_TARGET_DB", raising=False)
    assert build_postgres(settings) is None
    monkeypatch.setenv("CF_TEST_TARGET_DB", "postgresql://app:s3cret@db.internal:6432/collab")
    client = build_postgres(settings)
    assert client is not None
    assert client.where == "db.internal:6432/collab" and "s3cret" not in repr(client)
    monkeypatch.setenv("CF_TEST_TARGET_DB", "host='unterminated")
    with pytest.raises(IntegrationError, match="not valid"):
        build_postgres(settings)


async def test_demo_part_without_a_reachable_server_is_not_configured(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.delenv("CF_TARGET_DATABASE_URL", raising=False)
    monkeypatch.setattr(demo_targets, "LOCAL_POSTGRES", f"postgresql://postgres@127.0.0.1:{_closed_port()}/postgres")
    async with contextlib.AsyncExitStack() as stack:
        part = await demo_targets.postgres_part(DemoEnv(tmp_path, stack))
    assert part.services == {} and "not configured" in part.note
