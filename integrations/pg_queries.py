"""The catalog queries behind the Database commands, kept apart from the connection handling.

All values are bind parameters (`%s`); the only composed part is `SLOW_STATEMENTS`'s ORDER BY
column, filled with `sql.Identifier` from a fixed choice. Every query is scoped to the monitored
database (`current_database()`), the one the DSN names.
"""

from __future__ import annotations

# Client sessions (not background workers, not replication) grouped the ways `db connections` shows.
CONNECTIONS = r"""
SELECT datname AS database, (datname = current_database()) AS here,
       coalesce(state, 'unknown') AS state,
       coalesce(nullif(application_name, ''), '(none)') AS application,
       usename || '@' || coalesce(host(client_addr), 'local') AS client,
       count(*)::int AS n
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
 GROUP BY 1, 2, 3, 4, 5
"""

# The runbook's "Slow Queries Detected" query, for this database only.
SLOW_STATEMENTS = r"""
SELECT left(regexp_replace(query, '\s+', ' ', 'g'), 300) AS query, calls,
       mean_exec_time AS mean_ms, total_exec_time AS total_ms, rows
  FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND mean_exec_time >= %s
 ORDER BY {order} DESC
 LIMIT %s
"""

_ACTIVITY_COLUMNS = r"""
       pid, usename AS user, coalesce(nullif(application_name, ''), '(none)') AS application,
       coalesce(host(client_addr), 'local') AS client, query_start,
       extract(epoch FROM clock_timestamp() - query_start)::float AS age_s,
       coalesce(wait_event_type || ':' || wait_event, '') AS waiting,
       left(regexp_replace(query, '\s+', ' ', 'g'), 300) AS query
"""

_LONG = r"""
 datname = current_database() AND backend_type = 'client backend' AND state = 'active'
   AND pid <> pg_backend_pid()
   AND query_start < clock_timestamp() - make_interval(secs => %s)
"""

# The runbook's long-running filter (active, older than the threshold) in this database.
ACTIVE_OLDER_THAN = f"SELECT {_ACTIVITY_COLUMNS} FROM pg_stat_activity WHERE {_LONG} ORDER BY query_start"

# What `db kill-long` would terminate: the same, minus the bot's own sessions (application_name).
KILL_CANDIDATES = (
    f"SELECT {_ACTIVITY_COLUMNS} FROM pg_stat_activity "
    f"WHERE coalesce(application_name, '') NOT LIKE %s AND {_LONG} ORDER BY query_start"
)

# Terminate one candidate only if it is still running the very query that was selected.
TERMINATE_IF_SAME = r"""
SELECT pg_terminate_backend(pid) AS terminated
  FROM pg_stat_activity
 WHERE pid = %s AND query_start = %s AND state = 'active' AND datname = current_database()
   AND backend_type = 'client backend'
"""

# The runbook's pg_stats query, as it means it: many distinct values (a negative n_distinct is a
# fraction of the rows), little correlation with the physical order, and no index leading with it.
INDEX_CANDIDATES = r"""
SELECT s.schemaname AS schema, s.tablename AS table, s.attname AS column,
       s.n_distinct, s.correlation, c.reltuples::bigint AS rows,
       round(CASE WHEN s.n_distinct < 0 THEN -s.n_distinct * c.reltuples ELSE s.n_distinct END) AS est_distinct
  FROM pg_stats s
  JOIN pg_namespace n ON n.nspname = s.schemaname
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename AND c.relkind IN ('r', 'p', 'm')
 WHERE NOT s.inherited
   AND s.schemaname NOT IN ('pg_catalog', 'information_schema') AND s.schemaname NOT LIKE 'pg\_toast%%'
   AND (s.n_distinct > 100 OR -s.n_distinct * c.reltuples > 100)
   AND s.correlation < 0.1
   AND NOT EXISTS (
         SELECT 1 FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
          WHERE x.indrelid = c.oid AND a.attname = s.attname)
 ORDER BY 7 DESC, 1, 2, 3
 LIMIT %s
"""

# Tables read mostly by sequential scans that each read many rows.
HEAVY_SEQ_SCANS = r"""
SELECT schemaname AS schema, relname AS table, seq_scan, seq_tup_read,
       coalesce(idx_scan, 0) AS idx_scan, n_live_tup AS rows,
       (seq_tup_read / greatest(seq_scan, 1))::bigint AS rows_per_scan
  FROM pg_stat_user_tables
 WHERE seq_scan > coalesce(idx_scan, 0) AND seq_tup_read / greatest(seq_scan, 1) >= 1000
 ORDER BY seq_tup_read DESC
 LIMIT %s
"""
