"""Backup and recovery through Slack: `backup config` covers every configuration kind, `restore config`
shows a server-side diff and restores after approval (never a Secret), `dr check` gives a verdict per
prerequisite. kubectl (against the sandbox) and boto3 (against moto) are the judges."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import yaml

from bot.artefacts import Artefacts
from bot.store import Store
from sandbox.aws.extras import backend
from sandbox.aws.seed import REGION
from tests import aws_support
from tests.aws_support import boto
from tests.harness import APPROVER, OPERATOR, VIEWER, kubectl
from tests.incident_support import start
from tests.k8s_support import NS, assert_slack_accepted_everything, files_named, last_reply, reply_text

# AWS fixtures for the `dr check` tests: one moto sandbox for the module, a bot (with the sandbox cluster) per test
aws_sandbox, aws_client, aws_bot = aws_support.aws_sandbox, aws_support.aws_client, aws_support.aws_bot

GRAPHQL_IMAGE = "ghcr.io/candlefish/graphql-api:2.14.3"  # the seeded world's current release
BROKEN_IMAGE = "ghcr.io/candlefish/graphql-api:9.9.9-broken"

EXTRA = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: presence-store, labels: {app: presence-store}}
spec:
  serviceName: presence-store
  replicas: 1
  selector: {matchLabels: {app: presence-store}}
  template:
    metadata: {labels: {app: presence-store}}
    spec: {containers: [{name: store, image: "redis:7.2"}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: log-shipper}
spec:
  selector: {matchLabels: {app: log-shipper}}
  template:
    metadata: {labels: {app: log-shipper}}
    spec: {containers: [{name: shipper, image: "fluent/fluent-bit:3.0"}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly-export}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec: {restartPolicy: OnFailure, containers: [{name: export, image: "ghcr.io/candlefish/export:1.0"}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: schema-migrate}
spec:
  selector: {matchLabels: {batch.kubernetes.io/controller-uid: 0b5e3f2a-1111-4c2d-9e8f-000000000001}}
  template:
    metadata:
      labels: {batch.kubernetes.io/controller-uid: 0b5e3f2a-1111-4c2d-9e8f-000000000001,
               batch.kubernetes.io/job-name: schema-migrate, app: schema-migrate}
    spec: {restartPolicy: Never, containers: [{name: migrate, image: "ghcr.io/candlefish/migrate:4.1"}]}
"""


async def apply_manifests(kubeconfig: str, tmp_path: Any, text: str, name: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    await kubectl(kubeconfig, "-n", NS, "apply", "-f", str(path))


async def latest_backup(bot: Any, sim: Any) -> dict[str, Any]:
    await bot.slash("backup config", user=VIEWER)
    return dict(yaml.safe_load(files_named(sim, f"{NS}-backup-")[-1]["content"]))


async def image(kubeconfig: str, deployment: str) -> str:
    return await kubectl(kubeconfig, "-n", NS, "get", "deployment", deployment, "-o",
                         "jsonpath={.spec.template.spec.containers[0].image}")


async def versions(kubeconfig: str, kind: str) -> dict[str, str]:
    """name -> resourceVersion of every object of `kind`, as kubectl lists them."""
    listed = json.loads(await kubectl(kubeconfig, "-n", NS, "get", kind, "-o", "json"))
    return {i["metadata"]["name"]: i["metadata"]["resourceVersion"] for i in listed["items"]}


# --- backup config -------------------------------------------------------------------------------------


async def test_backup_config_covers_workloads_jobs_and_accounts_and_says_which(bot, sandbox, sim, tmp_path) -> None:
    await apply_manifests(sandbox.kubeconfig, tmp_path, EXTRA, "extra.yaml")
    uid = await kubectl(sandbox.kubeconfig, "-n", NS, "get", "cronjob", "nightly-export", "-o",
                        "jsonpath={.metadata.uid}")
    owned = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": "nightly-export-29000001", "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                                                                "name": "nightly-export", "uid": uid,
                                                                "controller": True}]},
             "spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [
                 {"name": "export", "image": "ghcr.io/candlefish/export:1.0"}]}}}}
    await apply_manifests(sandbox.kubeconfig, tmp_path, yaml.safe_dump(owned), "owned.yaml")

    backup = await latest_backup(bot, sim)
    text = last_reply(bot)
    by_kind: dict[str, set[str]] = {}
    for item in backup["items"]:
        by_kind.setdefault(item["kind"], set()).add(item["metadata"]["name"])
    assert set(by_kind) == {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Service", "ConfigMap",
                            "ServiceAccount", "PersistentVolumeClaim", "Ingress", "HorizontalPodAutoscaler",
                            "PodDisruptionBudget", "NetworkPolicy", "Secret"}
    assert by_kind["Job"] == {"schema-migrate"}  # the CronJob's own Job is left to the CronJob
    assert by_kind["ServiceAccount"] == {"default"} and by_kind["StatefulSet"] == {"presence-store"}
    job = next(i for i in backup["items"] if i["kind"] == "Job")
    assert "selector" not in job["spec"]  # the server generates it: a Job created with it is refused
    assert job["spec"]["template"]["metadata"]["labels"] == {"app": "schema-migrate"}
    for kind in ("StatefulSet", "DaemonSet", "Job", "CronJob", "ServiceAccount", "PodDisruptionBudget"):
        assert f"\n{kind} " in text, f"{kind} missing from the covered kinds:\n{text}"
    assert "1 object made by an owner" in text and "kept for `/cf restore config`" in text
    entry = next(e for e in await bot.runtime.audit.tail(20) if e.event == "backup")
    content = files_named(sim, f"{NS}-backup-")[-1]["content"]
    assert entry.detail["sha256"] == hashlib.sha256(content).hexdigest() and entry.detail["file"].endswith(".yaml")
    assert_slack_accepted_everything(sim)


async def test_kept_backups_are_the_newest_few_per_namespace_on_both_engines(store_url: str) -> None:
    store = await Store.open(store_url)
    try:
        clock = iter(float(t) for t in range(100, 200))
        kept = Artefacts(store, clock=lambda: next(clock), keep=2)
        for n in range(3):
            await kept.save("config-backup", NS, f"b{n}.yaml", f"items: [{n}]\n", "U1")
        await kept.save("config-backup", "other", "x.yaml", "items: []\n", "U1")
        assert [a.name for a in await kept.recent("config-backup", NS)] == ["b2.yaml", "b1.yaml"]
        latest = await kept.latest("config-backup", NS)
        assert latest is not None and latest.content == "items: [2]\n"
        assert latest.sha256 == hashlib.sha256(b"items: [2]\n").hexdigest() and latest.size == 11
        assert await kept.get("config-backup", NS, "b0.yaml") is None  # beyond `keep`, gone
        found = await kept.get("config-backup", NS, "b1.yaml")
        assert found is not None and found.content == "items: [1]\n"
    finally:
        await store.close()


# --- restore config ------------------------------------------------------------------------------------


async def test_restore_config_brings_back_a_deleted_config_map_and_an_image_but_no_secret(bot, sandbox, sim) -> None:
    kc = sandbox.kubeconfig
    backup = await latest_backup(bot, sim)
    saved = next(i for i in backup["items"] if i["kind"] == "ConfigMap" and i["metadata"]["name"] ==
                 "collaboration-config")
    await kubectl(kc, "-n", NS, "delete", "configmap", "collaboration-config")
    await kubectl(kc, "-n", NS, "set", "image", "deployment/graphql-api", f"graphql-api={BROKEN_IMAGE}")
    await kubectl(kc, "-n", NS, "delete", "secret", "redis-credentials")
    await kubectl(kc, "-n", NS, "create", "configmap", "made-after-the-backup", "--from-literal=a=b")
    secrets_before = await versions(kc, "secrets")

    await bot.slash("restore config")
    request = bot.last_request()
    shown = reply_text(request)
    assert "Create (missing now): configmap/collaboration-config" in shown
    assert (f"Change deployment/graphql-api: spec.template.spec.containers[graphql-api].image: "
            f"{BROKEN_IMAGE} → {GRAPHQL_IMAGE}") in shown
    assert "secret/app-secrets" in shown and "secret/redis-credentials" in shown and "MISSING" in shown
    assert "Replicas left to their autoscalers: deployment/graphql-api" in shown
    assert "2 objects differ from the backup (1 missing, 1 changed)" in shown
    # the diff was a dry run: nothing written before approval
    assert "configmap/collaboration-config" not in await kubectl(kc, "-n", NS, "get", "configmaps", "-o", "name")
    assert await image(kc, "graphql-api") == BROKEN_IMAGE

    await bot.click(request["ts"], "cf_approve", APPROVER)
    thread = "\n".join(bot.thread_texts(request["ts"]))
    restored = json.loads(await kubectl(kc, "-n", NS, "get", "configmap", "collaboration-config", "-o", "json"))
    assert restored["data"] == saved["data"]
    assert await image(kc, "graphql-api") == GRAPHQL_IMAGE
    assert await versions(kc, "secrets") == secrets_before  # no Secret written, none recreated
    assert "redis-credentials" not in secrets_before
    assert "made-after-the-backup" in await kubectl(kc, "-n", NS, "get", "configmaps", "-o", "name")
    assert "1 created, 1 changed" in thread and "Verified" in thread
    assert_slack_accepted_everything(sim)


async def test_restore_config_restores_the_backup_the_approver_saw(bot, sandbox, sim) -> None:
    """The runbook's recovery begins by saving the current state: a backup made between the request and
    the approval must not become the one restored."""
    kc = sandbox.kubeconfig
    first = files_named(sim, f"{NS}-backup-")
    await latest_backup(bot, sim)
    good = files_named(sim, f"{NS}-backup-")[len(first)]["filename"]
    await kubectl(kc, "-n", NS, "set", "image", "deployment/graphql-api", f"graphql-api={BROKEN_IMAGE}")
    await bot.slash("restore config")
    request = bot.last_request()
    assert good in reply_text(request)
    await asyncio.sleep(1.1)  # backup names are stamped to the second
    await latest_backup(bot, sim)  # the broken state, now the latest backup
    assert files_named(sim, f"{NS}-backup-")[-1]["filename"] != good
    await bot.click(request["ts"], "cf_approve", APPROVER)
    assert await image(kc, "graphql-api") == GRAPHQL_IMAGE
    thread = "\n".join(bot.thread_texts(request["ts"]))
    assert "Verified" in thread


async def test_an_object_the_dry_run_refuses_is_listed_and_the_rest_is_restored(bot, sandbox, sim) -> None:
    kc = sandbox.kubeconfig
    await latest_backup(bot, sim)
    await kubectl(kc, "-n", NS, "delete", "configmap", "collaboration-config")
    await kubectl(kc, "-n", NS, "set", "image", "deployment/graphql-api", f"graphql-api={BROKEN_IMAGE}")
    sandbox.sandbox.fail(r"/apis/apps/v1/namespaces/collaboration/deployments/graphql-api", 422, "Invalid",
                         'Deployment.apps "graphql-api" is invalid: spec.selector: field is immutable', method="PATCH")
    await bot.slash("restore config")
    request = bot.last_request()
    shown = reply_text(request)
    assert "Refused by the API server's dry run, not restored: deployment/graphql-api" in shown
    assert "field is immutable" in shown and "Create (missing now): configmap/collaboration-config" in shown
    await bot.click(request["ts"], "cf_approve", APPROVER)
    assert "configmap/collaboration-config" in await kubectl(kc, "-n", NS, "get", "configmaps", "-o", "name")
    assert await image(kc, "graphql-api") == BROKEN_IMAGE  # refused, so left alone
    assert "1 created, 0 changed" in "\n".join(bot.thread_texts(request["ts"]))


async def test_restore_config_refusals_change_nothing(bot, sandbox, sim) -> None:
    await bot.slash("restore config")
    assert "no backup of namespace `collaboration` yet" in bot.private_texts()[-1]
    await latest_backup(bot, sim)
    name = files_named(sim, f"{NS}-backup-")[-1]["filename"]
    await bot.slash("restore config")
    assert "Nothing to restore" in bot.private_texts()[-1] and name in bot.private_texts()[-1]
    await bot.slash("restore config collaboration-backup-20000101-000000")
    said = bot.private_texts()[-1]
    assert "There is no backup" in said and name in said
    await bot.slash("restore config ../../etc/passwd")
    assert "backup's file name" in bot.private_texts()[-1]
    assert bot.requests() == []


# --- dr check -------------------------------------------------------------------------------------------


def dr_lines(text: str) -> dict[str, str]:
    """check name -> its line, from the reply's text."""
    lines = {}
    for line in text.splitlines():
        for name in ("Restorable window", "Newest snapshot", "Documents bucket", "Node group", "Configuration backup"):
            if f"*{name}*" in line:
                lines[name] = line
    return lines


async def test_dr_check_gives_a_verdict_per_prerequisite(aws_bot, aws_sandbox, sim) -> None:
    await aws_bot.slash("backup config")
    await aws_bot.slash("dr check", user=VIEWER)
    text = reply_text(aws_bot.messages()[-1])
    assert "Disaster recovery: ready: every prerequisite verified" in text
    lines = dr_lines(text)
    assert len(lines) == 5 and all(":large_green_circle:" in line for line in lines.values()), text
    rds = boto(aws_sandbox, "rds")
    snaps = rds.describe_db_snapshots(DBInstanceIdentifier="candlefish-collaboration-db")["DBSnapshots"]
    newest = max(snaps, key=lambda s: s["SnapshotCreateTime"])["DBSnapshotIdentifier"]
    assert newest in lines["Newest snapshot"]
    retention = rds.describe_db_instances(DBInstanceIdentifier="candlefish-collaboration-db")["DBInstances"][0][
        "BackupRetentionPeriod"]
    assert f"({retention}-day retention)" in lines["Restorable window"] and "RPO 15 min" in lines["Restorable window"]
    group = boto(aws_sandbox, "eks").describe_nodegroup(clusterName="candlefish-collaboration",
                                                        nodegroupName="general")["nodegroup"]
    assert group["status"] in lines["Node group"] and f"desired {group['scalingConfig']['desiredSize']}" in lines[
        "Node group"]
    backup = files_named(sim, f"{NS}-backup-")[-1]["filename"]
    assert backup in lines["Configuration backup"]
    assert_slack_accepted_everything(sim)


async def test_dr_check_fails_what_is_missing_and_still_answers_the_rest(aws_bot, aws_sandbox) -> None:
    rds = boto(aws_sandbox, "rds")
    db = "candlefish-collaboration-db"
    snaps = rds.describe_db_snapshots(DBInstanceIdentifier=db)["DBSnapshots"]
    rds.modify_db_instance(DBInstanceIdentifier=db, BackupRetentionPeriod=0, ApplyImmediately=True)
    for snap in snaps:
        rds.delete_db_snapshot(DBSnapshotIdentifier=snap["DBSnapshotIdentifier"])
    aws_sandbox.front.inject("s3", "AccessDenied", "Access Denied", status=403)
    try:
        await aws_bot.slash("dr check", user=VIEWER)
        text = reply_text(aws_bot.messages()[-1])
    finally:
        aws_sandbox.front.clear_faults()
        rds.modify_db_instance(DBInstanceIdentifier=db, BackupRetentionPeriod=7, ApplyImmediately=True)
        for snap in snaps:  # the module's sandbox as it was (AWS takes automated snapshots itself; moto here)
            if snap["SnapshotType"] == "manual":
                rds.create_db_snapshot(DBInstanceIdentifier=db, DBSnapshotIdentifier=snap["DBSnapshotIdentifier"])
            else:
                backend("rds", REGION).databases[db].save_automated_backup()
    assert "Disaster recovery: NOT ready: Restorable window, Newest snapshot, Documents bucket, " \
           "Configuration backup" in text
    lines = dr_lines(text)
    assert ":red_circle:" in lines["Restorable window"] and "automated backups off" in lines["Restorable window"]
    assert ":red_circle:" in lines["Newest snapshot"] and "nothing to restore it from" in lines["Newest snapshot"]
    assert ":red_circle:" in lines["Documents bucket"] and "not verified" in lines["Documents bucket"]
    assert ":red_circle:" in lines["Configuration backup"] and "/cf backup config" in lines["Configuration backup"]
    assert ":large_green_circle:" in lines["Node group"]  # the one prerequisite still in place


# --- the disaster-recovery incident type ----------------------------------------------------------------


async def test_a_disaster_recovery_incident_pins_the_runbooks_checklist(sim, tmp_path) -> None:
    bot = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}")
    try:
        await bot.slash("incident declare sev1 Cluster lost --type disaster-recovery", user=OPERATOR)
        await bot.slash("incident declare sev2 Region outage: rebuild the cluster", user=OPERATOR)  # type guessed
        for number in (1, 2):
            incident = await bot.runtime.ops.incidents.records.get_incident(f"INC-{number}")
            assert incident is not None and incident.kind == "disaster-recovery" and incident.channel
            ts = sim.pins(incident.channel)
            summary = reply_text(next(m for m in sim.messages(incident.channel) if m["ts"] == ts[0]))
            assert "Disaster recovery" in summary and "Backup and Recovery > Disaster Recovery" in summary
            for step in ("/cf backup config", "/cf dr check", "terraform apply", "helm install",
                         "/cf restore config", "/cf status"):
                assert step in summary, f"{step} missing from the checklist"
        assert_slack_accepted_everything(sim)
    finally:
        await bot.close()
