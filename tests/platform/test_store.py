"""The store against both engines: SQLite files and the machine's PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from bot.store import APPROVED, DONE, EXPIRED, INTERRUPTED, PENDING, RUNNING, Action, Store, open_driver


def _action(action_id: str = "a1", now: float = 1000.0, ttl: float = 900.0) -> Action:
    return Action(
        id=action_id, command="scale", args={"deployment": "graphql-api", "replicas": 10}, requester="U0OPERATOR",
        channel="C0INCIDENT", state=PENDING, summary="Scale graphql-api", approver_role="approver",
        created_at=now, expires_at=now + ttl, updated_at=now, current_state="3 replicas", desired_state="10 replicas",
    )


async def test_migrations_are_idempotent(store_url: str) -> None:
    store = await Store.open(store_url)
    again = await store.driver.migrate(__import__("bot.store", fromlist=["MIGRATIONS"]).MIGRATIONS)
    assert again == []
    await store.close()


async def test_action_round_trip_and_transitions(store_url: str) -> None:
    store = await Store.open(store_url)
    await store.create_action(_action())
    got = await store.get_action("a1")
    assert got is not None and got.args == {"deployment": "graphql-api", "replicas": 10}
    approved = await store.transition("a1", (PENDING,), APPROVED, 1001.0, unexpired=True, approver="U0APPROVER")
    assert approved is not None and approved.state == APPROVED and approved.approver == "U0APPROVER"
    assert await store.transition("a1", (PENDING,), APPROVED, 1002.0, approver="U0OTHER") is None
    running = await store.transition("a1", (APPROVED,), RUNNING, 1003.0, heartbeat_at=1003.0)
    assert running is not None and running.heartbeat_at == 1003.0
    done = await store.transition("a1", (RUNNING,), DONE, 1004.0, result='{"before": "3", "after": "10"}')
    assert done is not None and done.state == DONE
    await store.close()


async def test_concurrent_claims_have_one_winner(store_url: str) -> None:
    """Twenty simultaneous approvals through two connections: exactly one transition succeeds."""
    first = await Store.open(store_url)
    second = Store(open_driver(store_url))
    await first.create_action(_action("race"))
    attempts = [
        (first if i % 2 else second).transition("race", (PENDING,), APPROVED, 1001.0, unexpired=True,
                                                 approver=f"U{i}")
        for i in range(20)
    ]
    results = await asyncio.gather(*attempts)
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    stored = await first.get_action("race")
    assert stored is not None and stored.approver == winners[0].approver
    await first.close()
    await second.close()


async def test_expired_request_cannot_be_approved_and_is_swept(store_url: str) -> None:
    store = await Store.open(store_url)
    await store.create_action(_action("old", now=1000.0, ttl=60.0))
    assert await store.transition("old", (PENDING,), APPROVED, 1061.0, unexpired=True, approver="U1") is None
    expired = await store.expire_due(1061.0)
    assert [a.id for a in expired] == ["old"] and expired[0].state == EXPIRED
    assert await store.expire_due(1062.0) == []
    await store.close()


async def test_stale_running_actions_are_interrupted(store_url: str) -> None:
    store = await Store.open(store_url)
    await store.create_action(_action("r1"))
    await store.create_action(_action("r2"))
    for aid in ("r1", "r2"):
        await store.transition(aid, (PENDING,), APPROVED, 1001.0)
        await store.transition(aid, (APPROVED,), RUNNING, 1001.0, heartbeat_at=1001.0)
    await store.heartbeat("r2", 1100.0)
    interrupted = await store.interrupt_stale(1110.0, heartbeat_before=1090.0)
    assert [a.id for a in interrupted] == ["r1"] and interrupted[0].state == INTERRUPTED
    await store.close()


async def test_audit_is_durable_across_reopen(store_url: str) -> None:
    store = await Store.open(store_url)
    for i in range(5):
        await store.append_audit(at=1000.0 + i, event="ran", actor="U0VIEWER", command="pods", detail={"i": i})
    await store.close()
    reopened = await Store.open(store_url)
    tail = await reopened.audit_tail(3)
    assert [e.detail["i"] for e in tail] == [4, 3, 2]
    await reopened.close()


async def test_leases_and_once_keys(store_url: str) -> None:
    store = await Store.open(store_url)
    assert await store.try_lease("job", "a", now=100.0, ttl=10.0)
    assert not await store.try_lease("job", "b", now=105.0, ttl=10.0)
    assert await store.try_lease("job", "a", now=106.0, ttl=10.0)  # renewal by the holder
    assert await store.try_lease("job", "b", now=117.0, ttl=10.0)  # expired: taken over
    assert await store.claim_once("k", 1.0)
    assert not await store.claim_once("k", 2.0)
    await store.close()


def test_bad_database_url_is_refused() -> None:
    with pytest.raises(ValueError, match="sqlite:/// or postgresql://"):
        open_driver("mysql://x")
