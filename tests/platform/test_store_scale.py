"""The store-at-scale benchmark's data and queries, small enough for the suite (the 1M-row run is
`python -m bench store`), on both engines.

The bench's loader writes a valid hash chain (verify holds on what it loads); every `/cf audit` filter, alone
and combined, returns exactly what a plain reading of its meaning selects from all the rows (the indexed
rewrite changes the cost, not the answer); retention on that mix keeps every open incident's entry and the
chain still verifies.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from bench.store_scale import Dataset, generate, load_postgres, load_sqlite
from bot.audit_chain import verify
from bot.store import MIGRATIONS, AuditQuery, Store
from incidents import schema

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def data() -> Dataset:
    return generate(n_audit=4000, n_actions=400, n_incidents=40, now=NOW, seed=7)


async def loaded(store_url: str, data: Dataset) -> Store:
    store = await Store.open(store_url, [*MIGRATIONS, *schema.MIGRATIONS])
    if store.driver.dialect == "postgresql":
        await asyncio.to_thread(load_postgres, data, store_url)
    else:
        await asyncio.to_thread(load_sqlite, data, Path(store_url.removeprefix("sqlite:///")))
    return store


def expected(data: Dataset, query: AuditQuery) -> list[int]:
    """What the filters mean, over every row (ids are 1.. in the loaded order)."""
    actions = {a["id"]: a for a in data.actions}
    words = " " + " ".join((query.target or "").lower().replace("/", " ").split()) + " "
    out = []
    for rid, row in enumerate(data.audit, start=1):
        action: dict[str, Any] = actions.get(row["action_id"] or "", {})
        if query.since is not None and row["at"] < query.since:
            continue
        if query.request_id and query.request_id not in (row["action_id"], row["request_id"]):
            continue
        if query.users and not {row["actor"], action.get("requester"), action.get("approver")} & set(query.users):
            continue
        if query.target and words not in " " + str(action.get("target", "")).lower().replace("/", " ") + " ":
            continue
        out.append(rid)
    return sorted(out, reverse=True)[: query.limit]


async def test_the_loaded_chain_verifies_and_every_filter_selects_what_it_means(store_url: str,
                                                                                data: Dataset) -> None:
    store = await loaded(store_url, data)
    try:
        report = await verify(lambda after, since: store.audit_rows(after, since))
        assert report.ok and report.checked == 4000, report.summary()

        rng = random.Random(3)
        users = sorted({r["actor"] for r in data.audit})
        some_action = rng.choice(data.actions)
        queries = [AuditQuery(50), AuditQuery(50, target="graphql-api"), AuditQuery(50, target=data.facts.rare_target),
                   AuditQuery(50, target="Deployment/GraphQL-API"), AuditQuery(50, target="candlefish"),
                   AuditQuery(50, target="no-such-thing"), AuditQuery(50, target="ip-10-0"),
                   AuditQuery(50, users=(users[0],)), AuditQuery(50, users=(users[-1], users[3])),
                   AuditQuery(50, since=NOW - 86400), AuditQuery(50, request_id=some_action["id"]),
                   AuditQuery(50, request_id=data.facts.read_request),
                   AuditQuery(30, target="graphql-api", users=(users[0],), since=NOW - 30 * 86400),
                   AuditQuery(30, target="graphql-api", request_id=some_action["id"]),
                   AuditQuery(5000, users=(users[1],))]
        for query in queries:
            got = [e.id for e in await store.audit_query(query)]
            assert got == expected(data, query), query
        shown = (await store.audit_query(AuditQuery(1, request_id=some_action["id"])))[0]
        assert (shown.target, shown.requester, shown.command_line) == (
            some_action["target"], some_action["requester"], some_action["request_text"])
    finally:
        await store.close()


async def test_retention_on_the_mix_keeps_open_incidents_and_the_chain(store_url: str, data: Dataset) -> None:
    store = await loaded(store_url, data)
    try:
        open_ids = [i["id"] for i in data.incidents if i["status"] != "resolved"]
        of_open = {rid for rid, r in enumerate(data.audit, start=1) if r["incident_id"] in open_ids}
        deleted = await store.prune_audit(before=NOW - 30 * 86400, keep_incidents=open_ids, now=NOW, batch=500)
        assert deleted > 0
        left = {int(r["id"]) for r in await store.driver.fetch("SELECT id FROM cf_audit")}
        assert of_open <= left
        assert min(left) == min([*of_open, *(i for i, r in enumerate(data.audit, 1) if r["at"] >= NOW - 30 * 86400)])
        report = await verify(lambda after, since: store.audit_rows(after, since))
        assert report.ok and report.pruned_by is not None, report.summary()
    finally:
        await store.close()
