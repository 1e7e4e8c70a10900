"""Security containment through Slack: secrets never leak; evidence is hashed into the audit trail;
backups redact; isolate needs an admin approver; block-ip edits the NetworkPolicy, checked by kubectl."""

from __future__ import annotations

import base64
import hashlib
import json
import logging

import yaml

from tests.harness import ADMIN, APPROVER, OPERATOR, kubectl
from tests.k8s_support import (
    NS,
    assert_slack_accepted_everything,
    everything_sent,
    files_named,
    k8s_bot,
    last_reply,
    request_and_approve,
)

PLANTED = "hunter2-planted-Zq8vX1"
APPLIED = "applied-secret-Kp3wR7"
SEEDED = "sandbox-jwt-4f1c9e2b7a6d8e0f3b5a1c7d9e2f4a6b"  # app-secrets/JWT_SECRET in the seeded world


async def plant_secrets(kubeconfig: str, tmp_path) -> None:
    await kubectl(kubeconfig, "-n", NS, "create", "secret", "generic", "planted-creds",
                  f"--from-literal=api-token={PLANTED}")
    manifest = tmp_path / "applied.yaml"  # `kubectl apply` keeps the value in last-applied-configuration too
    manifest.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "applied-creds"},
                                        "stringData": {"password": APPLIED}}))
    await kubectl(kubeconfig, "-n", NS, "apply", "-f", str(manifest))


async def first_pod(kubeconfig: str, app: str) -> str:
    return await kubectl(kubeconfig, "-n", NS, "get", "pods", "-l", f"app={app}",
                         "-o", "jsonpath={.items[0].metadata.name}")


async def test_no_secret_value_reaches_slack_logs_or_audit(bot, sandbox, sim, tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    await plant_secrets(sandbox.kubeconfig, tmp_path)
    pod = await first_pod(sandbox.kubeconfig, "graphql-api")
    node = await kubectl(sandbox.kubeconfig, "-n", NS, "get", "pod", pod, "-o", "jsonpath={.spec.nodeName}")
    for text in ("secrets", "backup config", f"describe pod {pod}", "describe deployment graphql-api",
                 f"describe node {node}", f"evidence {pod}"):
        await bot.slash(text)
    await bot.slash("secrets")
    listing = last_reply(bot)
    assert "planted-creds" in listing and "api-token" in listing and "applied-creds" in listing
    assert "DATABASE_URL, JWT_SECRET, S3_SECRET_ACCESS_KEY, SESSION_SECRET" in listing
    assert files_named(sim, "backup") and files_named(sim, "incident-")
    sent = everything_sent(sim)
    audit = json.dumps([e.detail for e in await bot.runtime.audit.tail(500)])
    for value in (PLANTED, APPLIED, SEEDED):
        encoded = base64.b64encode(value.encode()).decode()
        for haystack, where in ((sent, "Slack"), (audit, "the audit store"), (caplog.text, "the logs")):
            assert value not in haystack, f"{value} reached {where}"
            assert encoded not in haystack, f"base64 of {value} reached {where}"
    assert_slack_accepted_everything(sim)


async def test_secrets_flags_references_to_missing_secrets(bot, sandbox) -> None:
    await kubectl(sandbox.kubeconfig, "-n", NS, "delete", "secret", "redis-credentials")
    await bot.slash("get secrets")
    text = last_reply(bot)
    assert "Missing:" in text and "secret `redis-credentials`" in text and "`graphql-api`" in text
    assert "Values are never shown" in text


async def test_evidence_uploads_logs_and_spec_with_hashes_in_the_audit(sim, tmp_path) -> None:
    async with k8s_bot(sim, tmp_path, scenario="crashloop") as env:
        pod = await first_pod(env.kubeconfig, "document-service")
        await env.bot.slash(f"evidence {pod}")
        text = last_reply(env.bot)
        assert f"Evidence from pod {pod}: 3 files" in text and "SHA256" in text
        uploaded = {f["filename"]: f["content"] for f in files_named(sim, f"incident-{pod}")}
        names = sorted(uploaded)
        assert any(n.endswith("-pod.yaml") for n in names)
        assert any(n.endswith("-document-service.log") for n in names)
        previous = next(n for n in names if n.endswith("-previous.log"))
        assert b"JavaScript heap out of memory" in uploaded[previous]
        spec = yaml.safe_load(next(v for n, v in uploaded.items() if n.endswith("-pod.yaml")))
        assert spec["metadata"]["name"] == pod and spec["status"]["containerStatuses"]
        entry = next(e for e in await env.bot.runtime.audit.tail(50) if e.event == "evidence")
        recorded = {f["name"]: f["sha256"] for f in entry.detail["files"]}
        assert recorded == {n: hashlib.sha256(c).hexdigest() for n, c in uploaded.items()}
        assert entry.detail["pod"] == pod and entry.actor == "U0OPERATOR"
        await env.bot.slash("evidence no-such-pod")
        assert "Pod `no-such-pod` was not found" in " ".join(env.bot.private_texts())
        assert_slack_accepted_everything(sim)


async def test_backup_config_is_one_restorable_yaml(bot, sim) -> None:
    await bot.slash("backup config")
    text = last_reply(bot)
    assert "Backup of namespace `collaboration`" in text and "<redacted>" in text
    backup = yaml.safe_load(files_named(sim, "collaboration-backup-")[-1]["content"])
    assert backup["kind"] == "List"
    kinds = {i["kind"] for i in backup["items"]}
    assert kinds == {"Deployment", "Service", "ConfigMap", "Ingress", "PersistentVolumeClaim",
                     "HorizontalPodAutoscaler", "NetworkPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret"}
    assert all("status" not in i and "resourceVersion" not in i["metadata"] for i in backup["items"])
    secrets = [i for i in backup["items"] if i["kind"] == "Secret"]
    assert secrets and all(set(s["data"].values()) == {"<redacted>"} for s in secrets)
    assert_slack_accepted_everything(sim)


async def replicas(kubeconfig: str, name: str) -> int:
    return int(await kubectl(kubeconfig, "-n", NS, "get", "deployment", name, "-o", "jsonpath={.spec.replicas}"))


async def test_isolate_needs_an_admin_approver(bot, sandbox, sim) -> None:
    await bot.slash("isolate document-service", user=OPERATOR)
    request = bot.last_request()
    assert "an admin" in json.dumps(request["blocks"])
    await bot.click(request["ts"], "cf_approve", APPROVER)
    assert await replicas(sandbox.kubeconfig, "document-service") == 2
    assert any("admin" in t for t in bot.private_texts())
    await bot.click(request["ts"], "cf_approve", ADMIN)
    assert await replicas(sandbox.kubeconfig, "document-service") == 0
    thread = " ".join(bot.thread_texts(request["ts"]))
    assert "2 replicas → 0 replicas (isolated)" in thread and "Verified in" in thread
    final = json.dumps(next(m for m in bot.messages() if m["ts"] == request["ts"]))
    assert "cf_undo" in final and "scale deployment/document-service back to 2 replicas" in final
    assert_slack_accepted_everything(sim)


async def network_policy(kubeconfig: str) -> str:
    return await kubectl(kubeconfig, "-n", NS, "get", "networkpolicy", "collaboration-network-policy", "-o", "yaml")


async def test_block_ip_adds_the_cidr_to_the_except_list(bot, sandbox, sim) -> None:
    _, thread = await request_and_approve(bot, "block-ip 203.0.113.7")
    policy = yaml.safe_load(await network_policy(sandbox.kubeconfig))
    block = policy["spec"]["ingress"][0]["from"][0]["ipBlock"]
    assert block["cidr"] == "0.0.0.0/0" and block["except"] == ["10.0.99.0/24", "203.0.113.7/32"]
    assert "203.0.113.7/32" in thread
    await request_and_approve(bot, "block-ip 198.51.100.0/24")
    assert "198.51.100.0/24" in await network_policy(sandbox.kubeconfig)
    assert_slack_accepted_everything(sim)


async def test_block_ip_creates_the_policy_when_missing(bot, sandbox) -> None:
    await kubectl(sandbox.kubeconfig, "-n", NS, "delete", "networkpolicy", "collaboration-network-policy")
    await bot.slash("block-ip 192.0.2.99/32", user=OPERATOR)
    assert "does not exist: it will be created" in json.dumps(bot.last_request()["blocks"])
    await bot.click(bot.last_request()["ts"], "cf_approve", APPROVER)
    policy = yaml.safe_load(await network_policy(sandbox.kubeconfig))
    assert policy["spec"]["ingress"][0]["from"][0]["ipBlock"] == {"cidr": "0.0.0.0/0", "except": ["192.0.2.99/32"]}


async def test_bad_cidrs_get_a_usage_line_and_change_nothing(bot, sandbox, sim) -> None:
    before = await network_policy(sandbox.kubeconfig)
    for cidr in ("0.0.0.0/0", "::/0", "1.2.3.4/1", "203.0.113.7/24", "not-an-ip", "999.1.1.1", "10.0.0.0/8"):
        await bot.slash(f"block-ip {cidr}", user=OPERATOR)
    said = " ".join(bot.private_texts())
    for broad in ("`0.0.0.0/0` covers", "`::/0` covers", "`0.0.0.0/1` covers"):
        assert broad in said and "blocks wider than" in said
    assert "has host bits set; did you mean `203.0.113.0/24`" in said
    assert "`not-an-ip` is not an IP address or CIDR block" in said and "`999.1.1.1` is not an IP" in said
    assert "contains the cluster's own nodes" in said
    assert bot.requests() == []
    assert await network_policy(sandbox.kubeconfig) == before
    await bot.slash("isolate Bad_Name", user=OPERATOR)
    await bot.slash("isolate nosuch", user=OPERATOR)
    said = " ".join(bot.private_texts())
    assert "is not a valid Kubernetes name" in said and "Deployment `nosuch` was not found" in said
    assert bot.requests() == []
    assert_slack_accepted_everything(sim)
