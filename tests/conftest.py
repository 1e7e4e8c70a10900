"""Shared fixtures: real PostgreSQL (a throwaway database per test session), temp SQLite files.

`make test` runs scripts/services.sh first, which starts PostgreSQL and Redis and preloads
pg_stat_statements. Where a service still is not there, the tests that need it are reported as
skipped with the reason, never as errors or failures of the product.
"""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from collections.abc import Generator, Iterator
from urllib.parse import urlsplit

import psycopg
import pytest

from base.text import first_line

PG_ADMIN_URL = os.environ.get("CF_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

def _pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


def _where(url: str) -> str:
    """host:port/db of a URL, without its credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or ''}{parts.path}"


@functools.cache
def postgres_unavailable() -> str | None:
    """Why the tests' PostgreSQL cannot be used (checked once per session), or None."""
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL is not reachable at {_where(PG_ADMIN_URL)}: {first_line(exc)}"
    return None


@functools.cache
def pg_stat_statements_unavailable() -> str | None:
    """Why pg_stat_statements cannot be read on the tests' PostgreSQL, or None."""
    if why := postgres_unavailable():
        return why
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        preload = str(conn.execute("SHOW shared_preload_libraries").fetchone()[0])  # type: ignore[index]
        available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'").fetchone()
    if not available:
        return f"pg_stat_statements is not available on {_where(PG_ADMIN_URL)} (its contrib package is not installed)"
    if "pg_stat_statements" not in [lib.strip().strip('"') for lib in preload.split(",")]:
        return (f"pg_stat_statements is not in shared_preload_libraries on {_where(PG_ADMIN_URL)} "
                f"(it is {preload!r}); scripts/services.sh adds it and restarts the cluster")
    return None


def pytest_configure(config: pytest.Config) -> None:
    # A test that reads the pg_stat_statements view works only when the server preloads the module.
    config.addinivalue_line("markers", "needs_pg_stat_statements: skip unless the server preloads pg_stat_statements")


@pytest.fixture(autouse=True)
def _pg_stat_statements_gate(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("needs_pg_stat_statements") and (why := pg_stat_statements_unavailable()):
        pytest.skip(why)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A fixture that fails because a service is missing (PostgreSQL down, no redis-server binary) is a skip."""
    report = yield
    if report.when != "setup" or not report.failed or call.excinfo is None:
        return report
    exc = call.excinfo.value
    why = None
    if isinstance(exc, psycopg.OperationalError):
        why = postgres_unavailable()
    elif isinstance(exc, FileNotFoundError) and exc.filename == "redis-server" and not shutil.which("redis-server"):
        why = "redis-server is not installed (the cache tests run a private one per test)"
    if why:
        path, line, _ = item.reportinfo()
        report.outcome = "skipped"
        report.longrepr = (str(path), (line or 0) + 1, f"Skipped: {why}")
    return report


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL for this test session, dropped afterwards."""
    if why := postgres_unavailable():
        pytest.skip(why)
    name = f"cf_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """The session database, emptied of cf tables before each test."""
    with psycopg.connect(pg_database, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'cf\\_%'"
        ).fetchall()
        for (table,) in rows:
            conn.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')
    yield pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cf.db'}"
    return str(request.getfixturevalue("pg_url"))


# --- Slack simulator, sandbox cluster, the bot ---------------------------------------------------


@pytest.fixture
async def sim():
    from tests.slack_sim import SlackSim

    simulator = SlackSim(bot_token="xoxb-test", team_id="T0CANDLE", bot_user_id="U0CFBOT")
    await simulator.start()
    yield simulator
    await simulator.stop()


class SandboxHandle:
    """A running sandbox: its URL, a kubeconfig file for it, and the Sandbox object."""

    def __init__(self, sandbox, url: str, kubeconfig: str) -> None:
        self.sandbox = sandbox
        self.url = url
        self.kubeconfig = kubeconfig


@pytest.fixture
async def sandbox(tmp_path):
    from sandbox import Sandbox

    sb = Sandbox()
    url = await sb.start()
    kubeconfig = tmp_path / "kubeconfig"
    sb.write_kubeconfig(str(kubeconfig))
    yield SandboxHandle(sb, url, str(kubeconfig))
    await sb.stop()


@pytest.fixture
async def kube(sandbox):
    from integrations.kube import Kube

    client = Kube.from_config(sandbox.kubeconfig, timeout=10)
    yield client
    client.close()


@pytest.fixture
async def bot(sim, kube, tmp_path):
    """The bot against the simulator and the sandbox, with a SQLite store in tmp_path."""
    from tests.harness import start_bot

    harness = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services={"kube": kube})
    yield harness
    await harness.close()
