"""The store's two engines behind one small interface: SQLite (`sqlite:///PATH`) and PostgreSQL (psycopg 3).

SQL is written once with `?` placeholders; the PostgreSQL driver rewrites them. Migrations are named
(not numbered) so that independent features can add their own without colliding; they are applied in
list order at start-up, under an advisory lock on PostgreSQL. `insert_chained` is the one multi-statement
transaction: it reads the newest row and inserts the next one under a lock (the audit's hash chain), so
several replicas appending at once still form one chain in the store's order.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlparse

from base.text import first_line

Row = dict[str, Any]
T = TypeVar("T")
CHAIN_LOCK = 7425002  # pg_advisory_xact_lock key of the audit chain (7425001: migrations)


class StoreUnavailable(Exception):
    """The store could not be reached. Change commands fail closed on this."""


@dataclass(frozen=True)
class Migration:
    name: str
    statements: tuple[str, ...]


class Driver(Protocol):
    dialect: str

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    async def migrate(self, migrations: Sequence[Migration]) -> list[str]: ...

    async def insert_chained(self, last_sql: str, insert_sql: str, params_for: Callable[[Row | None], list[Any]]
                             ) -> list[Row]: ...

    async def close(self) -> None: ...


def _render(statement: str, dialect: str) -> str:
    return statement.replace("{serial}", "BIGSERIAL" if dialect == "postgresql" else "INTEGER")


class SqliteDriver:
    """sqlite3 on one thread of its own, one connection; autocommit; WAL for readers.

    The thread is the store's alone, not the event loop's default executor: the store must answer
    (audit, approvals, scheduler claims, Slack delivery de-duplication) while a hung integration or
    anything else keeps other threads busy. One thread is all a single connection can use anyway.
    """

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="cf-store")
        self._closed = False
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=10000")

    async def _on_thread(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreUnavailable("the SQLite store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def _run(self, sql: str, params: Sequence[Any], want_rows: bool) -> Any:
        with self._lock:
            try:
                cur = self._conn.execute(sql, tuple(params))
                if want_rows:
                    return [dict(r) for r in cur.fetchall()]
                return cur.rowcount
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"SQLite store error: {exc}") from None

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        rows: list[Row] = await self._on_thread(self._run, sql, params, True)
        return rows

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        count: int = await self._on_thread(self._run, sql, params, False)
        return count

    async def migrate(self, migrations: Sequence[Migration]) -> list[str]:
        def run() -> list[str]:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.execute(
                        "CREATE TABLE IF NOT EXISTS cf_schema (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
                    )
                    done = {r[0] for r in self._conn.execute("SELECT name FROM cf_schema")}
                    applied = []
                    for m in migrations:
                        if m.name in done:
                            continue
                        for stmt in m.statements:
                            self._conn.execute(_render(stmt, self.dialect))
                        self._conn.execute(
                            "INSERT INTO cf_schema (name, applied_at) VALUES (?, datetime('now'))", (m.name,)
                        )
                        applied.append(m.name)
                    self._conn.execute("COMMIT")
                    return applied
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise

        return await self._on_thread(run)

    async def insert_chained(self, last_sql: str, insert_sql: str, params_for: Callable[[Row | None], list[Any]]
                             ) -> list[Row]:
        """Read the newest row and insert the next in one write transaction (BEGIN IMMEDIATE takes SQLite's
        write lock, so another process appending to the same file waits its turn)."""

        def run() -> list[Row]:
            with self._lock:
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    raise StoreUnavailable(f"SQLite store error: {exc}") from None
                try:
                    last = self._conn.execute(last_sql).fetchone()
                    cur = self._conn.execute(insert_sql, tuple(params_for(dict(last) if last else None)))
                    rows = [dict(r) for r in cur.fetchall()]
                    self._conn.execute("COMMIT")
                    return rows
                except BaseException as exc:
                    self._conn.execute("ROLLBACK")
                    if isinstance(exc, sqlite3.OperationalError):
                        raise StoreUnavailable(f"SQLite store error: {exc}") from None
                    raise

        return await self._on_thread(run)

    async def close(self) -> None:
        if not self._closed:
            await self._on_thread(self._conn.close)
            self._closed = True
            self._thread.shutdown(wait=False)


class PostgresDriver:
    """psycopg 3, one autocommit connection; reconnects when the server comes back."""

    dialect = "postgresql"

    def __init__(self, url: str, connect_timeout: float = 5.0) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self._conn: Any = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> Any:
        import psycopg
        from psycopg.rows import dict_row

        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                self._conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, row_factory=dict_row, connect_timeout=int(self.connect_timeout),
                    application_name="cf-bot-store",  # `db kill-long` never terminates cf-bot* sessions
                )
            except psycopg.Error as exc:
                self._conn = None
                raise StoreUnavailable(f"PostgreSQL store unreachable: {first_line(exc)}") from None
        return self._conn

    async def _retrying(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """`work(connection)` under the driver's lock, once more on a fresh connection if the first one broke (a
        server restart): the one reconnect rule for single statements and the audit's chained insert alike."""
        import psycopg

        async with self._lock:
            for attempt in (1, 2):
                conn = await self._connection()
                try:
                    return await work(conn)
                except psycopg.OperationalError as exc:
                    await self._drop()
                    if attempt == 2:
                        raise StoreUnavailable(f"PostgreSQL store error: {first_line(exc)}") from None
        raise StoreUnavailable("PostgreSQL store error")  # pragma: no cover - loop always returns or raises

    async def _run(self, sql: str, params: Sequence[Any], want_rows: bool) -> Any:
        query = sql.replace("%", "%%").replace("?", "%s")

        async def work(conn: Any) -> Any:
            cur = await conn.execute(query, tuple(params))
            return [dict(r) for r in await cur.fetchall()] if want_rows else cur.rowcount

        return await self._retrying(work)

    async def _drop(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close()
            finally:
                self._conn = None

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        rows: list[Row] = await self._run(sql, params, True)
        return rows

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        count: int = await self._run(sql, params, False)
        return count

    async def migrate(self, migrations: Sequence[Migration]) -> list[str]:
        async with self._lock:
            conn = await self._connection()
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(7425001)")
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS cf_schema (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)"
                )
                cur = await conn.execute("SELECT name FROM cf_schema")
                done = {r["name"] for r in await cur.fetchall()}
                applied = []
                for m in migrations:
                    if m.name in done:
                        continue
                    for stmt in m.statements:
                        await conn.execute(_render(stmt, self.dialect))
                    await conn.execute("INSERT INTO cf_schema (name, applied_at) VALUES (%s, now())", (m.name,))
                    applied.append(m.name)
                return applied

    async def insert_chained(self, last_sql: str, insert_sql: str, params_for: Callable[[Row | None], list[Any]]
                             ) -> list[Row]:
        """Read the newest row and insert the next in one transaction under an advisory lock: replicas append
        one at a time, and ids are taken inside the lock, so id order is the chain's order."""
        last_q = last_sql.replace("%", "%%").replace("?", "%s")
        insert_q = insert_sql.replace("%", "%%").replace("?", "%s")

        async def work(conn: Any) -> list[Row]:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK,))
                cur = await conn.execute(last_q)
                last = await cur.fetchone()
                cur = await conn.execute(insert_q, tuple(params_for(dict(last) if last else None)))
                return [dict(r) for r in await cur.fetchall()]

        return await self._retrying(work)

    async def close(self) -> None:
        async with self._lock:
            await self._drop()


def open_driver(url: str) -> Driver:
    """`sqlite:///relative/path`, `sqlite:////abs/path`, `sqlite://:memory:` or `postgresql://...`."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(url[len("sqlite://") :])
        if path.startswith("/") and not url.startswith("sqlite:////"):
            path = path[1:]
        if path in ("", ":memory:", "/:memory:"):
            path = ":memory:"
        return SqliteDriver(path or ":memory:")
    if parsed.scheme in ("postgres", "postgresql"):
        return PostgresDriver(url)
    raise ValueError(f"DATABASE_URL must start with sqlite:/// or postgresql:// (got {parsed.scheme or 'nothing'}:)")

