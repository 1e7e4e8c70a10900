"""Logs & Metrics through Slack: logs across an app's pods, metrics scraping, the WebSocket probe,
and `status` with one failing and one slow health endpoint (probes run side by side, each bounded)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from sandbox.probe_targets import ProbeTargets
from tests.harness import VIEWER
from tests.k8s_support import assert_slack_accepted_everything, files_named, k8s_bot, last_reply


async def test_logs_of_an_app_newest_first_with_the_rest_attached(bot, sim) -> None:
    await bot.slash("logs graphql-api --grep ERROR --tail 500")
    text = last_reply(bot)
    assert "graphql-api:" in text and "matching `ERROR`" in text and "from 3 pods" in text
    shown = [line for line in text.split("```")[1].splitlines() if "|" in line]
    assert shown and all("ERROR" in line for line in shown)
    blocks = [[ln.split()[0] for ln in block.splitlines() if "|" in ln] for block in text.split("```")[1].split("\n\n")]
    assert len(blocks) == 3  # one per pod
    assert all(stamps == sorted(stamps) for stamps in blocks)  # each in its log's order
    newest = [stamps[-1] for stamps in blocks]
    assert newest == sorted(newest, reverse=True)  # the most recently active pod first
    attached = files_named(sim, "logs-graphql-api")
    assert attached, "the whole output should be attached"
    lines = attached[-1]["content"].decode().splitlines()
    assert len(lines) > len(shown) and all("ERROR" in line for line in lines)
    assert [ln.split()[0] for ln in lines] == sorted(ln.split()[0] for ln in lines)  # oldest first, as kubectl
    assert attached[-1]["thread_ts"] == bot.messages()[-1]["ts"]
    assert_slack_accepted_everything(sim)


async def test_logs_since_and_one_pod(bot, sim) -> None:
    await bot.slash("logs websocket-service --since 1m")
    text = last_reply(bot)
    assert "in the last 1m" in text and "[ws]" in text
    pods = await bot.runtime.dispatcher.services["kube"].list_pods("collaboration", "app=websocket-service")
    name = pods[0]["metadata"]["name"]
    await bot.slash(f"logs {name} --tail 5")
    text = last_reply(bot)
    assert f"{name}: 5 lines of logs from 1 pod" in text


async def test_previous_logs_of_a_crashed_container(sim, tmp_path) -> None:
    async with k8s_bot(sim, tmp_path, scenario="crashloop") as env:
        await env.bot.slash("logs document-service --previous --tail 20")
        text = last_reply(env.bot)
        assert "previous logs" in text and "JavaScript heap out of memory" in text
        assert "no previous container" in text  # the healthy pod has none: one note, not a failure
        # issue 13 §4: the crash reads top to bottom, as the container wrote it
        trace = [text.index(s) for s in ("Last few GCs", "Mark-Compact", "JS stacktrace", "heap out of memory")]
        assert trace == sorted(trace)
        assert "op to bottom in the log's own order" in text  # and the note says so
        assert_slack_accepted_everything(sim)


async def test_logs_bad_input_changes_nothing_and_says_how(bot, sim) -> None:
    await bot.slash("logs graphql-api --since ten")
    await bot.slash("logs graphql-api --grep '(unclosed'")
    await bot.slash("logs graphql-api --tail 0")
    await bot.slash("logs graphql-api --follow")
    await bot.slash("logs nosuchthing")
    said = " ".join(bot.private_texts())
    assert "is not a duration" in said and "not a valid regular expression" in said
    assert "must be at least 1" in said and "Unknown option `--follow`" in said
    assert "No app or pod called `nosuchthing`" in said and "`graphql-api`" in said
    assert_slack_accepted_everything(sim)


@pytest.fixture
async def targets() -> AsyncIterator[ProbeTargets]:
    stand_ins = ProbeTargets()
    await stand_ins.start()
    yield stand_ins
    await stand_ins.stop()


async def test_metrics_and_ws_probe_against_the_stand_ins(sim, tmp_path, targets) -> None:
    async with k8s_bot(sim, tmp_path, config={"probes": targets.probes_config()}) as env:
        await env.bot.slash("metrics websocket-service websocket_active_connections", user=VIEWER)
        text = last_reply(env.bot)
        assert "3 series matching" in text and 'websocket_active_connections{pod="websocket-service-0"}' in text
        await env.bot.slash("metrics graphql-api go_gc")
        text = last_reply(env.bot)
        assert 'go_gc_duration_seconds{quantile="0.5"}' in text and "go_gc_duration_seconds_count" in text
        await env.bot.slash("metrics graphql-api db_connections")
        assert 'db_connections{pool="primary",state="active"}' in last_reply(env.bot)
        await env.bot.slash("ws probe")
        text = last_reply(env.bot)
        assert "WebSocket connected in" in text and "within the 100 ms target" in text
        await env.bot.slash("metrics billing")
        assert "No metrics endpoint is configured for `billing`" in " ".join(env.bot.private_texts())
        await env.bot.slash("metrics graphql-api '['")
        assert "not a valid regular expression" in " ".join(env.bot.private_texts())
        assert_slack_accepted_everything(sim)


async def _app(handler: Any) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def test_status_with_a_failing_and_a_slow_endpoint(sim, tmp_path, targets) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"status": "down"}, status=503)

    async def hanging(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(text="late")

    (r1, bad), (r2, slow) = await _app(broken), await _app(hanging)
    targets.slow["/health"] = 2.3  # answers, but over the 2 s SLA
    probes = {"health": [{"name": "editor", "url": f"{targets.url}/"},
                         {"name": "api", "url": f"{targets.url}/health"},
                         {"name": "documents", "url": f"{bad}/health"},
                         {"name": "search", "url": f"{slow}/health", "timeout_seconds": 1.5},
                         {"name": "nowhere", "url": "http://127.0.0.1:9/health", "timeout_seconds": 1}],
              "sla_seconds": 2}
    try:
        async with k8s_bot(sim, tmp_path, config={"probes": probes}) as env:
            started = time.perf_counter()
            await env.bot.slash("status")
            took = time.perf_counter() - started
            text = last_reply(env.bot)
    finally:
        await r1.cleanup()
        await r2.cleanup()
    assert took < 5, "the probes must run side by side, each bounded by its own timeout"
    lines = {line.split("*")[1]: line for line in text.splitlines() if line.count("*") >= 2 and "HTTP " in line}
    assert "HTTP 200" in lines["HTTP editor"] and ":large_green_circle:" in lines["HTTP editor"]
    assert "slower than the 2 s SLA" in lines["HTTP api"] and ":large_yellow_circle:" in lines["HTTP api"]
    assert "HTTP 503" in lines["HTTP documents"] and ":red_circle:" in lines["HTTP documents"]
    assert "no answer within 1.5s" in lines["HTTP search"]
    assert "failed:" in lines["HTTP nowhere"]
    assert "4/4 fully ready" in text  # the Kubernetes lines still report
    assert "3 checks failing" in text
    assert_slack_accepted_everything(sim)


async def test_ws_probe_failure_is_one_clear_line(sim, tmp_path) -> None:
    config = {"probes": {"websocket_url": "ws://127.0.0.1:9/graphql"}}
    async with k8s_bot(sim, tmp_path, config=config) as env:
        await env.bot.slash("ws probe")
        assert "WebSocket probe failed" in last_reply(env.bot)
    async with k8s_bot(sim, tmp_path / "again") as env:
        await env.bot.slash("ws probe")
        assert "No WebSocket URL is configured" in " ".join(env.bot.private_texts())
