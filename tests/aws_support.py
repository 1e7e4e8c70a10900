"""Fixtures and helpers for the AWS suites: one AWS sandbox (moto behind its front) per test module.

Bind the fixtures in a test module (`aws_sandbox, aws_bot = aws_support.aws_sandbox, aws_support.aws_bot`).
The bot reaches the sandbox only through `AWS_ENDPOINT_URL` and dummy credentials in the
environment, exactly as boto3 would anywhere else.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import pytest

from bot.config import parse_settings
from bot.services import build_services
from sandbox.aws import AwsSandbox
from tests.harness import APPROVER, BASE_CONFIG, BotHarness, merge, start_bot

AWS_CONFIG: dict[str, Any] = {"aws": {"waf_rule_group": "candlefish-rate-limit", "rollout_timeout_seconds": 10}}


def point_env(monkeypatch: pytest.MonkeyPatch, endpoint_url: str) -> None:
    """What the demo and a developer's shell do: an endpoint and throwaway credentials, nothing else."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)


def build_aws(config: dict[str, Any] | None = None) -> Any:
    settings = parse_settings(merge(merge(BASE_CONFIG, AWS_CONFIG), config or {}), "test config")
    return build_services(settings, only={"aws"}).get("aws")


RUNNING: list[AwsSandbox] = []  # the module's sandbox, so helpers can read what the bot asked of AWS
READ_ONLY = ("Describe", "List", "Get", "GET ")


@pytest.fixture(scope="module")
def aws_sandbox() -> Iterator[AwsSandbox]:
    sandbox = AwsSandbox.start()
    RUNNING.append(sandbox)
    yield sandbox
    RUNNING.remove(sandbox)
    sandbox.stop()


def writes_since(mark: int) -> list[tuple[str, str]]:
    """Calls that could change something, made to AWS since `mark` (an index into the front's log)."""
    log = RUNNING[-1].front.requests[mark:] if RUNNING else []
    return [(svc, action) for svc, action in log if not action.startswith(READ_ONLY)]


@pytest.fixture
async def aws_client(aws_sandbox: AwsSandbox, kube: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The bot's AWS client, pointed at the sandbox whose EC2 instances match this test's cluster."""
    await asyncio.to_thread(aws_sandbox.attach_nodes, await kube.list_nodes())
    aws_sandbox.front.clear_faults()
    point_env(monkeypatch, aws_sandbox.endpoint_url)
    return build_aws()


@pytest.fixture
async def aws_bot(sim: Any, kube: Any, aws_client: Any, tmp_path: Any) -> AsyncIterator[BotHarness]:
    harness = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}",
                              services={"aws": aws_client, "kube": kube}, config=AWS_CONFIG)
    yield harness
    await harness.close()


def boto(sandbox: AwsSandbox, service: str) -> Any:
    """A plain boto3 client for the test's own checks (not the bot's)."""
    return boto3.client(service, endpoint_url=sandbox.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def last_reply(bot: BotHarness) -> str:
    return json.dumps(bot.messages()[-1], ensure_ascii=False)


def private(bot: BotHarness) -> str:
    return " | ".join(bot.private_texts())


async def request_and_approve(bot: BotHarness, text: str, check_before: Any = None) -> str:
    """Request a change, check that nothing was written to AWS while it is pending (and run `check_before()`),
    approve it; return the thread's text."""
    before = len(bot.requests())
    mark = len(RUNNING[-1].front.requests) if RUNNING else 0
    await bot.slash(text)
    assert len(bot.requests()) == before + 1, f"no approval request for {text!r}: {private(bot)}"
    assert writes_since(mark) == [], f"{text!r} changed AWS before approval: {writes_since(mark)}"
    request = bot.last_request()
    if check_before is not None:
        await check_before()
    await bot.click(request["ts"], "cf_approve", APPROVER)
    return " | ".join(bot.thread_texts(request["ts"]))
