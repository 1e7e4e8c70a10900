"""Durable records for incidents, alerts, status-page incidents and the scheduled jobs' shared state.

The tables come from the migrations in `incidents.schema`. Everything that more than
one replica could race on is a single statement that only one writer can win: an incident's number
(`INSERT ... SELECT max + 1 ... ON CONFLICT DO NOTHING`, retried), an alert occurrence
(`INSERT ... ON CONFLICT DO NOTHING RETURNING`), an incident's resolution (`UPDATE ... WHERE status
<> 'resolved' RETURNING`). Times are epoch seconds passed in by the caller, as in `Store`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from base.vocabulary import RESOLVED
from bot.store import Row, Store


@dataclass
class Incident:
    id: str
    number: int
    title: str
    severity: str
    kind: str
    status: str
    declared_by: str
    declared_at: float
    last_update_at: float
    channel: str | None = None
    channel_name: str | None = None
    commander: str | None = None
    comms: str | None = None
    scribe: str | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    last_reminder_at: float | None = None
    summary_ts: str | None = None
    announce_ts: str | None = None
    page_keys: list[str] = field(default_factory=list)
    source: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status != RESOLVED

    @classmethod
    def from_row(cls, row: Row) -> Incident:
        data = dict(row)
        data["page_keys"] = json.loads(data.get("page_keys") or "[]")
        return cls(**data)


@dataclass
class AlertRecord:
    key: str
    fingerprint: str
    alertname: str
    status: str
    received_at: float
    alert: dict[str, Any]
    channel: str | None = None
    message_ts: str | None = None
    incident_id: str | None = None
    resolved_at: float | None = None
    group_id: str | None = None

    @classmethod
    def from_row(cls, row: Row) -> AlertRecord:
        data = dict(row)
        data["alert"] = json.loads(data["alert"])
        return cls(**data)


@dataclass
class AlertGroup:
    """One Alertmanager notification group's episode: its one Slack message, its ack and its silence."""

    id: str  # what the message's buttons carry
    group_key: str
    episode: int  # 1, 2, ...: the group fired again after all its alerts had resolved
    channel: str
    created_at: float
    message_ts: str | None = None
    incident_id: str | None = None
    context: list[dict[str, Any]] = field(default_factory=list)
    acked_by: str | None = None
    acked_at: float | None = None
    silence_id: str | None = None
    silenced_by: str | None = None
    silenced_until: float | None = None

    @classmethod
    def from_row(cls, row: Row) -> AlertGroup:
        data = dict(row)
        data["context"] = json.loads(data.get("context") or "[]")
        return cls(**data)


@dataclass
class StatuspageRecord:
    id: str
    title: str
    status: str
    impact: str
    opened_by: str
    opened_at: float
    updated_at: float
    incident_id: str | None = None
    components: list[str] = field(default_factory=list)
    shortlink: str | None = None

    @classmethod
    def from_row(cls, row: Row) -> StatuspageRecord:
        data = dict(row)
        data["components"] = json.loads(data.get("components") or "[]")
        return cls(**data)


class IncidentStore:
    """Incident, alert and status-page rows on top of the bot's `Store` (same driver, same database)."""

    def __init__(self, store: Store) -> None:
        self.driver = store.driver

    # incidents --------------------------------------------------------------------------------

    async def create_incident(self, *, title: str, severity: str, kind: str, declared_by: str, now: float,
                              source: str | None = None) -> Incident:
        """Insert with the next number; a replica that loses the race for a number takes the next one."""
        for _ in range(20):
            rows = await self.driver.fetch(
                "INSERT INTO cf_incidents (id, number, title, severity, kind, status, declared_by, declared_at, "
                "last_update_at, source) "
                "SELECT 'INC-' || CAST(COALESCE(MAX(number), 0) + 1 AS TEXT), COALESCE(MAX(number), 0) + 1, "
                "?, ?, ?, ?, ?, ?, ?, ? FROM cf_incidents WHERE 1 = 1 ON CONFLICT DO NOTHING RETURNING *",
                [title, severity, kind, "investigating", declared_by, now, now, source],
            )
            if rows:
                return Incident.from_row(rows[0])
        raise RuntimeError("could not allocate an incident number after 20 attempts")

    async def get_incident(self, incident_id: str) -> Incident | None:
        rows = await self.driver.fetch("SELECT * FROM cf_incidents WHERE id = ?", [incident_id.upper()])
        return Incident.from_row(rows[0]) if rows else None

    async def incident_in_channel(self, channel: str) -> Incident | None:
        rows = await self.driver.fetch("SELECT * FROM cf_incidents WHERE channel = ? ORDER BY number DESC LIMIT 1",
                                       [channel])
        return Incident.from_row(rows[0]) if rows else None

    async def open_incidents(self) -> list[Incident]:
        rows = await self.driver.fetch("SELECT * FROM cf_incidents WHERE status <> ? ORDER BY number", [RESOLVED])
        return [Incident.from_row(r) for r in rows]

    async def open_incident_from(self, source: str) -> Incident | None:
        rows = await self.driver.fetch(
            "SELECT * FROM cf_incidents WHERE source = ? AND status <> ? ORDER BY number DESC LIMIT 1",
            [source, RESOLVED],
        )
        return Incident.from_row(rows[0]) if rows else None

    async def update_incident(self, incident_id: str, **fields: Any) -> Incident | None:
        if "page_keys" in fields:
            fields["page_keys"] = json.dumps(fields["page_keys"])
        sets = ", ".join(f"{k} = ?" for k in fields)
        rows = await self.driver.fetch(f"UPDATE cf_incidents SET {sets} WHERE id = ? RETURNING *",
                                       [*fields.values(), incident_id])
        return Incident.from_row(rows[0]) if rows else None

    async def resolve_incident(self, incident_id: str, by: str, now: float) -> Incident | None:
        """None if it was already resolved (by someone else, or another replica)."""
        rows = await self.driver.fetch(
            "UPDATE cf_incidents SET status = ?, resolved_at = ?, resolved_by = ?, last_update_at = ? "
            "WHERE id = ? AND status <> ? RETURNING *",
            [RESOLVED, now, by, now, incident_id, RESOLVED],
        )
        return Incident.from_row(rows[0]) if rows else None

    async def mark_reminded(self, incident_id: str, previous: float | None, now: float) -> bool:
        """Compare-and-set, so a reminder is posted once even if two ticks overlap. False, too, for an
        incident declared by an alert group someone acknowledged: the Ack button stops its reminders."""
        rows = await self.driver.fetch(
            "UPDATE cf_incidents SET last_reminder_at = ? WHERE id = ? AND status <> ? "
            "AND COALESCE(last_reminder_at, -1) = ? AND NOT EXISTS (SELECT 1 FROM cf_alert_groups g "
            "WHERE g.incident_id = cf_incidents.id AND g.acked_at IS NOT NULL) RETURNING id",
            [now, incident_id, RESOLVED, -1 if previous is None else previous],
        )
        return bool(rows)

    # alerts -----------------------------------------------------------------------------------

    async def claim_alert(self, record: AlertRecord) -> bool:
        """True for the first claim of this occurrence (fingerprint + start time), by any replica."""
        rows = await self.driver.fetch(
            "INSERT INTO cf_alerts (key, fingerprint, alertname, status, channel, incident_id, received_at, alert, "
            "group_id, resolved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING key",
            [record.key, record.fingerprint, record.alertname, record.status, record.channel, record.incident_id,
             record.received_at, json.dumps(record.alert, sort_keys=True), record.group_id, record.resolved_at],
        )
        return bool(rows)

    async def release_alert(self, key: str) -> None:
        """Forget a claim whose message could not be posted, so Alertmanager's retry can post it."""
        await self.driver.execute("DELETE FROM cf_alerts WHERE key = ? AND message_ts IS NULL", [key])

    async def get_alert(self, key: str) -> AlertRecord | None:
        rows = await self.driver.fetch("SELECT * FROM cf_alerts WHERE key = ?", [key])
        return AlertRecord.from_row(rows[0]) if rows else None

    async def update_alert(self, key: str, **fields: Any) -> None:
        if "alert" in fields:
            fields["alert"] = json.dumps(fields["alert"], sort_keys=True)
        sets = ", ".join(f"{k} = ?" for k in fields)
        await self.driver.execute(f"UPDATE cf_alerts SET {sets} WHERE key = ?", [*fields.values(), key])

    async def resolve_alert(self, key: str, now: float) -> AlertRecord | None:
        """The firing -> resolved transition, once; None if unknown or already resolved."""
        rows = await self.driver.fetch(
            "UPDATE cf_alerts SET status = 'resolved', resolved_at = ? WHERE key = ? AND status = 'firing' "
            "RETURNING *",
            [now, key],
        )
        return AlertRecord.from_row(rows[0]) if rows else None

    async def unresolve_alert(self, key: str) -> None:
        """Undo a resolution whose message could not be redrawn, so Alertmanager's retry can show it."""
        await self.driver.execute("UPDATE cf_alerts SET status = 'firing', resolved_at = NULL WHERE key = ?", [key])

    # alert groups (one message per Alertmanager group) ---------------------------------------

    async def current_group(self, group_key: str) -> AlertGroup | None:
        """The group's latest episode."""
        rows = await self.driver.fetch(
            "SELECT * FROM cf_alert_groups WHERE group_key = ? ORDER BY episode DESC LIMIT 1", [group_key])
        return AlertGroup.from_row(rows[0]) if rows else None

    async def get_group(self, group_id: str) -> AlertGroup | None:
        rows = await self.driver.fetch("SELECT * FROM cf_alert_groups WHERE id = ?", [group_id])
        return AlertGroup.from_row(rows[0]) if rows else None

    async def claim_group(self, group: AlertGroup) -> bool:
        """True for the one replica that opens this episode (and posts its message)."""
        rows = await self.driver.fetch(
            "INSERT INTO cf_alert_groups (id, group_key, episode, channel, incident_id, created_at, context) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING id",
            [group.id, group.group_key, group.episode, group.channel, group.incident_id, group.created_at,
             json.dumps(group.context, sort_keys=True)],
        )
        return bool(rows)

    async def release_group(self, group_id: str) -> None:
        """Forget an episode whose message could not be posted (its alerts are released too)."""
        await self.driver.execute("DELETE FROM cf_alert_groups WHERE id = ? AND message_ts IS NULL", [group_id])

    async def update_group(self, group_id: str, **fields: Any) -> None:
        if "context" in fields:
            fields["context"] = json.dumps(fields["context"], sort_keys=True)
        sets = ", ".join(f"{k} = ?" for k in fields)
        await self.driver.execute(f"UPDATE cf_alert_groups SET {sets} WHERE id = ?", [*fields.values(), group_id])

    async def group_alerts(self, group_id: str) -> list[AlertRecord]:
        """The episode's alerts in the order they arrived."""
        rows = await self.driver.fetch("SELECT * FROM cf_alerts WHERE group_id = ? ORDER BY received_at, key",
                                       [group_id])
        return [AlertRecord.from_row(r) for r in rows]

    async def attach_alerts(self, group_id: str, channel: str, message_ts: str, incident_id: str | None) -> None:
        """The episode's alerts are shown in its message (a claim with no message is one that can be released)."""
        await self.driver.execute(
            "UPDATE cf_alerts SET channel = ?, message_ts = ?, incident_id = ? WHERE group_id = ?",
            [channel, message_ts, incident_id, group_id])

    async def ack_group(self, group_id: str, by: str, now: float) -> AlertGroup | None:
        """The first acknowledgement wins; None when it was acknowledged already."""
        rows = await self.driver.fetch(
            "UPDATE cf_alert_groups SET acked_by = ?, acked_at = ? WHERE id = ? AND acked_at IS NULL RETURNING *",
            [by, now, group_id])
        return AlertGroup.from_row(rows[0]) if rows else None

    async def set_silence(self, group_id: str, silence_id: str, by: str, until: float,
                          previous: str | None) -> AlertGroup | None:
        """Record a silence in place of `previous` (None: none, or one that has ended); None if someone else won."""
        rows = await self.driver.fetch(
            "UPDATE cf_alert_groups SET silence_id = ?, silenced_by = ?, silenced_until = ? "
            "WHERE id = ? AND COALESCE(silence_id, '') = ? RETURNING *",
            [silence_id, by, until, group_id, previous or ""])
        return AlertGroup.from_row(rows[0]) if rows else None

    async def clear_silence(self, group_id: str, silence_id: str) -> AlertGroup | None:
        """Forget the silence `silence_id` (it was expired); None when the group holds another one, or none."""
        rows = await self.driver.fetch(
            "UPDATE cf_alert_groups SET silence_id = NULL, silenced_by = NULL, silenced_until = NULL "
            "WHERE id = ? AND silence_id = ? RETURNING *", [group_id, silence_id])
        return AlertGroup.from_row(rows[0]) if rows else None

    # status-page incidents --------------------------------------------------------------------

    async def add_statuspage(self, record: StatuspageRecord) -> None:
        await self.driver.execute(
            "INSERT INTO cf_statuspage (id, incident_id, title, status, impact, components, shortlink, opened_by, "
            "opened_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [record.id, record.incident_id, record.title, record.status, record.impact,
             json.dumps(record.components), record.shortlink, record.opened_by, record.opened_at, record.updated_at],
        )

    async def set_statuspage_status(self, sp_id: str, status: str, now: float) -> None:
        await self.driver.execute("UPDATE cf_statuspage SET status = ?, updated_at = ? WHERE id = ?",
                                  [status, now, sp_id])

    async def open_statuspages(self, incident_id: str | None = None) -> list[StatuspageRecord]:
        sql = "SELECT * FROM cf_statuspage WHERE status <> ?"
        params: list[Any] = [RESOLVED]
        if incident_id is not None:
            sql += " AND incident_id = ?"
            params.append(incident_id)
        rows = await self.driver.fetch(sql + " ORDER BY opened_at DESC", params)
        return [StatuspageRecord.from_row(r) for r in rows]

    async def get_statuspage(self, sp_id: str) -> StatuspageRecord | None:
        rows = await self.driver.fetch("SELECT * FROM cf_statuspage WHERE id = ?", [sp_id])
        return StatuspageRecord.from_row(rows[0]) if rows else None

    # shared job state -------------------------------------------------------------------------

    async def get_state(self, key: str) -> dict[str, Any] | None:
        rows = await self.driver.fetch("SELECT value FROM cf_state WHERE key = ?", [key])
        return dict(json.loads(rows[0]["value"])) if rows else None

    async def put_state(self, key: str, value: dict[str, Any], now: float) -> None:
        await self.driver.execute(
            "INSERT INTO cf_state (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            [key, json.dumps(value, sort_keys=True), now],
        )
