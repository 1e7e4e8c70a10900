"""The soak's fault injectors on their own: the Slack stand-in's opt-in chaos and the sandbox's fault windows."""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp

from sandbox import Sandbox
from tests.slacksim import Chaos, SlackSim

WEB_API = {"Authorization": "Bearer xoxb-test"}


async def test_slack_chaos_is_off_unless_set_and_answers_429_with_retry_after() -> None:
    async with SlackSim() as sim, aiohttp.ClientSession() as session:
        assert sim.chaos is None
        sim.chaos = Chaos(rate_429=1.0, retry_after=7, seed=1)
        async with session.post(sim.api_url + "chat.postMessage", json={"channel": "C0X", "text": "hi"},
                                headers=WEB_API) as resp:
            assert resp.status == 429 and resp.headers["Retry-After"] == "7"
        async with session.post(sim.api_url + "auth.test", headers=WEB_API) as resp:
            assert resp.status == 200  # exempt: Bolt's one token check per process
        sim.chaos = None
        async with session.post(sim.api_url + "chat.postMessage", json={"channel": "C0X", "text": "hi"},
                                headers=WEB_API) as resp:
            assert (await resp.json())["ok"]
        assert [m["text"] for m in sim.messages("C0X")] == ["hi"]  # the refused call changed nothing
        assert sim.calls_to("chat.postMessage")[0].error == "ratelimited"


async def test_a_held_call_takes_effect_but_answers_after_the_client_gave_up() -> None:
    async with SlackSim() as sim, aiohttp.ClientSession() as session:
        sim.chaos = Chaos(rate_hold=1.0, hold_seconds=0.5, hook_hold_seconds=0.5, seed=1)
        started = time.monotonic()
        try:
            async with session.post(sim.api_url + "chat.postMessage", json={"channel": "C0X", "text": "late"},
                                    headers=WEB_API, timeout=aiohttp.ClientTimeout(total=0.2)) as resp:
                await resp.read()
            raise AssertionError("the answer should have come too late")
        except TimeoutError:
            pass
        assert time.monotonic() - started < 0.45
        assert [m["text"] for m in sim.messages("C0X")] == ["late"]
        sim.chaos = Chaos(rate_5xx=1.0, seed=2)
        hook = sim.new_response_url("C0X", "U0A")
        async with session.post(hook, json={"text": "private"}) as resp:
            assert resp.status in (500, 503)
        assert sim.chaos.counts["5xx"] == 1 and sim.ephemerals("C0X") == []


async def test_sandbox_fault_windows_slow_and_fail_requests_then_close() -> None:
    sb = Sandbox()
    url = await sb.start()
    path = "/apis/apps/v1/namespaces/collaboration/deployments/graphql-api"
    try:
        async with aiohttp.ClientSession() as session:
            spec = {"path": "/apis/apps/v1/namespaces/collaboration/deployments.*", "delay": 0.3, "status": 503,
                    "reason": "ServiceUnavailable", "seconds": 1.0}
            async with session.post(url + "/_sandbox/faults", json=spec) as resp:
                assert resp.status == 201
            started = time.monotonic()
            async with session.get(url + path) as resp:
                assert resp.status == 503
                assert (await resp.json())["reason"] == "ServiceUnavailable"
            assert time.monotonic() - started >= 0.3
            async with session.get(url + "/api/v1/namespaces/collaboration/pods") as resp:
                assert resp.status == 200  # outside the window's path
            await asyncio.sleep(1.0)
            async with session.get(url + path) as resp:
                assert resp.status == 200  # the window has closed
            async with session.get(url + "/_sandbox/faults") as resp:
                windows = (await resp.json())["windows"]
            assert [(w["slowed"], w["failed"], w["held"], w["open"]) for w in windows] == [(1, 1, 0, False)]
            held = {"path": "/apis/apps/v1/namespaces/collaboration/deployments/graphql-api", "method": "PATCH",
                    "hold": 1.0, "seconds": 5}
            async with session.post(url + "/_sandbox/faults", json=held) as resp:
                assert resp.status == 201
            patch = {"metadata": {"annotations": {"cf-soak": "late"}}}
            with contextlib.suppress(TimeoutError):  # the client gives up; the change is made all the same
                async with session.patch(url + path, json=patch, timeout=aiohttp.ClientTimeout(total=0.3),
                                         headers={"Content-Type": "application/merge-patch+json"}) as resp:
                    await resp.read()
            async with session.get(url + path) as resp:
                assert (await resp.json())["metadata"]["annotations"]["cf-soak"] == "late"
            async with session.post(url + "/_sandbox/faults", json={"path": "(", "seconds": 5}) as resp:
                assert resp.status == 400
            async with session.post(url + "/_sandbox/faults", json={"status": 500, "seconds": 60}) as resp:
                assert resp.status == 201
            async with session.delete(url + "/_sandbox/faults") as resp:
                assert resp.status == 200
            async with session.get(url + path) as resp:
                assert resp.status == 200
    finally:
        await sb.stop()
