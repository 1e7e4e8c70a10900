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
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from commands.args import Arg, UsageError, parse_tokens
from commands.reply import Change, Reply

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
    needs: tuple[str, ...] = ()
    approver_role: Role = Role.approver
    ephemeral: bool = False

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
    registry: Registry | None = None,
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """Declare a command. The function is registered and returned unchanged."""

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
        )
        (registry if registry is not None else REGISTRY).add(spec)
        return fn

    return decorate


async def _no_progress(_text: str) -> None:
    return None


@dataclass
class Context:
    """What a command function receives besides its arguments.

    `services` holds the integration clients built once at start-up (by name: "kube", "audit", ...).
    `settings` is the bot's validated configuration object; commands read plain attributes of it.
    `progress` posts a line to the request's thread (long changes such as a node drain use it).
    """

    user: str
    channel: str
    namespace: str
    settings: Any
    services: Mapping[str, Any] = field(default_factory=dict)
    roles: frozenset[Role] = frozenset()
    progress: Callable[[str], Awaitable[None]] = _no_progress
    incident_id: str | None = None

    def service(self, name: str) -> Any:
        svc = self.services.get(name)
        if svc is None:
            raise NotConfigured(f"{_SERVICE_NAMES.get(name, name)} is not configured for this bot.")
        return svc

    @property
    def kube(self) -> Any:
        return self.service("kube")

    def has_role(self, role: Role) -> bool:
        return Role.admin in self.roles or role in self.roles


_SERVICE_NAMES = {
    "kube": "Kubernetes",
    "aws": "AWS",
    "postgres": "The monitored PostgreSQL database",
    "redis": "The monitored Redis cache",
    "audit": "The audit store",
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
    "UsageError",
    "command",
]
