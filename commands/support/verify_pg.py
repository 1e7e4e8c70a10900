"""Verifiers for the Database changes: sessions gone, an index valid, statistics fresh.

Each is one read of PostgreSQL's catalogs through the monitored database's client (a fresh read-only
session per look, so the cumulative statistics are read as of that moment). They identify what they
watch by value, not by connection, so a restarted bot resumes the watch from the stored params:

- `pg-sessions-gone`: each session `db kill-long` selected, by pid *and* the start of its query (a pid
  seen again with a later `backend_start` is a new session that reused the number): a terminated one
  must be gone from pg_stat_activity, one that was not (permission denied, say) must no longer be
  running that query.
- `pg-index-valid`: `pg_index.indisvalid` of the index by schema and name.
- `pg-analyzed`: `greatest(last_analyze, last_autoanalyze)` against the database server's clock when
  the ANALYZE began (the bot's clock may differ from the server's).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from base.durations import duration_text
from base.text import plural
from commands.base import Context
from commands.reply import Probe, Verification
from commands.verify import verifier

Row = dict[str, Any]

SESSIONS = """
SELECT pid, usename AS user, state, backend_start, query_start,
       extract(epoch FROM clock_timestamp() - query_start)::float AS age_s
  FROM pg_stat_activity WHERE pid = ANY(%s)
"""

INDEX = """
SELECT t.relname AS table, x.indisvalid AS valid, x.indisready AS ready
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
  JOIN pg_class t ON t.oid = x.indrelid
 WHERE n.nspname = %s AND i.relname = %s
"""

# User tables (as `db analyze` counts them) whose statistics are older than the moment given.
NOT_ANALYZED_SINCE = """
SELECT schemaname AS schema, relname AS table, greatest(last_analyze, last_autoanalyze) AS analyzed
  FROM pg_stat_user_tables
 WHERE (%s::text IS NULL OR schemaname = %s) AND (%s::text IS NULL OR relname = %s)
   AND (greatest(last_analyze, last_autoanalyze) IS NULL OR greatest(last_analyze, last_autoanalyze) < %s)
 ORDER BY schemaname, relname
"""
COUNT_TABLES = "SELECT count(*)::int AS n FROM pg_stat_user_tables"
SERVER_NOW = "SELECT clock_timestamp() AS now"


# --- builders -----------------------------------------------------------------------------------


def sessions_gone(victims: list[Row]) -> Verification:
    """Verified when the terminated sessions are gone and none of the selected queries still runs."""
    sessions = [{"pid": int(v["pid"]), "query_start": _iso(v["query_start"]), "user": str(v.get("user") or ""),
                 "terminated": bool(v.get("terminated")), "error": str(v.get("error") or "")} for v in victims]
    return Verification("pg-sessions-gone", {"sessions": sessions}, look_further="/cf db long-running")


def index_valid(schema: str, table: str, index: str) -> Verification:
    return Verification("pg-index-valid", {"schema": schema, "table": table, "index": index})


def analyzed_since(since: datetime, schema: str | None = None, table: str | None = None) -> Verification:
    """Verified when the table (or every user table) was analyzed at or after `since` (the server's clock)."""
    return Verification("pg-analyzed", {"since": _iso(since), "schema": schema, "table": table})


async def server_now(ctx: Context) -> datetime:
    """The database server's clock, which `last_analyze` is stamped with."""
    now: datetime = (await ctx.postgres.rows(SERVER_NOW))[0]["now"]
    return now


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


# --- verifiers ----------------------------------------------------------------------------------


@verifier("pg-sessions-gone", needs=["postgres"])
async def pg_sessions_gone(ctx: Context, sessions: list[Row]) -> Probe:
    rows = await ctx.postgres.rows(SESSIONS, ([int(s["pid"]) for s in sessions],))
    live = {int(r["pid"]): r for r in rows}
    left = [(s, row) for s in sessions if (row := _still_there(s, live.get(int(s["pid"])))) is not None]
    killed = sum(1 for s in sessions if s.get("terminated"))
    if not left:
        text = f"{plural(killed, 'terminated session')} gone from pg_stat_activity"
        spared = len(sessions) - killed
        return Probe(True, text + (f"; the other {spared} no longer running the query" if spared else ""))
    shown = ", ".join(_left_line(s, row) for s, row in left[:5]) + (
        f" and {len(left) - 5} more" if len(left) > 5 else "")
    line = f"{len(sessions) - len(left)} of {plural(len(sessions), 'query', 'queries')} ended; still there: {shown}"
    return Probe(False, line, problem=line)


def _still_there(session: Row, row: Row | None) -> Row | None:
    """The live row when the session (a terminated one) or its query (one not terminated) is still there."""
    started = datetime.fromisoformat(session["query_start"])
    if row is None or row["backend_start"] > started:  # gone, or a new session that reused the pid
        return None
    if session.get("terminated"):
        return row
    return row if row["state"] == "active" and row["query_start"] == started else None


def _left_line(session: Row, row: Row) -> str:
    who = row["user"] or session.get("user") or "?"
    age = f", query running {duration_text(row['age_s'])}" if row["state"] == "active" and row["age_s"] else ""
    why = "" if session.get("terminated") else f", not terminated: {session.get('error') or 'unknown'}"
    return f"pid {session['pid']} ({who}, {row['state'] or 'unknown'}{age}{why})"


@verifier("pg-index-valid", needs=["postgres"])
async def pg_index_valid(ctx: Context, schema: str, table: str, index: str) -> Probe:
    rows = await ctx.postgres.rows(INDEX, (schema, index))
    name = f"{schema}.{index}"
    if not rows:
        return Probe(False, f"index {name} does not exist", problem=f"index {name} does not exist (dropped since?)")
    row = rows[0]
    if row["table"] != table:
        line = f"{name} is an index on {row['table']}, not on {table}"
        return Probe(False, line, problem=line)
    if row["valid"] and row["ready"]:
        return Probe(True, f"index {name} on {table} is valid (pg_index.indisvalid)")
    line = f"index {name} on {table} exists but is INVALID"
    return Probe(False, line, problem=f"{line}: a failed or interrupted CREATE INDEX CONCURRENTLY leaves it so; the "
                                      f"planner ignores it but writes still maintain it. Drop it (DROP INDEX "
                                      f"CONCURRENTLY {name}) and create it again")


@verifier("pg-analyzed", needs=["postgres"])
async def pg_analyzed(ctx: Context, since: str, schema: str | None = None, table: str | None = None) -> Probe:
    moment = datetime.fromisoformat(since)
    stale = await ctx.postgres.rows(NOT_ANALYZED_SINCE, (schema, schema, table, table, moment))
    if table is not None:
        name = f"{schema}.{table}" if schema else table
        if not stale:
            return Probe(True, f"{name} analyzed since the request (pg_stat_user_tables.last_analyze)")
        when = stale[0]["analyzed"]
        line = f"{name} last analyzed {_stamp(when)}, before the ANALYZE began ({_stamp(moment)})"
        return Probe(False, line, problem=line + _skipped_hint())
    total = int((await ctx.postgres.rows(COUNT_TABLES))[0]["n"])
    if not stale:
        return Probe(True, f"{plural(total, 'table')} analyzed since the request")
    names = ", ".join(f"{r['schema']}.{r['table']}" for r in stale[:5]) + (
        f" and {len(stale) - 5} more" if len(stale) > 5 else "")
    line = f"{total - len(stale)} of {plural(total, 'table')} analyzed since the request; not: {names}"
    return Probe(False, line, problem=line + _skipped_hint())


def _skipped_hint() -> str:
    return (" — ANALYZE skips, with only a warning, tables the bot's database role does not own "
            "(grant it ownership or run ANALYZE as the owner)")


def _stamp(value: Any) -> str:
    """To the millisecond: an ANALYZE a moment before the request must not read as the same second."""
    if not isinstance(value, datetime):
        return "never"
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + value.strftime(" %Z")


__all__ = ["analyzed_since", "index_valid", "pg_analyzed", "pg_index_valid", "pg_sessions_gone", "server_now",
           "sessions_gone"]
