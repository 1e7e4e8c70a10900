"""Small helpers the AWS command modules share: times as people read them.

A private module (the leading underscore keeps `commands.catalog` from treating it as a command
module), so the AWS command modules can share it without importing one another.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from base.durations import duration_text


def utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None


def stamp(value: Any) -> str:
    """`2026-11-27 07:04 UTC`, or an em dash when AWS did not say."""
    moment = utc(value)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def ago(value: Any, now: datetime | None = None) -> str:
    """`12m ago`, `3h ago`, `in 9d` (coarse: for people scanning a table)."""
    moment = utc(value)
    if moment is None:
        return "—"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    text = duration_text(abs(seconds), units=1)
    return f"in {text}" if seconds < 0 else f"{text} ago"
