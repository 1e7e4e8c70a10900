"""block-ip and its inverse unblock-ip end in a verdict read from the NetworkPolicy (issue 13 §1-§2), and each
is the other's Undo through a second approval; kubectl is the judge of the policy."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.harness import APPROVER2, OPERATOR, BotHarness, kubectl, start_bot
from tests.k8s_support import NS, assert_slack_accepted_everything, request_and_approve

POLICY = "collaboration-network-policy"


async def excepts(kubeconfig: str) -> list[str]:
    """Every ipBlock `except` entry of the policy, as kubectl reads it."""
    policy = yaml.safe_load(await kubectl(kubeconfig, "-n", NS, "get", "networkpolicy", POLICY, "-o", "yaml"))
    return [e for rule in policy["spec"].get("ingress") or [] for peer in rule.get("from") or []
            for e in (peer.get("ipBlock") or {}).get("except") or []]


def message(bot: BotHarness, ts: str) -> dict[str, Any]:
    return next(m for m in bot.messages() if m["ts"] == ts)


def buttons(msg: dict[str, Any]) -> dict[str, str]:
    return {e["action_id"]: e.get("value", "") for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"]}


async def undo_and_approve(bot: BotHarness, request: dict[str, Any]) -> tuple[dict[str, Any], str]:
    await bot.click(request["ts"], "cf_undo", OPERATOR)
    undo = bot.last_request()
    assert undo["ts"] != request["ts"] and "Reverts request" in json.dumps(undo["blocks"])
    await bot.click(undo["ts"], "cf_approve", APPROVER2)
    return undo, " ".join(bot.thread_texts(undo["ts"]))


class PatchLost:
    """The sandbox's Kube client, except that a NetworkPolicy patch is accepted and not kept."""

    def __init__(self, kube: Any) -> None:
        self._kube = kube

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kube, name)

    async def patch_network_policy(self, namespace: str, name: str, operations: list[Any]) -> Any:
        return await self._kube.get_network_policy(namespace, name)


async def test_block_ip_is_verified_by_the_policy_and_undo_unblocks(bot, sandbox, sim) -> None:
    request, thread = await request_and_approve(bot, "block-ip 203.0.113.7")
    assert "203.0.113.7/32" in await excepts(sandbox.kubeconfig)
    assert "Verified in" in thread
    assert f"203.0.113.7/32 reads back in the except list of NetworkPolicy {POLICY}" in thread
    final = message(bot, request["ts"])
    assert "cf_undo" in buttons(final)
    assert f"remove 203.0.113.7/32 from the except list of NetworkPolicy {POLICY}" in json.dumps(final["blocks"])

    undo, undo_thread = await undo_and_approve(bot, request)
    assert await excepts(sandbox.kubeconfig) == ["10.0.99.0/24"]  # kubectl: back to the seeded list
    assert "except [10.0.99.0/24, 203.0.113.7/32] → except [10.0.99.0/24]" in undo_thread
    assert "Verified in" in undo_thread and "203.0.113.7/32 reads back in no except list" in undo_thread
    # unblock-ip is undone by blocking again
    assert "block 203.0.113.7/32 again" in json.dumps(message(bot, undo["ts"])["blocks"])
    await undo_and_approve(bot, undo)
    assert "203.0.113.7/32" in await excepts(sandbox.kubeconfig)
    assert_slack_accepted_everything(sim)


async def test_undo_of_a_block_that_created_the_policy_leaves_the_policy(bot, sandbox) -> None:
    await kubectl(sandbox.kubeconfig, "-n", NS, "delete", "networkpolicy", POLICY)
    request, thread = await request_and_approve(bot, "block-ip 192.0.2.99/32")
    assert await excepts(sandbox.kubeconfig) == ["192.0.2.99/32"] and "Verified in" in thread
    assert "(the policy itself stays)" in json.dumps(message(bot, request["ts"])["blocks"])
    await undo_and_approve(bot, request)
    assert await excepts(sandbox.kubeconfig) == []


async def test_unblock_ip_typed_removes_what_is_listed_and_refuses_what_is_not(bot, sandbox) -> None:
    await bot.slash("unblock-ip 198.51.100.0/24", user=OPERATOR)
    said = bot.private_texts()[-1]
    assert "`198.51.100.0/24` is not in the `except` list" in said and "`10.0.99.0/24`" in said
    await bot.slash("unblock-ip not-an-ip", user=OPERATOR)
    assert "is not an IP address or CIDR block" in bot.private_texts()[-1]
    assert bot.requests() == []
    _, thread = await request_and_approve(bot, "unblock-ip 10.0.99.0/24")
    assert await excepts(sandbox.kubeconfig) == [] and "Verified in" in thread


async def test_a_block_already_in_place_has_no_undo(bot, sandbox) -> None:
    request, thread = await request_and_approve(bot, "block-ip 10.0.99.0/24")
    assert "unchanged (already blocked)" in thread and "Verified in" in thread
    final = message(bot, request["ts"])
    assert "cf_undo" not in buttons(final)
    assert "No undo: nothing to undo: 10.0.99.0/24 was already blocked" in json.dumps(final["blocks"])
    assert await excepts(sandbox.kubeconfig) == ["10.0.99.0/24"]


async def test_a_block_the_policy_does_not_keep_is_not_verified(sim, kube, sandbox, tmp_path) -> None:
    bot = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services={"kube": PatchLost(kube)},
                          config={"approvals": {"verify_timeout_seconds": 2}})
    try:
        request, _ = await request_and_approve(bot, "block-ip 203.0.113.7")
        assert await excepts(sandbox.kubeconfig) == ["10.0.99.0/24"]  # kubectl: not blocked
        thread = " ".join(bot.thread_texts(request["ts"]))
        assert "Not verified after" in thread and "203.0.113.7/32 reads back in no except list" in thread
        assert f"kubectl -n {NS} get networkpolicy {POLICY} -o yaml" in thread
    finally:
        await bot.close()


# --- restore config: verified by reading the restored objects back ------------------------------------

GOOD_IMAGE, BROKEN_IMAGE = "ghcr.io/candlefish/graphql-api:2.14.3", "ghcr.io/candlefish/graphql-api:9.9.9-broken"


async def image(kubeconfig: str) -> str:
    return await kubectl(kubeconfig, "-n", NS, "get", "deployment", "graphql-api", "-o",
                         "jsonpath={.spec.template.spec.containers[0].image}")


class ApplyLost:
    """The sandbox's Kube client, except that a server-side apply (not a dry run) is accepted and not kept."""

    def __init__(self, kube: Any) -> None:
        self._kube = kube

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kube, name)

    async def apply_object(self, namespace: str, body: Any, *, dry_run: bool = False) -> Any:
        return await self._kube.apply_object(namespace, body, dry_run=True)


async def test_restore_config_is_verified_by_reading_back_and_says_why_there_is_no_undo(bot, sandbox) -> None:
    await bot.slash("backup config")
    await kubectl(sandbox.kubeconfig, "-n", NS, "set", "image", "deployment/graphql-api", f"graphql-api={BROKEN_IMAGE}")
    await kubectl(sandbox.kubeconfig, "-n", NS, "delete", "configmap", "collaboration-config")
    request, thread = await request_and_approve(bot, "restore config")
    assert await image(sandbox.kubeconfig) == GOOD_IMAGE
    assert "configmap/collaboration-config" in await kubectl(sandbox.kubeconfig, "-n", NS, "get", "configmaps",
                                                             "-o", "name")
    assert "Verified in" in thread and "2 objects read back equal to collaboration-backup-" in thread
    final = message(bot, request["ts"])
    assert "cf_undo" not in buttons(final)
    assert "No undo: what the restore overwrote was not saved by it" in json.dumps(final["blocks"])


async def test_a_restore_the_cluster_does_not_keep_is_not_verified(sim, kube, sandbox, tmp_path) -> None:
    bot = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services={"kube": ApplyLost(kube)},
                          config={"approvals": {"verify_timeout_seconds": 2}})
    try:
        await bot.slash("backup config")
        await kubectl(sandbox.kubeconfig, "-n", NS, "set", "image", "deployment/graphql-api",
                      f"graphql-api={BROKEN_IMAGE}")
        request, _ = await request_and_approve(bot, "restore config")
        assert await image(sandbox.kubeconfig) == BROKEN_IMAGE  # kubectl: not restored
        thread = " ".join(bot.thread_texts(request["ts"]))
        assert "Not verified after" in thread
        assert f"Change deployment/graphql-api: spec.template.spec.containers[graphql-api].image: {BROKEN_IMAGE} → " \
               f"{GOOD_IMAGE}" in thread
        assert "look further with `/cf restore config collaboration-backup-" in thread
    finally:
        await bot.close()
