"""Tables for incidents, alerts, status-page incidents and the scheduled jobs' shared state.

The platform's store does not know them: `MIGRATIONS` here is handed to `Store.open` by whoever
assembles the bot with incidents (`app.assemble`). `incidents.store` holds the queries. `{serial}` is
not used here: every table has a natural key.
"""

from bot.store import Migration

INCIDENT_TABLES: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS cf_incidents (
        id TEXT PRIMARY KEY,
        number INTEGER NOT NULL UNIQUE,
        title TEXT NOT NULL,
        severity TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        channel TEXT,
        channel_name TEXT,
        declared_by TEXT NOT NULL,
        declared_at DOUBLE PRECISION NOT NULL,
        commander TEXT,
        comms TEXT,
        scribe TEXT,
        resolved_at DOUBLE PRECISION,
        resolved_by TEXT,
        last_update_at DOUBLE PRECISION NOT NULL,
        last_reminder_at DOUBLE PRECISION,
        summary_ts TEXT,
        announce_ts TEXT,
        page_keys TEXT NOT NULL DEFAULT '[]',
        source TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS cf_incidents_channel ON cf_incidents (channel)",
    "CREATE INDEX IF NOT EXISTS cf_incidents_status ON cf_incidents (status)",
    """CREATE TABLE IF NOT EXISTS cf_alerts (
        key TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        alertname TEXT NOT NULL,
        status TEXT NOT NULL,
        channel TEXT,
        message_ts TEXT,
        incident_id TEXT,
        received_at DOUBLE PRECISION NOT NULL,
        resolved_at DOUBLE PRECISION,
        alert TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS cf_alerts_fingerprint ON cf_alerts (fingerprint)",
    """CREATE TABLE IF NOT EXISTS cf_statuspage (
        id TEXT PRIMARY KEY,
        incident_id TEXT,
        title TEXT NOT NULL,
        status TEXT NOT NULL,
        impact TEXT NOT NULL,
        components TEXT NOT NULL DEFAULT '[]',
        shortlink TEXT,
        opened_by TEXT NOT NULL,
        opened_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS cf_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    )""",
)


# One message per Alertmanager notification group (issue 14 §4): a group's episode (its alerts from the first
# firing until all are resolved) is one row, its members are `cf_alerts` rows naming it, and its ack and
# silence live here. `context` is the JSON of the context parts shown on arrival (incidents.alert_context).
ALERT_GROUPS: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS cf_alert_groups (
        id TEXT PRIMARY KEY,
        group_key TEXT NOT NULL,
        episode INTEGER NOT NULL,
        channel TEXT NOT NULL,
        message_ts TEXT,
        incident_id TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        context TEXT,
        acked_by TEXT,
        acked_at DOUBLE PRECISION,
        silence_id TEXT,
        silenced_by TEXT,
        silenced_until DOUBLE PRECISION
    )""",
    "CREATE INDEX IF NOT EXISTS cf_alert_groups_key ON cf_alert_groups (group_key, episode)",
    "CREATE INDEX IF NOT EXISTS cf_alert_groups_incident ON cf_alert_groups (incident_id)",
    "ALTER TABLE cf_alerts ADD COLUMN group_id TEXT",
    "CREATE INDEX IF NOT EXISTS cf_alerts_group ON cf_alerts (group_id)",
)


MIGRATIONS: tuple[Migration, ...] = (
    Migration("0002_incidents_alerts", INCIDENT_TABLES),
    Migration("0007_alert_groups", ALERT_GROUPS),
)
