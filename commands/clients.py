"""What a command may be given: the `Services` the bot builds once, and the platform's narrow Protocols.

The integrations' Protocols (`KubeClient`, `AwsClient`, ...) live in `integrations.protocols`. The
clients here are the ones the *bot* provides — the audit trail, the artefact store, the incidents
domain — whose classes commands may not import (the arrows point bot/incidents -> commands), so the
Protocols are written here, from what commands call, and the bot's classes satisfy them structurally.

`Services` is the one place a client is named: its keys are the names a command lists in `needs`, and
`Context` hands each out, typed, only to commands that declared it (commands/base.py says how).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from integrations.protocols import (
    AlertmanagerClient,
    AwsClient,
    KubeClient,
    PagerDutyClient,
    PostgresClient,
    PrometheusClient,
    RedisClient,
    StatuspageClient,
)

if TYPE_CHECKING:
    from commands.parts import Failed


class AuditEntryView(Protocol):
    """One entry of the audit trail as `/cf audit` shows it (`bot.store.AuditView`)."""

    @property
    def id(self) -> int: ...
    @property
    def at(self) -> float: ...
    @property
    def event(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def command(self) -> str: ...
    @property
    def command_line(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def action_id(self) -> str | None: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def incident_id(self) -> str | None: ...
    @property
    def requester(self) -> str | None: ...
    @property
    def approver(self) -> str | None: ...
    @property
    def detail(self) -> dict[str, Any]: ...


class ChangeRequestView(Protocol):
    """A change request as stored (`bot.store.Action`), as `undo` reads it."""

    @property
    def id(self) -> str: ...
    @property
    def command(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def undo_spec(self) -> str | None: ...  # JSON {command, args, summary} of its inverse, once done
    @property
    def no_undo(self) -> str | None: ...
    @property
    def undone_by(self) -> str | None: ...
    @property
    def undo_of(self) -> str | None: ...


class AuditClient(Protocol):
    """The audit trail (`bot.audit.AuditTrail`): record an entry, read entries, name people, read a request."""

    async def record(
        self, event: str, actor: str, command: str, *, action_id: str | None = None, channel: str | None = None,
        thread_ts: str | None = None, text: str | None = None, detail: dict[str, Any] | None = None,
        incident_id: str | None = None, request_id: str | None = None,
    ) -> int: ...
    async def query(self, limit: int, *, target: str | None = None, users: Iterable[str] = (),
                    since_seconds: float | None = None, request_id: str | None = None) -> Sequence[AuditEntryView]: ...
    async def names(self, user_ids: Iterable[str]) -> dict[str, str]: ...
    async def find_people(self, name: str) -> list[str]: ...
    async def change_request(self, request_id: str) -> ChangeRequestView | None: ...


class ArtefactView(Protocol):
    """A file the bot keeps in its store (`bot.artefacts.Artefact`): a backup, a forensics bundle."""

    @property
    def name(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def created_by(self) -> str: ...
    @property
    def created_at(self) -> float: ...
    @property
    def content(self) -> str: ...  # empty in listings (`recent`)


class ArtefactStore(Protocol):
    """The bot's artefact store (`bot.artefacts.Artefacts`)."""

    async def save(self, kind: str, key: str, name: str, content: str, created_by: str) -> ArtefactView: ...
    async def latest(self, kind: str, key: str) -> ArtefactView | None: ...
    async def get(self, kind: str, key: str, name: str) -> ArtefactView | None: ...
    async def recent(self, kind: str, key: str, limit: int = 5) -> Sequence[ArtefactView]: ...


class IncidentView(Protocol):
    """An incident as commands read it (`incidents.store.Incident`)."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def is_open(self) -> bool: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def channel_name(self) -> str | None: ...
    @property
    def commander(self) -> str | None: ...
    @property
    def declared_at(self) -> float: ...
    @property
    def resolved_at(self) -> float | None: ...


class StatuspageView(Protocol):
    """The bot's record of a public status-page incident (`incidents.store.StatuspageRecord`)."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def components(self) -> list[str]: ...


class IncidentsClient(Protocol):
    """The incidents domain (`incidents.service.IncidentService`) as the incident commands use it.

    The records a command passes back (`assign(incident, ...)`) are ones this service handed it; the
    service's own methods take its concrete records, so `incidents.assemble` installs it with a
    cast that says so.
    """

    async def find(self, incident_id: str | None, explicit: str | None = None) -> IncidentView: ...
    async def open_incidents(self) -> Sequence[IncidentView]: ...
    async def declare_steps(self, *, title: str, severity: str, kind: str | None, user: str,
                            source: str | None = None) -> tuple[IncidentView, list[Failed]]: ...
    async def assign(self, incident: IncidentView, role: str, user: str, by: str) -> IncidentView: ...
    async def post_update(self, incident: IncidentView, text: str, by: str,
                          status: str | None = None) -> IncidentView: ...
    async def resolve(self, incident: IncidentView, by: str) -> tuple[IncidentView, list[str]]: ...
    async def timeline(self, incident: IncidentView) -> tuple[str, int]: ...
    async def record_page(self, incident: IncidentView, dedup_key: str, by: str, detail: dict[str, Any]) -> None: ...
    async def statuspages(self, incident_id: str | None) -> Sequence[StatuspageView]: ...
    async def statuspage_target(self, incident_id: str | None) -> StatuspageView: ...
    async def statuspage_opened(self, *, sp_id: str, incident_id: str | None, title: str, status: str, impact: str,
                                components: list[str], shortlink: str | None, by: str) -> None: ...
    async def statuspage_changed(self, record: StatuspageView, status: str, by: str, text: str) -> None: ...


class Services(TypedDict, total=False):
    """The clients built once at start-up, by the name commands use in `needs` (absent: not configured)."""

    kube: KubeClient
    aws: AwsClient
    postgres: PostgresClient
    redis: RedisClient
    statuspage: StatuspageClient
    pagerduty: PagerDutyClient
    prometheus: PrometheusClient
    alertmanager: AlertmanagerClient
    audit: AuditClient
    artefacts: ArtefactStore
    incidents: IncidentsClient


SERVICE_NAMES: frozenset[str] = frozenset(Services.__annotations__)  # what `needs` may name

__all__ = [
    "SERVICE_NAMES",
    "ArtefactStore",
    "ArtefactView",
    "AuditClient",
    "AuditEntryView",
    "IncidentView",
    "IncidentsClient",
    "Services",
    "StatuspageView",
]
