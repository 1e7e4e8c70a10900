"""Who may do what: roles from config `rbac`, and whether a change needs approval.

A user has a role when their id, a user group they belong to, or "*" is listed under it. Admin
implies every role; operator and approver imply viewer. Approver does *not* imply operator: asking
for a change and approving one are separate duties. Group membership is looked up through a
`GroupResolver` (Slack's usergroups.users.list) and cached for a minute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from bot.config import Settings
from commands.base import CommandSpec, Kind, Role

log = logging.getLogger(__name__)

GroupResolver = Callable[[str], Awaitable[list[str]]]


class Policy:
    def __init__(self, settings: Settings, resolve_group: GroupResolver | None = None, cache_seconds: float = 60):
        self.settings = settings
        self._resolve_group = resolve_group
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._cache_seconds = cache_seconds

    async def roles_of(self, user: str) -> frozenset[Role]:
        rbac = self.settings.rbac
        lists = {Role.viewer: rbac.viewer, Role.operator: rbac.operator, Role.approver: rbac.approver,
                 Role.admin: rbac.admin}
        roles: set[Role] = set()
        for role, entries in lists.items():
            if await self._listed(user, entries):
                roles.add(role)
        if Role.admin in roles:
            roles.update(Role)
        if roles & {Role.operator, Role.approver}:
            roles.add(Role.viewer)
        return frozenset(roles)

    async def _listed(self, user: str, entries: list[str]) -> bool:
        if "*" in entries or user in entries:
            return True
        for entry in entries:
            if entry.startswith("S") and user in await self._members(entry):
                return True
        return False

    async def _members(self, group: str) -> frozenset[str]:
        now = time.monotonic()
        cached = self._cache.get(group)
        if cached and now - cached[0] < self._cache_seconds:
            return cached[1]
        members: frozenset[str] = frozenset()
        if self._resolve_group is not None:
            try:
                members = frozenset(await self._resolve_group(group))
            except Exception as exc:  # a lookup failure denies, it never grants
                log.warning("user group lookup failed", extra={"group": group, "error": str(exc)})
                return cached[1] if cached else frozenset()
        self._cache[group] = (now, members)
        return members

    @staticmethod
    def may_run(spec: CommandSpec, roles: frozenset[Role]) -> bool:
        needed = Role.operator if spec.kind is Kind.change else spec.role
        needed = max(needed, spec.role, key=_rank)
        return Role.admin in roles or needed in roles

    def needs_approval(self, spec: CommandSpec) -> bool:
        if spec.kind is not Kind.change or spec.title in self.settings.approvals.exempt:
            return False
        return spec.approval is None or spec.approval(self.settings)

    def may_approve(self, spec_role: Role, roles: frozenset[Role], is_requester: bool) -> str | None:
        """None if allowed, else the reason it is not."""
        if is_requester and not self.settings.approvals.allow_self_approval:
            return "You cannot approve your own request: a second person must approve it."
        if Role.admin in roles or spec_role in roles:
            return None
        return f"Approving this needs the {spec_role.value} role, which you do not have."


_ORDER = [Role.viewer, Role.operator, Role.approver, Role.admin]


def _rank(role: Role) -> int:
    return _ORDER.index(role)
