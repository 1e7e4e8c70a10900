"""Bugs the chaos soak (bench/soak.py) found, each reproduced here without the chaos."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

import commands.scaling.scale as scale
from tests.harness import APPROVER, CHANNEL, OPERATOR, kubectl
from tests.k8s_support import NS, request_and_approve
from tests.slacksim import Chaos

FROZEN = datetime(2026, 12, 2, 11, 11, 12, 300_000, tzinfo=UTC)


class _FrozenClock(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return FROZEN


async def test_two_restarts_in_the_same_second_both_restart_the_pods(bot, sandbox, monkeypatch) -> None:
    """`restartedAt` has whole seconds (as kubectl writes it): a restart approved in the same second as the
    one before left the pod template as it was — no new ReplicaSet, no pod replaced — and still said
    `Done … rollout restart` and `Verified`. The soak saw it about once in 50 restarts of one deployment."""
    monkeypatch.setattr(scale, "datetime", _FrozenClock)  # both restarts stamp the same second
    ids = []
    for _ in range(2):
        request, thread = await request_and_approve(bot, "restart websocket-service")
        assert "Done:" in thread
        ids.append(re.search(r"Request `([0-9a-f]+)`", json.dumps(request["blocks"])).group(1))  # type: ignore[union-attr]
    sets = json.loads(await kubectl(sandbox.kubeconfig, "-n", NS, "get", "rs", "-l", "app=websocket-service",
                                    "-o", "json"))["items"]
    causes = [(s["metadata"].get("annotations") or {}).get("kubernetes.io/change-cause", "") for s in sets]
    for request_id in ids:
        assert sum(f"(request {request_id})" in c for c in causes) == 1, (ids, causes)


@pytest.mark.parametrize("last", ["never", "2026-12-02T11:11:11Z"])
def test_a_restart_stamps_the_current_second_when_it_differs_from_the_last(last: str) -> None:
    assert scale.restart_stamp(FROZEN, last) == FROZEN


def test_a_restart_in_the_second_of_the_last_one_stamps_the_next_second() -> None:
    assert scale.restart_stamp(FROZEN, "2026-12-02T11:11:12Z").strftime("%H:%M:%S") == "11:11:13"


async def test_an_approval_before_the_request_message_is_known_still_runs_in_its_thread(bot, sim) -> None:
    """The request message is posted, but its answer (the message's ts) is late: slower than the client waits
    here, or the requesting replica is killed, or simply slower than a quick approver. An Approve click on the
    message that arrives meanwhile used to run the change with no thread at all (no Approved/Running/Done
    lines, the message kept its buttons and `Waiting for approval`), and when the late answer then timed out,
    the requester was told Slack did not take it and the audit recorded `failed` after `done`."""
    bot.runtime.messenger.client.timeout = 1.0  # the Web API client gives up after 1 s
    sim.chaos = Chaos(rate_hold=1.0, hold_seconds=2.0, seed=1)  # every call applied, answered after 2 s
    await bot.driver.slash("/cf scale graphql-api 4", user=OPERATOR)
    request = await sim.wait_for(lambda s: next(iter(bot.requests()), None), timeout=10)
    sim.chaos = None
    await bot.click(request["ts"], "cf_approve", APPROVER)  # before the bot knows the message's ts
    await bot.settle()
    thread = " ".join(bot.thread_texts(request["ts"]))
    assert "Approved by" in thread and "Done:" in thread, sim.transcript()[-2000:]
    final = next(m for m in bot.messages() if m["ts"] == request["ts"])
    assert "cf_approve" not in json.dumps(final["blocks"])  # the message shows the outcome, not the buttons
    events = [e.event for e in await bot.runtime.store.audit_tail(20)]
    assert "failed" not in events and "done" in events
    assert not any("did not accept" in t for t in bot.private_texts(OPERATOR))


# found by the soak: a second click was taken for an inbox replay (bot/inbox.py `replaying` now tells them apart)
async def test_each_click_of_a_double_click_on_approve_is_answered(bot, sim) -> None:
    await bot.slash("scale graphql-api 4", user=OPERATOR)
    request = bot.last_request()
    sim.fail_next("chat.postMessage", status=429, retry_after=1)  # the `Approved by` line waits out a 429
    first = asyncio.create_task(bot.driver.click(CHANNEL, request["ts"], "cf_approve", APPROVER))
    await asyncio.sleep(0.3)  # the first click has approved it and is posting that line
    await bot.driver.click(CHANNEL, request["ts"], "cf_approve", APPROVER)
    await first
    await bot.settle()
    thread = bot.thread_texts(request["ts"])
    assert sum(f"Approved by <@{APPROVER}>" in t for t in thread) == 1 and sum("Done:" in t for t in thread) == 1
    answers = sum(f"Approved by <@{APPROVER}>" in t for t in thread) + len(sim.ephemerals(CHANNEL, APPROVER))
    assert answers == 2, thread  # the second click is told it was already approved


# found by the soak: done and verifying are now one compare-and-set (bot/verdicts.py `marks`)
async def test_a_replica_dying_between_done_and_verifying_leaves_the_verdict_to_a_peer(sim, kube, tmp_path) -> None:
    from tests.harness import start_bot

    def started(db: str) -> Any:
        return start_bot(sim, database_url=f"sqlite:///{tmp_path / db}", services={"kube": kube},
                         config={"approvals": {"verify_timeout_seconds": 30}})

    first = await started("shared.db")
    never = asyncio.Event()

    async def dies_here(action: Any, verification: Any) -> Any:  # the process is SIGKILLed at this point
        await never.wait()

    first.runtime.approvals.verdicts.begin = dies_here
    await first.slash("scale graphql-api 4", user=OPERATOR)
    request = first.last_request()
    await first.driver.click(CHANNEL, request["ts"], "cf_approve", APPROVER)
    action_id = re.search(r"Request `([0-9a-f]+)`", json.dumps(request["blocks"])).group(1)  # type: ignore[union-attr]
    for _ in range(500):
        action = await first.runtime.store.get_action(action_id)
        if action is not None and action.state == "done":
            break
        await asyncio.sleep(0.02)
    stuck = list(first.runtime.inflight)
    await first.close()
    for task in stuck:
        task.cancel()

    second = await started("shared.db")
    try:
        await second.runtime.approvals.recover_interrupted(stale_after=0)  # the sweep, past the stale window
        await second.settle()
        done = await second.runtime.store.get_action(action_id)
        assert done is not None and done.state == "done"
        assert done.verdict == "verified", done.verdict  # a peer verified it
        final = next(m for m in second.messages() if m["ts"] == request["ts"])
        assert "Verified" in json.dumps(final["blocks"])
    finally:
        await second.close()


# found by the soak: a request message owes a redraw until it shows its latest step (cf_actions.shown), which
# the sweep pays (bot/approvals.py redraw_unshown)
async def test_a_replica_dying_before_slack_takes_the_verdict_leaves_it_to_a_peer(sim, kube, tmp_path) -> None:
    from tests.harness import start_bot

    def started(db: str) -> Any:
        return start_bot(sim, database_url=f"sqlite:///{tmp_path / db}", services={"kube": kube},
                         config={"approvals": {"verify_timeout_seconds": 30}})

    first = await started("shared.db")
    never, posting = asyncio.Event(), first.runtime.messenger.post

    async def dies_posting_the_verdict(channel: str, text: str, blocks: Any = None, thread_ts: Any = None) -> str:
        if "Verified in" in text:  # stored verified; SIGKILLed while Slack's answer is awaited
            await never.wait()
        return await posting(channel, text, blocks, thread_ts)

    first.runtime.messenger.post = dies_posting_the_verdict
    await first.slash("scale graphql-api 4", user=OPERATOR)
    request = first.last_request()
    await first.driver.click(CHANNEL, request["ts"], "cf_approve", APPROVER)
    action_id = re.search(r"Request `([0-9a-f]+)`", json.dumps(request["blocks"])).group(1)  # type: ignore[union-attr]
    for _ in range(500):
        action = await first.runtime.store.get_action(action_id)
        if action is not None and action.verdict == "verified":
            break
        await asyncio.sleep(0.02)
    stuck = [*first.runtime.inflight, *first.runtime.approvals.verdicts.watching.values()]
    await first.close()
    for task in stuck:
        task.cancel()

    second = await started("shared.db")
    try:
        await second.runtime.approvals.recover_interrupted(stale_after=0)  # the sweeps, past the stale window
        await second.runtime.recover_deliveries(stale_after=0)
        await second.settle()
        final = next(m for m in second.messages() if m["ts"] == request["ts"])
        assert final["text"].endswith("— verified") or any("Verified in" in t for t in
                                                           second.thread_texts(request["ts"])), final["text"]
    finally:
        await second.close()
