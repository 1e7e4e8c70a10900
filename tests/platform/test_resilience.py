"""Faults: the store down (fail closed for changes, reads keep working, service resumes), Slack
rate limits and failures, a hung Kubernetes API, duplicate deliveries, and the /metrics endpoint."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import aiohttp

from integrations.kube import Kube
from tests.harness import APPROVER, CHANNEL, OPERATOR, VIEWER, start_bot
from tests.slack_sim import sign, slash_body
from tests.tcpproxy import TcpProxy


async def test_store_down_reads_work_changes_fail_closed_then_resume(sim, kube, sandbox, pg_url) -> None:
    proxy = await TcpProxy("127.0.0.1", 5432).start()
    url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    bot = await start_bot(sim, database_url=url, services={"kube": kube})
    try:
        await bot.slash("scale graphql-api 4", user=OPERATOR)
        done_request = bot.last_request()
        await bot.click(done_request["ts"], "cf_approve", APPROVER)
        await bot.slash("scale graphql-api 6", user=OPERATOR)
        pending = bot.last_request()

        await proxy.cut()
        await bot.slash("pods", user=VIEWER)
        assert "pods in namespace" in bot.messages()[-1]["text"]  # reads still answer
        await bot.slash("scale graphql-api 9", user=OPERATOR)
        assert "audit store is unavailable" in bot.private_texts()[-1]
        assert len(bot.requests()) == 2  # no new request message
        await bot.click(pending["ts"], "cf_approve", APPROVER)
        assert "audit store is unavailable" in bot.private_texts()[-1]
        deployment = await kube.get_deployment("collaboration", "graphql-api")
        assert deployment["spec"]["replicas"] == 4  # nothing changed while the store was down

        await proxy.restore()
        await bot.slash("audit 20", user=VIEWER)
        assert "3 replicas -&gt; 4 replicas (approved by u0approver)" in json.dumps(bot.messages()[-1]["blocks"])
        await bot.click(pending["ts"], "cf_approve", APPROVER)
        deployment = await kube.get_deployment("collaboration", "graphql-api")
        assert deployment["spec"]["replicas"] == 6
    finally:
        await bot.close()
        await proxy.stop()


async def test_rate_limited_post_is_retried_after_retry_after(bot, sim) -> None:
    sim.fail_next("chat.postMessage", error="ratelimited", status=429, retry_after=1)
    started = time.monotonic()
    await bot.slash("pods", user=VIEWER)
    assert "pods in namespace" in bot.messages()[-1]["text"]
    assert time.monotonic() - started >= 0.9
    attempts = [c for c in sim.calls_to("chat.postMessage")]
    assert len(attempts) == 2 and attempts[0].status == 429


async def test_failing_slack_post_is_logged_and_the_user_told(bot, sim, caplog) -> None:
    sim.fail_next("chat.postMessage", error="internal_error", status=500, times=10)
    with caplog.at_level(logging.ERROR):
        await bot.slash("pods", user=VIEWER)
    assert any(getattr(r, "method", "") == "chat.postMessage" for r in caplog.records)
    assert "Slack did not accept the answer" in bot.private_texts()[-1]


class BlackHole:
    """Accepts connections and never answers: a hung API server."""

    async def start(self) -> int:
        self.writers: list[asyncio.StreamWriter] = []
        self.release = asyncio.Event()
        self.server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        await self.release.wait()
        writer.close()
        await writer.wait_closed()

    async def stop(self) -> None:
        self.release.set()
        self.server.close()
        await self.server.wait_closed()
        await asyncio.sleep(0.05)


async def test_hung_kubernetes_times_out_and_the_bot_stays_responsive(sim, tmp_path: Path) -> None:
    hole = BlackHole()
    port = await hole.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: hole\n"
        f"clusters: [{{name: hole, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "contexts: [{name: hole, context: {cluster: hole, user: anon}}]\nusers: [{name: anon, user: {}}]\n"
    )
    kube = Kube.from_config(str(kubeconfig), timeout=1.5)
    bot = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services={"kube": kube})
    try:
        started = time.monotonic()
        await bot.driver.slash("/cf pods", user=VIEWER)
        await bot.driver.slash("/cf help", user=VIEWER)
        await sim.wait_for(lambda s: any("cf —" in t for t in bot.private_texts()), timeout=1.0)
        help_at = time.monotonic() - started
        await bot.settle()
        failure = next(t for t in bot.private_texts() if "Kubernetes" in t)
        assert "no answer within 1.5s" in failure and "list pods" in failure
        assert help_at < 1.0  # answered while the pods command was still waiting
    finally:
        await bot.close()
        kube.close()
        await hole.stop()


async def test_slack_retry_of_the_same_trigger_runs_once(bot, sim) -> None:
    body = slash_body("pods", VIEWER, CHANNEL, response_url=sim.new_response_url(CHANNEL, VIEWER))
    first = await bot.driver.post_raw(body, sign(body, "test-signing-secret"))
    retry_headers = {**sign(body, "test-signing-secret", timestamp=int(time.time()) + 1), "X-Slack-Retry-Num": "1",
                     "X-Slack-Retry-Reason": "http_timeout"}
    second = await bot.driver.post_raw(body, retry_headers)
    await bot.settle()
    assert first.status == 200 and second.status == 200
    assert len([m for m in bot.messages() if "pods in namespace" in m["text"]]) == 1


async def test_replayed_request_is_refused(bot) -> None:
    body = slash_body("help", VIEWER, CHANNEL)
    headers = sign(body, "test-signing-secret")
    assert (await bot.driver.post_raw(body, headers)).status == 200
    assert (await bot.driver.post_raw(body, headers)).status == 409
    await bot.settle()


async def test_metrics_endpoint_reports_commands_acks_and_integration_calls(bot) -> None:
    await bot.slash("pods", user=VIEWER)
    await bot.slash("scale graphql-api 5", user=OPERATOR)
    await bot.slash("nonsense", user=VIEWER)
    base = bot.app_url.rsplit("/slack/events", 1)[0]
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    assert 'cf_commands_total{command="pods",outcome="ok"} 1.0' in text
    assert 'cf_commands_total{command="scale",outcome="requested"} 1.0' in text
    assert 'cf_commands_total{command="unknown",outcome="unknown"} 1.0' in text
    assert 'cf_ack_seconds_count{kind="command"} 3.0' in text
    assert 'cf_integration_call_seconds_count{operation="list_namespaced_pod",system="Kubernetes"}' in text
    assert "cf_pending_approvals 1.0" in text
