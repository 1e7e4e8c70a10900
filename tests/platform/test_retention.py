"""Audit retention (`audit.retention_days`, issue 15 §2) on both engines, judged by `cfbot audit verify`.

Retention deletes the oldest contiguous part of the hash chain — everything before the oldest entry it must
keep (newer than the cut-off, or of an open incident) — after an `audit_pruned` entry in the chain names the
first entry kept. So: an open incident's entries stay however old, the rest past the cut-off go, the chain
still verifies, and a prefix deleted by hand (no such record) still fails verify, naming the first entry left.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from bot.audit_chain import PRUNED, verify
from bot.config import Settings, parse_settings
from bot.store import MIGRATIONS, Store
from incidents import schema
from incidents.jobs import AuditRetentionJob
from incidents.store import IncidentStore
from tests.platform.test_audit_chain import cfbot

DAY = 86400.0
NOW = 1_800_000_000.0


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(store_url, [*MIGRATIONS, *schema.MIGRATIONS])
    try:
        yield opened
    finally:
        await opened.close()


async def entry(store: Store, days_ago: float, incident: str | None = None, what: str = "pods") -> int:
    return await store.append_audit(at=NOW - days_ago * DAY, event="ran", actor="U0OPERATOR", command=what,
                                    detail={"text": what}, incident_id=incident)


def job(store: Store, days: float | None) -> AuditRetentionJob:
    return AuditRetentionJob(settings_with(days), store, IncidentStore(store), clock=lambda: NOW)


def settings_with(days: float | None) -> Settings:
    audit = {"audit": {"retention_days": days}} if days is not None else {}
    return parse_settings({"incident_channel": "C0INCIDENT", **audit}, "test")


async def ids(store: Store) -> list[int]:
    return [int(r["id"]) for r in await store.audit_rows(0)]


async def chain(store: Store) -> str:
    report = await verify(lambda after, since: store.audit_rows(after, since))
    return report.summary()


async def test_retention_keeps_open_incidents_deletes_the_rest_and_the_chain_verifies(
        store: Store, store_url: str) -> None:
    records = IncidentStore(store)
    still_open = await records.create_incident(title="slow checkout", severity="sev2", kind="general",
                                               declared_by="U0OPERATOR", now=NOW - 50 * DAY)
    closed = await records.create_incident(title="old", severity="sev3", kind="general", declared_by="U0OPERATOR",
                                           now=NOW - 99 * DAY)
    await records.resolve_incident(closed.id, "U0OPERATOR", NOW - 98 * DAY)
    old = await entry(store, 100)
    of_closed = await entry(store, 99, closed.id, "incident declare")
    of_open = await entry(store, 50, still_open.id, "incident declare")
    between = await entry(store, 40)  # old, but after the open incident's first entry: the prefix stops before it
    of_open_later = await entry(store, 35, still_open.id, "incident update")
    recent = await entry(store, 1)

    assert await job(store, 30).run() == 2  # the entry before the open incident's and the closed incident's
    left = await ids(store)
    assert old not in left and of_closed not in left
    assert [of_open, between, of_open_later, recent] == left[:4]
    assert [e.id for e in await store.audit_for_incident(still_open.id)] == [of_open, of_open_later]
    pruned = (await store.audit_rows(0))[-1]
    assert pruned["event"] == PRUNED and json.loads(pruned["detail"])["first_kept_id"] == of_open
    assert json.loads(pruned["detail"])["kept_incidents"] == [still_open.id]

    result = await asyncio.to_thread(cfbot, store_url, "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"entries before #{of_open} were removed by retention, as entry #{pruned['id']} records" in result.stdout

    # nothing more to cut while the incident is open; once it is resolved, its old entries go too
    assert await job(store, 30).run() == 0
    await records.resolve_incident(still_open.id, "U0OPERATOR", NOW - 2 * DAY)
    assert await store.prune_audit(before=NOW - 30 * DAY, now=NOW, batch=2) == 3  # in batches, oldest first
    assert (await ids(store))[0] == recent
    assert "intact" in await chain(store)
    result = await asyncio.to_thread(cfbot, store_url, "verify")
    assert result.returncode == 0 and f"entries before #{recent} were removed by retention" in result.stdout


async def test_a_prefix_deleted_by_hand_fails_verify_also_after_retention(store: Store, store_url: str) -> None:
    written = [await entry(store, 10 - i) for i in range(8)]
    await store.driver.execute("DELETE FROM cf_audit WHERE id < ?", [written[3]])  # no audit_pruned record
    result = await asyncio.to_thread(cfbot, store_url, "verify")
    assert result.returncode == 1
    assert f"BROKEN at entry #{written[3]}" in result.stdout and "older entries were deleted" in result.stdout

    # a retention run afterwards records its own cut (which covers what it deletes, the hand-made gap included)
    kept = written[5]
    assert await store.prune_audit(before=NOW - (10 - 5) * DAY, now=NOW) == 2
    assert (await ids(store))[0] == kept
    assert "intact" in await chain(store)
    # ... and deleting more by hand after a cut fails again
    await store.driver.execute("DELETE FROM cf_audit WHERE id = ?", [kept])
    result = await asyncio.to_thread(cfbot, store_url, "verify")
    assert result.returncode == 1 and f"BROKEN at entry #{written[6]}" in result.stdout


async def test_a_cut_that_stopped_part_way_still_verifies_but_a_record_with_another_hash_does_not(
        store: Store) -> None:
    written = [await entry(store, 20 - i) for i in range(10)]
    cut = await store.audit_retention_cut(NOW - 12 * DAY)
    assert cut == written[8]
    first_kept = (await store.audit_rows(cut - 1))[0]
    await store.append_audit(at=NOW, event=PRUNED, actor="cf", command="audit retention",
                             detail={"first_kept_id": cut, "first_kept_prev_hash": first_kept["prev_hash"]})
    await store.driver.execute("DELETE FROM cf_audit WHERE id < ?", [written[3]])  # its first batch, then it died
    assert "intact" in await chain(store)
    await store.driver.execute("DELETE FROM cf_audit WHERE id < ?", [cut])  # the next run finishes it
    assert "intact" in await chain(store)

    more = [await entry(store, 5 - i / 10) for i in range(4)]
    await store.append_audit(at=NOW, event=PRUNED, actor="cf", command="audit retention",
                             detail={"first_kept_id": more[2], "first_kept_prev_hash": "0" * 64})
    await store.driver.execute("DELETE FROM cf_audit WHERE id < ?", [more[2]])
    text = await chain(store)
    assert f"BROKEN at entry #{more[2]}" in text and "older entries were deleted" in text, text


async def test_unset_retention_keeps_everything_and_the_job_is_registered_only_when_set(store: Store,
                                                                                       tmp_path) -> None:
    await entry(store, 400)
    await entry(store, 1)
    assert await job(store, None).run() == 0 and len(await ids(store)) == 2

    from demo.console import ConsoleMessenger
    from incidents.assemble import build_runtime

    for days, expected in ((None, False), (90, True)):
        runtime = await build_runtime(settings_with(days), database_url=f"sqlite:///{tmp_path / f'r{days}.db'}",
                                      messenger=ConsoleMessenger(), services={})
        try:
            assert ("audit.retention" in runtime.scheduler.jobs) is expected
        finally:
            await runtime.close()
