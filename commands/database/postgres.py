"""Database (the runbook's "Database Alerts" and "Database Optimization"): read-only PostgreSQL views.

Every command here runs in a read-only session on the monitored database with a statement timeout
(see `integrations.postgres`); thresholds are `targets.postgres` settings whose defaults are the
runbook's (160 connections, 1000 ms, 5 minutes). The three changes live in `postgres_changes.py`.
The "Database" line of `/cf status` is registered here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from base.durations import duration_text
from base.text import one_line
from commands.args import choice, duration, opt, positive_int
from commands.base import CommandError, Context, command
from commands.checks import Check, status_check
from commands.parts import Failed, degraded, failed_parts, optional
from commands.reply import Fields, Note, Reply, Table, Text
from commands.support.pg import group_label, milliseconds, queries
from integrations.pg_queries import HEAVY_SEQ_SCANS, INDEX_CANDIDATES
from integrations.postgres import StatementsUnavailable

AREA = "Database"
ENABLE_STATEMENTS = (
    "add `pg_stat_statements` to `shared_preload_libraries` (postgresql.conf, or the DB parameter group on RDS), "
    "restart PostgreSQL, then run `CREATE EXTENSION pg_stat_statements;` in `{db}`."
)


@command(
    "db check",
    summary="Connect to the monitored database and run SELECT 1, with latency.",
    area=AREA,
    example="/cf db check",
    needs=["postgres"],
)
async def db_check(ctx: Context) -> Reply:
    client = ctx.postgres
    info = await client.check()
    role = "replica (read-only standby)" if info["replica"] else "primary"
    fields = Fields([("Database", f"`{info['db']}` on {client.where.rpartition('/')[0]}"),
                     ("Server", f"PostgreSQL {info['version']}, {role}"),
                     ("Connect", f"{info['connect_ms']:.1f} ms"), ("SELECT 1", f"{info['query_ms']:.1f} ms")])
    return Reply(title=f"PostgreSQL is up: SELECT 1 in {info['latency_ms']:.0f} ms", parts=[fields], level="ok")


@command(
    "db connections",
    summary="Connections against the threshold and the server's max_connections, by database, state, "
            "application and client.",
    area=AREA,
    example="/cf db connections",
    needs=["postgres"],
)
async def db_connections(ctx: Context) -> Reply:
    """The sessions are the answer; the server's max_connections is an auxiliary part of it."""
    client = ctx.postgres
    rows = await client.connections()
    limit = await optional("max_connections", client.max_connections())
    threshold = ctx.settings.targets.postgres.max_connections_threshold
    total = sum(r["n"] for r in rows)
    here = [r for r in rows if r["here"]]
    over = total > threshold
    server = None if isinstance(limit, Failed) else limit
    blind = server is not None and threshold >= server  # the server refuses before the alert can fire
    known = "" if server is None else f", max_connections {server}"
    title = f"{total} client connections (threshold {threshold}{known})"
    if blind:
        title += f": threshold {threshold} can never trip"
    parts: list[Any] = [
        Fields([("Server total", f"{total} ({100 * total / server:.0f}% of max_connections)" if server else str(total)),
                ("This database", str(sum(r["n"] for r in here))),
                ("Threshold", f"{threshold} (runbook: High Connection Count)"),
                ("max_connections", limit.detail if isinstance(limit, Failed) else str(limit))]),
    ]
    if server is not None and blind:
        parts.append(Text(f"*The threshold {threshold} can never trip: the server refuses connections past "
                          f"max_connections {server}*, so the count cannot exceed it. Set "
                          f"`targets.postgres.max_connections_threshold` below {server} (e.g. 80% of it, "
                          f"{int(server * 0.8)}), or raise max_connections (a restart; on RDS, the parameter group)."))
    parts += [
        _count_table("DATABASE", rows, "database"),
        _count_table("STATE", here, "state"),
        _count_table("APPLICATION", here, "application"),
        _count_table("CLIENT", here, "client"),
        Note("State, application and client are for the monitored database; this bot's own session is not counted."
             + (" Over the threshold: `/cf db long-running` shows what is running." if over else "")),
        *failed_parts(limit),
    ]
    return Reply(title=title, parts=parts, level=degraded("warn" if over or blind else "ok", limit))


def _count_table(label: str, rows: Iterable[dict[str, Any]], key: str) -> Table:
    counts: Counter[str] = Counter()
    for row in rows:
        counts[group_label(key, row[key])] += int(row["n"])
    return Table([label, "CONNECTIONS"], [[k, str(n)] for k, n in counts.most_common(15)], empty="No connections.")


@command(
    "db slow",
    summary="Slowest statements from pg_stat_statements: by mean time (those over the slow-query threshold) "
            "or by total time (every statement).",
    area=AREA,
    args=[
        opt("--by", choice("mean", "total"), "order by mean or total execution time (default mean)", default="mean"),
        opt("--min-ms", milliseconds, "only statements whose mean is at least this; default: with --by mean the "
            "slow-query threshold (1000), with --by total none (a cheap query called a million times leads)",
            metavar="N"),
        opt("--limit", positive_int, "how many statements (default 10, at most 50)", default=10, metavar="N"),
    ],
    example="/cf db slow --by total --limit 10",
    needs=["postgres"],
)
async def db_slow(ctx: Context, by: str = "mean", min_ms: float | None = None, limit: int = 10) -> Reply:
    """By mean, the runbook's "Slow Queries Detected" (mean above the threshold); by total, the runbook's
    "Analyze query performance", which has no mean filter: the statements that cost the most overall are
    often fast ones called very often, and a mean floor would hide exactly those. `--min-ms` applies either way."""
    client = ctx.postgres
    threshold = ctx.settings.targets.postgres.slow_query_ms
    floor = min_ms if min_ms is not None else threshold if by == "mean" else 0.0
    db = client.where.rpartition("/")[2]
    try:
        rows = await client.slow_statements(by, floor, min(limit, 50))
    except StatementsUnavailable as exc:
        state = "is not installed in" if exc.reason == "not_installed" else "is not loaded by the server for"
        raise CommandError(f"pg_stat_statements {state} `{db}`. To enable it, "
                           + ENABLE_STATEMENTS.format(db=db)) from None
    table = Table(
        ["MEAN MS", "CALLS", "TOTAL MS", "ROWS", "QUERY"],
        [[f"{r['mean_ms']:.1f}", str(r["calls"]), f"{r['total_ms']:.0f}", str(r["rows"]), one_line(r["query"], 100)]
         for r in rows],
        empty=(f"No statements with a mean of at least {floor:g} ms. `--min-ms 0` lists the slowest anyway."
               if floor else "No statements recorded since the last pg_stat_statements_reset()."),
    )
    slow = sum(1 for r in rows if r["mean_ms"] > threshold)
    title = f"Top {len(rows)} statements by {by} time in `{db}`" + (f" (mean ≥ {floor:g} ms)" if floor else "")
    note = Note(f"{slow} above the {threshold:g} ms slow-query threshold. Statistics accumulate since the last "
                "pg_stat_statements_reset(). `/cf db index-candidates` suggests indexes.")
    return Reply(title=title, parts=[table, note], level="warn" if slow else "ok")


@command(
    "db long-running",
    summary="Active queries running longer than the threshold (default 5 minutes).",
    area=AREA,
    args=[opt("--older", duration, "minimum age, e.g. 30s, 5m, 1h (default 5m)", metavar="AGE")],
    example="/cf db long-running --older 2m",
    needs=["postgres"],
)
async def db_long_running(ctx: Context, older: int | None = None) -> Reply:
    client = ctx.postgres
    seconds = older or ctx.settings.targets.postgres.long_running_seconds
    rows = await client.active_older_than(seconds)
    db = client.where.rpartition("/")[2]
    table = Table(
        ["PID", "USER", "APPLICATION", "CLIENT", "AGE", "WAITING", "QUERY"],
        [[str(r["pid"]), group_label("user", r["user"]), group_label("application", r["application"]), r["client"],
          duration_text(r["age_s"]), r["waiting"],
          one_line(r["query"], 80)] for r in rows],
        empty=f"No active queries older than {duration_text(seconds)} in `{db}`.",
    )
    parts: list[Any] = [table]
    if rows:
        parts.append(Note(f"`/cf db kill-long --older {duration_text(seconds)}` asks to terminate them "
                          "(after approval)."))
    title = f"{queries(len(rows))} older than {duration_text(seconds)} in `{db}`"
    return Reply(title=title, parts=parts, level="warn" if rows else "ok")


@command(
    "db index-candidates",
    summary="Columns that may need an index (the runbook's pg_stats query) and tables with heavy seq scans.",
    area=AREA,
    args=[opt("--limit", positive_int, "rows per list (default 20, at most 50)", default=20, metavar="N")],
    example="/cf db index-candidates",
    needs=["postgres"],
)
async def db_index_candidates(ctx: Context, limit: int = 20) -> Reply:
    """The runbook's pg_stats query is the answer; the heavy sequential scans are an auxiliary part of it."""
    client, n = ctx.postgres, min(limit, 50)
    columns = await client.rows(INDEX_CANDIDATES, (n,))
    scans = await optional("Tables with heavy sequential scans", client.rows(HEAVY_SEQ_SCANS, (n,)))
    tables = [] if isinstance(scans, Failed) else scans
    col_table = Table(
        ["TABLE", "COLUMN", "DISTINCT (EST.)", "CORRELATION", "ROWS (EST.)"],
        [[f"{r['schema']}.{r['table']}", r["column"], f"{r['est_distinct']:.0f}", f"{r['correlation']:.2f}",
          str(r["rows"])] for r in columns],
        empty="No unindexed columns with more than 100 distinct values and a correlation below 0.1 "
              "(statistics come from ANALYZE: `/cf db analyze`).",
    )
    scan_table = Table(
        ["TABLE", "SEQ SCANS", "ROWS READ", "IDX SCANS", "ROWS/SCAN"],
        [[f"{r['schema']}.{r['table']}", str(r["seq_scan"]), str(r["seq_tup_read"]), str(r["idx_scan"]),
          str(r["rows_per_scan"])] for r in tables],
        empty="No tables read mostly by sequential scans of 1,000 rows or more.",
    )
    scan_part: list[Any] = failed_parts(scans) or [scan_table]
    parts: list[Any] = [col_table, *scan_part,
                        Note("Columns: many distinct values, little correlation with the physical order, and no "
                             "index leading with them. `/cf db create-index TABLE COLUMN` builds one concurrently.")]
    scanned = "" if isinstance(scans, Failed) else f", {len(tables)} tables with heavy sequential scans"
    title = f"Index candidates: {len(columns)} columns{scanned}"
    return Reply(title=title, parts=parts, level=degraded("warn" if columns or tables else "ok", scans))


@status_check("Database", order=50, needs=["postgres"], timeout=15.0)
async def database_status(ctx: Context) -> list[Check]:
    """SELECT 1 and the connection count against its threshold: the two things an alert would say.

    SELECT 1 is the line's primary call; the connection count is an auxiliary part of it."""
    client = ctx.postgres
    info = await client.check()
    rows = await optional("connections", client.connections())
    threshold = ctx.settings.targets.postgres.max_connections_threshold
    detail = f"PostgreSQL `{info['db']}` answers; "
    if isinstance(rows, Failed):
        return [Check("Database", "warn", detail + f"{rows.label}: {rows.detail}", info["latency_ms"])]
    total = sum(r["n"] for r in rows)
    detail += f"{total} connection{'' if total == 1 else 's'} (threshold {threshold})"
    return [Check("Database", "warn" if total > threshold else "ok", detail, info["latency_ms"])]
