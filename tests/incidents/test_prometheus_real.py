"""The shipped rules in a real Prometheus, its alerts through a real Alertmanager, into the bot.

Prometheus scrapes the sandbox's stand-ins (sandbox/probe_targets.py) every second and evaluates
deploy/prometheus/rules.yml (every `for` set to 0s); Alertmanager runs the shipped receiver
(deploy/prometheus/alertmanager.yml: bearer token from a credentials file) pointed at the bot's
`POST /alerts/alertmanager`. With every knob just under its runbook threshold nothing fires; over it,
every rule fires, each reaches Slack as one message with its runbook procedure, and a gauge alert
whose knob is turned back is redrawn as resolved.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from sandbox.probe_targets import ProbeTargets
from sandbox.world import NODES
from tests import prometheus_support
from tests.harness import BotHarness
from tests.incident_support import ALERT_TOKEN, alerts_url, start
from tests.prometheus_support import Monitoring, rules_for_tests, until

monitoring = prometheus_support.monitoring

CRASHING = "graphql-api-6c9f7d8b5-2xkqp"
BUSY_NODE, FULL_NODE = NODES[0][0], NODES[1][0]
# Each shipped alert -> the bot's rule title it must reach Slack under (incidents/alert_rules.py).
TITLES = {
    "GraphQLHighErrorRate": "GraphQL API: high error rate (>5%)",
    "GraphQLHighLatency": "GraphQL API: high latency (>2s p95)",
    "DatabaseHighConnections": "Database: high connection count (>160)",
    "SlowQueriesDetected": "Database: slow queries detected",
    "RedisHighMemory": "Redis: high memory usage (>90%)",
    "KubePodCrashLooping": "Kubernetes: pod crash looping",
    "NodeHighCPU": "Kubernetes: node high CPU/memory",
    "NodeHighMemory": "Kubernetes: node high CPU/memory",
}
_THRESHOLD = re.compile(r"\s*>=?\s*[0-9.]+\s*$")


@pytest.fixture
async def targets() -> AsyncIterator[ProbeTargets]:
    stand_ins = ProbeTargets()
    await stand_ins.start()
    yield stand_ins
    await stand_ins.stop()


@pytest.fixture
async def bot(sim, tmp_path, monkeypatch) -> AsyncIterator[BotHarness]:
    monkeypatch.setenv("CF_ALERTS_TOKEN", ALERT_TOKEN)
    harness = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}")
    yield harness
    await harness.close()


def just_under(targets: ProbeTargets) -> dict[str, float]:
    """Every knob just under its runbook threshold; what each rule's left-hand side should then read."""
    k = targets.knobs
    k.error_rate, k.latency_p95_seconds, k.db_connections = 0.045, 1.5, 160
    k.slow_query_mean_seconds, k.redis_memory_ratio = 0.9, 0.89
    k.node_cpu = {n: 0.88 for n, _, _ in NODES}
    k.node_memory = {n: 0.88 for n, _, _ in NODES}
    return {"GraphQLHighErrorRate": 0.045, "DatabaseHighConnections": 160, "SlowQueriesDetected": 0.9,
            "RedisHighMemory": 0.89, "NodeHighCPU": 0.88, "NodeHighMemory": 0.88}


def over(targets: ProbeTargets) -> None:
    k = targets.knobs
    k.error_rate, k.latency_p95_seconds, k.db_connections = 0.2, 6.0, 185
    k.slow_query_mean_seconds, k.redis_memory_ratio = 3.0, 0.97
    k.crash_looping.add(CRASHING)
    k.node_cpu[BUSY_NODE] = 0.995
    k.node_memory[FULL_NODE] = 0.97


def alert_messages(bot: BotHarness) -> list[dict[str, Any]]:
    return [m for m in bot.messages() if "FIRING" in m["text"] or "RESOLVED" in m["text"]]


def named(messages: list[dict[str, Any]], alertname: str) -> list[dict[str, Any]]:
    return [m for m in messages if f"`{alertname}`" in json.dumps(m["blocks"])]


def shown(message: dict[str, Any]) -> str:
    """A message's blocks as a person reads them (Slack shows `&gt;` as `>`)."""
    return json.dumps(message["blocks"]).replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&")


@pytest.mark.timeout(120)  # two real processes and ~20 s of scrapes and evaluations, on a shared machine
async def test_shipped_rules_fire_at_the_runbook_thresholds_and_reach_slack_through_alertmanager(
        bot, targets, monitoring: Monitoring) -> None:
    expected = just_under(targets)
    await monitoring.send_to(alerts_url(bot), ALERT_TOKEN)
    await monitoring.scrape(targets.scrape_configs())
    shipped = {r["alert"]: r for g in rules_for_tests()["groups"] for r in g["rules"]}
    assert set(shipped) == set(TITLES)

    # Just under: each rule's left-hand side reads the knob (the metric names and the arithmetic line up) and
    # several evaluations later nothing is pending or firing, and nothing reached Slack.
    for name, value in expected.items():
        lhs = _THRESHOLD.sub("", shipped[name]["expr"])
        result = await until(functools.partial(_nonempty, monitoring, lhs), f"{name}'s expression has data")
        assert max(float(s["value"][1]) for s in result) == pytest.approx(value, rel=0.02), (name, result)
    p95 = await monitoring.query(_THRESHOLD.sub("", shipped["GraphQLHighLatency"]["expr"]))
    assert 1.0 < float(p95[0]["value"][1]) <= 2.0, p95
    await _evaluated_again(monitoring, times=3)
    assert await monitoring.prometheus_alerts() == []
    assert alert_messages(bot) == []

    # Over: every shipped rule fires in Prometheus, Alertmanager holds it, and the bot posts it once, under the
    # runbook rule its name maps to, with Prometheus' own rendering of the live value in the summary.
    over(targets)
    for name in TITLES:
        await monitoring.wait_alert(name, timeout=30)
    messages = await until(lambda: _all_posted(bot), "a Slack message for every shipped alert", 20)
    held = {a["labels"]["alertname"]: a for a in await monitoring.alertmanager_alerts()}
    assert set(held) == set(TITLES)
    queries = {r["name"]: r["query"] for r in await monitoring.rule_states()}  # the shipped exprs, as parsed
    for name, title in TITLES.items():
        [message] = named(messages, name)
        text = shown(message)
        assert title in text and "FIRING" in message["text"], (name, text)
        assert f"fingerprint `{held[name]['fingerprint']}`" in text, name  # the alert Alertmanager holds
        source = re.search(r"<(http://[^|>]+)\|source>", text)
        assert source and source.group(1).startswith(f"{monitoring.prometheus_url}/graph?"), text
        assert parse_qs(urlsplit(source.group(1)).query)["g0.expr"] == [queries[name]]

    error_rate = shown(named(messages, "GraphQLHighErrorRate")[0])
    assert re.search(r"graphql-api answers \d+(\.\d+)?% of requests with 5xx \(runbook: above 5%\)", error_rate)
    crash = json.dumps(named(messages, "KubePodCrashLooping")[0]["blocks"])
    assert f"crashloop {CRASHING}" in crash and f"logs {CRASHING} --previous" in crash
    assert f"describe node {BUSY_NODE}" in json.dumps(named(messages, "NodeHighCPU")[0]["blocks"])
    assert f"describe node {FULL_NODE}" in json.dumps(named(messages, "NodeHighMemory")[0]["blocks"])

    # Back under for a gauge: Prometheus resolves it at the next evaluation, Alertmanager sends the resolution,
    # and the bot redraws that one message; the others keep firing.
    targets.knobs.db_connections = 48
    await until(lambda: _redrawn(bot, "DatabaseHighConnections"), "the connections alert redrawn as resolved", 20)
    assert len(alert_messages(bot)) == len(TITLES)
    assert "FIRING" in named(alert_messages(bot), "RedisHighMemory")[0]["text"]


async def _nonempty(monitoring: Monitoring, expr: str) -> list[dict[str, Any]] | None:
    return await monitoring.query(expr) or None


async def _evaluated_again(monitoring: Monitoring, times: int) -> None:
    """Wait until every rule has been evaluated `times` more times (1 s apart)."""
    first = {r["name"]: r["lastEvaluation"] for r in await monitoring.rule_states()}
    for _ in range(times):
        async def moved(seen: dict[str, str] = first) -> bool | None:
            states = await monitoring.rule_states()
            assert all(r["health"] == "ok" for r in states), [(r["name"], r.get("lastError")) for r in states]
            if all(r["lastEvaluation"] != seen[r["name"]] for r in states):
                seen.update({r["name"]: r["lastEvaluation"] for r in states})
                return True
            return None

        await until(moved, "the rules evaluated again", 10)


async def _all_posted(bot: BotHarness) -> list[dict[str, Any]] | None:
    messages = alert_messages(bot)
    return messages if all(len(named(messages, name)) == 1 for name in TITLES) else None


async def _redrawn(bot: BotHarness, alertname: str) -> bool | None:
    found = named(alert_messages(bot), alertname)
    return True if len(found) == 1 and "RESOLVED" in found[0]["text"] else None
