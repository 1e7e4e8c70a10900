"""Context on arrival: the whole loop with real components, and each part's budget.

End to end: a stand-in service's 5xx share crosses the shipped rule's threshold in a real Prometheus, a
real Alertmanager sends the group to the bot, and the bot posts ONE message for it carrying the workload's
context from the sandbox cluster (pods not ready, warning events, ERROR lines, last rollout) and from its
own audit (the scale it made earlier, who asked, who approved, the request id), then the graph of the
alert's expression in the thread. Then, with stand-in clients: a part that hangs or fails shows as
unavailable without delaying the rest past the budget; the database and Redis parts are the commands'
own verdicts.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image

from bot.config import parse_settings
from commands.base import Context, Services
from incidents import alert_context
from incidents.alert_graph import split_threshold
from incidents.alert_rules import rule_for
from integrations.errors import Forbidden
from integrations.prometheus import Prometheus
from sandbox.probe_targets import ProbeTargets
from tests import prometheus_support
from tests.harness import APPROVER, BASE_CONFIG, CHANNEL, OPERATOR, BotHarness
from tests.incident_support import ALERT_TOKEN, alerts_url, start
from tests.prometheus_support import Monitoring, until

monitoring = prometheus_support.monitoring


@pytest.fixture
async def targets() -> AsyncIterator[ProbeTargets]:
    stand_ins = ProbeTargets()
    await stand_ins.start()
    yield stand_ins
    await stand_ins.stop()


def shown(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False).replace("&gt;", ">").replace("&lt;", "<")


@pytest.mark.timeout(120)
async def test_a_real_alert_arrives_as_one_message_with_its_context_and_graph(
        sim, kube, sandbox, tmp_path, monkeypatch, targets, monitoring: Monitoring) -> None:
    monkeypatch.setenv("CF_ALERTS_TOKEN", ALERT_TOKEN)
    prometheus = Prometheus(monitoring.prometheus_url, timeout=10)
    bot: BotHarness = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}",
                                  services={"kube": kube, "prometheus": prometheus},
                                  config={"prometheus": {"url": monitoring.prometheus_url}})
    try:
        await bot.slash("scale graphql-api 4", user=OPERATOR)  # a change cf made: the context must name it
        request = bot.last_request()
        await bot.click(request["ts"], "cf_approve", APPROVER)
        [requested] = [e for e in await bot.runtime.audit.tail(50) if e.event == "requested"]

        await monitoring.send_to(alerts_url(bot), ALERT_TOKEN)
        await monitoring.scrape(targets.scrape_configs())
        targets.knobs.error_rate = 0.25
        await monitoring.wait_alert("GraphQLHighErrorRate", timeout=30)
        message = await until(lambda: _posted(bot, "GraphQLHighErrorRate"), "the alert's message", 30)
        text = shown(message)
        assert "*Context on arrival*" in text
        for part in ("Pods not ready:", "Warning events:", "ERROR logs, last 10 min:", "Last rollout:",
                     "Changes by cf, last 24 h:"):
            assert f"*{part}*" in text, (part, text)
        assert "database pool timeout" in text  # the sandbox's graphql-api ERROR lines
        names = await bot.runtime.audit.names([OPERATOR, APPROVER])
        assert f"@{names[OPERATOR]}, approved by @{names[APPROVER]}" in text
        assert "/cf scale graphql-api 4" in text and f"request `{requested.action_id}`" in text
        assert "revision " in text  # the last rollout, from `rollout history`

        upload = await until(lambda: _graph(bot), "the alert's graph in its thread", 30)
        assert upload["thread_ts"] == message["ts"] and upload["channel"] == CHANNEL
        assert Image.open(io.BytesIO(upload["content"])).size == (1000, 420)
        await bot.settle()
        assert len([m for m in bot.messages() if "GraphQLHighErrorRate" in m["text"]]) == 1  # one message
    finally:
        await bot.close()
        await prometheus.close()


async def _posted(bot: BotHarness, name: str) -> dict[str, Any] | None:
    found = [m for m in bot.messages() if "FIRING" in m["text"] and name in m["text"]]
    return found[0] if found else None


async def _graph(bot: BotHarness) -> dict[str, Any] | None:
    found = [f for f in bot.sim.files if f["filename"] == "GraphQLHighErrorRate.png"]
    return found[0] if found else None


# --- budgets and parts, with stand-in clients ------------------------------------------------------------


class SlowKube:
    """Pods answer at once; events never do; logs are refused."""

    async def list_pods(self, namespace: str | None, label_selector: str = "", field_selector: str = "") -> list:
        return [{"metadata": {"name": "graphql-api-1", "creationTimestamp": "2026-01-10T10:00:00Z"},
                 "spec": {"containers": [{"name": "app"}]},
                 "status": {"phase": "Running", "containerStatuses": [
                     {"name": "app", "ready": False, "restartCount": 4,
                      "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}]

    async def list_events(self, namespace: str | None, field_selector: str = "") -> list:
        await asyncio.sleep(60)
        return []

    async def pod_log(self, *args: Any, **kwargs: Any) -> str:
        raise Forbidden("Kubernetes", "pods/log is forbidden", code="Forbidden")

    async def get_deployment(self, namespace: str, name: str) -> dict:
        await asyncio.sleep(60)
        return {}


class FakePostgres:
    where = "db:5432/app"

    async def connections(self) -> list[dict[str, Any]]:
        return [{"database": "app", "here": True, "state": "active", "application": "graphql-api",
                 "client": "app@10.0.0.1", "n": 182}]

    async def max_connections(self) -> int:
        return 200

    async def active_older_than(self, seconds: float) -> list[dict[str, Any]]:
        return [{"pid": 41, "age_s": 12.0, "application": "graphql-api", "query": "SELECT 1"},
                {"pid": 42, "age_s": 420.5, "application": "reports", "query": "SELECT * FROM documents `<!here>`"}]


class FakeRedis:
    where = "redis:6379/0"

    async def info(self, section: str | None = None) -> dict[str, Any]:
        return {"memory": {"used_memory": 970, "maxmemory": 1000}, "server": {"uptime_in_seconds": 3600},
                "stats": {"keyspace_hits": 90, "keyspace_misses": 10}}[section or "server"]


def context_with(services: dict[str, Any]) -> Context:
    settings = parse_settings(BASE_CONFIG, "test")
    return Context(user="alertmanager", channel=CHANNEL, namespace="collaboration", settings=settings,
                   services=Services(**services))  # type: ignore[typeddict-item]


async def test_a_slow_or_failing_part_is_unavailable_and_the_rest_arrives_within_the_budget() -> None:
    ctx = context_with({"kube": SlowKube()})  # no audit: that part is "not configured"
    started = time.monotonic()
    parts = await alert_context.gather(ctx, rule_for("GraphQLHighErrorRate"), {"deployment": "graphql-api"})
    took = time.monotonic() - started
    assert took < alert_context.BUDGET + 0.5, took
    by = {p.label: p for p in parts}
    assert "1 of 1" in by["Pods not ready"].text and "CrashLoopBackOff" in by["Pods not ready"].text
    assert by["Warning events"].failed == "Timeout"
    assert by["ERROR logs, last 10 min"].failed == "Forbidden"
    assert by["Last rollout"].failed == "Timeout"
    assert by["Changes by cf, last 24 h"].failed == "not configured"


async def test_database_and_redis_parts_are_the_commands_verdicts() -> None:
    ctx = context_with({"postgres": FakePostgres(), "redis": FakeRedis()})
    db = {p.label: p for p in await alert_context.gather(ctx, rule_for("DatabaseHighConnections"), {})}
    assert db["Connections"].text.startswith("182 client connections (threshold 160, max_connections 200)")
    longest = db["Longest-running query"].text
    assert "pid 42, running 420 s" in longest and "<" not in longest and "&lt;!here&gt;" in longest
    cache = {p.label: p for p in await alert_context.gather(ctx, rule_for("RedisHighMemory"), {})}
    assert cache["Memory"].text == "Redis memory: used 970 B of 1000 B maxmemory (97.0%, threshold 90%)"
    assert cache["Hit rate"].text.startswith("Redis hit rate: 90.0%")
    assert await alert_context.gather(ctx, rule_for("NodeHighCPU"), {"instance": "ip-10-0-1-5:9100"}) == []


def test_the_threshold_is_read_from_the_rule_expression() -> None:
    assert split_threshold("(sum(rate(a[5m])) / sum(rate(b[5m]))) > 0.05") == ("sum(rate(a[5m])) / sum(rate(b[5m]))",
                                                                               0.05)
    assert split_threshold("(sum by (instance) (pg_stat_activity_count)) > 160") == (
        "sum by (instance) (pg_stat_activity_count)", 160.0)
    assert split_threshold("(a) / (b) >= 1") == ("(a) / (b)", 1.0)
    assert split_threshold("up == 0") == ("up == 0", None)
    assert split_threshold("max_over_time(x[5m]) >= 1") == ("max_over_time(x[5m])", 1.0)
