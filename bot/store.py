"""The durable store: actions (the approval state machine) and the audit trail.

One schema, two engines (`bot.drivers`: SQLite, the default, and PostgreSQL). Every state change of an
action is one compare-and-set `UPDATE ... WHERE state IN (...) RETURNING`, so two clicks, two approvers or
two replicas sharing the database cannot both win a transition. Audit entries form a hash chain
(`bot.audit_chain`): each carries SHA-256 over its content and the previous entry's hash, appended under
a lock in the store, so editing, deleting or reordering an entry is found by `cfbot audit verify`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.audit_chain import PRUNED, entry_hash
from bot.drivers import Driver, Migration, PostgresDriver, Row, SqliteDriver, StoreUnavailable, open_driver
from bot.inbox import MIGRATION as INBOX_MIGRATION

MIGRATIONS: list[Migration] = [
    Migration(
        "0001_actions_audit",
        (
            """CREATE TABLE IF NOT EXISTS cf_actions (
                id TEXT PRIMARY KEY,
                command TEXT NOT NULL,
                args TEXT NOT NULL,
                requester TEXT NOT NULL,
                channel TEXT NOT NULL,
                message_ts TEXT,
                state TEXT NOT NULL,
                summary TEXT NOT NULL,
                request_text TEXT NOT NULL DEFAULT '',
                current_state TEXT NOT NULL DEFAULT '',
                desired_state TEXT NOT NULL DEFAULT '',
                approver TEXT,
                approver_role TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                heartbeat_at DOUBLE PRECISION,
                result TEXT,
                error TEXT,
                incident_id TEXT
            )""",
            "CREATE INDEX IF NOT EXISTS cf_actions_state ON cf_actions (state, expires_at)",
            """CREATE TABLE IF NOT EXISTS cf_audit (
                id {serial} PRIMARY KEY,
                at DOUBLE PRECISION NOT NULL,
                action_id TEXT,
                event TEXT NOT NULL,
                actor TEXT NOT NULL,
                command TEXT NOT NULL,
                channel TEXT,
                detail TEXT NOT NULL,
                incident_id TEXT,
                request_id TEXT
            )""",
            "CREATE INDEX IF NOT EXISTS cf_audit_action ON cf_audit (action_id)",
            "CREATE INDEX IF NOT EXISTS cf_audit_incident ON cf_audit (incident_id)",
            """CREATE TABLE IF NOT EXISTS cf_leases (
                name TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                until DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS cf_once (
                key TEXT PRIMARY KEY,
                at DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
    # 0002 (incidents, alerts, status-page incidents, job state) belongs to the incidents domain:
    # incidents/schema.py, applied by whoever assembles the bot with incidents (app.assemble).
    # `/cf audit --id` and `--since` (the audit trail grows by every command anyone runs).
    Migration(
        "0003_audit_filters",
        (
            "CREATE INDEX IF NOT EXISTS cf_audit_request ON cf_audit (request_id)",
            "CREATE INDEX IF NOT EXISTS cf_audit_at ON cf_audit (at)",
        ),
    ),
    # Files the bot keeps for later commands (configuration backups for `/cf restore config`): bot/artefacts.py.
    Migration(
        "0004_artefacts",
        (
            """CREATE TABLE IF NOT EXISTS cf_artefacts (
                id {serial} PRIMARY KEY,
                kind TEXT NOT NULL,
                key TEXT NOT NULL,
                name TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                size INTEGER NOT NULL,
                content TEXT NOT NULL,
                created_by TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS cf_artefacts_key ON cf_artefacts (kind, key, created_at)",
        ),
    ),
    # Closing the loop (verdicts, undo, stale approvals): what a request is bound to and what became of it.
    # The partial unique index is "one change at a time per target": a second pending or running request on
    # the same target cannot be inserted, whichever replica tries.
    Migration(
        "0005_verdicts_undo",
        (
            "ALTER TABLE cf_actions ADD COLUMN target TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE cf_actions ADD COLUMN basis TEXT",
            "ALTER TABLE cf_actions ADD COLUMN verdict TEXT",
            "ALTER TABLE cf_actions ADD COLUMN verify_spec TEXT",
            "ALTER TABLE cf_actions ADD COLUMN verify_started DOUBLE PRECISION",
            "ALTER TABLE cf_actions ADD COLUMN verify_deadline DOUBLE PRECISION",
            "ALTER TABLE cf_actions ADD COLUMN verify_note TEXT",
            "ALTER TABLE cf_actions ADD COLUMN undo_spec TEXT",
            "ALTER TABLE cf_actions ADD COLUMN no_undo TEXT",
            "ALTER TABLE cf_actions ADD COLUMN undo_of TEXT",
            "ALTER TABLE cf_actions ADD COLUMN undone_by TEXT",
            "CREATE UNIQUE INDEX IF NOT EXISTS cf_actions_one_per_target ON cf_actions (target) "
            "WHERE state IN ('pending', 'approved', 'running') AND target <> ''",
            "CREATE INDEX IF NOT EXISTS cf_actions_verdict ON cf_actions (verdict)",
        ),
    ),
    # The tamper-evident audit (bot/audit_chain.py): each entry's hash over its content and the previous hash.
    Migration(
        "0006_audit_chain",
        (
            "ALTER TABLE cf_audit ADD COLUMN prev_hash TEXT",
            "ALTER TABLE cf_audit ADD COLUMN hash TEXT",
        ),
    ),
    INBOX_MIGRATION,  # acknowledged deliveries, answered even if their replica dies (bot/inbox.py)
    # The audit at scale (issue 15 §2, `python -m bench store`): every `/cf audit` filter answered from an index.
    # `cf_audit.target` is the change's target copied from its request when each entry is written (derived, like
    # the join it replaces, so outside the hash; the requested entry's hashed detail still holds it), filled here
    # for the entries already written. (x, id) indexes let the newest entries of a target, a person or a request
    # be read in id order without touching the rest; cf_audit_action_id (action_id, id) replaces cf_audit_action.
    Migration(
        "0009_audit_at_scale",
        (
            "ALTER TABLE cf_audit ADD COLUMN target TEXT",
            "UPDATE cf_audit SET target = (SELECT x.target FROM cf_actions x WHERE x.id = cf_audit.action_id) "
            "WHERE action_id IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS cf_audit_target ON cf_audit (target, id)",
            "CREATE INDEX IF NOT EXISTS cf_audit_actor ON cf_audit (actor, id)",
            "CREATE INDEX IF NOT EXISTS cf_audit_action_id ON cf_audit (action_id, id)",
            "DROP INDEX IF EXISTS cf_audit_action",
            "CREATE INDEX IF NOT EXISTS cf_actions_target ON cf_actions (target)",
            "CREATE INDEX IF NOT EXISTS cf_actions_requester ON cf_actions (requester)",
            "CREATE INDEX IF NOT EXISTS cf_actions_approver ON cf_actions (approver)",
        ),
    ),
    # Whether the request message shows the action's latest state and verdict (1) or a redraw is owed (NULL, set by
    # every transition): a message update lost to Slack or to a dying replica is redrawn by the sweep.
    Migration(
        "0010_request_message_shown",
        (
            "ALTER TABLE cf_actions ADD COLUMN shown INTEGER",
            "UPDATE cf_actions SET shown = 1",
            "CREATE INDEX IF NOT EXISTS cf_actions_unshown ON cf_actions (updated_at) WHERE shown IS NULL",
        ),
    ),
]


# --- records ---------------------------------------------------------------------------------


@dataclass
class Action:
    id: str
    command: str
    args: dict[str, Any]
    requester: str
    channel: str
    state: str
    summary: str
    approver_role: str
    created_at: float
    expires_at: float
    updated_at: float
    request_text: str = ""
    current_state: str = ""
    desired_state: str = ""
    message_ts: str | None = None
    approver: str | None = None
    heartbeat_at: float | None = None
    result: str | None = None
    error: str | None = None
    incident_id: str | None = None
    target: str = ""
    basis: str | None = None  # what the approval is bound to (Change.basis); None: current_state
    verdict: str | None = None  # verifying | verified | not_verified, once done (None: nothing to verify)
    verify_spec: str | None = None  # JSON of the Verification
    verify_started: float | None = None
    verify_deadline: float | None = None
    verify_note: str | None = None  # the verdict's line: what was seen, or what is still wrong
    undo_spec: str | None = None  # JSON of the Undo, once done
    no_undo: str | None = None  # why there is no undo
    undo_of: str | None = None  # the request this one reverts
    undone_by: str | None = None  # the undo request made for this one
    shown: int | None = None  # 1: the request message shows this state and verdict; NULL: a redraw is owed

    @property
    def bound_to(self) -> str:
        return self.current_state if self.basis is None else self.basis

    @classmethod
    def from_row(cls, row: Row) -> Action:
        data = dict(row)
        data["args"] = json.loads(data["args"])
        return cls(**data)

    def to_row(self) -> Row:
        data = self.__dict__.copy()
        data["args"] = json.dumps(self.args, sort_keys=True)
        return data


@dataclass
class AuditEntry:
    id: int
    at: float
    action_id: str | None
    event: str
    actor: str
    command: str
    channel: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    incident_id: str | None = None
    request_id: str | None = None
    prev_hash: str | None = None  # the chain (bot/audit_chain.py); None on entries from before it
    hash: str | None = None

    @classmethod
    def from_row(cls, row: Row) -> AuditEntry:
        data = dict(row)
        data.pop("target", None)  # a column for `/cf audit --target` (migration 0009); AuditView shows it
        data["detail"] = json.loads(data["detail"] or "{}")
        return cls(**data)


@dataclass
class AuditView(AuditEntry):
    """An audit entry as `/cf audit` shows it: with its change request's target, command line and people.

    Read from the stored rows, nothing more is stored: the target is the one the command declared
    (`Change.target`, kept in the `requested` entry's detail), the command line is the request's
    `request_text` (or, for a read command or a refusal, the `text` its entry recorded).
    """

    target: str = ""
    command_line: str = ""
    requester: str | None = None
    approver: str | None = None

    @classmethod
    def from_row(cls, row: Row) -> AuditView:
        data = dict(row)
        data["detail"] = json.loads(data["detail"] or "{}")
        typed = data.pop("request_text", None)
        if not typed and data["event"] in ("ran", "refused"):
            typed = data["detail"].get("text")
        data["command_line"] = str(typed or "")
        data["target"] = str(data.get("target") or "")
        return cls(**data)


@dataclass(frozen=True)
class AuditQuery:
    """Which audit entries to read, newest first. Empty filters select everything."""

    limit: int
    target: str | None = None  # a whole word (or `kind/name`) of the change's target, any case
    users: tuple[str, ...] = ()  # user ids: the actor, or the requester or approver of the change
    since: float | None = None  # epoch seconds
    request_id: str | None = None  # a change request's id (its action id) or a command's request id


AUDIT_COLUMNS = ("id", "at", "action_id", "event", "actor", "command", "channel", "detail", "incident_id", "request_id",
                 "prev_hash", "hash")

PENDING, APPROVED, RUNNING, DONE, FAILED = "pending", "approved", "running", "done", "failed"
DENIED, EXPIRED, INTERRUPTED, STALE = "denied", "expired", "interrupted", "stale"
FINAL_STATES = (DONE, FAILED, DENIED, EXPIRED, INTERRUPTED, STALE)
ACTIVE_STATES = (PENDING, APPROVED, RUNNING)  # at most one per target (cf_actions_one_per_target)
# A done change's verdict (`Action.verdict`): watched until verified or out of time.
VERIFYING, VERIFIED, NOT_VERIFIED = "verifying", "verified", "not_verified"


class Store:
    """Domain operations on top of a driver. All times are epoch seconds passed in by the caller."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver

    @classmethod
    async def open(cls, url: str, migrations: Sequence[Migration] | None = None) -> Store:
        store = cls(open_driver(url))
        await store.driver.migrate(MIGRATIONS if migrations is None else migrations)
        return store

    async def close(self) -> None:
        await self.driver.close()

    # actions ----------------------------------------------------------------------------------

    async def create_action(self, action: Action) -> bool:
        """Insert a new request; False when its target already has one pending or running (nothing stored)."""
        row = action.to_row()
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        rows = await self.driver.fetch(
            f"INSERT INTO cf_actions ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING RETURNING id", list(row.values())
        )
        return bool(rows)

    async def active_for_target(self, target: str) -> Action | None:
        """The pending or running request on `target`, if there is one."""
        marks = ", ".join("?" for _ in ACTIVE_STATES)
        rows = await self.driver.fetch(
            f"SELECT * FROM cf_actions WHERE target = ? AND state IN ({marks}) ORDER BY created_at LIMIT 1",
            [target, *ACTIVE_STATES],
        )
        return Action.from_row(rows[0]) if rows else None

    async def set_verdict(self, action_id: str, from_verdicts: Sequence[str | None], verdict: str, now: float,
                          **fields: Any) -> Action | None:
        """Compare-and-set of a done change's verdict (two replicas resuming one verification: one wins)."""
        known = [v for v in from_verdicts if v is not None]
        conditions = [f"verdict IN ({', '.join('?' for _ in known)})"] if known else []
        if None in from_verdicts:
            conditions.append("verdict IS NULL")
        sets = ["verdict = ?", "updated_at = ?", "shown = NULL", *(f"{k} = ?" for k in fields)]
        rows = await self.driver.fetch(
            f"UPDATE cf_actions SET {', '.join(sets)} WHERE id = ? AND state = ? AND ({' OR '.join(conditions)}) "
            "RETURNING *",
            [verdict, now, *fields.values(), action_id, DONE, *known],
        )
        return Action.from_row(rows[0]) if rows else None

    async def claim_verification(self, action_id: str, now: float, beat_before: float) -> Action | None:
        """Take over a verification whose watcher stopped heart-beating (a restart): one replica gets it."""
        rows = await self.driver.fetch(
            "UPDATE cf_actions SET heartbeat_at = ? WHERE id = ? AND state = ? AND verdict = ? "
            "AND COALESCE(heartbeat_at, updated_at) < ? RETURNING *",
            [now, action_id, DONE, VERIFYING, beat_before],
        )
        return Action.from_row(rows[0]) if rows else None

    async def verifying(self) -> list[Action]:
        rows = await self.driver.fetch(
            "SELECT * FROM cf_actions WHERE state = ? AND verdict = ? ORDER BY created_at", [DONE, VERIFYING]
        )
        return [Action.from_row(r) for r in rows]

    async def verification_beat(self, action_id: str, now: float) -> None:
        await self.driver.execute(
            "UPDATE cf_actions SET heartbeat_at = ? WHERE id = ? AND verdict = ?", [now, action_id, VERIFYING]
        )

    async def get_action(self, action_id: str) -> Action | None:
        rows = await self.driver.fetch("SELECT * FROM cf_actions WHERE id = ?", [action_id])
        return Action.from_row(rows[0]) if rows else None

    async def transition(
        self,
        action_id: str,
        from_states: Sequence[str],
        to_state: str,
        now: float,
        unexpired: bool = False,
        **fields: Any,
    ) -> Action | None:
        """Atomically move an action between states; None if it was not in `from_states`."""
        sets = ["state = ?", "updated_at = ?", "shown = NULL", *(f"{k} = ?" for k in fields)]
        params: list[Any] = [to_state, now, *fields.values(), action_id, *from_states]
        where = f"id = ? AND state IN ({', '.join('?' for _ in from_states)})"
        if unexpired:
            where += " AND expires_at > ?"
            params.append(now)
        rows = await self.driver.fetch(f"UPDATE cf_actions SET {', '.join(sets)} WHERE {where} RETURNING *", params)
        return Action.from_row(rows[0]) if rows else None

    async def mark_shown(self, action: Action) -> None:
        """The request message now shows `action` as read (unless a transition has happened since)."""
        await self.driver.execute(
            "UPDATE cf_actions SET shown = 1 WHERE id = ? AND state = ? AND updated_at = ?",
            [action.id, action.state, action.updated_at])

    async def unshown(self, before: float, limit: int = 50) -> list[Action]:
        """Ended actions whose request message may not show how they ended (its update was lost)."""
        marks = ", ".join("?" for _ in FINAL_STATES)
        rows = await self.driver.fetch(
            f"SELECT * FROM cf_actions WHERE shown IS NULL AND updated_at < ? AND state IN ({marks}) "
            "AND message_ts IS NOT NULL AND (verdict IS NULL OR verdict <> ?) ORDER BY updated_at LIMIT ?",
            [before, *FINAL_STATES, VERIFYING, limit])
        return [Action.from_row(r) for r in rows]

    async def set_fields(self, action_id: str, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        await self.driver.execute(f"UPDATE cf_actions SET {sets} WHERE id = ?", [*fields.values(), action_id])

    async def expire_due(self, now: float) -> list[Action]:
        rows = await self.driver.fetch(
            "UPDATE cf_actions SET state = ?, updated_at = ?, shown = NULL WHERE state = ? AND expires_at <= ? "
            "RETURNING *",
            [EXPIRED, now, PENDING, now],
        )
        return [Action.from_row(r) for r in rows]

    async def interrupt_stale(self, now: float, heartbeat_before: float) -> list[Action]:
        rows = await self.driver.fetch(
            "UPDATE cf_actions SET state = ?, updated_at = ?, error = ?, shown = NULL "
            "WHERE state IN (?, ?) AND COALESCE(heartbeat_at, updated_at) < ? RETURNING *",
            [INTERRUPTED, now, "the bot stopped while this action was running", RUNNING, APPROVED, heartbeat_before],
        )
        return [Action.from_row(r) for r in rows]

    async def heartbeat(self, action_id: str, now: float) -> None:
        await self.driver.execute(
            "UPDATE cf_actions SET heartbeat_at = ? WHERE id = ? AND state = ?", [now, action_id, RUNNING]
        )

    async def actions_in(self, *states: str) -> list[Action]:
        marks = ", ".join("?" for _ in states)
        rows = await self.driver.fetch(
            f"SELECT * FROM cf_actions WHERE state IN ({marks}) ORDER BY created_at", list(states)
        )
        return [Action.from_row(r) for r in rows]

    # audit ------------------------------------------------------------------------------------

    async def append_audit(
        self,
        *,
        at: float,
        event: str,
        actor: str,
        command: str,
        action_id: str | None = None,
        channel: str | None = None,
        detail: dict[str, Any] | None = None,
        incident_id: str | None = None,
        request_id: str | None = None,
    ) -> int:
        entry = {"at": at, "action_id": action_id, "event": event, "actor": actor, "command": command,
                 "channel": channel, "detail": json.dumps(detail or {}, sort_keys=True), "incident_id": incident_id,
                 "request_id": request_id}

        def params(last: Row | None) -> list[Any]:
            prev = last["hash"] if last else None
            return [*entry.values(), prev, entry_hash(prev, entry)]

        rows = await self.driver.insert_chained(
            "SELECT hash FROM cf_audit WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1",
            "INSERT INTO cf_audit (at, action_id, event, actor, command, channel, detail, incident_id, request_id, "
            "prev_hash, hash, target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "(SELECT x.target FROM cf_actions x WHERE x.id = ?)) RETURNING id",
            lambda last: [*params(last), action_id],
        )
        return int(rows[0]["id"])

    async def audit_rows(self, after_id: int, since: float | None = None, limit: int = 5000) -> list[Row]:
        """Raw audit rows by id, oldest first, with their hashes (`cfbot audit verify|export`)."""
        where = "id > ?"
        params: list[Any] = [after_id]
        if since is not None:
            where += " AND at >= ?"
            params.append(since)
        return await self.driver.fetch(f"SELECT * FROM cf_audit WHERE {where} ORDER BY id LIMIT ?", [*params, limit])

    async def audit_tail(self, limit: int) -> list[AuditEntry]:
        rows = await self.driver.fetch("SELECT * FROM cf_audit ORDER BY id DESC LIMIT ?", [limit])
        return [AuditEntry.from_row(r) for r in rows]

    async def audit_query(self, query: AuditQuery) -> list[AuditView]:
        """Filtered in SQL (both engines), newest first, each entry joined to its change request.

        Each filter is answered from an index (migration 0009), so the cost follows what matches, not the
        length of the trail: a target is matched against the distinct targets of change requests (a few
        hundred), then entries are read by `cf_audit.target`; a person's entries are the union of those they
        wrote (cf_audit_actor) and those of the changes they requested or approved (cf_audit_action_id), each
        part cut to the newest `limit` before the union; since and request id have their own indexes.
        """
        conds: list[str] = []
        params: list[Any] = []
        if query.since is not None:
            conds.append("a.at >= ?")
            params.append(query.since)
        if query.request_id:
            conds.append("(a.action_id = ? OR a.request_id = ?)")
            params += [query.request_id, query.request_id]
        if query.target:
            targets, legacy = await self._targets_matching(query.target)
            if not targets and not legacy:
                return []
            either = [f"a.target IN ({', '.join('?' for _ in targets)})"] if targets else []
            if legacy:
                either.append(f"a.action_id IN ({', '.join('?' for _ in legacy)})")
            conds.append(f"({' OR '.join(either)})")
            params += [*targets, *legacy]
        where = " AND ".join(conds) or "1 = 1"
        if query.users:
            users = ", ".join("?" for _ in query.users)
            newest = f"AND {where} ORDER BY a.id DESC LIMIT ?"
            where = (f"a.id IN (SELECT id FROM (SELECT a.id FROM cf_audit a WHERE a.actor IN ({users}) {newest}) mine "
                     f"UNION SELECT id FROM (SELECT a.id FROM cf_audit a WHERE a.action_id IN (SELECT x.id FROM "
                     f"cf_actions x WHERE x.requester IN ({users}) OR x.approver IN ({users})) {newest}) theirs)")
            params = [*query.users, *params, query.limit, *query.users, *query.users, *params, query.limit]
        legacy_target = self._json_text("r.detail", "target")
        rows = await self.driver.fetch(
            f"SELECT {', '.join('a.' + c for c in AUDIT_COLUMNS)}, x.request_text AS request_text, "
            "x.requester AS requester, x.approver AS approver, "
            "CASE WHEN a.action_id IS NULL THEN NULL WHEN COALESCE(a.target, '') <> '' THEN a.target "
            f"ELSE (SELECT {legacy_target} FROM cf_audit r WHERE r.action_id = a.action_id AND r.event = 'requested' "
            "ORDER BY r.id LIMIT 1) END AS target "
            "FROM cf_audit a LEFT JOIN cf_actions x ON x.id = a.action_id "
            f"WHERE {where} ORDER BY a.id DESC LIMIT ?",
            [*params, query.limit],
        )
        return [AuditView.from_row(r) for r in rows]

    async def _targets_matching(self, target: str) -> tuple[list[str], list[str]]:
        """The change targets that hold `target`'s words as whole words (`graphql-api`, `deployment/graphql-api`
        match "deployment/graphql-api in ns"; any case), and the requests from before targets were stored with
        them (target '' in cf_actions, the target only in the requested entry's detail) that match too."""
        pattern = "% " + " ".join(target.lower().replace("/", " ").split()).replace("!", "!!").replace(
            "%", "!%").replace("_", "!_") + " %"

        words = " " + " ".join(target.lower().replace("/", " ").split()) + " "
        # the distinct targets by a loose index scan (one probe of cf_actions_target per target, not a pass over
        # every request), matched here
        found = await self.driver.fetch(
            "WITH RECURSIVE d(t) AS (SELECT min(target) FROM cf_actions WHERE target > '' UNION ALL "
            "SELECT (SELECT min(target) FROM cf_actions WHERE target > d.t) FROM d WHERE d.t IS NOT NULL) "
            "SELECT t FROM d WHERE t IS NOT NULL")
        targets = [str(r["t"]) for r in found if words in f" {str(r['t']).lower().replace('/', ' ')} "]
        legacy = await self.driver.fetch(
            "SELECT x.id FROM cf_actions x JOIN cf_audit r ON r.action_id = x.id AND r.event = 'requested' "
            f"WHERE x.target = '' AND (' ' || replace(lower({self._json_text('r.detail', 'target')}), '/', ' ') "
            "|| ' ') LIKE ? ESCAPE '!'", [pattern])
        return targets, [str(r["id"]) for r in legacy]

    async def audit_people(self, recent: int = 5000) -> list[str]:
        """Everyone who acted in the last `recent` entries (to find a person by name)."""
        rows = await self.driver.fetch(
            "SELECT DISTINCT actor FROM (SELECT actor FROM cf_audit ORDER BY id DESC LIMIT ?) recent", [recent]
        )
        return [str(r["actor"]) for r in rows]

    def _json_text(self, column: str, key: str) -> str:
        """SQL for one text field of a JSON column (the detail is JSON text on both engines)."""
        if self.driver.dialect == "postgresql":
            return f"({column}::json ->> '{key}')"
        return f"json_extract({column}, '$.{key}')"

    # audit retention (the scheduled job in incidents/jobs.py) ------------------------------------

    async def audit_retention_cut(self, before: float, keep_incidents: Sequence[str] = ()) -> int | None:
        """The id of the oldest entry retention must keep: the oldest at or after `before`, the oldest of an
        incident in `keep_incidents` (the open ones), and never past the newest entry (the chain's head, which
        the next entry links to). None for an empty trail."""
        found = await self.driver.fetch("SELECT min(id) AS id FROM cf_audit WHERE at >= ?", [before])
        cuts = [found[0]["id"]]
        if keep_incidents:
            marks = ", ".join("?" for _ in keep_incidents)
            found = await self.driver.fetch(f"SELECT min(id) AS id FROM cf_audit WHERE incident_id IN ({marks})",
                                            list(keep_incidents))
            cuts.append(found[0]["id"])
        cuts.append((await self.driver.fetch("SELECT max(id) AS id FROM cf_audit"))[0]["id"])
        known = [int(c) for c in cuts if c is not None]
        return min(known) if known else None

    async def prune_audit(self, *, before: float, keep_incidents: Sequence[str] = (), now: float,
                          detail: dict[str, Any] | None = None, batch: int = 5000) -> int:
        """Delete the oldest entries up to the retention cut (`audit_retention_cut`); how many were deleted.

        Only a contiguous oldest prefix goes, oldest first in batches (other writers get the store between
        them), and only after an `audit_pruned` entry in the chain names the first entry kept and its previous
        hash: `bot.audit_chain.verify` accepts that as the chain's start, and a prefix deleted any other way
        still fails it. A run that stops part way leaves a shorter prefix deleted, which the record covers too.
        """
        cut = await self.audit_retention_cut(before, keep_incidents)
        if cut is None or not await self.driver.fetch("SELECT id FROM cf_audit WHERE id < ? LIMIT 1", [cut]):
            return 0
        kept = (await self.driver.fetch("SELECT prev_hash FROM cf_audit WHERE id = ?", [cut]))[0]
        await self.append_audit(at=now, event=PRUNED, actor="cf", command="audit retention", detail={
            **(detail or {}), "first_kept_id": cut, "first_kept_prev_hash": kept["prev_hash"], "before": before,
            "kept_incidents": sorted(keep_incidents)})
        deleted = 0
        while True:
            count = await self.driver.execute(
                "DELETE FROM cf_audit WHERE id IN (SELECT id FROM cf_audit WHERE id < ? ORDER BY id LIMIT ?)",
                [cut, batch])
            deleted += max(count, 0)
            if count < batch:
                return deleted

    async def audit_for_action(self, action_id: str) -> list[AuditEntry]:
        rows = await self.driver.fetch("SELECT * FROM cf_audit WHERE action_id = ? ORDER BY id", [action_id])
        return [AuditEntry.from_row(r) for r in rows]

    async def audit_for_incident(self, incident_id: str) -> list[AuditEntry]:
        rows = await self.driver.fetch("SELECT * FROM cf_audit WHERE incident_id = ? ORDER BY id", [incident_id])
        return [AuditEntry.from_row(r) for r in rows]

    # coordination between replicas -----------------------------------------------------------

    async def try_lease(self, name: str, holder: str, now: float, ttl: float) -> bool:
        """Take or renew a named lease; True if `holder` has it until now + ttl."""
        rows = await self.driver.fetch(
            "INSERT INTO cf_leases (name, holder, until) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until "
            "WHERE cf_leases.until < ? OR cf_leases.holder = excluded.holder RETURNING holder",
            [name, holder, now + ttl, now],
        )
        return bool(rows) and rows[0]["holder"] == holder

    async def claim_once(self, key: str, now: float) -> bool:
        """True the first time `key` is claimed, by anyone; False ever after (idempotency keys)."""
        rows = await self.driver.fetch(
            "INSERT INTO cf_once (key, at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING RETURNING key", [key, now]
        )
        return bool(rows)


# the drivers' names stay importable from here, where they lived before bot/drivers.py
__all__ = ["ACTIVE_STATES", "APPROVED", "DENIED", "DONE", "EXPIRED", "FAILED", "FINAL_STATES", "INTERRUPTED",
           "MIGRATIONS", "NOT_VERIFIED", "PENDING", "RUNNING", "STALE", "VERIFIED", "VERIFYING", "Action",
           "AuditEntry", "AuditQuery", "AuditView", "Driver", "Migration", "PostgresDriver", "Row", "SqliteDriver",
           "Store", "StoreUnavailable", "open_driver"]
