"""The audit trail as a hash chain: each entry carries SHA-256 over its content and the previous entry's hash.

    hash(n) = sha256( hash(n-1) + "\\n" + canonical(entry n) )        hash(0) = sha256("cf-audit-genesis")

`canonical` is the entry's stored fields (time, request, event, actor, command, channel, the detail as the
exact JSON text stored, incident, request id) as compact sorted JSON. The store appends under a lock
(`bot.drivers.insert_chained`) so the order is the store's id order whichever replica writes.

`verify` walks the chain oldest first and stops at the first entry that does not hold:
- its content no longer gives its hash — the entry was **edited** (named);
- its recorded previous hash is not the previous entry's — an entry before it was **deleted** or the order
  changed (the ids in between, if there is a gap, are named);
- it has no hash after the chain began — written around the bot.
Entries written before the chain existed (migration 0006) are counted, not judged. A chain cannot show
that its newest entries were cut off; `head` (the newest hash, printed by `cfbot audit verify` and kept in
every export line) compared with a copy kept elsewhere (a SIEM) does.

Retention (`audit.retention_days`, `Store.prune_audit`) deletes only a contiguous oldest prefix, and first
appends an `audit_pruned` entry to the chain naming the first entry it keeps and that entry's `prev_hash`.
Walking the whole chain (no `--since`), its first entry must either start it (no previous hash) or be vouched
for by such a record further on: the record names this very entry with this previous hash, or a later one
(a retention run that stopped part way through its oldest-first deletion). A prefix deleted any other way
leaves a first entry nobody vouches for, and verify names it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = hashlib.sha256(b"cf-audit-genesis").hexdigest()
PRUNED = "audit_pruned"  # the event retention records before it deletes (detail: first_kept_id, first_kept_prev_hash)
FIELDS = ("at", "action_id", "event", "actor", "command", "channel", "detail", "incident_id", "request_id")
Row = dict[str, Any]


def canonical(row: Row) -> bytes:
    return json.dumps({k: row.get(k) for k in FIELDS}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def entry_hash(prev: str | None, row: Row) -> str:
    return hashlib.sha256((prev or GENESIS).encode() + b"\n" + canonical(row)).hexdigest()


@dataclass
class ChainReport:
    checked: int = 0  # entries whose hash was recomputed
    unchained: int = 0  # entries from before the chain began
    first_id: int | None = None
    head: str | None = None  # the newest entry's hash
    head_id: int | None = None
    bad_id: int | None = None
    problem: str | None = None
    pruned_by: int | None = None  # the audit_pruned entry that accounts for the missing older entries

    @property
    def ok(self) -> bool:
        return self.problem is None

    def summary(self) -> str:
        if not self.ok:
            return f"audit chain BROKEN at entry #{self.bad_id}: {self.problem}"
        if not self.checked:
            return "audit chain: no chained entries to verify" + (
                f" ({self.unchained} written before the chain began)" if self.unchained else "")
        text = (f"audit chain intact: {self.checked} entries verified, #{self.first_id} to #{self.head_id}; "
                f"head {self.head}")
        if self.pruned_by is not None:
            text += f"; entries before #{self.first_id} were removed by retention, as entry #{self.pruned_by} records"
        if self.unchained:
            text += f" ({self.unchained} older entries were written before the chain began and are not covered)"
        return text


def _when(row: Row) -> str:
    return datetime.fromtimestamp(float(row["at"]), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def verify(pages: Callable[[int, float | None], Awaitable[list[Row]]], since: float | None = None,
                 page_size: int = 5000) -> ChainReport:
    """Walk the chain; `pages(after_id, since)` returns the next rows by id (at >= since, when given)."""
    report = ChainReport()
    prev_hash: str | None = None
    prev_id: int | None = None
    started = False
    cut: tuple[int, str] | None = None  # the first entry, when entries before it are gone: to be vouched for
    async for row in _rows(pages, since, page_size):
        rid = int(row["id"])
        if row.get("hash") is None:
            if started:
                report.bad_id, report.problem = rid, (f"entry #{rid} ({_when(row)}, {row['event']}) has no hash: "
                                                      "it was written around the bot")
                return report
            report.unchained += 1
            continue
        if not started:
            started = True
            report.first_id = rid
            # from the first entry --since selects on, trust its link backwards; over the whole chain, a first
            # entry with a previous hash needs a retention record (audit_pruned) to vouch for it
            prev_hash = row.get("prev_hash")
            if since is None and prev_hash is not None:
                cut = (rid, str(prev_hash))
        elif row.get("prev_hash") != prev_hash:
            gap = f" (entries #{prev_id + 1} to #{rid - 1} are missing)" if prev_id is not None and rid > prev_id + 1 \
                else ""
            report.bad_id, report.problem = rid, (
                f"entry #{rid} ({_when(row)}, {row['event']}) does not follow entry #{prev_id}: an entry between "
                f"them was deleted or the order changed{gap}")
            return report
        if entry_hash(prev_hash, row) != row.get("hash"):
            report.bad_id, report.problem = rid, (
                f"entry #{rid} ({_when(row)}, {row['event']} by {row['actor']}) was edited: its content does not "
                "match its hash")
            return report
        report.checked += 1
        prev_hash, prev_id = str(row["hash"]), rid
        report.head, report.head_id = prev_hash, rid
        if cut is not None and report.pruned_by is None and row["event"] == PRUNED and _vouches(row, *cut):
            report.pruned_by = rid
    if cut is not None and report.pruned_by is None:
        report.bad_id, report.problem = cut[0], (
            f"entry #{cut[0]} is the oldest in the store but follows an entry that is gone, and no {PRUNED} entry "
            "records a retention cut there: older entries were deleted")
    return report


def _vouches(row: Row, first_id: int, first_prev: str) -> bool:
    """Whether an audit_pruned entry accounts for a chain that now starts at `first_id` (see the module doc)."""
    try:
        detail = json.loads(row["detail"] or "{}")
        kept = int(detail["first_kept_id"])
    except (ValueError, KeyError, TypeError):
        return False
    if kept == first_id:
        return bool(detail.get("first_kept_prev_hash") == first_prev)
    return kept > first_id


async def _rows(pages: Callable[[int, float | None], Awaitable[list[Row]]], since: float | None,
                page_size: int) -> AsyncIterator[Row]:
    after = 0
    while True:
        batch = await pages(after, since)
        for row in batch:
            yield row
        if len(batch) < page_size:
            return
        after = int(batch[-1]["id"])


__all__ = ["GENESIS", "PRUNED", "ChainReport", "canonical", "entry_hash", "verify"]
