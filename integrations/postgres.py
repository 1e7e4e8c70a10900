"""The *monitored* PostgreSQL database (the product's, not the bot's own store), through psycopg 3.

Each call opens a short session: connect (bounded by the connect timeout), set the statement
timeout, and make the session read-only unless the caller is one of the change commands. A chat-ops
bot asks a handful of questions a minute, so a pool would only add idle connections to the very
count the `db connections` alert watches. Sessions carry `application_name = cf-bot`, which is how
`kill_long` recognises (and spares) the bot's own work.

Identifiers reach SQL only through `psycopg.sql.Identifier`; `check_identifier` refuses anything
that is not a plain name before any SQL is built, so quoting tricks are refused rather than escaped.
Every failure becomes an `integrations.errors` type with a one-line message naming host, port and
database, never the DSN or its password.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg import errors as pgerr
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from base.text import first_line
from integrations import telemetry
from integrations.errors import Forbidden, IntegrationError, NotFound, Unavailable
from integrations.pg_queries import (
    ACTIVE_OLDER_THAN,
    CONNECTIONS,
    HEAVY_SEQ_SCANS,
    INDEX_CANDIDATES,
    KILL_CANDIDATES,
    SLOW_STATEMENTS,
    TERMINATE_IF_SAME,
)
from integrations.workers import waiting

SYSTEM = "PostgreSQL"
APP_NAME = "cf-bot"
Row = dict[str, Any]
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")


class StatementsUnavailable(NotFound):
    """pg_stat_statements cannot be read; `reason` is "not_installed" or "not_preloaded"."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(SYSTEM, message)
        self.reason = reason


def check_identifier(name: str) -> str:
    """A plain SQL name (letters, digits, _ and $; at most 63 bytes), else ValueError."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name[:60]!r} is not a plain SQL name")
    return name


class Postgres:
    """A narrow async client: the questions the Database commands ask, and their three changes."""

    def __init__(self, dsn: str, *, connect_timeout: float = 5.0, statement_timeout_ms: int = 5000,
                 maintenance_timeout_s: float = 3600.0) -> None:
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.ProgrammingError:
            raise IntegrationError(SYSTEM, "the monitored database's connection string is not valid.") from None
        self._dsn = dsn
        self.where = f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}/{params.get('dbname') or '?'}"
        self.connect_timeout = connect_timeout
        self.statement_timeout_ms = statement_timeout_ms
        self.maintenance_timeout_s = maintenance_timeout_s

    def __repr__(self) -> str:  # never show the DSN
        return f"Postgres({self.where})"

    # --- sessions -----------------------------------------------------------------------------

    @asynccontextmanager
    async def session(self, *, write: bool = False, timeout_ms: int | None = None
                      ) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
        """A fresh autocommit connection: read-only unless `write`, with a statement timeout.

        The request's work slot is put down for the session (`integrations.workers.waiting`): a
        database that does not answer stalls only the commands that need it."""
        async with waiting():
            with self._errors():
                conn = await self._connect()
                try:
                    ms = self.statement_timeout_ms if timeout_ms is None else timeout_ms
                    await conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(int(ms))))
                    await conn.execute("SET default_transaction_read_only = " + ("off" if write else "on"))
                    yield conn
                finally:
                    await conn.close()

    async def _connect(self) -> psycopg.AsyncConnection[Row]:
        libpq_seconds = max(2, math.ceil(self.connect_timeout))  # libpq's own floor is 2 s
        try:
            return await asyncio.wait_for(
                psycopg.AsyncConnection.connect(self._dsn, autocommit=True, row_factory=dict_row,
                                                connect_timeout=libpq_seconds, application_name=APP_NAME),
                timeout=self.connect_timeout,
            )
        except TimeoutError:
            raise Unavailable(SYSTEM, f"no answer from {self.where} within {self.connect_timeout:g} s.") from None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Map psycopg errors to one-line typed errors (never the DSN, never a traceback)."""
        try:
            yield
        except pgerr.QueryCanceled as exc:
            why = "ran past the statement timeout" if "statement timeout" in str(exc) else "was cancelled"
            raise Unavailable(SYSTEM, f"a query on {self.where} {why} and was stopped.") from None
        except pgerr.InsufficientPrivilege as exc:
            raise Forbidden(SYSTEM, f"permission denied on {self.where}: {first_line(exc)}") from None
        except (pgerr.UndefinedTable, pgerr.UndefinedColumn) as exc:
            raise NotFound(SYSTEM, first_line(exc)) from None
        except psycopg.OperationalError as exc:
            raise Unavailable(SYSTEM, f"could not talk to {self.where}: {_reason(exc)}") from None
        except psycopg.Error as exc:
            raise IntegrationError(SYSTEM, f"{self.where}: {first_line(exc)}") from None

    async def rows(self, query: sql.Composable | str, params: Sequence[Any] = (), **session: Any) -> list[Row]:
        async with telemetry.timed(SYSTEM, "query"), self.session(**session) as conn:
            with self._errors():
                cur = await conn.execute(query, params)  # type: ignore[arg-type]
                return await cur.fetchall() if cur.description else []

    # --- read ---------------------------------------------------------------------------------

    async def check(self) -> Row:
        """Connect and SELECT 1, timing both, plus the facts `db check` and the status line show."""
        started = time.perf_counter()
        async with self.session() as conn:
            connected = time.perf_counter()
            with self._errors():
                cur = await conn.execute(
                    "SELECT 1 AS one, current_database() AS db, current_setting('server_version') AS version, "
                    "pg_is_in_recovery() AS replica")
                row = await cur.fetchone()
        assert row is not None
        done = time.perf_counter()
        return {**row, "connect_ms": (connected - started) * 1000, "query_ms": (done - connected) * 1000,
                "latency_ms": (done - started) * 1000}

    async def connections(self) -> list[Row]:
        """Client sessions grouped by database, state, application and client address."""
        return await self.rows(CONNECTIONS)

    async def max_connections(self) -> int:
        return int((await self.rows("SELECT current_setting('max_connections')::int AS n"))[0]["n"])

    async def slow_statements(self, order_by: str, min_ms: float, limit: int) -> list[Row]:
        """pg_stat_statements for this database, slowest first by mean or total time."""
        column = {"mean": "mean_exec_time", "total": "total_exec_time"}[order_by]
        query = sql.SQL(SLOW_STATEMENTS).format(order=sql.Identifier(column))
        async with self.session() as conn:
            with self._errors():
                cur = await conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'")
                if await cur.fetchone() is None:
                    raise StatementsUnavailable("not_installed", "pg_stat_statements is not installed here.")
                try:
                    cur = await conn.execute(query, (min_ms, limit))
                except pgerr.ObjectNotInPrerequisiteState:
                    raise StatementsUnavailable("not_preloaded", "pg_stat_statements is not preloaded.") from None
                return await cur.fetchall()

    async def active_older_than(self, seconds: float) -> list[Row]:
        """Active client queries in this database running longer than `seconds` (not this session)."""
        return await self.rows(ACTIVE_OLDER_THAN, (seconds,))

    async def index_candidates(self, limit: int = 20) -> tuple[list[Row], list[Row]]:
        """The runbook's pg_stats query (unindexed columns only) and tables read by big seq scans."""
        columns = await self.rows(INDEX_CANDIDATES, (limit,))
        tables = await self.rows(HEAVY_SEQ_SCANS, (limit,))
        return columns, tables

    async def find_table(self, schema: str | None, table: str) -> Row | None:
        """An application table (exact name; on the search path unless `schema` is given), with stats.

        System catalogs are never found: the Database changes are for the product's own tables.
        """
        found = await self.rows(
            r"""SELECT n.nspname AS schema, c.relname AS table, c.reltuples::bigint AS rows,
                      greatest(s.last_analyze, s.last_autoanalyze) AS last_analyzed
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
                WHERE c.relname = %s AND c.relkind IN ('r', 'p', 'm')
                  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%%'
                  AND (n.nspname = %s OR (%s::text IS NULL AND pg_table_is_visible(c.oid)))""",
            (table, schema, schema),
        )
        return found[0] if found else None

    async def table_names(self, limit: int = 30) -> list[str]:
        rows = await self.rows(
            "SELECT relname FROM pg_stat_user_tables ORDER BY n_live_tup DESC, relname LIMIT %s", (limit,))
        return [r["relname"] for r in rows]

    async def columns_of(self, schema: str, table: str) -> list[str]:
        rows = await self.rows(
            """SELECT a.attname FROM pg_attribute a
                WHERE a.attrelid = (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                     WHERE n.nspname = %s AND c.relname = %s)
                  AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum""",
            (schema, table),
        )
        return [r["attname"] for r in rows]

    async def indexes_of(self, schema: str, table: str) -> list[Row]:
        """Index name, validity and leading column for each index on the table."""
        return await self.rows(
            """SELECT i.relname AS name, x.indisvalid AS valid, a.attname AS first_column
                 FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                 JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
                 LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
                WHERE n.nspname = %s AND t.relname = %s ORDER BY i.relname""",
            (schema, table),
        )

    async def relation_exists(self, schema: str, name: str) -> bool:
        rows = await self.rows(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s", (schema, name))
        return bool(rows)

    async def never_analyzed(self) -> tuple[int, int]:
        """(user tables never analyzed, all user tables)."""
        row = (await self.rows(
            "SELECT count(*) FILTER (WHERE last_analyze IS NULL AND last_autoanalyze IS NULL) AS never, "
            "count(*) AS total FROM pg_stat_user_tables"))[0]
        return int(row["never"]), int(row["total"])

    # --- change -------------------------------------------------------------------------------

    async def kill_candidates(self, seconds: float) -> list[Row]:
        """What `kill_older_than` would terminate now (the bot's own sessions are never among them)."""
        return await self.rows(KILL_CANDIDATES, (APP_NAME + "%", seconds))

    async def kill_older_than(self, seconds: float) -> list[Row]:
        """Terminate active client queries in this database older than `seconds`; one row per pid.

        Candidates are selected first (never this session or another cf-bot session, replication
        senders, background workers, or a session in another database); each is then terminated only
        if it is still running the very query selected, so a reused pid or a finished query is spared.
        One refusal (a superuser's session, say) does not stop the others.
        """
        async with self.session(write=True) as conn:
            with self._errors():
                cur = await conn.execute(KILL_CANDIDATES, (APP_NAME + "%", seconds))
                victims = await cur.fetchall()
            for victim in victims:
                victim["terminated"], victim["error"] = await self._terminate(conn, victim)
        return victims

    async def _terminate(self, conn: psycopg.AsyncConnection[Row], victim: Row) -> tuple[bool, str]:
        try:
            cur = await conn.execute(TERMINATE_IF_SAME, (victim["pid"], victim["query_start"]))
            row = await cur.fetchone()
        except pgerr.InsufficientPrivilege:
            return False, "permission denied"
        except psycopg.Error as exc:
            return False, first_line(exc)
        if row is None:
            return False, "already finished"
        return bool(row["terminated"]), "" if row["terminated"] else "not signalled"

    async def analyze(self, schema: str | None, table: str | None) -> float:
        """ANALYZE one table or the whole database; returns the seconds it took."""
        query: sql.Composable = sql.SQL("ANALYZE")
        if table is not None:
            target = sql.Identifier(schema, table) if schema else sql.Identifier(table)
            query = sql.SQL("ANALYZE {}").format(target)
        started = time.perf_counter()
        await self.rows(query, write=True, timeout_ms=int(self.maintenance_timeout_s * 1000))
        return time.perf_counter() - started

    async def create_index(self, schema: str, table: str, column: str, name: str) -> float:
        """CREATE INDEX CONCURRENTLY; if it fails, drop the invalid index it leaves behind."""
        for part in (schema, table, column, name):
            check_identifier(part)
        create = sql.SQL("CREATE INDEX CONCURRENTLY {} ON {} ({})").format(
            sql.Identifier(name), sql.Identifier(schema, table), sql.Identifier(column))
        started = time.perf_counter()
        try:
            await self.rows(create, write=True, timeout_ms=int(self.maintenance_timeout_s * 1000))
        except IntegrationError:
            await self._drop_if_invalid(schema, table, name)
            raise
        return time.perf_counter() - started

    async def _drop_if_invalid(self, schema: str, table: str, name: str) -> None:
        """A failed CREATE INDEX CONCURRENTLY leaves an INVALID index; remove it (and only such)."""
        if any(ix["name"] == name and not ix["valid"] for ix in await self.indexes_of(schema, table)):
            await self.rows(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(schema, name)),
                            write=True)


def _reason(exc: BaseException) -> str:
    """libpq's reason without the 'connection to server at ... failed:' preamble."""
    line = first_line(exc)
    return line.rsplit("failed: ", 1)[-1] or line
