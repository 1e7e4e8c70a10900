"""Shared fixtures: real PostgreSQL (a throwaway database per test session), temp SQLite files."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

PG_ADMIN_URL = os.environ.get("CF_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL for this test session, dropped afterwards."""
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
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cf.db'}"
    return str(request.getfixturevalue("pg_url"))


# --- Slack simulator, sandbox cluster, the bot ---------------------------------------------------


@pytest.fixture
async def sim():  # type: ignore[no-untyped-def]
    from tests.slack_sim import SlackSim

    simulator = SlackSim(bot_token="xoxb-test", team_id="T0CANDLE", bot_user_id="U0CFBOT")
    await simulator.start()
    yield simulator
    await simulator.stop()


class SandboxHandle:
    """A running sandbox: its URL, a kubeconfig file for it, and the Sandbox object."""

    def __init__(self, sandbox, url: str, kubeconfig: str) -> None:  # type: ignore[no-untyped-def]
        self.sandbox = sandbox
        self.url = url
        self.kubeconfig = kubeconfig


@pytest.fixture
async def sandbox(tmp_path):  # type: ignore[no-untyped-def]
    from sandbox import Sandbox

    sb = Sandbox()
    url = await sb.start()
    kubeconfig = tmp_path / "kubeconfig"
    sb.write_kubeconfig(str(kubeconfig))
    yield SandboxHandle(sb, url, str(kubeconfig))
    await sb.stop()


@pytest.fixture
async def kube(sandbox):  # type: ignore[no-untyped-def]
    from integrations.kube import Kube

    client = Kube.from_config(sandbox.kubeconfig, timeout=10)
    yield client
    client.close()


@pytest.fixture
async def bot(sim, kube, tmp_path):  # type: ignore[no-untyped-def]
    """The bot against the simulator and the sandbox, with a SQLite store in tmp_path."""
    from tests.harness import start_bot

    harness = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services={"kube": kube})
    yield harness
    await harness.close()
