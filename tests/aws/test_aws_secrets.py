"""`secrets rotate`: a new version becomes AWSCURRENT, consumers restart, and the value goes nowhere else."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from integrations.errors import Forbidden
from tests import aws_support
from tests.aws_support import AWS_CONFIG, boto, private, request_and_approve
from tests.harness import kubectl, start_bot

aws_sandbox, aws_client, aws_bot = aws_support.aws_sandbox, aws_support.aws_client, aws_support.aws_bot

SECRET = "candlefish/collaboration/app-secrets"
CONSUMERS = ["graphql-api", "websocket-service", "document-service"]


def _secret(sandbox: Any) -> tuple[str, str, dict[str, list[str]]]:
    sm = boto(sandbox, "secretsmanager")
    current = sm.get_secret_value(SecretId=SECRET)
    return current["VersionId"], current["SecretString"], sm.describe_secret(SecretId=SECRET)["VersionIdsToStages"]


async def _restarted_at(sandbox: Any, deployment: str) -> str:
    return await kubectl(sandbox.kubeconfig, "-n", "collaboration", "get", "deployment", deployment, "-o",
                         r"jsonpath={.spec.template.metadata.annotations.kubectl\.kubernetes\.io/restartedAt}")


def _store_text(where: Path) -> str:
    """The SQLite audit store's raw bytes, its write-ahead log included."""
    return "".join(f.read_bytes().decode("utf-8", "replace") for f in where.glob("cf.db*"))


def _leaks(value: str) -> list[str]:
    """The whole value and each field of it: any of these found anywhere is a leak."""
    return [value, *[v for v in json.loads(value).values() if isinstance(v, str)]]


async def test_rotation_moves_awscurrent_restarts_consumers_and_never_shows_the_value(
        aws_bot, aws_sandbox, sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    old_id, old_value, _ = _secret(aws_sandbox)
    stamps = {d: await _restarted_at(sandbox, d) for d in CONSUMERS}

    async def nothing_yet() -> None:
        assert _secret(aws_sandbox)[0] == old_id
        assert {d: await _restarted_at(sandbox, d) for d in CONSUMERS} == stamps

    thread = await request_and_approve(aws_bot, "secrets rotate", nothing_yet)
    new_id, new_value, stages = _secret(aws_sandbox)
    assert new_id != old_id and new_value != old_value
    assert stages[new_id] == ["AWSCURRENT"] and stages[old_id] == ["AWSPREVIOUS"]
    assert set(json.loads(new_value)) == set(json.loads(old_value))  # same keys, new values
    for dep in CONSUMERS:
        assert await _restarted_at(sandbox, dep) not in ("", stamps[dep])
    assert f"AWSCURRENT {old_id} → AWSCURRENT {new_id} (AWSPREVIOUS {old_id})" in thread
    assert "Verified in" in thread and "no new pod crash-looping" in thread  # the verdict: every consumer rolled out
    for dep in CONSUMERS:
        assert f"{dep} successfully rolled out" in thread
    final = json.dumps(next(m for m in aws_bot.messages() if "Change request" in str(m.get("blocks")))["blocks"])
    assert "No undo: the previous value is kept as AWSPREVIOUS" in final and "cf_undo" not in final

    slack = json.dumps([c.args for c in aws_bot.sim.calls], default=str)
    audit = _store_text(tmp_path)
    logs = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    for secret in _leaks(new_value) + _leaks(old_value):
        assert secret not in slack, "a secret value reached Slack"
        assert secret not in audit, "a secret value reached the audit store"
        assert secret not in logs, "a secret value reached the logs"
    assert new_id in slack and new_id in audit


async def test_a_denied_write_changes_nothing_and_says_so(aws_bot, aws_sandbox, sandbox) -> None:
    old_id = _secret(aws_sandbox)[0]
    stamp = await _restarted_at(sandbox, "graphql-api")
    aws_sandbox.front.inject("secretsmanager", "AccessDeniedException", "not authorized", action="PutSecretValue")
    thread = await request_and_approve(aws_bot, "secrets rotate")
    assert "access denied — the bot's IAM role needs `secretsmanager:PutSecretValue`" in thread
    assert f"Nothing was changed: AWSCURRENT is still `{old_id}`" in thread
    assert _secret(aws_sandbox)[0] == old_id and await _restarted_at(sandbox, "graphql-api") == stamp


class RestartFails:
    """The sandbox's Kube client, except that restarting one deployment is forbidden."""

    def __init__(self, kube: Any, broken: str) -> None:
        self._kube, self._broken = kube, broken

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kube, name)

    async def restart_deployment(self, namespace: str, name: str, at: datetime | None = None,
                                 cause: str | None = None) -> dict[str, Any]:
        if name == self._broken:
            raise Forbidden("Kubernetes", f"restart deployment {namespace}/{name}: the bot is not allowed to do this.")
        return dict(await self._kube.restart_deployment(namespace, name, at, cause))


async def test_a_part_way_failure_says_what_state_things_are_in_and_how_to_roll_back(
        sim, kube, aws_client, aws_sandbox, sandbox, tmp_path) -> None:
    bot = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", config=AWS_CONFIG,
                          services={"aws": aws_client, "kube": RestartFails(kube, "websocket-service")})
    try:
        old_id = _secret(aws_sandbox)[0]
        thread = await request_and_approve(bot, "secrets rotate")
    finally:
        await bot.close()
    new_id = _secret(aws_sandbox)[0]
    assert new_id != old_id
    assert f"The secret was rotated (AWSCURRENT `{new_id}`, AWSPREVIOUS `{old_id}`)" in thread
    assert "restarting `websocket-service` failed" in thread and "Restarted: graphql-api." in thread
    assert "Not restarted (still using the old value): websocket-service, document-service" in thread
    assert (f"update-secret-version-stage --secret-id {SECRET} --version-stage AWSCURRENT "
            f"--move-to-version-id {old_id} --remove-from-version-id {new_id}") in thread
    assert "`/cf restart graphql-api`" in thread


async def test_a_consumer_at_zero_replicas_is_reported_as_nothing_to_restart(aws_bot, aws_sandbox, sandbox) -> None:
    idle = "document-service"
    wanted = await kubectl(sandbox.kubeconfig, "-n", "collaboration", "get", "deployment", idle, "-o",
                           "jsonpath={.spec.replicas}")
    await kubectl(sandbox.kubeconfig, "-n", "collaboration", "scale", "deployment", idle, "--replicas=0")
    try:
        stamp = await _restarted_at(sandbox, idle)
        thread = await request_and_approve(aws_bot, "secrets rotate")
        assert f"{idle} at 0 replicas: nothing to restart" in thread
        assert "graphql-api, websocket-service restarted" in thread
        assert "Verified in" in thread and f"{idle} at 0 replicas: nothing to roll" in thread
        assert "graphql-api successfully rolled out" in thread and "websocket-service successfully rolled out" in thread
        assert f"{idle} restarted" not in thread and await _restarted_at(sandbox, idle) == stamp
    finally:
        await kubectl(sandbox.kubeconfig, "-n", "collaboration", "scale", "deployment", idle, f"--replicas={wanted}")


async def test_a_secret_without_configured_consumers_is_refused(aws_bot) -> None:
    await aws_bot.slash("secrets rotate candlefish/other")
    assert "No consumers are configured for `candlefish/other`" in private(aws_bot)
    assert aws_bot.requests() == []
