"""The bot as a new user runs it: `cfbot sandbox`, `cfbot run --mode http` with a config file and a
Slack stand-in, kubectl showing the result; and `cfbot demo` with piped input."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness import APPROVER, CHANNEL, OPERATOR, SIGNING_SECRET, VIEWER, kubectl
from tests.processes import free_port, stop, wait_http
from tests.slack_sim import SlackDriver

CFBOT = shutil.which("cfbot", path=str(Path(sys.executable).parent)) or "cfbot"

CONFIG = """\
namespace: collaboration
incident_channel: C0INCIDENT
rbac:
  viewer: ["*"]
  operator: [U0OPERATOR]
  approver: [U0APPROVER]
  admin: [U0ADMIN]
approvals:
  ttl_minutes: 15
limits:
  max_replicas: 50
"""


async def spawn(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        CFBOT, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )




@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """`cfbot sandbox` as a separate process: (url, kubeconfig path).

    Pods start at once and HPAs do not act (these tests are about the processes, not the cluster's
    timing; `tests/kubernetes/test_sandbox_capacity.py` covers the CLI's defaults of 2 s and 15 s).
    """
    port = free_port()
    kubeconfig = str(tmp_path / "sandbox.kubeconfig")
    proc = await spawn("sandbox", "--port", str(port), "--kubeconfig", kubeconfig, "--start-seconds", "0",
                       "--hpa-sync-seconds", "0", env=dict(os.environ))
    await wait_http(f"http://127.0.0.1:{port}/version", proc)
    yield f"http://127.0.0.1:{port}", kubeconfig
    await stop(proc)


async def test_scale_flow_through_the_real_processes(sim, cluster, tmp_path: Path) -> None:
    _url, kubeconfig = cluster
    (tmp_path / "cf.yaml").write_text(CONFIG)
    port = free_port()
    env = {
        **os.environ,
        "CF_CONFIG": str(tmp_path / "cf.yaml"),
        "KUBECONFIG": kubeconfig,
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": sim.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cf.db'}",
    }
    driver = SlackDriver(sim, f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET)

    bot = await spawn("run", "--mode", "http", "--port", str(port), "--host", "127.0.0.1", env=env)
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", bot)
        ack = await driver.slash("/cf scale graphql-api 10", user=OPERATOR)
        assert ack.status == 200
        request = await sim.wait_for(
            lambda s: next((m for m in s.messages(CHANNEL) if "Change request" in json.dumps(m["blocks"])), None),
            timeout=15,
        )
        await driver.click(CHANNEL, request["ts"], "cf_approve", APPROVER)
        await sim.wait_for(lambda s: any("Done:" in m["text"] for m in s.thread(CHANNEL, request["ts"])), timeout=15)
        out = await kubectl(kubeconfig, "-n", "collaboration", "get", "deployment", "graphql-api")
        assert "10/10" in out
    finally:
        await stop(bot)
    assert bot.returncode == 0  # SIGTERM is a clean stop

    bot = await spawn("run", "--mode", "http", "--port", str(port), "--host", "127.0.0.1", env=env)
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", bot)
        await driver.slash("/cf audit 5", user=VIEWER)
        posted = await sim.wait_for(
            lambda s: next((m for m in s.messages(CHANNEL) if "Audit trail" in m["text"]), None), timeout=15
        )
        assert "3 replicas -&gt; 10 replicas (approved by u0approver)" in json.dumps(posted["blocks"])
    finally:
        await stop(bot)
    logs = (await bot.stderr.read()).decode() if bot.stderr else ""
    assert "xoxb-test" not in logs and SIGNING_SECRET not in logs


async def test_run_refuses_to_start_without_a_signing_secret(tmp_path: Path) -> None:
    (tmp_path / "cf.yaml").write_text(CONFIG)
    env = {**os.environ, "CF_CONFIG": str(tmp_path / "cf.yaml"), "SLACK_BOT_TOKEN": "xoxb-test"}
    env.pop("SLACK_SIGNING_SECRET", None)
    proc = await spawn("run", "--mode", "http", "--port", str(free_port()), env=env)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert "SLACK_SIGNING_SECRET" in err.decode() and "Traceback" not in err.decode()


async def test_demo_with_piped_input_prints_pods_and_exits_0() -> None:
    proc = await asyncio.create_subprocess_exec(
        CFBOT, "demo", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(b"/cf pods\n"), 60)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "NAME" in text and "READY" in text and "graphql-api-" in text and "Running" in text
    assert "Traceback" not in text + err.decode()


async def test_demo_scale_with_a_second_person_approving() -> None:
    script = "/cf scale graphql-api 10\n/as arjun\n1\n/cf pods\n/cf audit 4\n"
    proc = await asyncio.create_subprocess_exec(
        CFBOT, "demo", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(script.encode()), 90)
    text = out.decode()
    assert proc.returncode == 0, err.decode()
    assert "[1] Approve" in text and "Approved by @arjun" in text
    assert "Done: 3 replicas → 10 replicas" in text
    assert text.count("graphql-api-") >= 10


async def test_killed_mid_action_is_reported_interrupted_after_restart(sim, cluster, tmp_path: Path) -> None:
    """A drain blocked by a disruption budget keeps running; kill -9 the bot; the next start says so."""
    _url, kubeconfig = cluster
    await kubectl(kubeconfig, "-n", "collaboration", "scale", "deployment", "websocket-service", "--replicas=2")
    node = (await kubectl(kubeconfig, "-n", "collaboration", "get", "pods", "-l", "app=websocket-service",
                          "-o", "jsonpath={.items[0].spec.nodeName}")).strip()
    fast = CONFIG.replace("  ttl_minutes: 15\n", "  ttl_minutes: 15\n  heartbeat_seconds: 0.5\n  sweep_seconds: 1\n")
    (tmp_path / "cf.yaml").write_text(fast)
    port = free_port()
    env = {
        **os.environ, "CF_CONFIG": str(tmp_path / "cf.yaml"), "KUBECONFIG": kubeconfig,
        "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": sim.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cf.db'}",
    }
    driver = SlackDriver(sim, f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET)
    bot = await spawn("run", "--mode", "http", "--port", str(port), "--host", "127.0.0.1", env=env)
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", bot)
        await driver.slash(f"/cf node drain {node}", user=OPERATOR)
        request = await sim.wait_for(
            lambda s: next((m for m in s.messages(CHANNEL) if "Change request" in json.dumps(m["blocks"])), None),
            timeout=15,
        )
        await driver.click(CHANNEL, request["ts"], "cf_approve", APPROVER)
        await sim.wait_for(lambda s: any("Running" in m["text"] for m in s.thread(CHANNEL, request["ts"])), timeout=15)
    finally:
        if bot.returncode is None:
            bot.kill()  # SIGKILL: no chance to clean up
        await bot.wait()
    bot = await spawn("run", "--mode", "http", "--port", str(port), "--host", "127.0.0.1", env=env)
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", bot)
        await sim.wait_for(
            lambda s: any("Interrupted" in m["text"] for m in s.thread(CHANNEL, request["ts"])), timeout=15
        )
        final = next(m for m in sim.messages(CHANNEL) if m["ts"] == request["ts"])
        assert "Interrupted" in json.dumps(final["blocks"]) and '"actions"' not in json.dumps(final["blocks"])
    finally:
        await stop(bot)


async def test_two_bot_processes_on_one_postgres_run_an_approval_once(sim, cluster, tmp_path: Path, pg_url) -> None:
    """Two `cfbot run` processes share the store; the same Approve reaches both at once; it runs once."""
    _url, kubeconfig = cluster
    (tmp_path / "cf.yaml").write_text(CONFIG.replace("approver: [U0APPROVER]", "approver: [U0APPROVER, U0APPROVER2]"))
    ports = [free_port(), free_port()]
    env = {
        **os.environ, "CF_CONFIG": str(tmp_path / "cf.yaml"), "KUBECONFIG": kubeconfig,
        "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": sim.api_url,
        "DATABASE_URL": pg_url,
    }
    bots = [await spawn("run", "--mode", "http", "--port", str(p), "--host", "127.0.0.1", env=env) for p in ports]
    drivers = [SlackDriver(sim, f"http://127.0.0.1:{p}/slack/events", SIGNING_SECRET) for p in ports]
    try:
        for port, proc in zip(ports, bots, strict=True):
            await wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        await drivers[0].slash("/cf scale graphql-api 11", user=OPERATOR)
        request = await sim.wait_for(
            lambda s: next((m for m in s.messages(CHANNEL) if "Change request" in json.dumps(m["blocks"])), None),
            timeout=15,
        )
        await asyncio.gather(*(d.click(CHANNEL, request["ts"], "cf_approve", who)
                               for d in drivers for who in ("U0APPROVER", "U0APPROVER2")))
        await sim.wait_for(lambda s: any("Done:" in m["text"] for m in s.thread(CHANNEL, request["ts"])), timeout=15)
        await asyncio.sleep(1.0)  # let any second (wrong) execution show itself
        thread = [m["text"] for m in sim.thread(CHANNEL, request["ts"])]
        assert sum("Approved by" in t for t in thread) == 1 and sum("Done:" in t for t in thread) == 1, thread
        assert "11/11" in await kubectl(kubeconfig, "-n", "collaboration", "get", "deployment", "graphql-api")
    finally:
        for proc in bots:
            await stop(proc)
