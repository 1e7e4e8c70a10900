"""The settings models: one validated, frozen object for the whole configuration.

They live here, below everything, so that commands (which may not import `bot`) can type
`Context.settings` as `Settings`. Reading the YAML file and the secrets from the environment stays in
`bot.config`, which re-exports these names. Unknown keys are errors (a typo in an RBAC list must not
silently grant or deny anything); every field has a comment; defaults are the runbook's values.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from base.vocabulary import SEVERITIES

# The built-in alert rules' keys (`alerts.aliases` may name only these); incidents.alert_rules defines the
# rules themselves and a test keeps the two equal.
ALERT_RULES = frozenset({"db-high-connections", "db-slow-queries", "graphql-high-error-rate", "graphql-high-latency",
                         "node-high-usage", "pod-crash-looping", "redis-high-memory"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RBAC(_Section):
    """Slack user ids (U...) or user-group ids (S...) per role; "*" means everyone."""

    viewer: list[str] = Field(default_factory=lambda: ["*"])  # read-only commands
    operator: list[str] = Field(default_factory=list)  # may request changes
    approver: list[str] = Field(default_factory=list)  # may approve other people's requests
    admin: list[str] = Field(default_factory=list)  # everything

    @field_validator("viewer", "operator", "approver", "admin")
    @classmethod
    def _ids(cls, ids: list[str]) -> list[str]:
        for entry in ids:
            if entry != "*" and not (entry[:1] in ("U", "W", "S") and entry[1:].isalnum() and entry.isupper()):
                raise ValueError(f"{entry!r} is not a Slack user id (U...), user-group id (S...) or '*'")
        return ids


class Approvals(_Section):
    ttl_minutes: float = Field(15, gt=0)  # a pending request expires after this
    allow_self_approval: bool = False  # may the requester approve their own request?
    exempt: list[str] = Field(default_factory=list)  # change commands that need no approval (by name)
    sweep_seconds: float = Field(15, gt=0)  # how often expiry and interrupted actions are checked
    heartbeat_seconds: float = Field(5, gt=0)  # a running action refreshes its heartbeat this often
    verify_timeout_seconds: float = Field(300, gt=0)  # how long a change is watched for its verdict (or the command's)
    verify_progress_seconds: float = Field(10, gt=0)  # at most one progress line per this while verifying


class Limits(_Section):
    max_replicas: int = Field(50, ge=1)  # scale refuses more than this
    commands_per_minute: int = Field(30, ge=1)  # one user past this is told to slow down; others are unaffected
    max_body_bytes: int = Field(64 * 1024, ge=1024)  # a request body over this is refused before it is parsed


class Kubernetes(_Section):
    kubeconfig: str | None = None  # default: $KUBECONFIG, else in-cluster service account
    context: str | None = None
    timeout_seconds: float = Field(10, gt=0)  # every API call ends within this, queueing included


class HealthProbe(_Section):
    name: str
    url: str
    timeout_seconds: float = Field(5, gt=0)


class Probes(_Section):
    health: list[HealthProbe] = Field(default_factory=list)  # HTTP /health endpoints for `status`
    metrics: dict[str, str] = Field(default_factory=dict)  # service -> Prometheus /metrics URL
    websocket_url: str | None = None  # `ws probe` target
    sla_seconds: float = Field(2.0, gt=0)  # runbook: 2 s p95
    websocket_target_ms: float = Field(100, gt=0)  # runbook: 100 ms connect


class PostgresTarget(_Section):
    dsn_env: str = "CF_TARGET_DATABASE_URL"  # env var holding the monitored database's DSN
    connect_timeout_seconds: float = Field(5, gt=0)  # a database that does not answer fails after this
    statement_timeout_ms: int = Field(5000, gt=0)  # every diagnostic query is cancelled after this
    maintenance_timeout_seconds: float = Field(3600, gt=0)  # ANALYZE and CREATE INDEX CONCURRENTLY
    max_connections_threshold: int = Field(160, gt=0)  # runbook: High Connection Count (>160)
    slow_query_ms: float = Field(1000, gt=0)  # runbook: mean_exec_time > 1000
    long_running_seconds: int = Field(300, gt=0)  # runbook: active for more than 5 minutes


class RedisTarget(_Section):
    url_env: str = "CF_TARGET_REDIS_URL"  # env var holding the monitored cache's URL
    timeout_seconds: float = Field(5, gt=0)  # connect and per-command timeout
    memory_threshold_percent: float = Field(90, gt=0, le=100)  # runbook: High Memory Usage (>90%)
    scan_count: int = Field(500, ge=10, le=10000)  # SCAN COUNT per step of a keyspace walk
    scan_budget_seconds: float = Field(10, gt=0)  # bigkeys/hotkeys stop walking after this
    expire_scan_budget_seconds: float = Field(60, gt=0)  # expire-scan stops walking after this


class Targets(_Section):
    postgres: PostgresTarget = Field(default_factory=PostgresTarget)
    redis: RedisTarget = Field(default_factory=RedisTarget)


class AWS(_Section):
    """The AWS resources the runbook names; credentials and endpoints come from boto3's own chain."""

    region: str = "us-east-1"
    eks_cluster: str = "candlefish-collaboration"  # `cluster`, `nodegroup scale`, status line
    nodegroup: str = "general"
    rds_instance: str = "candlefish-collaboration-db"  # `db status|reboot|failover|snapshot|restore|replica add`
    rds_cluster: str = "candlefish-collaboration-cluster"  # shown by `db status`; "" when there is none
    alb: str = "candlefish-collaboration-alb"  # `lb`, status line
    target_group: str = "candlefish-websocket-tg"
    elasticache_group: str = "candlefish-collaboration-redis"  # `redis scale`
    secret_id: str = "candlefish/collaboration/app-secrets"  # `secrets rotate` default
    bucket: str = "candlefish-collaboration-documents"  # `s3 check`
    waf_rule_group: str | None = None  # name of the WAFv2 rule group holding the rate-based rule
    waf_rule: str | None = None  # the rate-based rule in it; needed only when the group has several
    waf_scope: Literal["REGIONAL", "CLOUDFRONT"] = "REGIONAL"
    secret_consumers: dict[str, list[str]] = Field(  # secret id -> deployments restarted after a rotation
        default_factory=lambda: {
            "candlefish/collaboration/app-secrets": ["graphql-api", "websocket-service", "document-service"]
        }
    )
    rollout_timeout_seconds: float = Field(180, gt=0)  # how long a rotation waits for consumers' new pods
    timeout_seconds: float = Field(15, gt=0)  # every call ends within this: queueing, retries, backoff
    enabled: bool = True  # false: no AWS client, AWS commands answer "not configured"


class Alerts(_Section):
    """Alertmanager's webhook and the bot's own scheduled checks (health SLA, RPO)."""

    token_env: str = "CF_ALERTS_TOKEN"  # env var holding the Alertmanager bearer token
    declare_incident_on_critical: bool = False  # a firing alert with severity=critical declares an incident
    critical_incident_severity: str = Field("sev2", pattern=r"^sev[1-4]$")  # severity of such an incident
    aliases: dict[str, str] = Field(default_factory=dict)  # your alertname -> a built-in rule (see README)
    max_alerts_per_request: int = Field(100, ge=1)  # a bigger webhook payload is refused with 400
    health_check_seconds: float = Field(60, gt=0)  # how often the status checks run as the SLA check
    health_samples: int = Field(20, ge=1, le=500)  # p95 of each check's latency over this many runs
    rpo_check_seconds: float = Field(300, gt=0)  # how often the newest recovery point is checked
    rpo_minutes: float = Field(15, gt=0)  # runbook: RPO 15 minutes

    @field_validator("aliases")
    @classmethod
    def _known_rules(cls, aliases: dict[str, str]) -> dict[str, str]:
        keys = ALERT_RULES
        for name, rule in aliases.items():
            if rule not in keys:
                raise ValueError(f"{name}: {rule!r} is not a built-in alert rule ({', '.join(sorted(keys))})")
        return aliases


class Prometheus(_Section):
    """The Prometheus server `/cf graph` and alert context query (HTTP API v1)."""

    url: str | None = None  # e.g. http://prometheus:9090; unset: `graph` and alert graphs say it is not configured
    timeout_seconds: float = Field(10, gt=0)  # every query ends within this
    graphs: dict[str, str] = Field(default_factory=dict)  # alias -> PromQL: `/cf graph ALIAS`, beside the runbook ones


class Alertmanager(_Section):
    """The Alertmanager whose alerts arrive at /alerts/alertmanager; its v2 API makes silences."""

    url: str | None = None  # e.g. http://alertmanager:9093; unset: the Silence buttons say it is not configured
    timeout_seconds: float = Field(10, gt=0)


class AuditSettings(_Section):
    retention_days: float | None = Field(None, gt=0)  # None: keep all; an open incident's entries are always kept


class Statuspage(_Section):
    """Atlassian Statuspage (REST API v1); the API key comes from env STATUSPAGE_API_KEY."""

    api_url: str = "https://api.statuspage.io/v1"
    page_id: str | None = None  # unset: the statuspage commands say it is not configured
    components: dict[str, str] = Field(default_factory=dict)  # name -> component id
    require_approval: bool = True  # public communication needs a second person by default
    timeout_seconds: float = Field(10, gt=0)


class PagerDuty(_Section):
    """PagerDuty Events API v2; the routing key comes from env PAGERDUTY_ROUTING_KEY."""

    events_url: str = "https://events.pagerduty.com/v2/enqueue"
    source: str = "cf"  # the event's payload.source
    timeout_seconds: float = Field(10, gt=0)


class OncallEntry(_Section):
    role: str
    name: str
    contact: str


def _runbook_oncall() -> list[OncallEntry]:
    return [
        OncallEntry(role="primary", name="Primary On-call", contact="+1-555-0001"),
        OncallEntry(role="secondary", name="Secondary On-call", contact="+1-555-0002"),
        OncallEntry(role="manager", name="Engineering Manager", contact="+1-555-0003"),
        OncallEntry(role="cto", name="CTO", contact="+1-555-0004"),
    ]


def _runbook_teams() -> dict[str, str]:
    return {"DevOps": "devops@candlefish.ai", "Security": "security@candlefish.ai",
            "Database": "database@candlefish.ai", "Frontend": "frontend@candlefish.ai",
            "Backend": "backend@candlefish.ai"}


class Contacts(_Section):
    """The runbook's Contact Information besides the escalation list; `oncall` shows them."""

    teams: dict[str, str] = Field(default_factory=_runbook_teams)  # team -> email
    aws_support: str = "https://console.aws.amazon.com/support/home"  # runbook: "Use AWS Support Center"
    pagerduty: str = "https://candlefish.pagerduty.com"  # the PagerDuty web app (paging itself: `page`)

    @field_validator("teams")
    @classmethod
    def _emails(cls, teams: dict[str, str]) -> dict[str, str]:
        for team, email in teams.items():
            local, at, domain = email.partition("@")
            if not (local and at and "." in domain) or any(c.isspace() or c in "<>|" for c in email):
                raise ValueError(f"{team}: {email!r} is not an email address")
        return teams

    @field_validator("aws_support", "pagerduty")
    @classmethod
    def _https(cls, url: str) -> str:
        if not url.startswith("https://") or any(c.isspace() or c in "<>|" for c in url):
            raise ValueError(f"{url!r} is not an https:// URL")
        return url


class Incidents(_Section):
    responders: list[str] = Field(default_factory=list)  # user ids or a user group invited to new channels
    reminder_minutes: dict[str, float] = Field(
        default_factory=lambda: {"sev1": 15.0, "sev2": 30.0, "sev3": 60.0, "sev4": 240.0}
    )  # no update for this long -> a reminder in the incident channel
    reminder_check_seconds: float = Field(60, gt=0)  # how often reminders are due-checked
    oncall: list[OncallEntry] = Field(default_factory=_runbook_oncall)  # `oncall` and `page LEVEL`
    contacts: Contacts = Field(default_factory=Contacts)  # team emails, AWS Support, PagerDuty: `oncall`
    private_channels: bool = False  # create incident channels as private channels

    @field_validator("responders")
    @classmethod
    def _responder_ids(cls, ids: list[str]) -> list[str]:
        for entry in ids:
            if not (entry[:1] in ("U", "W", "S") and entry[1:].isalnum() and entry.isupper()):
                raise ValueError(f"{entry!r} is not a Slack user id (U...) or user-group id (S...)")
        return ids

    @field_validator("reminder_minutes")
    @classmethod
    def _severities(cls, minutes: dict[str, float]) -> dict[str, float]:
        for key, value in minutes.items():
            if key not in SEVERITIES or value <= 0:
                raise ValueError(f"{key}: expected sev1..sev4 with a positive number of minutes")
        return minutes


class Settings(_Section):
    """The whole configuration. Every field has a comment; defaults are the runbook's values."""

    namespace: str = "collaboration"  # default Kubernetes namespace
    incident_channel: str = Field(..., min_length=1)  # the #incident-response channel id
    rbac: RBAC = Field(default_factory=RBAC)
    approvals: Approvals = Field(default_factory=Approvals)
    limits: Limits = Field(default_factory=Limits)
    kubernetes: Kubernetes = Field(default_factory=Kubernetes)
    probes: Probes = Field(default_factory=Probes)
    targets: Targets = Field(default_factory=Targets)
    aws: AWS = Field(default_factory=AWS)
    alerts: Alerts = Field(default_factory=Alerts)
    statuspage: Statuspage = Field(default_factory=Statuspage)
    pagerduty: PagerDuty = Field(default_factory=PagerDuty)
    incidents: Incidents = Field(default_factory=Incidents)
    prometheus: Prometheus = Field(default_factory=Prometheus)
    alertmanager: Alertmanager = Field(default_factory=Alertmanager)
    audit: AuditSettings = Field(default_factory=AuditSettings)
