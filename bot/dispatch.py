"""/cf text -> command lookup -> argument parsing -> policy -> run (or request approval).

The dispatcher is transport-neutral: Slack listeners and the demo console both call `handle` with
an `Origin` and the text after `/cf`. Read commands answer in the channel (or privately when the
command says so); change commands are validated against the live system and handed to
`Approvals`. Every refusal is a clear sentence and changes nothing.
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from typing import Any

from base.text import code
from bot import blocks
from bot.approvals import Approvals
from bot.audit import AuditTrail
from bot.config import Settings
from bot.errors import user_message
from bot.messenger import DeliveryError, Messenger, Origin
from bot.policy import Policy
from bot.render import context as context_block
from bot.render import render_reply
from bot.store import StoreUnavailable
from commands.args import UsageError, split_text
from commands.base import Change, CommandSpec, Context, Kind, Registry, Reply, Role, Services

log = logging.getLogger(__name__)

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
IncidentLookup = Callable[[str], Awaitable[str | None]]

COMMAND_TIMEOUT = 120.0
NOT_IN_CHANNEL = ("not_in_channel", "channel_not_found", "is_archived")


class Dispatcher:
    def __init__(
        self,
        *,
        settings: Settings,
        registry: Registry,
        policy: Policy,
        messenger: Messenger,
        audit: AuditTrail,
        services: Services,
        approvals: Approvals | None = None,
        incident_lookup: IncidentLookup | None = None,
        clock: Callable[[], float] = time.time,
        on_command: Callable[[str, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.policy = policy
        self.messenger = messenger
        self.audit = audit
        self.services = services.copy()
        self.incident_lookup = incident_lookup
        self.clock = clock
        self.on_command = on_command
        self.approvals = approvals or Approvals(
            store=audit.store,
            messenger=messenger,
            audit=audit,
            policy=policy,
            registry=registry,
            make_context=self.make_context,
            ttl_seconds=settings.approvals.ttl_minutes * 60,
            heartbeat_seconds=settings.approvals.heartbeat_seconds,
            verify_timeout_seconds=settings.approvals.verify_timeout_seconds,
            verify_progress_seconds=settings.approvals.verify_progress_seconds,
            clock=clock,
        )

    def make_context(
        self,
        user: str,
        channel: str,
        roles: frozenset[Role],
        progress: Callable[[str], Awaitable[None]] | None = None,
        incident_id: str | None = None,
        needs: Iterable[str] = (),
    ) -> Context:
        """A command's context: it reaches exactly the clients in `needs` (its spec's), typed."""
        ctx = Context(
            user=user,
            channel=channel,
            namespace=self.settings.namespace,
            settings=self.settings,
            services=self.services,
            roles=roles,
            incident_id=incident_id,
            needs=frozenset(needs),
        )
        if progress is not None:
            ctx.progress = progress
        return ctx

    async def handle(self, origin: Origin, text: str) -> None:
        """Run one `/cf` request end to end. Never raises: every failure becomes an answer."""
        request_id_var.set(uuid.uuid4().hex[:8])
        seen = {"command": "unknown"}  # filled in by _handle as soon as the command is known
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that arrives as
            # the command finishes (a Ctrl-C in the demo, a shutdown), and the caller would never learn of it
            async with asyncio.timeout(COMMAND_TIMEOUT):
                outcome = await self._handle(origin, text, seen)
        except Exception as exc:
            outcome = "error"
            await self._say(origin, user_message(exc, request_id_var.get()))
        if self.on_command is not None:
            self.on_command(seen["command"], outcome)

    async def _handle(self, origin: Origin, text: str, seen: dict[str, str]) -> str:
        """Returns the outcome for metrics: ok, requested, usage, unknown, refused."""
        try:
            tokens = split_text(html.unescape(text))  # Slack escapes &, < and > in what people type
        except UsageError as exc:
            await self._say(origin, f":warning: {exc}")
            return "usage"
        resolved = self.registry.resolve(tokens or ["help"])
        if resolved is None:
            await self._unknown(origin, tokens)
            return "unknown"
        spec, rest = resolved
        seen["command"] = spec.title
        try:
            args = spec.parse(rest)
        except UsageError as exc:
            view = blocks.usage_blocks(spec, str(exc))
            await self._say(origin, view.text, view.blocks)
            return "usage"
        roles = await self.policy.roles_of(origin.user)
        if not self.policy.may_run(spec, roles):
            await self._refuse(origin, spec, text)
            return "refused"
        incident_id = await self._incident_of(origin.channel)
        if spec.kind is Kind.change:
            await self._request_change(origin, spec, args, roles, text, incident_id)
            return "requested"
        await self._run_read(origin, spec, args, roles, text, incident_id)
        return "ok"

    async def _incident_of(self, channel: str) -> str | None:
        """The incident a channel belongs to; a store outage must not stop read commands."""
        if self.incident_lookup is None:
            return None
        try:
            return await self.incident_lookup(channel)
        except StoreUnavailable:
            return None

    async def _unknown(self, origin: Origin, tokens: list[str]) -> None:
        guess = self.registry.closest(tokens)
        hint = f" Did you mean `/cf {guess}`?" if guess else ""
        await self._say(origin, f":grey_question: Unknown command {code(tokens[0], 40)}.{hint} Try `/cf help`.")

    async def _refuse(self, origin: Origin, spec: CommandSpec, text: str) -> None:
        need = "operator" if spec.kind is Kind.change and spec.role is Role.viewer else spec.role.value
        what = "request changes" if spec.kind is Kind.change else f"run `{spec.title}`"
        await self._audit_quietly("refused", origin, spec, {"text": text, "reason": f"needs {need}"})
        await self._say(
            origin, f":no_entry: You need the *{need}* role to {what}. Nothing was changed. "
            "Ask an admin to add you to `rbac` if you should have it."
        )

    async def _run_read(
        self, origin: Origin, spec: CommandSpec, args: dict[str, Any], roles: frozenset[Role], text: str,
        incident_id: str | None,
    ) -> None:
        ctx = self.make_context(origin.user, origin.channel, roles, incident_id=incident_id, needs=spec.needs)
        started = time.perf_counter()
        reply = await spec.fn(ctx, **args)
        if not isinstance(reply, Reply):
            raise TypeError(f"read command {spec.title!r} returned {type(reply).__name__}, not Reply")
        await self._audit_quietly("ran", origin, spec, {"text": text}, incident_id)
        await self.deliver(origin, reply, text, spec.ephemeral or reply.ephemeral)
        log.info("command done", extra={"command": spec.title, "ms": round((time.perf_counter() - started) * 1000)})

    async def _request_change(
        self, origin: Origin, spec: CommandSpec, args: dict[str, Any], roles: frozenset[Role], text: str,
        incident_id: str | None,
    ) -> None:
        ctx = self.make_context(origin.user, origin.channel, roles, incident_id=incident_id, needs=spec.needs)
        change = await spec.fn(ctx, **args)
        if not isinstance(change, Change):
            raise TypeError(f"change command {spec.title!r} returned {type(change).__name__}, not Change")
        try:
            await self.approvals.request(spec, args, origin, change, text=text, incident_id=incident_id)
        except DeliveryError as exc:
            if exc.code in NOT_IN_CHANNEL:
                await self._say(origin, ":warning: I can't post in this channel, so I can't ask for approval "
                                "here. Invite me with `/invite @cf` and try again. Nothing was changed.")
                return
            raise

    async def deliver(self, origin: Origin, reply: Reply, text: str, private: bool = False) -> None:
        """Post a reply in the channel (files in its thread), or privately; fall back if not a member."""
        preface = f"<@{origin.user}> ran {code('/cf ' + text.strip(), 200)}" if not private else None
        rendered = render_reply(reply, preface)
        if not private:
            try:
                ts = await self.messenger.post(origin.channel, rendered.text, rendered.blocks,
                                               thread_ts=origin.thread_ts)
            except DeliveryError as exc:
                if exc.code not in NOT_IN_CHANNEL:
                    raise
                note = "I'm not a member of this channel, so only you can see this. Invite me with `/invite @cf`."
                rendered.blocks.append(context_block(note).to_dict())
                await self.messenger.respond(origin, rendered.text, rendered.blocks)
                return
            for file in rendered.files:
                await self.messenger.upload(origin.channel, origin.thread_ts or ts, file)
            return
        if rendered.files:
            note = "The full output is too long for a private answer; run the command in a channel to get it as a file."
            rendered.blocks.append(context_block(note).to_dict())
        await self.messenger.respond(origin, rendered.text, rendered.blocks)

    async def _audit_quietly(
        self, event: str, origin: Origin, spec: CommandSpec, detail: dict[str, Any], incident_id: str | None = None
    ) -> None:
        """Audit read commands and refusals; a store outage must not stop read-only work."""
        try:
            await self.audit.record(event, origin.user, spec.title, channel=origin.channel, detail=detail,
                                    incident_id=incident_id, request_id=request_id_var.get())
        except StoreUnavailable as exc:
            log.warning("audit store unavailable for a read command", extra={"error": str(exc)})

    async def _say(self, origin: Origin, text: str, blocks_: list[dict[str, Any]] | None = None) -> None:
        try:
            await self.messenger.respond(origin, text, blocks_)
        except DeliveryError as exc:
            log.error("could not answer the user", extra={"user": origin.user, "error": exc.code})
