"""What the two Database command modules share: name converters, formatting.

Not a command module (the leading underscore keeps `commands.catalog` from loading it as one), so
`database.py` and `database_changes.py` can both import it without importing each other.
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


def queries(n: int) -> str:
    return f"{n} active {'query' if n == 1 else 'queries'}"


def _plain(name: str) -> bool:
    try:
        check_identifier(name)
    except ValueError:
        return False
    return True
