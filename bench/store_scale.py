"""The store at scale: 1,000,000 audit entries and 100,000 change requests over 90 days, on PostgreSQL and on
SQLite. Each row is timed through the code a person reaches: the `/cf audit` command function with each of
its filters, the `incident timeline` command (a typical resolved incident and a long open one), and the App
Home view. p50/p95 of repeated runs after a warm-up; the target is < 300 ms each.

The loader writes the rows in bulk (COPY on PostgreSQL, executemany in one transaction on SQLite), not one
INSERT per row through the bot, but every entry carries a valid hash chain (`bot.audit_chain.entry_hash`),
so `cfbot audit verify` holds on the loaded store. The mix: 300 people (a few very active), ~400 targets
(deployments, nodes, databases, caches, tables), 1,500 incidents of which 12 are open (one long one with
~4,000 steps), each change request's lifecycle (requested, approved or denied or expired, running, done or
failed, verified or not), read commands and refusals for the rest.

    python -m bench store [--engine postgresql|sqlite|both] [--keep] [--reuse] [--runs N]

`--keep` leaves the loaded databases (`cf_bench_store` on PostgreSQL, a file under the temp dir) for the
next `--reuse`, which skips loading; without `--keep` they are dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any

from bot.audit_chain import entry_hash

AUDIT_ROWS, ACTIONS, INCIDENTS, OPEN_INCIDENTS, DAYS = 1_000_000, 100_000, 1_500, 12, 90
PG_ADMIN = os.environ.get("CF_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_NAME = "cf_bench_store"
SQLITE_PATH = Path(tempfile.gettempdir()) / "cf-bench-store.db"
RESULTS = Path(__file__).with_name("RESULTS.md")
TARGET_MS = 300.0
AUDIT_COLUMNS = ("id", "at", "action_id", "event", "actor", "command", "channel", "detail", "incident_id",
                 "request_id", "prev_hash", "hash", "target")
ACTION_COLUMNS = ("id", "command", "args", "requester", "channel", "message_ts", "state", "summary", "request_text",
                  "current_state", "desired_state", "approver", "approver_role", "created_at", "expires_at",
                  "updated_at", "heartbeat_at", "result", "error", "incident_id", "target", "verdict")
INCIDENT_COLUMNS = ("id", "number", "title", "severity", "kind", "status", "channel", "channel_name", "declared_by",
                    "declared_at", "commander", "resolved_at", "resolved_by", "last_update_at", "page_keys")
READS = ("pods", "logs", "status", "db slow", "nodes", "metrics", "cache stats", "events", "top", "db locks")
CHANGES = ("scale", "restart", "rollback", "node cordon", "node drain", "db kill", "cache flush", "db reboot")


# --- the data set ----------------------------------------------------------------------------------------


@dataclass
class Facts:
    """What the timed commands ask for: picked from the data so each filter has something to find."""

    common_target: str = "graphql-api"
    rare_target: str = ""
    busy_user: str = ""
    quiet_user: str = ""
    old_request: str = ""  # a change request from ~60 days ago
    read_request: str = ""  # a read command's request id
    big_incident: str = ""
    typical_incident: str = ""


@dataclass
class Dataset:
    audit: list[dict[str, Any]] = field(default_factory=list)  # without id and hashes, sorted by time
    actions: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    facts: Facts = field(default_factory=Facts)


def _targets(rng: random.Random) -> list[str]:
    services = ["graphql-api", "checkout", "payments", "search", "auth", "orders", "inventory", "notifications",
                "cart", "catalog", "pricing", "recommendations", "gateway", "media", "billing", "shipping"]
    deployments = [f"{s}{'' if i == 0 else f'-{i}'}" for s in services for i in range(8)]
    out = [f"deployment/{d} in candlefish" for d in deployments]
    out += [f"node/ip-10-0-{rng.randrange(256)}-{rng.randrange(256)}.ec2.internal" for _ in range(200)]
    out += [f"rds/candlefish-db-{i}" for i in range(8)] + [f"elasticache/cache-{i}" for i in range(6)]
    out += [f"nodegroup/ng-{i} in candlefish-eks" for i in range(6)] + [f"table public.t{i}" for i in range(40)]
    return out


def generate(n_audit: int = AUDIT_ROWS, n_actions: int = ACTIONS, n_incidents: int = INCIDENTS,
             now: float | None = None, seed: int = 15) -> Dataset:
    """A deterministic, realistic mix (see the module docstring); `audit` has exactly `n_audit` entries."""
    rng = random.Random(seed)
    now = time.time() if now is None else now
    start = now - DAYS * 86400
    data = Dataset()
    users = [f"U0{i:07d}" for i in range(300)]
    weights = list(accumulate(1 / (i + 1) ** 0.9 for i in range(len(users))))
    targets = _targets(rng)
    target_weights = list(accumulate(8.0 if t.startswith("deployment/graphql-api ") else 1 / (i % 50 + 1) ** 0.5
                                     for i, t in enumerate(targets)))

    def who() -> str:
        return rng.choices(users, cum_weights=weights)[0]

    audit = data.audit

    # incidents: resolved ones spread over the 90 days, the open ones in the last two days, one long one
    windows: list[tuple[str, float, float, str]] = []
    iid: str | None
    channel: str | None
    for k in range(n_incidents):
        number = k + 1
        is_open = k >= n_incidents - OPEN_INCIDENTS
        declared = now - rng.uniform(600, 2 * 86400) if is_open else start + (k / n_incidents) * (DAYS - 2) * 86400
        if k == n_incidents - 1:
            declared = now - 3 * 86400  # the long open incident: three days and still going
        ends = now if is_open else declared + rng.uniform(1800, 6 * 3600)
        iid, channel = f"INC-{number}", f"C0INC{number:06d}"
        commander = who()
        data.incidents.append({
            "id": iid, "number": number, "title": f"{rng.choice(['Elevated 5xx', 'Latency', 'DB load'])} #{number}",
            "severity": rng.choice(["sev1", "sev2", "sev3"]), "kind": "general",
            "status": "investigating" if is_open else "resolved", "channel": channel,
            "channel_name": f"inc-{number}", "declared_by": commander, "declared_at": declared,
            "commander": commander, "resolved_at": None if is_open else ends, "resolved_by": None if is_open else who(),
            "last_update_at": ends, "page_keys": "[]"})
        windows.append((iid, declared, ends, channel))
        steps = n_audit // 500 if k == n_incidents - 1 else rng.randint(4, 25)  # 2,000 steps at 1M
        audit.append(_row(declared, "declared", commander, "incident declare", channel, iid,
                          {"title": f"incident {number}", "severity": "sev2"}))
        for _ in range(steps):
            event = rng.choice(["updated", "updated", "assigned", "paged", "alert_firing", "statuspage_opened"])
            audit.append(_row(rng.uniform(declared, ends), event, who(), f"incident {event}", channel, iid,
                              {"text": "Mitigation in progress; error rate falling", "status": "identified"}))
        if not is_open:
            audit.append(_row(ends, "resolved", who(), "incident resolve", channel, iid, {}))

    # change requests and their lifecycles
    for n in range(n_actions):
        iid, channel = None, None
        if n % 250 == 0 or rng.random() < 0.15:
            iid, lo, hi, channel = windows[-1] if n % 250 == 0 else rng.choice(windows)
            created = rng.uniform(lo, hi)
        else:
            created = rng.uniform(start, now - 3600)
            channel = "C0OPS" + str(rng.randrange(20))
        pending = n >= n_actions - 30  # waiting for approval: one per target (cf_actions_one_per_target)
        target = targets[n % len(targets)] if pending else rng.choices(targets, cum_weights=target_weights)[0]
        _action(data, rng, n, created, iid, channel or "C0OPS", target, who, pending=pending)

    # read commands and refusals fill the rest, in and out of incidents
    k = 0
    while len(audit) < n_audit:
        k += 1
        at = rng.uniform(start, now)
        cmd = rng.choice(READS)
        event = "refused" if rng.random() < 0.03 else "ran"
        detail = {"text": f"{cmd} {rng.choice(['-n candlefish', '--since 1h', 'graphql-api', ''])}".strip()}
        audit.append(_row(at, event, who(), cmd, "C0OPS" + str(rng.randrange(20)), None, detail,
                          request_id=f"rq{k:010x}"))
    del audit[n_audit:]
    audit.sort(key=lambda r: r["at"])

    facts = data.facts
    counts = Counter(a["target"] for a in data.actions if a["target"].startswith("node/"))
    facts.rare_target = min(sorted(counts), key=lambda t: counts[t])  # the node with the fewest changes
    facts.busy_user, facts.quiet_user = users[0], users[-1]
    old = [a for a in data.actions if now - 61 * 86400 < a["created_at"] < now - 59 * 86400]
    facts.old_request = old[0]["id"]
    facts.read_request = next(r["request_id"] for r in audit[len(audit) // 3:] if r["request_id"])
    facts.big_incident = windows[-1][0]
    facts.typical_incident = windows[n_incidents // 2][0]
    return data


def _row(at: float, event: str, actor: str, command: str, channel: str | None, incident_id: str | None,
         detail: dict[str, Any], action_id: str | None = None, request_id: str | None = None,
         target: str | None = None) -> dict[str, Any]:
    """An entry as the store writes it: the hashed fields (`bot.audit_chain.FIELDS`) and the request's target."""
    return {"at": at, "action_id": action_id, "event": event, "actor": actor, "command": command, "channel": channel,
            "detail": json.dumps(detail, sort_keys=True), "incident_id": incident_id, "request_id": request_id,
            "target": target}


def _action(data: Dataset, rng: random.Random, n: int, created: float, iid: str | None, channel: str, target: str,
            who: Callable[[], str], pending: bool) -> None:
    aid = f"{n:06x}{rng.getrandbits(24):06x}"
    command = rng.choice(CHANGES)
    requester, approver = who(), who()
    name = target.split()[0].split("/")[-1]
    current, desired = f"{rng.randint(1, 8)} replicas", f"{rng.randint(1, 12)} replicas"
    outcome = "pending" if pending else rng.choices(
        ["verified", "not_verified", "done", "failed", "denied", "expired", "stale"], [60, 5, 10, 5, 8, 10, 2])[0]
    state = {"verified": "done", "not_verified": "done"}.get(outcome, outcome)
    text = f"{command} {name} {desired.split()[0]}"
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("requested", requester, {"args": {"name": name}, "current": current, "desired": desired,
                                  "summary": f"{command} {target}", "exempt": False, "target": target,
                                  "reverts": None})]
    if outcome == "denied":
        steps.append(("denied", approver, {"reason": "not now"}))
    elif outcome == "expired":
        steps.append(("expired", "cf", {}))
    elif outcome != "pending":
        steps.append(("approved", approver, {"requester": requester}))
        if outcome == "stale":
            steps.append(("stale", "cf", {"was": current, "now": "3 replicas"}))
        else:
            steps.append(("running", "cf", {}))
            if outcome == "failed":
                steps.append(("failed", "cf", {"error": "the API refused: conflict"}))
            else:
                steps.append(("done", "cf", {"before": current, "after": desired, "approver": approver}))
                if outcome in ("verified", "not_verified"):
                    steps.append((outcome, "cf", {"verdict": outcome, "took_seconds": 42, "seen": "3/3 ready"}))
    at = created
    for event, actor, detail in steps:
        data.audit.append(_row(at, event, actor, command, channel, iid, detail, action_id=aid, target=target))
        at += rng.uniform(5, 300)
    data.actions.append({
        "id": aid, "command": command, "args": json.dumps({"name": name}), "requester": requester, "channel": channel,
        "message_ts": f"{created:.6f}", "state": state, "summary": f"{command} {target}", "request_text": text,
        "current_state": current, "desired_state": desired,
        "approver": approver if outcome not in ("pending", "expired") else None, "approver_role": "approver",
        "created_at": created, "expires_at": created + 3600, "updated_at": at, "heartbeat_at": None,
        "result": None, "error": "the API refused: conflict" if outcome == "failed" else None, "incident_id": iid,
        "target": target, "verdict": outcome if outcome in ("verified", "not_verified") else None})


def chained(rows: list[dict[str, Any]], first_id: int = 1) -> Iterator[tuple[Any, ...]]:
    """Each row with its id and its link in the hash chain, as the store would have appended it."""
    prev: str | None = None
    for i, row in enumerate(rows):
        digest = entry_hash(prev, row)
        yield (first_id + i, row["at"], row["action_id"], row["event"], row["actor"], row["command"], row["channel"],
               row["detail"], row["incident_id"], row["request_id"], prev, digest, row["target"])
        prev = digest


# --- loading -----------------------------------------------------------------------------------------------


def _migrations() -> list[Any]:
    from bot.store import MIGRATIONS
    from incidents import schema

    return [*MIGRATIONS, *schema.MIGRATIONS]


async def _create_schema(url: str) -> None:
    from bot.store import Store

    store = await Store.open(url, _migrations())
    await store.close()


def load_postgres(data: Dataset, url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        with conn.cursor() as cur:
            for table, cols, rows in (("cf_incidents", INCIDENT_COLUMNS, data.incidents),
                                      ("cf_actions", ACTION_COLUMNS, data.actions)):
                with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(tuple(row[c] for c in cols))
            with cur.copy(f"COPY cf_audit ({', '.join(AUDIT_COLUMNS)}) FROM STDIN") as copy:
                for values in chained(data.audit):
                    copy.write_row(values)
            cur.execute("SELECT setval(pg_get_serial_sequence('cf_audit', 'id'), (SELECT max(id) FROM cf_audit))")
            cur.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk insert (PostgreSQL 13+)


def load_sqlite(data: Dataset, path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        for table, cols, rows in (("cf_incidents", INCIDENT_COLUMNS, data.incidents),
                                  ("cf_actions", ACTION_COLUMNS, data.actions)):
            marks = ", ".join("?" for _ in cols)
            conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})",
                             (tuple(r[c] for c in cols) for r in rows))
        marks = ", ".join("?" for _ in AUDIT_COLUMNS)
        conn.executemany(f"INSERT INTO cf_audit ({', '.join(AUDIT_COLUMNS)}) VALUES ({marks})", chained(data.audit))
        conn.execute("COMMIT")
    finally:
        conn.close()


def pg_url(name: str = PG_NAME) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def _pg_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


async def prepare(engine: str, data: Callable[[], Dataset], reuse: bool) -> tuple[str, float | None]:
    """The engine's loaded store (loaded now unless `reuse` finds one): its URL and the seconds loading took."""
    if engine == "postgresql":
        url = pg_url()
        if reuse and _pg_exists(PG_NAME):
            return url, None
        _pg_admin(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
        _pg_admin(f'CREATE DATABASE "{PG_NAME}"')
        await _create_schema(url)
        started = time.perf_counter()
        await asyncio.to_thread(load_postgres, data(), url)
        return url, time.perf_counter() - started
    url = f"sqlite:///{SQLITE_PATH}"
    if reuse and SQLITE_PATH.exists():
        return url, None
    drop(engine)
    await _create_schema(url)
    started = time.perf_counter()
    await asyncio.to_thread(load_sqlite, data(), SQLITE_PATH)
    return url, time.perf_counter() - started


def drop(engine: str) -> None:
    if engine == "postgresql":
        _pg_admin(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{SQLITE_PATH}{suffix}").unlink(missing_ok=True)


# --- timing --------------------------------------------------------------------------------------------------


async def _facts_from(store: Any) -> Facts:
    """The same picks as `generate` makes, read back from a loaded store (for `--reuse`)."""
    driver = store.driver
    facts = Facts()
    row = await driver.fetch("SELECT target FROM cf_actions WHERE target LIKE 'node/%' GROUP BY target "
                             "ORDER BY count(*), target LIMIT 1")
    facts.rare_target = str(row[0]["target"])
    busy = await driver.fetch("SELECT requester FROM cf_actions WHERE requester = 'U00000000' LIMIT 1")
    facts.busy_user = str(busy[0]["requester"]) if busy else "U00000000"
    facts.quiet_user = "U00000299"
    max_at = (await driver.fetch("SELECT max(created_at) AS m FROM cf_actions"))[0]["m"]
    old = await driver.fetch("SELECT id FROM cf_actions WHERE created_at < ? ORDER BY created_at DESC LIMIT 1",
                             [float(max_at) - 60 * 86400])
    facts.old_request = str(old[0]["id"])
    read = await driver.fetch("SELECT request_id FROM cf_audit WHERE id > 333333 AND request_id IS NOT NULL "
                              "ORDER BY id LIMIT 1")
    facts.read_request = str(read[0]["request_id"])
    numbers = await driver.fetch("SELECT max(number) AS m FROM cf_incidents")
    top = int(numbers[0]["m"])
    facts.big_incident, facts.typical_incident = f"INC-{top}", f"INC-{top // 2 + 1}"
    return facts


Case = tuple[str, Callable[[], Awaitable[Any]]]


def cases(runtime: Any, facts: Facts) -> list[Case]:
    from commands.base import Context
    from commands.bot import audit
    from commands.catalog import REGISTRY
    from commands.incidents.incidents import timeline

    def ctx(name: str, channel: str = "C0OPS1") -> Context:
        spec = REGISTRY.get(name)
        assert spec is not None, name
        return Context(user="U00000001", channel=channel, namespace="candlefish", settings=runtime.settings,
                       services=runtime.services, needs=frozenset(spec.needs))

    a, t = ctx("audit"), ctx("incident timeline")
    day = 86400
    return [
        ("`/cf audit` (last 20)", lambda: audit(a)),
        ("`/cf audit 200`", lambda: audit(a, 200)),
        ("`/cf audit --target graphql-api` (busiest target)", lambda: audit(a, target=facts.common_target)),
        (f"`/cf audit --target {facts.rare_target}` (the quietest node)", lambda: audit(a, target=facts.rare_target)),
        ("`/cf audit --target no-such-thing` (no match)", lambda: audit(a, target="no-such-thing")),
        ("`/cf audit --user` (busiest person)", lambda: audit(a, user=f"<@{facts.busy_user}>")),
        ("`/cf audit --user` (quietest person)", lambda: audit(a, user=f"<@{facts.quiet_user}>")),
        ("`/cf audit --since 1h`", lambda: audit(a, since=3600)),
        ("`/cf audit --since 30d --user --target`",
         lambda: audit(a, target=facts.common_target, user=f"<@{facts.busy_user}>", since=30 * day)),
        ("`/cf audit --id` (a change 60 days old)", lambda: audit(a, id=facts.old_request)),
        ("`/cf audit --id` (a read command)", lambda: audit(a, id=facts.read_request)),
        ("`/cf audit --target graphql-api --export` (10,000)",
         lambda: audit(a, target=facts.common_target, export=True)),
        (f"`/cf incident timeline` ({facts.typical_incident}, resolved)", lambda: timeline(t, facts.typical_incident)),
        (f"`/cf incident timeline` ({facts.big_incident}, open, ~4,000 steps)",
         lambda: timeline(t, facts.big_incident)),
        ("App Home view", lambda: runtime.ops.home.view()),
    ]


@asynccontextmanager
async def bot_on(url: str) -> AsyncIterator[Any]:
    """The bot assembled on the loaded store (as `cfbot run` assembles it), its Slack a console that keeps quiet."""
    import io

    from bot.config import parse_settings
    from demo.console import ConsoleMessenger
    from incidents.assemble import build_runtime

    settings = parse_settings({"incident_channel": "C0INCIDENT"}, "bench")
    runtime = await build_runtime(settings, database_url=url, messenger=ConsoleMessenger(out=io.StringIO()),
                                  services={})
    try:
        yield runtime
    finally:
        await runtime.close()


async def timed(name: str, call: Callable[[], Awaitable[Any]], runs: int) -> dict[str, Any]:
    await call()  # warm-up (and the names cache, as a running bot has it)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[max(0, -(-95 * len(times) // 100) - 1)]
    row = {"case": name, "p50": statistics.median(times), "p95": p95}
    print(f"  {name}: p50 {row['p50']:.1f} ms, p95 {p95:.1f} ms", flush=True)
    return row


async def time_cases(url: str, runs: int, facts: Facts | None) -> tuple[list[dict[str, Any]], int]:
    async with bot_on(url) as runtime:
        facts = facts or await _facts_from(runtime.store)
        count = (await runtime.store.driver.fetch("SELECT count(*) AS n FROM cf_audit"))[0]["n"]
        return [await timed(name, call, runs) for name, call in cases(runtime, facts)], int(count)


# Each index of migration 0009 left out in turn (the others in place), with the rows it is for. The action
# index is put back as it was before (action_id alone) rather than left out: entries must be found by request.
ABLATIONS: list[tuple[str, list[str], list[str], tuple[str, ...]]] = [
    ("cf_audit_target (target, id)", ["DROP INDEX cf_audit_target"],
     ["CREATE INDEX cf_audit_target ON cf_audit (target, id)"], ("--target", "--user --target")),
    ("cf_actions_target (target)", ["DROP INDEX cf_actions_target"],
     ["CREATE INDEX cf_actions_target ON cf_actions (target)"], ("--target graphql-api` (",)),
    ("cf_audit_actor (actor, id)", ["DROP INDEX cf_audit_actor"],
     ["CREATE INDEX cf_audit_actor ON cf_audit (actor, id)"], ("--user",)),
    ("cf_actions_requester, cf_actions_approver", ["DROP INDEX cf_actions_requester", "DROP INDEX cf_actions_approver"],
     ["CREATE INDEX cf_actions_requester ON cf_actions (requester)",
      "CREATE INDEX cf_actions_approver ON cf_actions (approver)"], ("--user",)),
    ("cf_audit_action_id (action_id, id), with (action_id) back",
     ["DROP INDEX cf_audit_action_id", "CREATE INDEX cf_audit_action ON cf_audit (action_id)"],
     ["DROP INDEX cf_audit_action", "CREATE INDEX cf_audit_action_id ON cf_audit (action_id, id)"],
     ("--user", "--id", "timeline")),
]


async def ablate(url: str, runs: int, facts: Facts | None) -> list[dict[str, Any]]:
    """Time the rows each index is for without it (then put it back): what each index buys."""
    rows = []
    async with bot_on(url) as runtime:
        driver = runtime.store.driver
        facts = facts or await _facts_from(runtime.store)
        for label, drop_sql, create_sql, wanted in ABLATIONS:
            print(f" without {label}", flush=True)
            for sql in drop_sql:
                await driver.execute(sql)
            try:
                for name, call in cases(runtime, facts):
                    if any(w in name for w in wanted) and "--export" not in name:
                        rows.append({"index": label, **await timed(name, call, runs)})
            finally:
                for sql in create_sql:
                    await driver.execute(sql)
    return rows


def table(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    engines = list(results)
    head = "| query | " + " | ".join(f"{e} p50 ms | {e} p95 ms" for e in engines) + " | target (< 300 ms) |"
    lines = [head, "|---|" + "---|---|" * len(engines) + "---|"]
    for i, row in enumerate(results[engines[0]]):
        cells, ok = [], True
        for e in engines:
            r = results[e][i]
            cells.append(f"{r['p50']:.1f} | {r['p95']:.1f}")
            ok = ok and r["p95"] < TARGET_MS
        lines.append(f"| {row['case']} | " + " | ".join(cells) + f" | {'met' if ok else 'MISSED'} |")
    return lines


async def verified(url: str) -> str:
    """`cfbot audit verify`'s walk over the loaded store (the loader's hash chain must hold)."""
    from bot.audit_chain import verify
    from bot.store import Store

    store = await Store.open(url, [])
    try:
        started = time.perf_counter()
        report = await verify(lambda after, since: store.audit_rows(after, since))
    finally:
        await store.close()
    print(f"  {report.summary()}", flush=True)
    if not report.ok:
        raise SystemExit(f"the loaded chain does not verify: {report.summary()}")
    return f"`cfbot audit verify` intact over {report.checked:,} entries ({time.perf_counter() - started:.0f} s)"


async def retention(url: str, days: float = 30.0) -> dict[str, Any]:
    """Audit retention over the loaded trail (what the hourly job does): entries older than `days` go, except
    from the oldest entry of an open incident on; then the chain is walked again. Changes the store (last)."""
    from bot.audit_chain import verify
    from bot.store import Store
    from incidents.store import IncidentStore

    store = await Store.open(url, _migrations())
    try:
        now = float((await store.driver.fetch("SELECT max(at) AS m FROM cf_audit"))[0]["m"])
        keep = [i.id for i in await IncidentStore(store).open_incidents()]
        started = time.perf_counter()
        deleted = await store.prune_audit(before=now - days * 86400, keep_incidents=keep, now=now,
                                          detail={"retention_days": days})
        took = time.perf_counter() - started
        left = int((await store.driver.fetch("SELECT count(*) AS n FROM cf_audit"))[0]["n"])
        started = time.perf_counter()
        report = await verify(lambda after, since: store.audit_rows(after, since))
        checked = time.perf_counter() - started
    finally:
        await store.close()
    row = {"days": days, "kept_incidents": len(keep), "deleted": deleted, "seconds": took, "left": left,
           "verify": report.summary(), "verify_seconds": checked, "ok": report.ok and report.pruned_by is not None}
    print(f"  retention {days:g} d: deleted {deleted:,} in {took:.1f} s, {left:,} left; {report.summary()}", flush=True)
    return row


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench store", description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--keep", action="store_true", help="keep the loaded databases for --reuse")
    parser.add_argument("--reuse", action="store_true", help="time the databases a --keep run left")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-ablate", action="store_true", help="skip timing without each index")
    parser.add_argument("--retention", action="store_true",
                        help="last, run audit retention (30 days) over the loaded trail and verify it (changes it)")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)
    engines = ["postgresql", "sqlite"] if args.engine == "both" else [args.engine]
    cached: list[Dataset] = []

    def data() -> Dataset:
        if not cached:
            started = time.perf_counter()
            cached.append(generate())
            print(f"generated {AUDIT_ROWS:,} audit rows, {ACTIONS:,} actions in {time.perf_counter() - started:.0f} s",
                  flush=True)
        return cached[0]

    results: dict[str, list[dict[str, Any]]] = {}
    without: dict[str, list[dict[str, Any]]] = {}
    pruned: dict[str, dict[str, Any]] = {}
    loads: dict[str, str] = {}
    try:
        for engine in engines:
            url, took = await prepare(engine, data, args.reuse)
            loads[engine] = ("reused" if took is None else f"loaded in {took:.0f} s") + ", " + await verified(url)
            print(f"{engine}: {loads[engine]}", flush=True)
            facts = cached[0].facts if cached else None
            rows, count = await time_cases(url, args.runs, facts)
            results[engine] = rows
            loads[engine] = f"{count:,} audit rows, " + loads[engine]
            if not args.no_ablate:
                without[engine] = await ablate(url, 5, facts)
            if args.retention:
                pruned[engine] = await retention(url)
    finally:
        if not args.keep:
            for engine in engines:
                drop(engine)
    lines = table(results)
    if without:
        lines += ["", "Without each index of migration 0009 in turn (the others in place; 5 runs):", "",
                  *ablation_table(without)]
    if pruned:
        lines += ["", "Retention (`audit.retention_days: 30`) over the loaded trail, then `cfbot audit verify`'s walk:",
                  "",
                  "| engine | open incidents kept | deleted | took | left | verify |", "|---|---|---|---|---|---|"]
        lines += [f"| {e} | {r['kept_incidents']} | {r['deleted']:,} | {r['seconds']:.1f} s | {r['left']:,} | "
                  f"{'intact' if r['ok'] else 'BROKEN'}, {r['verify_seconds']:.0f} s: {r['verify']} |"
                  for e, r in pruned.items()]
    print("\n".join(lines))
    if not args.no_write:
        write_section(lines, loads, args.runs)
    return 0


def ablation_table(without: dict[str, list[dict[str, Any]]]) -> list[str]:
    engines = list(without)
    lines = ["| index left out | query | " + " | ".join(f"{e} p50 ms | {e} p95 ms" for e in engines) + " |",
             "|---|---|" + "---|---|" * len(engines)]
    for i, row in enumerate(without[engines[0]]):
        cells = [f"{without[e][i]['p50']:.1f} | {without[e][i]['p95']:.1f}" for e in engines]
        lines.append(f"| {row['index']} | {row['case']} | " + " | ".join(cells) + " |")
    return lines


MARK_BEGIN, MARK_END = "<!-- store-scale:begin -->", "<!-- store-scale:end -->"


def section(lines: list[str], loads: dict[str, str], runs: int) -> str:
    doc = " ".join((__doc__ or "").split("\n\n")[0].split())
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    how = "; ".join(f"{e}: {v}" for e, v in loads.items())
    return "\n".join([MARK_BEGIN, "## The store at scale", "", doc, "",
                      f"Run {when}, {runs} timed runs per row after one warm-up ({how}); `python -m bench store`.",
                      "", *lines, *NOTES, MARK_END])


NOTES: list[str] = [
    "",
    "Before migration 0009 and the rewritten `audit_query` (same data and bench, 10 runs; PostgreSQL analyzed, not",
    "vacuumed):",
    "",
    "| query | postgresql p50 ms | postgresql p95 ms | sqlite p50 ms | sqlite p95 ms |",
    "|---|---|---|---|---|",
    "| `/cf audit` (last 20) | 14.6 | 25.6 | 0.8 | 4.1 |",
    "| `/cf audit 200` | 27.4 | 45.3 | 4.3 | 5.3 |",
    "| `/cf audit --target graphql-api` (busiest target) | 1547.0 | 1667.8 | 2.4 | 4.6 |",
    "| `/cf audit --target node/…` (a node) | 75.8 | 107.1 | 31.9 | 56.0 |",
    "| `/cf audit --target no-such-thing` (no match) | 2350.5 | 2663.3 | 6516.2 | 9056.0 |",
    "| `/cf audit --user` (busiest person) | 5.0 | 16.6 | 1.1 | 5.8 |",
    "| `/cf audit --user` (quietest person) | 510.9 | 573.4 | 67.2 | 94.1 |",
    "| `/cf audit --since 1h` | 5.1 | 12.1 | 1.3 | 6.0 |",
    "| `/cf audit --since 30d --user --target` | 979.0 | 1108.0 | 17.1 | 22.0 |",
    "| `/cf audit --id` (a change 60 days old) | 4.0 | 13.6 | 0.6 | 10.0 |",
    "| `/cf audit --id` (a read command) | 0.9 | 7.4 | 0.3 | 5.2 |",
    "| `/cf audit --target graphql-api --export` (10,000) | 2208.2 | 3173.1 | 2705.2 | 4724.0 |",
    "| `/cf incident timeline` (resolved) | 7.9 | 21.4 | 4.9 | 9.7 |",
    "| `/cf incident timeline` (open, ~4,000 steps) | 206.4 | 478.2 | 172.9 | 723.2 |",
    "| App Home view | 11.6 | 13.9 | 2.2 | 3.4 |",
    "",
    "What EXPLAIN showed, and what changed:",
    "",
    "- `--target` read the target out of the JSON detail of each entry's `requested` entry (a self-join per row), so",
    "  no index could answer it: PostgreSQL walked the whole trail newest first (2.4 s when nothing matches) and",
    "  SQLite the same (6.5 s). Now the target is a column of `cf_audit` (copied from `cf_actions.target` by the",
    "  INSERT itself, and filled for old entries by the migration; not hashed, being derived, while the hashed",
    "  `requested` detail still carries it) with an index on (target, id). The words are matched against the few",
    "  hundred distinct targets, read by a loose index scan of `cf_actions_target` (one probe per target), not",
    "  against every request. Requests from before targets were stored (target '') still match by their detail.",
    "- `--user` was `actor IN … OR requester IN … OR approver IN …` over a join: the planners walked the trail newest",
    "  first and stopped only once enough matched, fast for a busy person, a full pass for a quiet one (0.5 s). Now it",
    "  is the union of two index reads, the person's own entries on (actor, id) and the entries of the requests they",
    "  made or approved (cf_actions_requester/_approver, then (action_id, id)), each cut to the newest N first.",
    "- `--since`, `--id`, the timeline (`incident_id`) and the App Home queries (open incidents, pending requests)",
    "  already had their indexes; what is left in the long timeline and the 10,000-entry export is Python:",
    "  decoding each entry's JSON and writing the draft or the JSON Lines (`incidents/postmortem.py`,",
    "  `commands/bot.py` `_export`), about 35 µs and 60 µs an entry. The export is a file upload of up to 10,000",
    "  entries rather than an interactive answer; it stays over 300 ms.",
    "- The migration on an existing 1M-row store took 28 s (PostgreSQL) and 18 s (SQLite) here, once, at start-up.",
    "  Loading the data set (generated in ~15 s, the hash chain computed in the loader, then COPY or executemany)",
    "  took 55 s into PostgreSQL and 65 s into SQLite.",
]


def write_section(lines: list[str], loads: dict[str, str], runs: int) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    block = section(lines, loads, runs)
    if MARK_BEGIN in text and MARK_END in text:
        before, rest = text.split(MARK_BEGIN, 1)
        text = before + block + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text)
