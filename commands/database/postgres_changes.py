"""Database changes (runbook: kill long-running queries, ANALYZE, CREATE INDEX CONCURRENTLY).

Each is validated against the live database when requested (what would be terminated, that the
table and column exist, that the index name is free) and again when approved, since the bot calls
a change command twice; `apply` then acts on the state of that moment. Table, column and index
names are refused by the argument converters unless they are plain SQL names, so an injection
attempt never reaches SQL; the names that pass are quoted with `sql.Identifier` in the client.
"""

from __future__ import annotations

from typing import Any

from base.durations import duration_text
from base.text import one_line
from commands.args import duration, opt, pos
from commands.base import CommandError, Context, Kind, Role, command
from commands.reply import Change, Outcome, Reply, Table
from commands.support.pg import column_name, index_name, queries, split_table, table_name
from commands.support.verify_pg import analyzed_since, index_valid, server_now, sessions_gone
from integrations.protocols import PostgresClient

AREA = "Database"
NO_UNDO_ANALYZE = "planner statistics keep no previous version to go back to; ANALYZE again at any time"


@command(
    "db kill-long",
    summary="Terminate active queries older than the threshold (default 5m), after approval.",
    area=AREA,
    args=[opt("--older", duration, "minimum age, e.g. 30s, 5m, 1h (default 5m)", metavar="AGE")],
    kind=Kind.change,
    role=Role.operator,
    example="/cf db kill-long --older 10m",
    needs=["postgres"],
)
async def db_kill_long(ctx: Context, older: int | None = None) -> Change:
    client = ctx.postgres
    seconds = older or ctx.settings.targets.postgres.long_running_seconds
    db = client.where.rpartition("/")[2]
    victims = await client.kill_candidates(seconds)
    if not victims:
        raise CommandError(f"No active queries older than {duration_text(seconds)} in `{db}`; nothing to terminate.")
    shown = "; ".join(f"pid {v['pid']} ({v['user']}, {duration_text(v['age_s'])}): {one_line(v['query'], 60)}"
                      for v in victims[:5])
    more = f"; and {len(victims) - 5} more" if len(victims) > 5 else ""

    async def apply() -> Outcome:
        done = await client.kill_older_than(seconds)
        ended = [v for v in done if v["terminated"]]
        spared = len(done) - len(ended)
        after = f"{len(ended)} terminated" + (f", {spared} not terminated (see the thread)" if spared else "")
        # verified when the terminated sessions are gone and no selected query still runs (a refused one does)
        return Outcome(before=f"{queries(len(done))} older than {duration_text(seconds)}", after=after,
                       detail=_kill_report(done, db), verify=sessions_gone(done) if done else None)

    return Change(
        summary=f"Terminate {queries(len(victims))} older than {duration_text(seconds)} in database {db}",
        current=f"{queries(len(victims))}: {shown}{more}",
        # The list moves by itself (queries end, others pass the threshold), and `apply` re-selects by design
        # (see the warning): the approval is for the rule "older than AGE", so it is bound to nothing volatile.
        basis="",
        desired="those queries terminated (pg_terminate_backend); their transactions roll back",
        apply=apply,
        target=f"database {db}",
        warnings=["Only queries still older than the threshold when this is approved are terminated; "
                  "this bot's own sessions, replication and background workers never are."],
        no_undo="a terminated query cannot be resumed: its transaction rolled back, and its client has to run it again",
    )


def _kill_report(rows: list[dict[str, Any]], db: str) -> Reply:
    table = Table(
        ["PID", "USER", "AGE", "RESULT", "QUERY"],
        [[str(r["pid"]), r["user"] or "", duration_text(r["age_s"]), "terminated" if r["terminated"] else r["error"],
          one_line(r["query"], 100)] for r in rows],
        empty="Nothing matched any more when the change ran.",
    )
    return Reply(title=f"db kill-long in `{db}`: {sum(1 for r in rows if r['terminated'])} terminated",
                 parts=[table])


@command(
    "db analyze",
    summary="Update planner statistics (ANALYZE) for one table or the whole database, after approval.",
    area=AREA,
    args=[pos("TABLE", table_name, "a table (or schema.table); default: the whole database", default=None)],
    kind=Kind.change,
    role=Role.operator,
    example="/cf db analyze documents",
    needs=["postgres"],
)
async def db_analyze(ctx: Context, table: str | None = None) -> Change:
    client = ctx.postgres
    db = client.where.rpartition("/")[2]
    if table is None:
        never, total = await client.never_analyzed()

        async def apply_all() -> Outcome:
            began = await server_now(ctx)
            took = await client.analyze(None, None)
            left, count = await client.never_analyzed()
            return Outcome(before=f"{never} of {total} tables never analyzed",
                           after=f"ANALYZE took {_secs(took)}; {left} of {count} never analyzed",
                           verify=analyzed_since(began))

        # autovacuum analyzes tables by itself, so the count moves: the approval is bound to nothing volatile
        return Change(summary=f"ANALYZE the whole database {db}", current=f"{never} of {total} tables never analyzed",
                      basis="", desired="fresh planner statistics for every table", apply=apply_all,
                      target=f"database {db}", no_undo=NO_UNDO_ANALYZE)
    found = await _table(client, table, db)
    name = f"{found['schema']}.{found['table']}"

    async def apply() -> Outcome:
        began = await server_now(ctx)
        took = await client.analyze(found["schema"], found["table"])
        now = await _table(client, name, db)
        return Outcome(before=_analyzed(found), after=f"analyzed in {_secs(took)}; ~{now['rows']} rows",
                       verify=analyzed_since(began, found["schema"], found["table"]))

    # its last-analyzed time and row estimate move with autovacuum: bound to the table alone
    return Change(summary=f"ANALYZE {name} in database {db}", current=_analyzed(found), basis=f"table {name}",
                  desired="fresh planner statistics for this table", apply=apply, target=f"table {name}",
                  no_undo=NO_UNDO_ANALYZE)


def _secs(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.0f} s"


def _analyzed(row: dict[str, Any]) -> str:
    when = row["last_analyzed"]
    stamp = when.strftime("%Y-%m-%d %H:%M:%S %Z") if when is not None else "never"
    return f"last analyzed {stamp}; ~{max(int(row['rows']), 0)} rows (planner estimate)"


@command(
    "db create-index",
    summary="CREATE INDEX CONCURRENTLY on one column (writes continue meanwhile), after approval.",
    area=AREA,
    args=[
        pos("TABLE", table_name, "the table (or schema.table)"),
        pos("COLUMN", column_name, "the column to index"),
        opt("--name", index_name, "the index name (default idx_TABLE_COLUMN)", metavar="NAME"),
    ],
    kind=Kind.change,
    role=Role.operator,
    example="/cf db create-index documents updated_at",
    needs=["postgres"],
)
async def db_create_index(ctx: Context, table: str, column: str, name: str | None = None) -> Change:
    client = ctx.postgres
    db = client.where.rpartition("/")[2]
    found = await _table(client, table, db)
    schema, relation = found["schema"], found["table"]
    columns = await client.columns_of(schema, relation)
    if column not in columns:
        raise CommandError(f"Table `{schema}.{relation}` has no column `{column}`. Its columns: "
                           + ", ".join(f"`{c}`" for c in columns[:40]) + ".")
    index = name or f"idx_{relation}_{column}"[:63]
    if await client.relation_exists(schema, index):
        raise CommandError(f"`{schema}.{index}` already exists; choose another name with `--name`.")
    indexes = await client.indexes_of(schema, relation)
    same = [ix["name"] for ix in indexes if ix["first_column"] == column and ix["valid"]]
    warnings = [f"`{', '.join(same)}` already leads with `{column}`; another index may only slow down writes."] \
        if same else []

    async def apply() -> Outcome:
        took = await client.create_index(schema, relation, column, index)
        valid = any(ix["name"] == index and ix["valid"] for ix in await client.indexes_of(schema, relation))
        return Outcome(before=f"no index `{index}`",
                       after=f"`{index}` built in {_secs(took)}" + ("" if valid else " but it is NOT valid"),
                       verify=index_valid(schema, relation, index))

    return Change(
        summary=f"Create index {index} on {schema}.{relation} ({column}) in database {db}",
        current=f"{len(indexes)} indexes on {schema}.{relation}: " + (", ".join(i["name"] for i in indexes) or "none"),
        desired=f"index `{index}` on ({column}), built with CREATE INDEX CONCURRENTLY",
        apply=apply,
        target=f"table {schema}.{relation}",
        warnings=warnings,
        no_undo=f"cf has no command to drop an index: dropping one that queries may use by then is a decision of "
                f"its own (`DROP INDEX CONCURRENTLY {schema}.{index}` in psql, which does not block writes)",
    )


async def _table(client: PostgresClient, raw: str, db: str) -> dict[str, Any]:
    schema, table = split_table(raw)
    found = await client.find_table(schema, table)
    if found is None:
        names = ", ".join(f"`{n}`" for n in await client.table_names()) or "none"
        raise CommandError(f"Table `{raw}` was not found in `{db}` (names are case-sensitive). Tables: {names}.")
    return found

