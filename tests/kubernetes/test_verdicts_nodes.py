"""Node changes end in a verdict read from the cluster (issue 13 §1-§2), with kubectl as the judge:
cordon/uncordon are verified by `spec.unschedulable` read back and undo each other through a second
approval; a drain is verified when no evictable pod is left and says why it has no undo."""

from __future__ import annotations

import json
from typing import Any

from tests.harness import APPROVER, APPROVER2, OPERATOR, BotHarness, kubectl, start_bot
from tests.k8s_support import assert_slack_accepted_everything, request_and_approve

NODE = "ip-10-0-1-11.ec2.internal"


async def unschedulable(kubeconfig: str, node: str = NODE) -> bool:
    out = await kubectl(kubeconfig, "get", "node", node, "-o", "jsonpath={.spec.unschedulable}")
    return out.strip() == "true"


async def evictable_on(kubeconfig: str, node: str = NODE) -> list[str]:
    out = await kubectl(kubeconfig, "get", "pods", "-A", "--field-selector", f"spec.nodeName={node}", "-o", "json")
    return [p["metadata"]["name"] for p in json.loads(out)["items"]
            if not any(o.get("kind") == "DaemonSet" for o in p["metadata"].get("ownerReferences") or [])]


def message(bot: BotHarness, ts: str) -> dict[str, Any]:
    return next(m for m in bot.messages() if m["ts"] == ts)


def buttons(msg: dict[str, Any]) -> dict[str, str]:
    return {e["action_id"]: e.get("value", "") for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"]}


def request_id(msg: dict[str, Any]) -> str:
    """The id a request message shows ("Request `ID`.")."""
    return json.dumps(msg["blocks"]).split("Request `", 1)[1].split("`", 1)[0]


async def undo_and_approve(bot: BotHarness, request: dict[str, Any]) -> str:
    """Click Undo on a request as its requester, approve the new request as another person; its thread."""
    await bot.click(request["ts"], "cf_undo", OPERATOR)
    undo = bot.last_request()
    assert undo["ts"] != request["ts"] and "Reverts request" in json.dumps(undo["blocks"])
    await bot.click(undo["ts"], "cf_approve", APPROVER2)
    return " ".join(bot.thread_texts(undo["ts"]))


class CordonIgnored:
    """The sandbox's Kube client, except that the API accepts a cordon and does not keep it (as a node that
    re-registers, or another controller, would undo it): the PATCH's answer says cordoned, the node is not."""

    def __init__(self, kube: Any) -> None:
        self._kube = kube

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kube, name)

    async def set_unschedulable(self, name: str, unschedulable: bool) -> Any:
        node = dict(await self._kube.get_node(name))
        node["spec"] = {**node.get("spec", {}), "unschedulable": unschedulable}
        return node


async def test_cordon_is_verified_by_the_flag_and_undo_uncordons(bot, sandbox, sim) -> None:
    request, thread = await request_and_approve(bot, f"node cordon {NODE}")
    assert await unschedulable(sandbox.kubeconfig)
    assert "Verified in" in thread and f"{NODE} reads back cordoned" in thread
    final = message(bot, request["ts"])
    assert "cf_undo" in buttons(final) and f"uncordon node {NODE}" in json.dumps(final["blocks"])

    undo_thread = await undo_and_approve(bot, request)
    assert not await unschedulable(sandbox.kubeconfig)  # kubectl: schedulable again
    assert "Verified in" in undo_thread and f"{NODE} reads back schedulable" in undo_thread
    assert_slack_accepted_everything(sim)


async def test_uncordon_is_verified_and_undo_cordons_again(bot, sandbox) -> None:
    await kubectl(sandbox.kubeconfig, "cordon", NODE)
    request, thread = await request_and_approve(bot, f"node uncordon {NODE}")
    assert not await unschedulable(sandbox.kubeconfig)
    assert "Verified in" in thread and "reads back schedulable" in thread
    assert f"cordon node {NODE} again" in json.dumps(message(bot, request["ts"])["blocks"])
    await undo_and_approve(bot, request)
    assert await unschedulable(sandbox.kubeconfig)  # kubectl: cordoned again


async def test_a_cordon_that_changes_nothing_has_no_undo(bot, sandbox) -> None:
    await kubectl(sandbox.kubeconfig, "cordon", NODE)
    request, thread = await request_and_approve(bot, f"node cordon {NODE}")
    assert "Verified in" in thread
    final = message(bot, request["ts"])
    assert "cf_undo" not in buttons(final)
    assert "No undo: nothing to undo: the node was already cordoned" in json.dumps(final["blocks"])


async def test_a_cordon_requested_on_a_schedulable_node_goes_stale_if_cordoned_by_hand(bot, sandbox) -> None:
    await bot.slash(f"node cordon {NODE}", user=OPERATOR)
    request = bot.last_request()
    await kubectl(sandbox.kubeconfig, "cordon", NODE)  # someone acts by hand between request and approval
    await bot.click(request["ts"], "cf_approve", APPROVER)
    thread = " ".join(bot.thread_texts(request["ts"]))
    assert "Stale, not run: was schedulable when requested, now cordoned" in thread


async def test_a_cordon_the_api_does_not_keep_is_not_verified(sim, kube, sandbox, tmp_path) -> None:
    bot = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services={"kube": CordonIgnored(kube)},
                          config={"approvals": {"verify_timeout_seconds": 2}})
    try:
        request, thread = await request_and_approve(bot, f"node cordon {NODE}")
        assert not await unschedulable(sandbox.kubeconfig)  # kubectl: the flag did not stick
        assert "Ready → Ready,SchedulingDisabled" in thread  # what the API answered...
        thread = " ".join(bot.thread_texts(request["ts"]))
        assert "Not verified after" in thread and "reads back schedulable" in thread  # ...is not what it kept
        assert f"/cf describe node {NODE}" in thread and "/cf undo" in thread
        assert "Not verified" in json.dumps(message(bot, request["ts"])["blocks"])
    finally:
        await bot.close()


async def test_drain_is_verified_when_no_evictable_pod_is_left_and_has_no_undo(bot, sandbox, sim) -> None:
    assert await evictable_on(sandbox.kubeconfig)
    request, thread = await request_and_approve(bot, f"node drain {NODE}")
    assert await evictable_on(sandbox.kubeconfig) == [] and await unschedulable(sandbox.kubeconfig)
    assert "Verified in" in thread and f"{NODE} cordoned, no evictable pod left on it" in thread
    final = message(bot, request["ts"])
    body = json.dumps(final["blocks"])
    assert "cf_undo" not in buttons(final)
    assert "No undo: evicted pods were rescheduled elsewhere" in body and f"/cf node uncordon {NODE}" in body
    await bot.slash(f"undo {request_id(final)}", user=OPERATOR)
    assert "cannot be undone: evicted pods were rescheduled elsewhere" in bot.private_texts()[-1]
    assert_slack_accepted_everything(sim)


async def test_a_drain_whose_cordon_does_not_stick_is_not_verified(sim, kube, sandbox, tmp_path) -> None:
    bot = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services={"kube": CordonIgnored(kube)},
                          config={"approvals": {"verify_timeout_seconds": 2}})
    try:
        request, _ = await request_and_approve(bot, f"node drain {NODE}")
        assert not await unschedulable(sandbox.kubeconfig)
        thread = " ".join(bot.thread_texts(request["ts"]))
        assert "Not verified after" in thread and f"{NODE} is schedulable again" in thread
    finally:
        await bot.close()
