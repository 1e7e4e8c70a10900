"""Nodes through Slack, with kubectl as the judge: cordon, uncordon, and drain as kubectl does it
(evictions through the Eviction API, DaemonSet pods skipped, disruption budgets honoured)."""

from __future__ import annotations

import json

from tests.harness import APPROVER, OPERATOR, kubectl
from tests.k8s_support import NS, assert_slack_accepted_everything, request_and_approve

NODE = "ip-10-0-1-11.ec2.internal"


async def pods_on(kubeconfig: str, node: str) -> list[dict]:
    out = await kubectl(kubeconfig, "get", "pods", "-A", "--field-selector", f"spec.nodeName={node}", "-o", "json")
    return list(json.loads(out)["items"])


def evictable(pods: list[dict]) -> list[str]:
    return [p["metadata"]["name"] for p in pods
            if not any(o.get("kind") == "DaemonSet" for o in p["metadata"].get("ownerReferences") or [])]


async def unschedulable(kubeconfig: str, node: str) -> bool:
    out = await kubectl(kubeconfig, "get", "node", node, "-o", "jsonpath={.spec.unschedulable}")
    return out.strip() == "true"


async def test_drain_cordons_and_evicts_everything_but_daemonsets(bot, sandbox, sim) -> None:
    before = await pods_on(sandbox.kubeconfig, NODE)
    to_go = evictable(before)
    assert to_go, "the seeded node should run application pods"
    request, thread = await request_and_approve(bot, f"node drain {NODE}")
    assert f"Drain node {NODE}" in json.dumps(request["blocks"])
    after = await pods_on(sandbox.kubeconfig, NODE)
    assert evictable(after) == []
    assert {p["metadata"]["name"] for p in after} == {p["metadata"]["name"] for p in before} - set(to_go)
    assert await unschedulable(sandbox.kubeconfig, NODE)
    assert f"Cordoned {NODE}" in thread and f"Evicting {len(to_go)} pods" in thread
    assert thread.count("evicted collaboration/") + thread.count("evicted kube-system/") == len(to_go)
    assert "Done:" in thread and "SchedulingDisabled" in thread
    nodes = await kubectl(sandbox.kubeconfig, "get", "nodes")
    assert "Ready,SchedulingDisabled" in nodes
    pods = await kubectl(sandbox.kubeconfig, "-n", NS, "get", "pods", "--no-headers")
    assert "Pending" not in pods  # the evicted pods were recreated on the other nodes
    assert_slack_accepted_everything(sim)


async def test_drain_honours_a_disruption_budget_and_stops_clearly(bot, sandbox, sim) -> None:
    await kubectl(sandbox.kubeconfig, "-n", NS, "create", "poddisruptionbudget", "graphql-strict",
                  "--selector=app=graphql-api", "--min-available=3")
    node = next(p["spec"]["nodeName"] for p in json.loads(await kubectl(
        sandbox.kubeconfig, "-n", NS, "get", "pods", "-l", "app=graphql-api", "-o", "json"))["items"])
    blocked = [p["metadata"]["name"] for p in await pods_on(sandbox.kubeconfig, node)
               if p["metadata"]["name"].startswith("graphql-api-")]
    _, thread = await request_and_approve(bot, f"node drain {node} --timeout 2s")
    assert "graphql-strict needs 3 healthy pods" in thread and "retrying every" in thread
    assert f"Drain of {node} stopped after 2s" in thread and "the node stays cordoned" in thread
    left = evictable(await pods_on(sandbox.kubeconfig, node))
    assert sorted(left) == sorted(blocked)  # only what the budget protects is still there
    assert await unschedulable(sandbox.kubeconfig, node)
    assert_slack_accepted_everything(sim)


async def test_cordon_and_uncordon(bot, sandbox) -> None:
    _, thread = await request_and_approve(bot, f"cordon {NODE}")
    assert await unschedulable(sandbox.kubeconfig, NODE)
    assert "Ready → Ready,SchedulingDisabled" in thread
    _, thread = await request_and_approve(bot, f"node uncordon {NODE}")
    assert not await unschedulable(sandbox.kubeconfig, NODE)
    assert "Ready,SchedulingDisabled → Ready" in thread


async def test_drain_refuses_unmanaged_pods_without_force(bot, sandbox) -> None:
    await kubectl(sandbox.kubeconfig, "-n", NS, "run", "debug-shell", "--image=busybox", "--restart=Never")
    pod = json.loads(await kubectl(sandbox.kubeconfig, "-n", NS, "get", "pod", "debug-shell", "-o", "json"))
    node = pod["spec"]["nodeName"]
    await bot.slash(f"node drain {node}", user=OPERATOR)
    said = " ".join(bot.private_texts())
    assert "runs pods no controller manages" in said and "collaboration/debug-shell" in said and "--force" in said
    assert bot.requests() == [] and not await unschedulable(sandbox.kubeconfig, node)
    await bot.slash(f"node drain {node} --force", user=OPERATOR)
    request = bot.last_request()
    assert "has no controller and will not come back" in json.dumps(request["blocks"])
    await bot.click(request["ts"], "cf_approve", APPROVER)
    assert "debug-shell" not in await kubectl(sandbox.kubeconfig, "-n", NS, "get", "pods", "--no-headers")


async def test_bad_node_input_changes_nothing(bot, sandbox, sim) -> None:
    await bot.slash("node drain Not_A_Node", user=OPERATOR)
    await bot.slash("node drain ip-10-9-9-9.ec2.internal", user=OPERATOR)
    await bot.slash(f"node drain {NODE} --timeout forever", user=OPERATOR)
    await bot.slash(f"node drain {NODE} --timeout 2h", user=OPERATOR)
    await bot.slash(f"node drain {NODE} --grace 5", user=OPERATOR)
    said = " ".join(bot.private_texts())
    assert "is not a valid Kubernetes name" in said
    assert "Node `ip-10-9-9-9.ec2.internal` was not found" in said and NODE in said
    assert "is not a duration" in said and "must be at most 1h" in said and "Unknown option `--grace`" in said
    assert bot.requests() == []
    assert not await unschedulable(sandbox.kubeconfig, NODE)
    assert_slack_accepted_everything(sim)
