"""AWS changes end in a verdict read back from AWS (issue 13 §1-§2): RDS reboot, failover, snapshot, restore
and replica add (`available`, and for a failover the primary or writer moved), the EKS node group (ACTIVE
with the new scaling config) and the ElastiCache group (available with the new replica count). Node group
and Redis scaling are undone through a second approval; the RDS changes say why they cannot be.

AWS is the judge, read with a plain boto3 client. moto finishes everything at once, so each *Not verified*
case makes AWS accept a call and then not get there, in moto's own in-process state: a reboot that stays
`rebooting`, a failover that does not move the primary, a snapshot left `creating`, a node group that goes
DEGRADED, a replication group left `modifying`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import sandbox.aws.extras as aws_extras
from commands.support import verify_aws
from sandbox.aws import AwsSandbox
from sandbox.aws.extras import backend
from sandbox.aws.seed import CLUSTER, DB, DB_CLUSTER, NODEGROUP, REDIS, REGION
from tests import aws_support
from tests.aws_support import AWS_CONFIG, boto, request_and_approve
from tests.harness import APPROVER2, OPERATOR, BotHarness, merge, start_bot

aws_sandbox, aws_client = aws_support.aws_sandbox, aws_support.aws_client


@pytest.fixture
async def bot(sim: Any, kube: Any, aws_client: Any, tmp_path: Any) -> AsyncIterator[BotHarness]:
    """A bot that waits 3 s for a verdict, where the command does not say otherwise."""
    harness = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}",
                              services={"aws": aws_client, "kube": kube},
                              config=merge(AWS_CONFIG, {"approvals": {"verify_timeout_seconds": 3}}))
    yield harness
    await harness.close()


@pytest.fixture
def short_rds_waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """RDS and ElastiCache changes watch for up to half an hour; a *Not verified* test cannot wait that long."""
    for kind in verify_aws.WAIT_SECONDS:
        monkeypatch.setitem(verify_aws.WAIT_SECONDS, kind, 3)
    yield


def message(bot: BotHarness, ts: str) -> dict[str, Any]:
    return next(m for m in bot.messages() if m["ts"] == ts)


def blocks_text(msg: dict[str, Any]) -> str:
    return json.dumps(msg["blocks"], ensure_ascii=False)


def buttons(msg: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"]]


async def approve_undo(bot: BotHarness, request: dict[str, Any]) -> str:
    """Click Undo on a request that ran (the requester), approve the new request (another person)."""
    await bot.click(request["ts"], "cf_undo", OPERATOR)
    undo = bot.last_request()
    assert undo["ts"] != request["ts"] and "Reverts request" in blocks_text(undo)
    await bot.click(undo["ts"], "cf_approve", APPROVER2)
    return " ".join(bot.thread_texts(undo["ts"]))


def final_of(bot: BotHarness) -> str:
    return blocks_text(message(bot, bot.last_request()["ts"]))


# --- what AWS says (plain boto3) ----------------------------------------------------------------


def scaling(sandbox: AwsSandbox) -> dict[str, int]:
    ng = boto(sandbox, "eks").describe_nodegroup(clusterName=CLUSTER, nodegroupName=NODEGROUP)["nodegroup"]
    return dict(ng["scalingConfig"])


def redis_replicas(sandbox: AwsSandbox) -> int:
    group = boto(sandbox, "elasticache").describe_replication_groups(ReplicationGroupId=REDIS)["ReplicationGroups"][0]
    return len(group["MemberClusters"]) - 1


def instance(sandbox: AwsSandbox, name: str) -> dict[str, Any]:
    return dict(boto(sandbox, "rds").describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0])


def writer(sandbox: AwsSandbox) -> str:
    cluster = boto(sandbox, "rds").describe_db_clusters(DBClusterIdentifier=DB_CLUSTER)["DBClusters"][0]
    return str(next(m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"] if m["IsClusterWriter"]))


# --- EKS node group -----------------------------------------------------------------------------


async def test_nodegroup_scale_is_verified_and_undo_restores_the_config(bot: BotHarness, aws_sandbox) -> None:
    before = scaling(aws_sandbox)
    thread = await request_and_approve(bot, "nodegroup scale 5 20 10")
    assert scaling(aws_sandbox) == {"minSize": 5, "maxSize": 20, "desiredSize": 10}
    assert "Verified in" in thread and f"node group {NODEGROUP} ACTIVE, min 5 / desired 10 / max 20" in thread
    back = (f"scale node group {NODEGROUP} back to min {before['minSize']} / desired {before['desiredSize']} / "
            f"max {before['maxSize']}")
    request = bot.last_request()
    assert "cf_undo" in buttons(message(bot, request["ts"])) and back in final_of(bot)

    undo_thread = await approve_undo(bot, request)
    assert scaling(aws_sandbox) == before  # AWS: the config before, all three numbers
    assert "Verified in" in undo_thread


async def test_a_node_group_that_goes_degraded_is_not_verified(bot: BotHarness, aws_sandbox,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    eks = backend("eks", REGION)
    group = eks.clusters[CLUSTER].nodegroups[NODEGROUP]
    accept = eks.update_nodegroup_config
    before = scaling(aws_sandbox)

    def degrade(*args: Any, **kwargs: Any) -> Any:  # the update is accepted; the launches then fail
        answer = accept(*args, **kwargs)
        group.status = "DEGRADED"
        group.health = {"issues": [{"code": "AsgInstanceLaunchFailures", "resourceIds": ["eks-general-asg"],
                                    "message": "Could not launch On-Demand Instances. InsufficientInstanceCapacity"}]}
        return answer

    monkeypatch.setattr(eks, "update_nodegroup_config", degrade)
    try:
        thread = await request_and_approve(bot, "nodegroup scale 3 20 6")
        assert "Not verified after" in thread and f"node group {NODEGROUP} DEGRADED" in thread
        assert "AsgInstanceLaunchFailures" in thread and "InsufficientInstanceCapacity" in thread
        assert "/cf cluster" in thread and "/cf undo" in thread
        assert "Not verified" in final_of(bot)
    finally:
        monkeypatch.undo()
        group.status, group.health = "ACTIVE", {"issues": []}
        boto(aws_sandbox, "eks").update_nodegroup_config(clusterName=CLUSTER, nodegroupName=NODEGROUP,
                                                         scalingConfig=before)


async def test_a_node_group_resized_by_hand_before_approval_is_stale(bot: BotHarness, aws_sandbox) -> None:
    before = scaling(aws_sandbox)
    await bot.slash("nodegroup scale 4 20 8", user=OPERATOR)
    request = bot.last_request()
    by_hand = {**before, "desiredSize": before["desiredSize"] + 1}
    boto(aws_sandbox, "eks").update_nodegroup_config(clusterName=CLUSTER, nodegroupName=NODEGROUP,
                                                     scalingConfig=by_hand)  # someone resizes it meanwhile
    await bot.click(request["ts"], "cf_approve", APPROVER2)
    assert scaling(aws_sandbox) == by_hand  # AWS: the approved change did not run
    thread = " ".join(bot.thread_texts(request["ts"]))
    assert "Stale, not run" in thread and f"desired {by_hand['desiredSize']}" in thread
    boto(aws_sandbox, "eks").update_nodegroup_config(clusterName=CLUSTER, nodegroupName=NODEGROUP,
                                                     scalingConfig=before)


# --- ElastiCache --------------------------------------------------------------------------------


async def test_redis_scale_is_verified_and_undo_restores_the_replica_count(bot: BotHarness, aws_sandbox) -> None:
    before = redis_replicas(aws_sandbox)
    wanted = before + 2
    thread = await request_and_approve(bot, f"redis scale {wanted}")
    assert redis_replicas(aws_sandbox) == wanted
    assert "Verified in" in thread and f"{REDIS} available, {wanted} replicas" in thread
    request = bot.last_request()
    assert "cf_undo" in buttons(message(bot, request["ts"])) and f"scale {REDIS} back to {before} replicas" in \
        final_of(bot)

    undo_thread = await approve_undo(bot, request)
    assert redis_replicas(aws_sandbox) == before  # AWS: the replica count before
    assert "Verified in" in undo_thread


async def test_a_replication_group_left_modifying_is_not_verified(bot: BotHarness, aws_sandbox, short_rds_waits,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    group = backend("elasticache", REGION).replication_groups[REDIS]
    change = aws_extras.change_replica_count
    before = redis_replicas(aws_sandbox)

    def stuck(req: Any) -> Any:
        answer = change(req)
        group.status = "modifying"
        return answer

    monkeypatch.setattr(aws_extras, "change_replica_count", stuck)
    try:
        thread = await request_and_approve(bot, f"redis scale {before + 1}")
        assert "Not verified after" in thread and f"{REDIS} modifying, {before + 1} replicas" in thread
        assert f"describe-replication-groups --replication-group-id {REDIS}" in thread
    finally:
        monkeypatch.undo()
        group.status = "available"
        await request_and_approve(bot, f"redis scale {before}")
    assert redis_replicas(aws_sandbox) == before


# --- RDS ----------------------------------------------------------------------------------------


async def test_reboot_is_verified_available_and_has_no_undo(bot: BotHarness, aws_sandbox) -> None:
    thread = await request_and_approve(bot, "db reboot")
    assert instance(aws_sandbox, DB)["DBInstanceStatus"] == "available"
    assert "Verified in" in thread and f"{DB} available" in thread
    final = final_of(bot)
    assert "No undo: a reboot cannot be taken back" in final and "cf_undo" not in final


async def test_a_reboot_that_does_not_finish_is_not_verified(bot: BotHarness, aws_sandbox, short_rds_waits,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    rds = backend("rds", REGION)
    reboot = rds.reboot_db_instance

    def stays_rebooting(name: str) -> Any:
        db = reboot(name)
        db.status = "rebooting"
        return db

    monkeypatch.setattr(rds, "reboot_db_instance", stays_rebooting)
    try:
        thread = await request_and_approve(bot, "db reboot")
        assert instance(aws_sandbox, DB)["DBInstanceStatus"] == "rebooting"
        assert "Not verified after" in thread and f"{DB} rebooting" in thread and "/cf db events" in thread
    finally:
        monkeypatch.undo()
        rds.databases[DB].status = "available"


async def test_failover_is_verified_when_the_primary_moves(bot: BotHarness, aws_sandbox) -> None:
    was = instance(aws_sandbox, DB)["AvailabilityZone"]
    thread = await request_and_approve(bot, "db failover")
    now = instance(aws_sandbox, DB)["AvailabilityZone"]
    assert now != was
    assert "Verified in" in thread and f"{DB} available, primary in {now} (was {was})" in thread
    assert "No undo: failing back is another failover" in final_of(bot)


async def test_a_failover_that_does_not_move_the_primary_is_not_verified(
        bot: BotHarness, aws_sandbox, short_rds_waits, monkeypatch: pytest.MonkeyPatch) -> None:
    was = instance(aws_sandbox, DB)["AvailabilityZone"]
    monkeypatch.setattr(aws_extras, "force_failover", lambda req: None)  # RDS reboots; the standby stays standby
    thread = await request_and_approve(bot, "db failover")
    assert instance(aws_sandbox, DB)["AvailabilityZone"] == was
    assert "Not verified after" in thread and f"primary in {was} (still where it was" in thread


async def test_cluster_failover_is_verified_when_the_writer_moves(bot: BotHarness, aws_sandbox) -> None:
    was = writer(aws_sandbox)
    thread = await request_and_approve(bot, f"db failover {DB_CLUSTER}")
    now = writer(aws_sandbox)
    assert now != was
    assert "Verified in" in thread and f"cluster {DB_CLUSTER} available, writer {now} (available; was {was})" in thread


async def test_a_cluster_failover_that_keeps_its_writer_is_not_verified(
        bot: BotHarness, aws_sandbox, short_rds_waits, monkeypatch: pytest.MonkeyPatch) -> None:
    rds = backend("rds", REGION)
    was = writer(aws_sandbox)
    monkeypatch.setattr(rds, "failover_db_cluster",  # accepted, and no reader promoted
                        lambda db_cluster_identifier, **_: rds.clusters[db_cluster_identifier])
    thread = await request_and_approve(bot, f"db failover {DB_CLUSTER}")
    assert writer(aws_sandbox) == was
    assert "Not verified after" in thread and f"writer {was} (the writer has not moved)" in thread


async def test_snapshot_is_verified_available(bot: BotHarness, aws_sandbox) -> None:
    thread = await request_and_approve(bot, "db snapshot --name cf-verdict-snap")
    snap = boto(aws_sandbox, "rds").describe_db_snapshots(DBSnapshotIdentifier="cf-verdict-snap")["DBSnapshots"][0]
    assert snap["Status"] == "available"
    assert "Verified in" in thread and "snapshot cf-verdict-snap available" in thread
    assert "No undo: deleting a backup is a decision of its own" in final_of(bot)


async def test_a_snapshot_left_creating_is_not_verified(bot: BotHarness, aws_sandbox, short_rds_waits,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    rds = backend("rds", REGION)
    create = rds.create_db_snapshot

    def slow(*args: Any, **kwargs: Any) -> Any:
        snap = create(*args, **kwargs)
        snap.status = "creating"
        return snap

    monkeypatch.setattr(rds, "create_db_snapshot", slow)
    thread = await request_and_approve(bot, "db snapshot --name cf-verdict-slow")
    assert "Not verified after" in thread and "snapshot cf-verdict-slow creating" in thread
    assert "/cf db snapshots" in thread


async def test_restore_and_replica_add_are_verified_available(bot: BotHarness, aws_sandbox) -> None:
    thread = await request_and_approve(bot, 'db restore --to "10 minutes ago" --target cf-verdict-pitr')
    assert instance(aws_sandbox, "cf-verdict-pitr")["DBInstanceStatus"] == "available"
    assert "Verified in" in thread and "cf-verdict-pitr available" in thread
    final = final_of(bot)
    assert f"No undo: the restore made a new instance and left {DB} untouched" in final

    thread = await request_and_approve(bot, "db replica add --name cf-verdict-replica")
    made = instance(aws_sandbox, "cf-verdict-replica")
    assert made["DBInstanceStatus"] == "available" and made["ReadReplicaSourceDBInstanceIdentifier"] == DB
    assert "Verified in" in thread and f"cf-verdict-replica available, replicating {DB}" in thread
    assert "No undo: cf has no command to delete an RDS instance" in final_of(bot)
