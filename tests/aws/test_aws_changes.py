"""AWS change commands: each one waits for an approver, is checked against AWS first, and does what it says."""

from __future__ import annotations

from typing import Any

from tests import aws_support
from tests.aws_support import boto, private, request_and_approve
from tests.harness import APPROVER, kubectl

aws_sandbox, aws_client, aws_bot = aws_support.aws_sandbox, aws_support.aws_client, aws_support.aws_bot

DB, CLUSTER = "candlefish-collaboration-db", "candlefish-collaboration-cluster"


def _scaling(sandbox: Any) -> dict[str, int]:
    ng = boto(sandbox, "eks").describe_nodegroup(clusterName="candlefish-collaboration", nodegroupName="general")
    return dict(ng["nodegroup"]["scalingConfig"])


async def test_nodegroup_scale_waits_for_approval_then_applies(aws_bot, aws_sandbox) -> None:
    before = _scaling(aws_sandbox)

    async def unchanged() -> None:
        assert _scaling(aws_sandbox) == before

    thread = await request_and_approve(aws_bot, "nodegroup scale 5 20 10", unchanged)
    assert _scaling(aws_sandbox) == {"minSize": 5, "maxSize": 20, "desiredSize": 10}
    assert "Done:" in thread and "min 5 / desired 10 / max 20" in thread


async def test_nodegroup_scale_refuses_sizes_out_of_order(aws_bot, aws_sandbox) -> None:
    before = _scaling(aws_sandbox)
    await aws_bot.slash("nodegroup scale 5 20 30")
    assert "0 <= MIN <= DESIRED <= MAX" in private(aws_bot)
    assert aws_bot.requests() == [] and _scaling(aws_sandbox) == before


def _instance(sandbox: Any, name: str) -> dict[str, Any]:
    return dict(boto(sandbox, "rds").describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0])


def _writer(sandbox: Any) -> str:
    cluster = boto(sandbox, "rds").describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"][0]
    return next(m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"] if m["IsClusterWriter"])


async def test_failover_moves_the_primary_and_the_cluster_writer(aws_bot, aws_sandbox) -> None:
    primary = _instance(aws_sandbox, DB)["AvailabilityZone"]
    thread = await request_and_approve(aws_bot, "db failover")
    moved = _instance(aws_sandbox, DB)
    assert moved["AvailabilityZone"] != primary and moved["SecondaryAvailabilityZone"] == primary
    assert f"primary in {moved['AvailabilityZone']}" in thread

    writer = _writer(aws_sandbox)

    async def same_writer() -> None:
        assert _writer(aws_sandbox) == writer

    thread = await request_and_approve(aws_bot, f"db failover {CLUSTER}", same_writer)
    assert _writer(aws_sandbox) != writer
    assert f"writer {writer} → writer {_writer(aws_sandbox)}" in thread


async def test_failover_of_a_single_az_instance_is_refused_with_the_reason(aws_bot) -> None:
    await aws_bot.slash(f"db failover {DB}-replica-1")
    assert "single-AZ instance: it has no standby to fail over to" in private(aws_bot)
    assert aws_bot.requests() == []


async def test_a_refused_replica_failover_suggests_nothing_that_acts_on_the_primary(aws_bot) -> None:
    await aws_bot.slash(f"db failover {DB}-replica-1")
    refusal = private(aws_bot)
    assert "`/cf db reboot`" not in refusal  # it reboots the primary, not the replica named
    assert f"read replica of `{DB}`" in refusal and f"`/cf db failover {DB}`" in refusal
    assert f"promote-read-replica --db-instance-identifier {DB}-replica-1" in refusal
    assert aws_bot.requests() == []


async def test_restore_to_a_point_in_time_inside_and_outside_the_window(aws_bot, aws_sandbox) -> None:
    await aws_bot.slash("db restore --to 2020-01-01T00:00:00Z")
    await aws_bot.slash('db restore --to "200 days ago"')
    refusals = private(aws_bot)
    assert refusals.count("outside `candlefish-collaboration-db`'s restorable window") == 2
    assert aws_bot.requests() == []

    thread = await request_and_approve(aws_bot, 'db restore --to "15 minutes ago" --target cf-pitr-test')
    assert "Done:" in thread and "cf-pitr-test" in thread
    assert _instance(aws_sandbox, "cf-pitr-test")["DBInstanceIdentifier"] == "cf-pitr-test"
    await aws_bot.slash('db restore --to "15 minutes ago" --target cf-pitr-test')
    assert "already exists" in private(aws_bot)


async def test_snapshot_then_restore_from_it(aws_bot, aws_sandbox) -> None:
    await request_and_approve(aws_bot, "db snapshot --name cf-test-snap")
    snaps = boto(aws_sandbox, "rds").describe_db_snapshots(DBSnapshotIdentifier="cf-test-snap")["DBSnapshots"]
    assert snaps and snaps[0]["DBInstanceIdentifier"] == DB
    await aws_bot.slash("db restore --snapshot no-such-snap")
    assert "Snapshot `no-such-snap` was not found" in private(aws_bot)
    await aws_bot.slash("db restore --snapshot cf-test-snap --to '1h ago'")
    assert "not both" in private(aws_bot)
    thread = await request_and_approve(aws_bot, "db restore --snapshot cf-test-snap --target cf-snap-restore")
    assert "Done:" in thread and _instance(aws_sandbox, "cf-snap-restore")


async def test_replica_add_reboot_and_redis_scale(aws_bot, aws_sandbox) -> None:
    thread = await request_and_approve(aws_bot, "db replica add")
    assert f"{DB}-replica-3" in thread and _instance(aws_sandbox, f"{DB}-replica-3")
    thread = await request_and_approve(aws_bot, "db reboot")
    assert "Done:" in thread

    cache = boto(aws_sandbox, "elasticache")

    def members() -> int:
        group = cache.describe_replication_groups(ReplicationGroupId="candlefish-collaboration-redis")
        return len(group["ReplicationGroups"][0]["MemberClusters"])

    assert members() == 3
    await aws_bot.slash("redis scale 9")
    assert "between 1 and 5" in private(aws_bot)
    thread = await request_and_approve(aws_bot, "redis scale 4")
    assert members() == 5 and "2 replicas (3 nodes with the primary) → 4 replicas" in thread
    await request_and_approve(aws_bot, "redis scale 1")
    assert members() == 2


async def test_waf_rate_limit_updates_the_rule_with_its_lock_token(aws_bot, aws_sandbox) -> None:
    waf = boto(aws_sandbox, "wafv2")

    def limit() -> int:
        groups = waf.list_rule_groups(Scope="REGIONAL")["RuleGroups"]
        group = next(g for g in groups if g["Name"] == "candlefish-rate-limit")
        rules = waf.get_rule_group(Name=group["Name"], Scope="REGIONAL", Id=group["Id"])["RuleGroup"]["Rules"]
        return int(rules[0]["Statement"]["RateBasedStatement"]["Limit"])

    start = limit()

    async def unchanged() -> None:
        assert limit() == start

    thread = await request_and_approve(aws_bot, "waf rate-limit 500", unchanged)
    assert limit() == 500 and "→ 500 requests / 5 min per IP" in thread
    await aws_bot.slash("waf rate-limit 5")
    assert "between 10 and" in private(aws_bot)


async def test_node_terminate_refuses_until_drained_then_terminates(aws_bot, aws_sandbox, kube, sandbox) -> None:
    node = sorted(n["metadata"]["name"] for n in await kube.list_nodes())[0]
    instance = (await kube.get_node(node))["spec"]["providerID"].rsplit("/", 1)[1]
    await aws_bot.slash(f"node terminate {node}")
    assert "evictable pod" in private(aws_bot) and f"/cf node drain {node}" in private(aws_bot)
    assert aws_bot.requests() == []

    await kubectl(sandbox.kubeconfig, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--force",
                  "--timeout=60s")
    thread = await request_and_approve(aws_bot, f"node terminate {node}")
    state = boto(aws_sandbox, "ec2").describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] in ("shutting-down", "terminated")
    assert f"{instance} running → {instance} shutting-down" in thread


async def test_a_denied_request_changes_nothing(aws_bot, aws_sandbox) -> None:
    before = _instance(aws_sandbox, DB)["AvailabilityZone"]
    await aws_bot.slash("db failover")
    await aws_bot.click(aws_bot.last_request()["ts"], "cf_deny", APPROVER)
    assert _instance(aws_sandbox, DB)["AvailabilityZone"] == before
    assert "Nothing was changed" in " | ".join(aws_bot.thread_texts(aws_bot.last_request()["ts"]))


async def test_the_gate_check_itself_sees_writes_once_approved(aws_bot) -> None:
    mark = len(aws_support.RUNNING[-1].front.requests)
    await request_and_approve(aws_bot, "nodegroup scale 3 20 4")
    assert ("eks", "POST /clusters/candlefish-collaboration/node-groups/general/update-config") in \
        aws_support.writes_since(mark)
