"""What the PostgreSQL command modules share: name converters, formatting, labels for empty groups.

Not a command module (it lives in `commands/support`, which `commands.catalog` does not load as commands),
so `commands/database/postgres.py` and `postgres_changes.py` can both import it without importing each other.
"""

from __future__ import annotations

from base.text import code
from commands.args import ECHO
from integrations.postgres import check_identifier

NAME_RULE = "letters, digits, _ and $, not starting with a digit, at most 63 characters; no quotes"


def table_name(raw: str) -> str:
    """TABLE or SCHEMA.TABLE as plain SQL names: anything else is refused before any SQL exists."""
    parts = raw.split(".")
    if len(parts) > 2 or not all(_plain(p) for p in parts):
        raise ValueError(f"{code(raw, ECHO)} is not a plain table name ({NAME_RULE}; optionally schema.table).")
    return raw


def column_name(raw: str) -> str:
    if not _plain(raw):
        raise ValueError(f"{code(raw, ECHO)} is not a plain column name ({NAME_RULE}).")
    return raw


def index_name(raw: str) -> str:
    if not _plain(raw):
        raise ValueError(f"{code(raw, ECHO)} is not a plain index name ({NAME_RULE}).")
    return raw


def split_table(raw: str) -> tuple[str | None, str]:
    schema, _, table = raw.rpartition(".")
    return (schema or None), table


def milliseconds(raw: str) -> float:
    """A non-negative number of milliseconds (`--min-ms 250`)."""
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{code(raw, ECHO)} is not a number of milliseconds.") from None
    if not 0 <= value <= 86_400_000:
        raise ValueError("must be between 0 and 86400000 (a day).")
    return value


# What an empty group of pg_stat_activity is called (`db connections`, `db long-running`): a NULL or empty
# value (psycopg and many drivers set no application_name; `(none)` is what the queries put there) would
# otherwise show as a blank, `None` or `(none)` cell that reads like a rendering fault.
EMPTY_GROUP = {
    "database": "(no database)",
    "state": "(state not reported)",  # NULL state: track_activities off, or another user's session
    "application": "(no application name)",
    "client": "(no user)",  # usename NULL makes the whole `user@host` NULL
    "user": "(no user)",
}


_STAND_INS = {"application": "(none)", "state": "unknown"}  # what integrations.pg_queries puts for NULL/empty


def group_label(key: str, value: object) -> str:
    """A pg_stat_activity group's value as shown, with a readable label where it is empty."""
    text = "" if value is None else str(value).strip()
    return EMPTY_GROUP.get(key, "(empty)") if text in ("", _STAND_INS.get(key)) else text


def queries(n: int) -> str:
    return f"{n} active {'query' if n == 1 else 'queries'}"


def _plain(name: str) -> bool:
    try:
        check_identifier(name)
    except ValueError:
        return False
    return True
