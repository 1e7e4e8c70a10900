"""The bot under test, in-process: real Bolt app over HTTP, real store, Slack simulator, sandbox.

`start_bot` builds the same Runtime and aiohttp application `cfbot run --mode http` serves, on a
free port, with the Web API client pointed at the simulator. `BotHarness.slash/click` send signed
requests exactly as Slack would and then `settle()`: wait until the work the bot does after its
ack has finished, so a test can assert on what was posted.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.config import parse_settings
from bot.messenger import SlackMessenger, web_client
from bot.runtime import Runtime
from bot.slack_app import group_resolver
from commands.base import Services
from incidents.assemble import build_runtime, build_web_application
from tests.slack_sim import Delivery, SlackDriver, SlackSim

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test"
CHANNEL = "C0INCIDENT"
OPERATOR, APPROVER, ADMIN, VIEWER, APPROVER2 = "U0OPERATOR", "U0APPROVER", "U0ADMIN", "U0VIEWER", "U0APPROVER2"

BASE_CONFIG: dict[str, Any] = {
    "namespace": "collaboration",
    "incident_channel": CHANNEL,
    "rbac": {
        "viewer": ["*"],
        "operator": [OPERATOR],
        "approver": [APPROVER, APPROVER2],
        "admin": [ADMIN],
    },
    "approvals": {"ttl_minutes": 15, "allow_self_approval": False, "exempt": []},
    "limits": {"max_replicas": 50},
}


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@dataclass
class BotHarness:
    sim: SlackSim
    runtime: Runtime
    driver: SlackDriver
    runner: web.AppRunner
    app_url: str

    async def slash(self, text: str, user: str = OPERATOR, channel: str = CHANNEL) -> Delivery:
        """`text` without the leading `/cf`; returns the ack after the work has settled."""
        delivery = await self.driver.slash(f"/cf {text}", user=user, channel=channel)
        await self.settle()
        return delivery

    async def click(self, message_ts: str, action_id: str, user: str, channel: str = CHANNEL) -> Delivery:
        delivery = await self.driver.click(channel, message_ts, action_id, user)
        await self.settle()
        return delivery

    async def stale_click(self, message: dict[str, Any], action_id: str, user: str, channel: str = CHANNEL) -> Delivery:
        """A click on an old copy of a message (a client that has not yet seen the update)."""
        from tests.slack_sim import block_actions_body, new_trigger_id

        value = next(el["value"] for b in message["blocks"] if b["type"] == "actions" for el in b["elements"]
                     if el["action_id"] == action_id)
        body = block_actions_body(user, channel, message, action_id, value,
                                  response_url=self.sim.new_response_url(channel, user, message["ts"]),
                                  trigger_id=new_trigger_id())
        delivery = await self.driver.post_raw(body)
        await self.settle()
        return delivery

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until no request work is in flight (checked twice, to catch work that starts late)."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 2:
            await asyncio.sleep(0.01)
            busy = self.runtime.inflight or self.runtime.approvals.verdicts.watching  # verdicts are its work too
            quiet = quiet + 1 if not busy else 0
            if time.monotonic() > deadline:
                raise AssertionError(f"bot still busy after {timeout}s:\n{self.sim.transcript()[-3000:]}")

    # what the bot posted ------------------------------------------------------------------

    def messages(self, channel: str = CHANNEL) -> list[dict[str, Any]]:
        return list(self.sim.messages(channel))

    def requests(self, channel: str = CHANNEL) -> list[dict[str, Any]]:
        """Approval request messages (by their header), oldest first."""
        return [m for m in self.messages(channel) if "Change request" in str(m.get("blocks"))]

    def last_request(self, channel: str = CHANNEL) -> dict[str, Any]:
        found = self.requests(channel)
        assert found, f"no approval request was posted:\n{self.sim.transcript()[-3000:]}"
        return found[-1]

    def thread_texts(self, ts: str, channel: str = CHANNEL) -> list[str]:
        return [m.get("text", "") for m in self.sim.thread(channel, ts)]

    def private_texts(self, user: str | None = None) -> list[str]:
        """Everything said only to one person (response_url ephemerals and chat.postEphemeral)."""
        texts = []
        for call in self.sim.calls:
            if call.method == "response_url" and call.args.get("response_type", "ephemeral") == "ephemeral":
                texts.append(_text_of(call.args))
            elif call.method == "chat.postEphemeral" and (user is None or call.args.get("user") == user):
                texts.append(_text_of(call.args))
        return texts

    async def close(self) -> None:
        await self.runner.cleanup()
        await self.runtime.close()


def _text_of(args: dict[str, Any]) -> str:
    """The text and blocks of a private answer as a person reads them (Slack shows `&lt;` as `<`)."""
    raw = " ".join([str(args.get("text", "")), str(args.get("blocks", ""))])
    return raw.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


async def start_bot(
    sim: SlackSim,
    *,
    database_url: str,
    services: Services | None = None,
    config: dict[str, Any] | None = None,
) -> BotHarness:
    settings = parse_settings(merge(BASE_CONFIG, config or {}), "test config")
    client = web_client(BOT_TOKEN, sim.api_url)
    runtime = await build_runtime(
        settings,
        database_url=database_url,
        messenger=SlackMessenger(client),
        services=services.copy() if services else Services(),
        resolve_group=group_resolver(client),
    )
    runner = web.AppRunner(build_web_application(runtime, client, SIGNING_SECRET), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    app_url = f"http://127.0.0.1:{port}/slack/events"
    await runtime.start()
    return BotHarness(sim, runtime, SlackDriver(sim, app_url, SIGNING_SECRET), runner, app_url)


async def kubectl(kubeconfig: str | Path, *args: str, check: bool = True) -> str:
    """Run the real /usr/bin/kubectl against the sandbox without blocking its event loop."""
    home = Path(kubeconfig).parent / "kubectl-home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "KUBECONFIG": str(kubeconfig)}
    proc = await asyncio.create_subprocess_exec(
        "/usr/bin/kubectl", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {err.decode()}")
    return out.decode() + (err.decode() if not check else "")
