"""`cfbot audit verify|export`: check the audit trail's hash chain, or hand it to a SIEM as JSON Lines.

Both read the store named by `DATABASE_URL` (as `cfbot run` does) and change nothing in it.

    cfbot audit verify [--since 7d|2026-12-01] [--expect-head HASH]
        exit 0 when the chain holds (prints how many entries, from which to which, and the head hash);
        exit 1 naming the first entry that was edited, or that follows a deleted one; with --expect-head,
        also when the newest hash is not HASH (entries cut off the end, which no chain can show by itself).
    cfbot audit export --format jsonl [--since …] [--out FILE]
        one JSON object per entry, oldest first, with `prev_hash` and `hash`, raw user ids.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from base.durations import UNIT_SECONDS


class UsageProblem(Exception):
    """A bad option, said in one line."""


def register(sub: Any) -> None:
    audit = sub.add_parser("audit", help="verify the audit trail's hash chain, or export it (JSON Lines)")
    what = audit.add_subparsers(dest="audit_cmd", required=True)
    verify = what.add_parser("verify", help="walk the hash chain; exit 1 at the first entry that does not hold")
    verify.add_argument("--since", default=None, help="only from this age (7d, 12h) or date (2026-12-01) on")
    verify.add_argument("--expect-head", default=None, help="the head hash kept elsewhere (a SIEM, the last export)")
    verify.set_defaults(func=_cmd_verify)
    export = what.add_parser("export", help="write the entries with their hashes as JSON Lines")
    export.add_argument("--format", choices=["jsonl"], default="jsonl")
    export.add_argument("--since", default=None, help="only from this age (7d, 12h) or date (2026-12-01) on")
    export.add_argument("--out", default="-", help="a file (default: standard output)")
    export.set_defaults(func=_cmd_export)


def since_epoch(raw: str | None, now: float | None = None) -> float | None:
    """`7d`, `12h`, `30m` (an age) or `2026-12-01` / ISO 8601 (a date, UTC when no zone) -> epoch seconds."""
    if raw is None:
        return None
    text = raw.strip().lower()
    if re.fullmatch(r"(\d+[smhd])+", text):
        seconds = sum(int(n) * UNIT_SECONDS[u] for n, u in re.findall(r"(\d+)([smhd])", text))
        return (now if now is not None else time.time()) - seconds
    try:
        when = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise UsageProblem(f"--since {raw!r}: give an age (7d, 12h, 30m) or a date (2026-12-01)") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


async def _open_store() -> Any:
    from bot.config import Secrets
    from bot.store import Store

    return await Store.open(Secrets.from_env().database_url)


def _cmd_verify(args: argparse.Namespace) -> int:
    from bot.audit_chain import verify

    try:
        since = since_epoch(args.since)
    except UsageProblem as exc:
        print(f"cfbot: {exc}", file=sys.stderr)
        return 2

    async def run() -> int:
        store = await _open_store()
        try:
            report = await verify(lambda after, since_: store.audit_rows(after, since_), since)
        finally:
            await store.close()
        print(report.summary())
        if report.ok and args.expect_head and report.head != args.expect_head:
            print(f"audit chain head {report.head} is not the expected {args.expect_head}: entries after it were "
                  "removed, or it is not the same trail")
            return 1
        return 0 if report.ok else 1

    return asyncio.run(run())


def _cmd_export(args: argparse.Namespace) -> int:
    try:
        since = since_epoch(args.since)
    except UsageProblem as exc:
        print(f"cfbot: {exc}", file=sys.stderr)
        return 2

    async def run(out: TextIO) -> int:
        store = await _open_store()
        count, after = 0, 0
        try:
            while True:
                rows = await store.audit_rows(after, since)
                for row in rows:
                    out.write(json.dumps(export_line(row), sort_keys=True, ensure_ascii=False) + "\n")
                count += len(rows)
                if len(rows) < 5000:
                    break
                after = int(rows[-1]["id"])
        finally:
            await store.close()
        print(f"exported {count} audit entries", file=sys.stderr)
        return 0

    if args.out == "-":
        return asyncio.run(run(sys.stdout))
    with open(args.out, "w", encoding="utf-8") as handle:
        return asyncio.run(run(handle))


def export_line(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "time": datetime.fromtimestamp(float(row["at"]), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "at": row["at"],
        "event": row["event"],
        "actor": row["actor"],
        "command": row["command"],
        "channel": row["channel"],
        "action_id": row["action_id"],
        "request_id": row["request_id"],
        "incident_id": row["incident_id"],
        "detail": json.loads(row["detail"] or "{}"),
        "detail_json": row["detail"],  # the exact text the hash covers
        "prev_hash": row.get("prev_hash"),
        "hash": row.get("hash"),
    }
