"""Triage through Slack against the sandbox: status, pods, top, describe, events, crashloop, help.

Scenario tests use the sandbox's faults (crashloop, memory-pressure, node-not-ready) and check that
each command surfaces what an engineer would be looking for.
"""

from __future__ import annotations

import re
import time

from tests.harness import ADMIN, OPERATOR, VIEWER
from tests.k8s_support import NS, assert_slack_accepted_everything, k8s_bot, last_reply

CRASHING_NODE = "ip-10-0-3-13.ec2.internal"


async def test_status_all_clear_in_one_message(bot, sim) -> None:
    before = len(bot.messages())
    await bot.slash("status", user=VIEWER)
    assert len(bot.messages()) == before + 1
    text = last_reply(bot)
    assert "Status: all clear" in text
    assert "4/4 fully ready" in text and "3/3 Ready" in text and "0 warnings" in text
    assert "HTTP health" in text and "no endpoints configured" in text
    assert_slack_accepted_everything(sim)


async def test_status_names_an_isolated_deployment_and_who_isolated_it(bot, sim) -> None:
    # issue 13 §4: a deployment isolated to 0 replicas once read "all clear, 4/4 fully ready"
    await bot.slash("isolate document-service", user=OPERATOR)
    request = bot.last_request()
    await bot.click(request["ts"], "cf_approve", ADMIN)
    action_id = next(e.action_id for e in await bot.runtime.store.audit_tail(50) if e.event == "done")
    await bot.slash("status", user=VIEWER)
    text = last_reply(bot)
    assert "all clear" not in text and "3/4 fully ready" in text and "scaled to 0: document-service" in text
    line = next(ln for ln in text.splitlines() if "`document-service` scaled to 0" in ln)
    assert f"isolated by <@{OPERATOR}>, approved by <@{ADMIN}>" in line and "UTC" in line
    assert action_id and action_id in line and "isolate document-service" in line
    assert_slack_accepted_everything(sim)


async def test_status_makes_constant_api_calls_at_a_thousand_pods(sim, tmp_path) -> None:
    async with k8s_bot(sim, tmp_path, extra_pods=1000) as env:
        calls = env.kube.calls
        served = env.sandbox.api_calls
        started = time.perf_counter()
        await env.bot.slash("status")
        took = time.perf_counter() - started
        assert env.kube.calls - calls == 6  # deployments, pods, nodes, events, pod metrics, autoscalers: once each
        assert env.sandbox.api_calls - served == 6
        assert took < 10
        assert "1,010 pods" in last_reply(env.bot)
        for text in ("pods --sort memory", "top pods", "nodes", "logs load-generator --tail 3", "pods -A"):
            await env.bot.slash(text)  # long output: truncated to fit, the whole attached
        assert "Showing" in last_reply(env.bot) and "rows" in last_reply(env.bot)
        assert len(sim.files) >= 4
        assert_slack_accepted_everything(sim)


async def test_status_in_a_node_outage_names_the_node_and_its_pods(sim, tmp_path) -> None:
    async with k8s_bot(sim, tmp_path, scenario="node-not-ready") as env:
        await env.bot.slash("status")
        text = last_reply(env.bot)
        assert "Status:" in text and "failing" in text
        assert "2/3 Ready" in text and CRASHING_NODE in text
        assert "Nodes not Ready" in text and "NodeStatusUnknown" in text
        assert "Pods not ready or restarting" in text
        await env.bot.slash("nodes")
        assert "NotReady" in last_reply(env.bot) and "1 not Ready" in last_reply(env.bot)
        await env.bot.slash("top nodes")
        assert "<unknown>" in last_reply(env.bot) and "without metrics" in last_reply(env.bot)
        await env.bot.slash(f"describe node {CRASHING_NODE}")
        text = last_reply(env.bot)
        assert "node.kubernetes.io/unreachable:NoExecute" in text and "NodeNotReady" in text
        assert_slack_accepted_everything(sim)


async def test_crashloop_scenario(sim, tmp_path) -> None:
    async with k8s_bot(sim, tmp_path, scenario="crashloop") as env:
        await env.bot.slash("crashloop")
        text = last_reply(env.bot)
        assert "1 pod crash-looping" in text and "document-service-" in text
        assert "OOMKilled" in text and "exit code 137" in text
        assert "cpu 250m/1, memory 768Mi/2Gi" in text
        assert "JavaScript heap out of memory" in text  # the previous container's last lines
        pod = re.search(r"document-service-[a-z0-9]+-[a-z0-9]+", text)[0]  # type: ignore[index]
        await env.bot.slash(f"describe pod {pod}")
        text = last_reply(env.bot)
        assert "CrashLoopBackOff" in text and "*OOMKilled* (exit code 137)" in text and "BackOff" in text
        await env.bot.slash("status")
        text = last_reply(env.bot)
        assert "1 not ready or restarting" in text and "CrashLoopBackOff" in text and "BackOff" in text
        await env.bot.slash("pods --sort restarts")
        rows = [line for line in last_reply(env.bot).splitlines() if "document-service-" in line]
        assert rows and "CrashLoopBackOff" in rows[0]
        await env.bot.slash("events --warnings")
        assert "Back-off restarting failed container" in last_reply(env.bot)
        assert_slack_accepted_everything(sim)


async def test_memory_pressure_shows_in_top_and_pods(sim, tmp_path) -> None:
    async with k8s_bot(sim, tmp_path, scenario="memory-pressure") as env:
        await env.bot.slash("top pods --sort memory")
        text = last_reply(env.bot)
        lines = [line for line in text.splitlines() if "-5d9c855b84-" in line or "graphql-api-" in line]
        assert lines and "graphql-api-" in lines[0]
        assert "9" in lines[0].split()[-1]  # ~94% of the limit
        assert "at 90% or more of the memory limit" in text
        await env.bot.slash("pods graphql-api --sort memory")
        text = last_reply(env.bot)
        assert "3 graphql-api pods" in text and "MEMORY" in text and "Sorted by memory" in text
        await env.bot.slash("status")
        text = last_reply(env.bot)
        assert "Readiness probe failed" in text
        # issue 13 §4: pods near their memory limit are a warning in status, each named
        line = next(ln for ln in text.splitlines() if "*Memory*" in ln)
        assert "3 pods at 90% or more of the memory limit" in line and line.count("graphql-api-") == 3
        shares = [int(x) for x in re.findall(r"\((\d+)%\)", line)]
        assert len(shares) == 3 and all(90 <= x <= 99 for x in shares) and "document-service" not in line
        await env.bot.slash("crashloop")
        assert "No pods in CrashLoopBackOff" in last_reply(env.bot)


async def test_status_warns_of_an_autoscaler_at_its_maximum(sim, tmp_path) -> None:
    # issue 13 §4: an HPA at maxReplicas cannot absorb more load; status said all clear
    async with k8s_bot(sim, tmp_path) as env:
        await env.bot.slash("status")
        text = last_reply(env.bot)
        assert "Status: all clear" in text and "2 autoscalers, none at its maximum" in text
        assert "none near their memory limit" in text
        await env.kubectl("-n", NS, "patch", "hpa", "graphql-api", "--type", "merge", "-p",
                          '{"spec": {"minReplicas": 2, "maxReplicas": 3}}')
        await env.bot.slash("status")
        text = last_reply(env.bot)
        assert "all clear" not in text
        line = next(ln for ln in text.splitlines() if "*Autoscalers*" in ln)
        assert "1 at its maximum: graphql-api (3/3 replicas)" in line and "websocket-service" not in line
        assert_slack_accepted_everything(sim)


async def test_describe_deployment_and_get_aliases(bot, sim) -> None:
    await bot.slash("describe deployment graphql-api")
    text = last_reply(bot)
    assert "3/3 ready" in text and "cpu 500m/1, memory 512Mi/1Gi" in text
    assert "ghcr.io/candlefish/graphql-api:2.14.3" in text and "ScalingReplicaSet" in text
    await bot.slash("get pods")
    assert "10 pods in namespace" in last_reply(bot)
    await bot.slash("events")
    assert "newest first" in last_reply(bot)
    await bot.slash("nodes")
    assert "3 nodes, all Ready" in last_reply(bot) and "CPU REQUESTS" in last_reply(bot)
    assert_slack_accepted_everything(sim)


async def test_bad_names_and_flags_get_a_usage_line(bot, sim) -> None:
    await bot.slash("pods Not_An_App")
    await bot.slash("pods --sort size")
    await bot.slash("top everything")
    await bot.slash("describe secret app-secrets")
    await bot.slash("events --since 5m")
    refusals = [("is not a valid Kubernetes name", "pods"), ("`size` is not one of: memory, cpu, restarts", "pods"),
                ("`everything` is not one of: pods, nodes", "top"),
                ("`secret` is not one of: pod, node, deployment", "describe"), ("Unknown option `--since`", "events")]
    said = bot.private_texts()
    for text, (reason, command) in zip(said, refusals, strict=True):  # one reply each, with its command's usage
        assert reason in text and f"*Usage:* `/cf {command} " in text, text
    await bot.slash("describe pod graphql-api-nope")
    await bot.slash("pods nosuchapp")
    said = " ".join(bot.private_texts())
    assert "Pod `graphql-api-nope` was not found" in said and "graphql-api-" in said
    assert "No pods with label `app=nosuchapp`" in said and "`websocket-service`" in said
    assert_slack_accepted_everything(sim)


async def test_help_lists_the_suite(bot) -> None:
    await bot.slash("help", user=VIEWER)
    said = " ".join(bot.private_texts())
    for name in ("status", "pods", "top", "describe", "events", "crashloop", "logs", "metrics", "ws probe",
                 "nodes", "node drain", "node cordon", "rollout history", "rollout undo", "restart all",
                 "scale all", "hpa", "secrets", "evidence", "backup config", "isolate", "block-ip"):
        assert f"/cf {name}" in said, name


async def test_status_with_the_api_server_down_is_one_line(sim, tmp_path) -> None:
    async with k8s_bot(sim, tmp_path) as env:
        await env.sandbox.stop()
        await env.bot.slash("status")
        text = last_reply(env.bot)
        kube_lines = [line for line in text.splitlines() if line.startswith(":red_circle: *Kubernetes*")]
        assert len(kube_lines) == 1 and "unreachable" in kube_lines[0]
        assert "*HTTP health*" in text  # the other checks still report
        assert "1 check failing" in text
        assert_slack_accepted_everything(sim)
