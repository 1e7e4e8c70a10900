"""AWS read commands through the Slack simulator, against moto (server mode) behind the sandbox front."""

from __future__ import annotations

from typing import Any

from commands.base import Context
from commands.checks import STATUS_CHECKS, run_checks
from tests import aws_support
from tests.aws_support import last_reply, private
from tests.harness import VIEWER

# the module's fixtures: one AWS sandbox for the module, a fresh bot per test
aws_sandbox, aws_client, aws_bot = aws_support.aws_sandbox, aws_support.aws_client, aws_support.aws_bot


async def test_cluster_shows_status_version_and_node_group_scaling(aws_bot) -> None:
    await aws_bot.slash("cluster", user=VIEWER)
    text = last_reply(aws_bot)
    assert "EKS cluster candlefish-collaboration: ACTIVE, Kubernetes 1.32" in text
    assert "general" in text and "m5.xlarge" in text and "NODE GROUP" in text
    assert "MIN" in text and "DESIRED" in text and "MAX" in text


async def test_db_status_shows_multi_az_storage_restorable_time_and_maintenance(aws_bot) -> None:
    await aws_bot.slash("db status", user=VIEWER)
    text = last_reply(aws_bot)
    assert "RDS candlefish-collaboration-db: available" in text
    assert "db.r6g.xlarge" in text and "postgres 15.8" in text
    assert "yes, primary in us-east-1" in text and "standby in us-east-1" in text
    assert "500 GiB gp3" in text and "Latest restorable" in text
    assert "system-update" in text and "candlefish-collaboration-db-replica-1" in text
    assert "candlefish-collaboration-cluster" in text and "writer" in text


async def test_db_events_and_snapshots(aws_bot) -> None:
    await aws_bot.slash("db events --since 2h", user=VIEWER)
    text = last_reply(aws_bot)
    assert "in the last 2h" in text and "candlefish-collaboration-db" in text
    await aws_bot.slash("db snapshots", user=VIEWER)
    text = last_reply(aws_bot)
    assert "manual-backup-20261120-030000" in text and "available" in text
    await aws_bot.slash("db events --since forever", user=VIEWER)
    assert "not a duration" in private(aws_bot)


async def test_lb_shows_targets_backed_by_the_clusters_nodes(aws_bot, kube) -> None:
    await aws_bot.slash("lb", user=VIEWER)
    text = last_reply(aws_bot)
    assert "ALB candlefish-collaboration-alb: active" in text
    assert "candlefish-websocket-tg" in text and "healthy" in text
    for node in await kube.list_nodes():
        instance = node["spec"]["providerID"].rsplit("/", 1)[1]
        assert f"{instance}:4001" in text


async def test_s3_check_lists_the_bucket(aws_bot) -> None:
    await aws_bot.slash("s3 check", user=VIEWER)
    text = last_reply(aws_bot)
    assert "S3 bucket candlefish-collaboration-documents is reachable: 4 objects listed" in text
    assert "documents/2026/11/roadmap.md" in text


async def test_aws_health_lists_events_or_says_it_is_unavailable(aws_bot, aws_sandbox) -> None:
    await aws_bot.slash("aws health", user=VIEWER)
    text = last_reply(aws_bot)
    assert "AWS_RDS_MAINTENANCE_SCHEDULED" in text and "AWS_EC2_OPERATIONAL_ISSUE" in text
    assert "upcoming" in text and "closed" in text
    aws_sandbox.extras.health_subscription = False
    try:
        await aws_bot.slash("aws health", user=VIEWER)
    finally:
        aws_sandbox.extras.health_subscription = True
    text = last_reply(aws_bot)
    assert "AWS Health is not available for this account" in text and "support plan" in text


async def test_status_lines_for_eks_rds_and_alb(aws_client: Any) -> None:
    from bot.config import parse_settings
    from tests.aws_support import AWS_CONFIG
    from tests.harness import BASE_CONFIG, merge

    settings = parse_settings(merge(BASE_CONFIG, AWS_CONFIG))
    ctx = Context(user=VIEWER, channel="C0", namespace="collaboration", settings=settings,
                  services={"aws": aws_client})
    lines = {c.name: c for c in await run_checks(ctx, [s for s in STATUS_CHECKS if s.name in ("EKS", "RDS", "ALB")])}
    assert lines["EKS"].status == "ok" and "ACTIVE" in lines["EKS"].detail and "min 3" in lines["EKS"].detail
    assert lines["RDS"].status == "ok" and "available" in lines["RDS"].detail
    assert lines["ALB"].status == "ok" and "3/3 targets healthy" in lines["ALB"].detail


async def test_aws_disabled_means_not_configured(sim, kube, tmp_path) -> None:
    from tests.aws_support import build_aws
    from tests.harness import start_bot

    assert build_aws({"aws": {"enabled": False}}) is None
    bot = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services={"kube": kube})
    try:
        await bot.slash("cluster", user=VIEWER)
        assert "AWS is not configured for this bot." in private(bot)
    finally:
        await bot.close()
