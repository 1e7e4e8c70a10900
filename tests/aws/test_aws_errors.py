"""boto3 failures become one clear line each: the permission, the credentials, the network, the throttle."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, NoCredentialsError

from integrations.awserrors import ApiUnavailable, translate
from integrations.errors import Conflict, Forbidden, NotFound, Unavailable
from tests import aws_support
from tests.aws_support import AWS_CONFIG, build_aws, point_env, private
from tests.harness import VIEWER, start_bot

aws_sandbox, aws_client, aws_bot = aws_support.aws_sandbox, aws_support.aws_client, aws_support.aws_bot


def _one_line(text: str) -> str:
    assert "\n" not in text and "Traceback" not in text and "error id" not in text, text
    return text


async def test_access_denied_names_the_missing_permission(aws_bot, aws_sandbox) -> None:
    aws_sandbox.front.inject("s3", "AccessDenied", "Access Denied", status=403)
    aws_sandbox.front.inject("rds", "AccessDenied", "User is not authorized to perform rds:DescribeDBInstances",
                             action="DescribeDBInstances", status=403)
    await aws_bot.slash("s3 check", user=VIEWER)
    await aws_bot.slash("db status", user=VIEWER)
    s3_line, rds_line = (_one_line(t) for t in aws_bot.private_texts()[-2:])
    assert "AWS S3: list bucket candlefish-collaboration-documents: access denied — the bot's IAM role needs " \
           "`s3:ListBucket`" in s3_line
    assert "AWS RDS: describe RDS instance candlefish-collaboration-db: access denied" in rds_line
    assert "`rds:DescribeDBInstances`" in rds_line


async def test_throttling_and_a_missing_resource(aws_bot, aws_sandbox) -> None:
    aws_sandbox.front.inject("eks", "ThrottlingException", "Rate exceeded", status=400)
    await aws_bot.slash("cluster", user=VIEWER)
    assert "AWS is throttling the bot's calls" in _one_line(aws_bot.private_texts()[-1])
    aws_sandbox.front.clear_faults()
    await aws_bot.slash("db failover no-such-db")
    assert "AWS RDS: describe RDS instance no-such-db: not found" in _one_line(aws_bot.private_texts()[-1])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_endpoint_is_a_network_failure(sim, kube, tmp_path, monkeypatch) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    point_env(monkeypatch, url)
    client = build_aws({"aws": {"timeout_seconds": 2}})
    bot = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", config=AWS_CONFIG,
                          services={"aws": client, "kube": kube})
    try:
        await bot.slash("lb", user=VIEWER)
    finally:
        await bot.close()
    line = _one_line(private(bot))
    assert f"AWS ELB: describe load balancer candlefish-collaboration-alb: network failure — could not connect " \
           f"to {url}." in line


async def test_missing_credentials_are_named(sim, kube, aws_sandbox, tmp_path, monkeypatch) -> None:
    point_env(monkeypatch, aws_sandbox.endpoint_url)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    bot = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", config=AWS_CONFIG,
                          services={"aws": build_aws(), "kube": kube})
    try:
        await bot.slash("cluster", user=VIEWER)
    finally:
        await bot.close()
    assert "no usable AWS credentials" in _one_line(private(bot))


def _client_error(code: str, status: int, message: str = "m") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "RebootDBInstance")


@pytest.mark.parametrize(("exc", "kind", "words"), [
    (_client_error("AccessDenied", 403), Forbidden, "`rds:RebootDBInstance`"),
    (_client_error("ExpiredToken", 400), Forbidden, "rejected the bot's credentials"),
    (_client_error("DBInstanceNotFound", 404), NotFound, "not found"),
    (_client_error("InvalidDBInstanceState", 400, "not available"), Conflict, "AWS refused"),
    (_client_error("Throttling", 400), Unavailable, "throttling"),
    (_client_error("InternalFailure", 500), Unavailable, "answered 500"),
    (_client_error("SubscriptionRequiredException", 400), ApiUnavailable, "support plan"),
    (NoCredentialsError(), Forbidden, "no usable AWS credentials"),
    (ConnectTimeoutError(endpoint_url="https://rds.us-east-1.amazonaws.com"), Unavailable, "within 5s"),
])
def test_every_failure_kind_maps_to_one_typed_line(exc: Exception, kind: type, words: str) -> None:
    err: Any = translate(exc, "rds", "reboot_db_instance", "reboot RDS instance db", "https://rds", 5)
    assert type(err) is kind and words in err.message and "\n" not in err.message
    assert err.system == "AWS RDS"
