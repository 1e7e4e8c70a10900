"""Helpers for the Kubernetes suites (tests/test_k8s_*.py): a bot on a scenario sandbox, and readers.

`k8s_bot` starts what the `bot` fixture starts (the real Bolt app over signed HTTP, the Slack
simulator, the sandbox cluster) but with a scenario, extra pods or extra config. The readers turn
what the bot sent to Slack back into text, so assertions read like what an engineer would see.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integrations.kube import Kube
from sandbox import Sandbox
from tests.harness import APPROVER, OPERATOR, BotHarness, kubectl, start_bot
from tests.slack_sim import SlackSim

NS = "collaboration"


@dataclass
class K8sEnv:
    bot: BotHarness
    sandbox: Sandbox
    kube: Kube
    kubeconfig: str

    async def kubectl(self, *args: str, check: bool = True) -> str:
        return await kubectl(self.kubeconfig, *args, check=check)


@contextlib.asynccontextmanager
async def k8s_bot(sim: SlackSim, tmp_path: Path, *, scenario: str | None = None, extra_pods: int = 0,
                  config: dict[str, Any] | None = None, start_seconds: float = 0.0,
                  hpa_sync_seconds: float | None = None) -> AsyncIterator[K8sEnv]:
    """`start_seconds`/`hpa_sync_seconds` as `Sandbox` takes them: by default pods start at once, HPAs never act."""
    sandbox = Sandbox(scenario=scenario, extra_pods=extra_pods, start_seconds=start_seconds,
                      hpa_sync_seconds=hpa_sync_seconds)
    await sandbox.start()
    kubeconfig = str(tmp_path / "kubeconfig")
    sandbox.write_kubeconfig(kubeconfig)
    kube = Kube.from_config(kubeconfig, timeout=10)
    bot = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services={"kube": kube},
                          config=config)
    try:
        yield K8sEnv(bot, sandbox, kube, kubeconfig)
    finally:
        await bot.close()
        kube.close()
        await sandbox.stop()


def reply_text(message: dict[str, Any]) -> str:
    """A message's fallback text and every text in its blocks, one per line, unescaped as Slack shows it."""
    found: list[str] = [str(message.get("text", ""))]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.get("blocks", []))
    return "\n".join(found).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def last_reply(bot: BotHarness) -> str:
    return reply_text(bot.messages()[-1])


def everything_sent(sim: SlackSim) -> str:
    """Every argument of every call the bot made to Slack, plus every uploaded file's content."""
    calls = [json.dumps(c.args, default=str, ensure_ascii=False) for c in sim.calls]
    files = [f["content"].decode("utf-8", "replace") if isinstance(f["content"], bytes) else str(f["content"])
             for f in sim.files]
    return "\n".join(calls + files)


def assert_slack_accepted_everything(sim: SlackSim) -> None:
    """Nothing the bot sent was refused (invalid_blocks, msg_too_long, ...)."""
    refused = [(c.method, c.error) for c in sim.calls if c.error]
    assert not refused, f"Slack refused: {refused}"


def files_named(sim: SlackSim, part: str) -> list[dict[str, Any]]:
    return [f for f in sim.files if part in f["filename"]]


async def request_and_approve(bot: BotHarness, text: str, approver: str = APPROVER,
                              requester: str = OPERATOR) -> tuple[dict[str, Any], str]:
    """Ask for a change, approve it; return the request message and its thread as one string."""
    before = len(bot.requests())
    await bot.slash(text, user=requester)
    assert len(bot.requests()) == before + 1, f"no approval request for {text!r}: {bot.private_texts()[-1:]}"
    request = bot.last_request()
    await bot.click(request["ts"], "cf_approve", approver)
    return request, "\n".join(bot.thread_texts(request["ts"]))
