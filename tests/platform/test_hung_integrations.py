"""A hung integration stalls only the commands that need it (issue 10 §3).

The Kubernetes API server runs as its own process (`cfbot sandbox`) so that it can be frozen with
SIGSTOP: the kernel still accepts connections, nothing answers, exactly as a hung API server. While
it is frozen, a burst of `/cf pods` must not stall `/cf help`, `/cf audit`, a database command or a
scheduler tick; the pods commands must say that Kubernetes does not answer; the threads they used
must be free again by their deadline; and after SIGCONT the bot works again without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.slots import lease
from bot.store import Store
from commands.base import Services
from integrations.errors import Unavailable
from integrations.kube import Kube
from integrations.postgres import Postgres
from integrations.workers import NoWorker, Workers, waiting
from tests import aws_support
from tests.harness import VIEWER, BotHarness, start_bot
from tests.platform.test_resilience import BlackHole
from tests.processes import free_port, stop, wait_http

CFBOT = str(Path(sys.executable).parent / "cfbot")
KUBE_TIMEOUT = 3.0  # the bot's Kubernetes deadline in this test (10 s by default)
ANSWER_WITHIN = 2.0  # the bound for commands that do not need Kubernetes
BURST = 12  # the burst of /cf pods


@contextlib.asynccontextmanager
async def sandbox_process(tmp_path: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`cfbot sandbox` as a process of its own (so it can be frozen), and a kubeconfig for it."""
    port = free_port()
    kubeconfig = str(tmp_path / "kubeconfig")
    with (tmp_path / "sandbox.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            CFBOT, "sandbox", "--port", str(port), "--kubeconfig", kubeconfig,
            stdout=asyncio.subprocess.DEVNULL, stderr=log)
    try:
        await wait_http(f"http://127.0.0.1:{port}/version", proc, timeout=60)
        yield proc, kubeconfig
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGCONT)
        await stop(proc)


async def answered(bot: BotHarness, text: str, seen: Callable[[], int]) -> float:
    """Send `/cf text` and return the seconds until `seen()` grows (fails after ANSWER_WITHIN)."""
    before = seen()
    started = time.monotonic()
    await bot.driver.slash(f"/cf {text}", user=VIEWER)
    await bot.sim.wait_for(lambda _: seen() > before, timeout=ANSWER_WITHIN)
    return time.monotonic() - started


def count(texts: list[str], part: str) -> int:
    return sum(part in t for t in texts)


async def test_a_frozen_api_server_stalls_only_the_commands_that_need_it(sim, tmp_path, pg_database) -> None:
    async with sandbox_process(tmp_path) as (proc, kubeconfig):
        kube = Kube.from_config(kubeconfig, timeout=KUBE_TIMEOUT)
        services: Services = {"kube": kube, "postgres": Postgres(pg_database, connect_timeout=2)}
        bot = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services=services)
        try:
            await bot.slash("pods", user=VIEWER)
            assert "pods in namespace" in bot.messages()[-1]["text"]  # healthy before the freeze

            proc.send_signal(signal.SIGSTOP)
            frozen_at = time.monotonic()
            acks = await asyncio.gather(*(bot.driver.slash("/cf pods", user=VIEWER) for _ in range(BURST)))
            assert [a.status for a in acks] == [200] * BURST
            assert max(a.elapsed for a in acks) < ANSWER_WITHIN

            async def tick() -> float:
                started = time.monotonic()
                await bot.runtime.scheduler.tick("approvals.expire")  # claims the tick in the store
                return time.monotonic() - started

            names = ["help", "audit", "db check", "scheduler tick"]
            figures = dict(zip(names, await asyncio.gather(
                answered(bot, "help", lambda: count(bot.private_texts(), "cf —")),
                answered(bot, "audit 5", lambda: count([m["text"] for m in bot.messages()], "Audit trail")),
                answered(bot, "db check", lambda: count([m["text"] for m in bot.messages()], "PostgreSQL is up")),
                tick(),
            ), strict=True))
            assert figures["scheduler tick"] < ANSWER_WITHIN
            print("answered while Kubernetes was frozen (s):", {k: round(v, 3) for k, v in figures.items()})

            # Every /cf pods of the burst says Kubernetes did not answer, by its deadline (queueing included).
            no_answer = f"Kubernetes: list pods in namespace collaboration: no answer within {KUBE_TIMEOUT:g}s."
            left = frozen_at + KUBE_TIMEOUT + 3 - time.monotonic()
            await sim.wait_for(lambda s: count(bot.private_texts(), no_answer) == BURST, timeout=max(left, 0.1))
            print(f"all {BURST} /cf pods answered {time.monotonic() - frozen_at:.2f}s after the freeze")
            # ...and no call still holds one of the Kubernetes client's threads afterwards.
            await sim.wait_for(lambda s: kube.workers.busy == 0, timeout=1.0)
            assert kube.workers.queued == 0

            proc.send_signal(signal.SIGCONT)
            thawed_at = time.monotonic()
            await bot.slash("pods", user=VIEWER)
            assert "pods in namespace" in bot.messages()[-1]["text"]  # works again, same process
            assert time.monotonic() - thawed_at < KUBE_TIMEOUT
        finally:
            proc.send_signal(signal.SIGCONT)
            await bot.close()
            kube.close()


async def test_the_store_does_not_share_the_default_executor(tmp_path) -> None:
    """Whatever else fills the loop's default thread pool, the SQLite store still answers."""
    store = await Store.open(f"sqlite:///{tmp_path / 'cf.db'}")
    release = threading.Event()
    loop = asyncio.get_running_loop()
    blockers = [loop.run_in_executor(None, release.wait) for _ in range(64)]
    try:
        started = time.monotonic()
        await asyncio.wait_for(store.append_audit(at=time.time(), event="ran", actor=VIEWER, command="help"),
                               timeout=ANSWER_WITHIN)
        assert [e.command for e in await store.audit_tail(5)] == ["help"]
        assert time.monotonic() - started < ANSWER_WITHIN
    finally:
        release.set()
        await asyncio.gather(*blockers)
        await store.close()


async def test_a_call_queued_behind_hung_calls_fails_at_its_deadline_and_never_runs() -> None:
    workers = Workers("test", 2)
    release = threading.Event()
    ran: list[str] = []

    def hang(left: float) -> None:
        release.wait(left)

    hung = [asyncio.ensure_future(workers.run(hang, timeout=5)) for _ in range(2)]
    await asyncio.sleep(0.1)
    assert workers.busy == 2
    started = time.monotonic()
    with pytest.raises(NoWorker):
        await workers.run(lambda left: ran.append("late"), timeout=0.5)
    assert 0.4 < time.monotonic() - started < ANSWER_WITHIN
    release.set()
    await asyncio.gather(*hung)
    await asyncio.sleep(0.1)
    assert ran == [] and workers.busy == 0 and workers.queued == 0  # dropped from the queue, not run late
    workers.close()


async def test_work_slots_are_put_down_while_waiting_and_all_returned() -> None:
    """A request waiting on an external system lends its slot; none is lost or made up on the way."""
    slots = asyncio.Semaphore(2)
    gate = asyncio.Event()
    inside: list[int] = []

    async def request(i: int) -> None:
        async with lease(slots):
            async def part() -> None:
                async with waiting():
                    await gate.wait()
            await asyncio.gather(part(), part())  # a command that asks two things at once
            inside.append(i)

    tasks = [asyncio.ensure_future(request(i)) for i in range(6)]
    await asyncio.sleep(0.1)
    assert slots._value == 2  # all six are waiting on the system, none holds a slot
    gate.set()
    await asyncio.gather(*tasks)
    assert sorted(inside) == list(range(6)) and slots._value == 2


async def test_a_hung_aws_endpoint_fails_within_the_deadline(monkeypatch) -> None:
    hole = BlackHole()
    port = await hole.start()
    aws_support.point_env(monkeypatch, f"http://127.0.0.1:{port}")
    aws: Any = aws_support.build_aws({"aws": {"timeout_seconds": 2}})
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable) as caught:
            await aws.load_balancer("candlefish-collaboration-alb")
        took = time.monotonic() - started
        print(f"a hung AWS endpoint answered in {took:.2f}s (deadline 2s)")
        assert took < 2 + 1, f"took {took:.1f}s"
        assert "within 2s" in caught.value.message
        await asyncio.sleep(0.5)
        assert aws.workers.busy == 0  # its thread gave up with it
    finally:
        aws.close()
        await hole.stop()
