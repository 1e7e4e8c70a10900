"""The durable inbox (bot/inbox.py): what a replica acknowledged and then died on is done by another.

The in-process tests here stand a dead replica's unfinished delivery in the store (as its SIGKILL left it:
recorded, heartbeat stale, not done) and let a live bot take it over; the chaos soak (`make soak`,
tests/soak/) does the same with real processes and SIGKILL. kubectl judges what happened to the cluster.
"""

from __future__ import annotations

import json
import time

from bot.inbox import action_id_for, origin_payload
from bot.messenger import Origin
from tests.harness import APPROVER, CHANNEL, OPERATOR, VIEWER, kubectl


async def replicas(sandbox, name: str = "graphql-api") -> int:
    out = await kubectl(sandbox.kubeconfig, "-n", "collaboration", "get", "deployment", name,
                        "-o", "jsonpath={.spec.replicas}")
    return int(out)


async def orphan(bot, key: str, kind: str, payload: dict, age: float = 60.0) -> None:
    """A delivery as a replica killed mid-work leaves it: recorded, heartbeat stale, never done."""
    then = time.time() - age
    await bot.runtime.store.driver.execute(
        "INSERT INTO cf_inbox (key, kind, payload, owner, received_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)",
        [key, kind, json.dumps(payload), "dead-replica", then, then])


async def inbox_row(bot, key: str) -> dict:
    rows = await bot.runtime.store.driver.fetch("SELECT * FROM cf_inbox WHERE key = ?", [key])
    return rows[0]


async def test_a_dead_replicas_command_is_answered_by_another(bot, sim) -> None:
    url = sim.new_response_url(channel=CHANNEL, user=VIEWER)
    await orphan(bot, "trigger:dead-1", "command",
                 origin_payload(Origin(user=VIEWER, channel=CHANNEL, response_url=url), text="help scale"))
    assert await bot.runtime.recover_deliveries(stale_after=5) == 1
    await bot.settle()
    answered = [c for c in sim.calls if c.method == "response_url" and "scale" in json.dumps(c.args)]
    assert answered, sim.transcript()[-2000:]
    row = await inbox_row(bot, "trigger:dead-1")
    assert row["done_at"] is not None and row["attempts"] == 2 and row["owner"] == bot.runtime.instance_id
    assert await bot.runtime.recover_deliveries(stale_after=5) == 0  # done: never replayed again


async def test_a_replayed_change_request_is_made_once(bot, sim, sandbox) -> None:
    url = sim.new_response_url(channel=CHANNEL, user=OPERATOR)
    payload = origin_payload(Origin(user=OPERATOR, channel=CHANNEL, response_url=url), text="scale graphql-api 5")
    await orphan(bot, "trigger:dead-2", "command", payload)
    await bot.runtime.recover_deliveries(stale_after=5)
    await bot.settle()
    assert len(bot.requests()) == 1
    request = bot.last_request()
    assert action_id_for("trigger:dead-2") in json.dumps(request["blocks"])

    # the replica that replayed it dies too before marking it done: the next replay finds the request it made
    await bot.runtime.store.driver.execute(
        "UPDATE cf_inbox SET done_at = NULL, heartbeat_at = ? WHERE key = ?", [time.time() - 60, "trigger:dead-2"])
    await bot.runtime.recover_deliveries(stale_after=5)
    await bot.settle()
    assert len(bot.requests()) == 1  # no second request, no "already has a change request" refusal
    assert not [t for t in bot.private_texts() if "already has a change request" in t]
    assert await replicas(sandbox) == 3  # nothing ran without approval


async def test_a_replayed_approval_runs_the_change_once(bot, sim, sandbox) -> None:
    await bot.slash("scale graphql-api 6", user=OPERATOR)
    request = bot.last_request()
    action = (await bot.runtime.store.actions_in("pending"))[0]
    assert action.id in json.dumps(request["blocks"])
    # the approving replica claimed the click (pending -> approved) and died before running it
    await bot.runtime.store.transition(action.id, ("pending",), "approved", time.time(), approver=APPROVER)
    url = sim.new_response_url(CHANNEL, APPROVER, request["ts"], False)
    click = origin_payload(Origin(user=APPROVER, channel=CHANNEL, response_url=url, message_ts=request["ts"]),
                           value=action.id)
    await orphan(bot, "trigger:dead-3", "approve", click)
    await bot.runtime.recover_deliveries(stale_after=5)
    await bot.settle()
    assert await replicas(sandbox) == 6  # kubectl: the approved change ran
    done = await bot.runtime.store.get_action(action.id)
    assert done is not None and done.state == "done"

    # replayed once more (as if the second replica died too after running it): nothing runs twice
    await bot.runtime.store.driver.execute(
        "UPDATE cf_inbox SET done_at = NULL, heartbeat_at = ? WHERE key = ?", [time.time() - 60, "trigger:dead-3"])
    await bot.runtime.recover_deliveries(stale_after=5)
    await bot.settle()
    events = [e.event for e in await bot.runtime.store.audit_for_action(action.id)]
    assert events.count("running") == 1 and events.count("done") == 1
    assert any("already done" in t for t in bot.private_texts())


async def test_a_retried_delivery_is_recorded_once_and_run_once(bot, sim) -> None:
    first = await bot.runtime.inbox.receive("trigger:same", "command", {"origin": {"user": VIEWER, "channel": CHANNEL}})
    again = await bot.runtime.inbox.receive("trigger:same", "command", {"origin": {"user": VIEWER, "channel": CHANNEL}})
    assert (first, again) == (True, False)
    assert (await inbox_row(bot, "trigger:same"))["done_at"] is None
