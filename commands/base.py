"""The command framework: specs, the registry and the `@command` decorator.

A command is one decorated async function. The decorator records a frozen `CommandSpec` (name,
aliases, typed arguments, the role it needs, read or change) in the module-level `REGISTRY` and
returns the function unchanged, so tests can call it directly with a `Context`.

A *read* command returns a `Reply`. A *change* command validates its request against the live
system and returns a `Change` (what, current -> desired, and an `apply` coroutine). The bot calls a
change command twice: once when it is requested (to validate and to show the approval prompt) and
again when it is approved (to re-validate against the state of that moment and then `apply`). That
keeps the whole command in one function and lets any replica run an approval with nothing but the
stored arguments.

This package never imports `bot`: the arrows point bot -> commands -> integrations.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

from base.settings import Settings
from commands.args import Arg, UsageError, parse_tokens
from commands.clients import SERVICE_NAMES, ArtefactStore, AuditClient, IncidentsClient, Services
from commands.reply import Change, Reply
from integrations.protocols import (
    AwsClient,
    KubeClient,
    PagerDutyClient,
    PostgresClient,
    PrometheusClient,
    RedisClient,
    StatuspageClient,
)

T = TypeVar("T")

# The help areas, in the runbook's order, and the module (or package) of commands/ that holds each: `/cf help`'s
# sections, the README's command tables and the area modules list the same names (a test holds them equal).
# `commands.catalog` imports exactly these; everything else in commands/ is the framework or `support`.
AREAS: dict[str, str] = {
    "Triage": "triage",
    "Logs & Metrics": "logs",
    "Nodes": "nodes",
    "Scaling": "scaling",
    "Database": "database",
    "Cache": "cache",
    "AWS": "aws",
    "Security": "security",
    "Incidents": "incidents",
    "Bot": "bot",
}


class Role(StrEnum):
    """Roles from config `rbac`. Ordered by what they may do; admin may do everything."""

    viewer = "viewer"
    operator = "operator"
    approver = "approver"
    admin = "admin"


class Kind(StrEnum):
    read = "read"
    change = "change"


class CommandError(Exception):
    """A refusal or failure to show the user as is: it must be a complete, plain sentence."""


class NotConfigured(CommandError):
    """The command needs an integration this deployment has not configured."""


@dataclass(frozen=True)
class CommandSpec:
    """Everything the dispatcher, `help` and the approval flow need to know about a command."""

    name: tuple[str, ...]
    fn: Callable[..., Awaitable[Reply | Change]]
    summary: str
    area: str
    args: tuple[Arg, ...] = ()
    aliases: tuple[tuple[str, ...], ...] = ()
    role: Role = Role.viewer
    kind: Kind = Kind.read
    example: str = ""
    # The clients the command may use (`ctx.kube`, ...; names from commands.clients.Services): the Context
    # hands out these and no others. Declaring one does not require it: unconfigured, it is NotConfigured.
    needs: tuple[str, ...] = ()
    approver_role: Role = Role.approver
    ephemeral: bool = False
    # For a change: whether it needs a second person under these settings (None: always, unless the command is
    # listed in `approvals.exempt`). The status-page commands follow `statuspage.require_approval` this way.
    approval: Callable[[Settings], bool] | None = None

    @property
    def title(self) -> str:
        return " ".join(self.name)

    @property
    def usage(self) -> str:
        parts = [self.title, *(a.usage for a in self.args)]
        return " ".join(parts)

    def parse(self, tokens: list[str]) -> dict[str, Any]:
        return parse_tokens(self.args, tokens, self.title)


class DuplicateCommand(Exception):
    """Two commands claim the same name or alias: a programming error, raised at import."""


class Registry:
    """Commands by name and alias. Refuses duplicates when a module is imported."""

    def __init__(self) -> None:
        self._by_words: dict[tuple[str, ...], CommandSpec] = {}
        self._specs: list[CommandSpec] = []

    def add(self, spec: CommandSpec) -> None:
        for words in (spec.name, *spec.aliases):
            other = self._by_words.get(words)
            if other is not None:
                raise DuplicateCommand(
                    f"command {' '.join(words)!r} is declared by both "
                    f"{other.fn.__module__}.{other.fn.__name__} and {spec.fn.__module__}.{spec.fn.__name__}"
                )
        for words in (spec.name, *spec.aliases):
            self._by_words[words] = spec
        self._specs.append(spec)

    def __iter__(self) -> Iterator[CommandSpec]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def get(self, name: str) -> CommandSpec | None:
        return self._by_words.get(tuple(name.split()))

    def resolve(self, words: list[str]) -> tuple[CommandSpec, list[str]] | None:
        """Longest known prefix of `words` (lowercased) -> (spec, remaining tokens)."""
        lowered = [w.lower() for w in words]
        for n in range(min(len(words), 4), 0, -1):
            spec = self._by_words.get(tuple(lowered[:n]))
            if spec is not None:
                return spec, words[n:]
        return None

    def closest(self, words: list[str]) -> str | None:
        """The known command closest to what was typed, for 'did you mean'."""
        names = [" ".join(w) for w in self._by_words]
        typed = " ".join(w.lower() for w in words[:3])
        for n in (3, 2, 1):
            guess = " ".join(typed.split()[:n])
            match = difflib.get_close_matches(guess, names, n=1, cutoff=0.6)
            if match:
                return self._by_words[tuple(match[0].split())].title
        return None

    def by_area(self) -> dict[str, list[CommandSpec]]:
        areas: dict[str, list[CommandSpec]] = {}
        for spec in self._specs:
            areas.setdefault(spec.area, []).append(spec)
        return areas


REGISTRY = Registry()


def command(
    name: str,
    *,
    summary: str,
    area: str,
    args: Iterable[Arg] = (),
    aliases: Iterable[str] = (),
    role: Role = Role.viewer,
    kind: Kind = Kind.read,
    example: str = "",
    needs: Iterable[str] = (),
    approver_role: Role = Role.approver,
    ephemeral: bool = False,
    approval: Callable[[Settings], bool] | None = None,
    registry: Registry | None = None,
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """Declare a command. The function is registered and returned unchanged."""

    needs = tuple(needs)
    unknown = sorted(set(needs) - SERVICE_NAMES)
    if unknown:
        raise ValueError(f"command {name!r} needs unknown clients {unknown} (known: {sorted(SERVICE_NAMES)})")

    def decorate(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        spec = CommandSpec(
            name=tuple(name.split()),
            fn=fn,
            summary=summary,
            area=area,
            args=tuple(args),
            aliases=tuple(tuple(a.split()) for a in aliases),
            role=role,
            kind=kind,
            example=example or f"/cf {name}",
            needs=tuple(needs),
            approver_role=approver_role,
            ephemeral=ephemeral,
            approval=approval,
        )
        (registry if registry is not None else REGISTRY).add(spec)
        return fn

    return decorate


async def _no_progress(_text: str) -> None:
    return None


class Undeclared(Exception):
    """A command used a client it did not list in `needs`: a programming error, not the user's.

    `needs` is the injection: a command receives exactly the clients it declared. Every command's
    test runs it through a `Context` that knows its spec's needs, so an undeclared use fails there.
    """


@dataclass
class Context:
    """What a command function receives besides its arguments.

    The clients are typed properties — `ctx.kube`, `ctx.aws`, `ctx.postgres`, `ctx.redis`,
    `ctx.statuspage`, `ctx.pagerduty`, `ctx.audit`, `ctx.artefacts`, `ctx.incidents` — each the narrow
    Protocol of `integrations.protocols` / `commands.clients`. One raises `NotConfigured` (a sentence
    for the user) when this deployment has no such client, and `Undeclared` when the running command
    did not list it in `needs`. `needs` is that list: the dispatcher and the approval flow pass the
    command's (`CommandSpec.needs`), `run_checks` each check's; built bare (a test, a job) it is empty
    and no client is reachable. `configured(name)` asks whether a client exists without using it.
    `settings` is the validated configuration; `progress` posts a line to the request's thread (long
    changes such as a node drain use it).
    """

    user: str
    channel: str
    namespace: str
    settings: Settings
    services: Services = field(default_factory=lambda: Services())
    roles: frozenset[Role] = frozenset()
    progress: Callable[[str], Awaitable[None]] = _no_progress
    incident_id: str | None = None
    needs: frozenset[str] = frozenset()
    # The change request being run (its id), set by the approval flow when it calls a change's `apply`:
    # a change may record it on what it writes (restart's change-cause), so the system shows which request.
    request_id: str | None = None

    def narrowed(self, needs: Iterable[str]) -> Context:
        """This context for other code with its own declaration (a status check run by `/cf status`)."""
        return replace(self, needs=frozenset(needs))

    def configured(self, name: str) -> bool:
        """Whether this deployment has the client `name` (asking uses nothing, so it needs no declaration)."""
        return self.services.get(name) is not None

    def _need(self, name: str, client: T | None) -> T:
        if name not in self.needs:
            raise Undeclared(f"this command used the {name!r} client without declaring it: add {name!r} to its "
                             f"needs (it declared {sorted(self.needs) or 'none'}).")
        if client is None:
            raise NotConfigured(self._not_configured(name))
        return client

    def _not_configured(self, name: str) -> str:
        if name == "postgres":
            env = self.settings.targets.postgres.dsn_env
            return (f"The monitored PostgreSQL database is not configured: set `{env}` to its connection string "
                    "and restart the bot.")
        if name == "redis":
            return (f"The monitored Redis cache is not configured: set `{self.settings.targets.redis.url_env}` to "
                    "its redis:// URL and restart the bot.")
        if name == "statuspage":
            return ("The status page is not configured: set `statuspage.page_id` in the config and "
                    "STATUSPAGE_API_KEY in the environment.")
        if name == "pagerduty":
            return "PagerDuty is not configured (set PAGERDUTY_ROUTING_KEY)."
        if name == "prometheus":
            return ("Prometheus is not configured: set `prometheus.url` in the config (e.g. http://prometheus:9090) "
                    "and restart the bot.")
        return f"{_SERVICE_NAMES.get(name, name)} is not configured for this bot."

    @property
    def kube(self) -> KubeClient:
        return self._need("kube", self.services.get("kube"))

    @property
    def aws(self) -> AwsClient:
        return self._need("aws", self.services.get("aws"))

    @property
    def postgres(self) -> PostgresClient:
        return self._need("postgres", self.services.get("postgres"))

    @property
    def redis(self) -> RedisClient:
        return self._need("redis", self.services.get("redis"))

    @property
    def statuspage(self) -> StatuspageClient:
        return self._need("statuspage", self.services.get("statuspage"))

    @property
    def pagerduty(self) -> PagerDutyClient:
        return self._need("pagerduty", self.services.get("pagerduty"))

    @property
    def prometheus(self) -> PrometheusClient:
        return self._need("prometheus", self.services.get("prometheus"))

    @property
    def audit(self) -> AuditClient:
        return self._need("audit", self.services.get("audit"))

    @property
    def artefacts(self) -> ArtefactStore:
        return self._need("artefacts", self.services.get("artefacts"))

    @property
    def incidents(self) -> IncidentsClient:
        return self._need("incidents", self.services.get("incidents"))

    def has_role(self, role: Role) -> bool:
        return Role.admin in self.roles or role in self.roles


_SERVICE_NAMES = {
    "kube": "Kubernetes",
    "aws": "AWS",
    "postgres": "The monitored PostgreSQL database",
    "redis": "The monitored Redis cache",
    "audit": "The audit store",
    "artefacts": "The artefact store",
    "incidents": "Incident management",
    "prometheus": "Prometheus",
}

__all__ = [
    "AREAS",
    "REGISTRY",
    "Arg",
    "Change",
    "CommandError",
    "CommandSpec",
    "Context",
    "DuplicateCommand",
    "Kind",
    "NotConfigured",
    "Registry",
    "Reply",
    "Role",
    "Services",
    "Undeclared",
    "UsageError",
    "command",
]
