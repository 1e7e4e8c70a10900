"""The approval state machine.

    pending --approve--> approved --> running --> done | failed
       |  \\--deny--> denied                 |  \\--(process died)--> interrupted
       \\--ttl--> expired                     \\--(live state moved since the request)--> stale

Each arrow is one compare-and-set in the store (`Store.transition`), so whichever click, approver or
replica gets there first wins and every other attempt is told what happened instead. Each step is
audited (store first, then the request's thread) before its effect, and the request message is
updated to its current state; the buttons disappear once it leaves `pending`.

A change command is called again at execution time with the stored arguments: it re-validates
against the live system and returns the `Change` whose `apply` runs. If what the request showed as
*current* (its `basis`) is no longer so — someone scaled by hand in between — the approval was given
for another situation: the request ends `stale` and nothing runs. Nothing but the action id travels
in a button.

A done change is then verified (`bot.verdicts`) and, where it has a known inverse, offers Undo: a new
request (`/cf undo ID`) linked both ways to this one. A target has at most one request pending or
running at a time (a unique index in the store, so two replicas cannot both let one in).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from base.durations import duration_text
from base.text import escape
from bot import blocks
from bot.audit import AuditTrail
from bot.errors import user_message
from bot.inbox import action_id_for, delivery_key, replaying
from bot.messenger import DeliveryError, Messenger, Origin
from bot.policy import Policy
from bot.render import render_reply
from bot.store import (
    APPROVED,
    DENIED,
    DONE,
    EXPIRED,
    FAILED,
    FINAL_STATES,
    INTERRUPTED,
    PENDING,
    RUNNING,
    STALE,
    VERIFYING,
    Action,
    Store,
)
from bot.verdicts import Verdicts
from commands.base import Change, CommandError, CommandSpec, Context, Registry, Role
from commands.reply import Outcome

log = logging.getLogger(__name__)

# (requester, channel, roles, progress, incident id, the command's needs) -> its Context
ContextFactory = Callable[
    [str, str, frozenset[Role], Callable[[str], Awaitable[None]], str | None, tuple[str, ...]], Context
]


class Stale(Exception):
    """The live state moved between request and approval: the change is not run."""

    def __init__(self, was: str, now: str) -> None:
        super().__init__(f"was {was} when requested, now {now}")
        self.was = was
        self.now = now


class Approvals:
    def __init__(
        self,
        *,
        store: Store,
        messenger: Messenger,
        audit: AuditTrail,
        policy: Policy,
        registry: Registry,
        make_context: ContextFactory,
        ttl_seconds: float,
        heartbeat_seconds: float = 5.0,
        verify_timeout_seconds: float = 300.0,
        verify_progress_seconds: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.messenger = messenger
        self.audit = audit
        self.policy = policy
        self.registry = registry
        self.make_context = make_context
        self.ttl_seconds = ttl_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.clock = clock
        self.verdicts = Verdicts(store=store, audit=audit, make_context=make_context, on_verdict=self._update_message,
                                 timeout_seconds=verify_timeout_seconds, progress_seconds=verify_progress_seconds,
                                 heartbeat_seconds=heartbeat_seconds, clock=clock)

    # --- request ----------------------------------------------------------------------------

    async def request(
        self,
        spec: CommandSpec,
        args: dict[str, Any],
        origin: Origin,
        change: Change,
        text: str = "",
        incident_id: str | None = None,
    ) -> Action:
        """Record a validated change and post it for approval (or run it now if exempt)."""
        now = self.clock()
        exempt = not self.policy.needs_approval(spec)
        key = delivery_key.get()
        if key is not None:  # a replayed delivery (its replica died) finds the request it made, not a second one
            made = await self.store.get_action(action_id_for(key))
            if made is not None:
                posted_or_over = made.message_ts or made.state not in (PENDING, APPROVED)
                return made if posted_or_over else await self._finish_request(made, change, exempt)
        action = Action(
            id=action_id_for(key) if key is not None else uuid.uuid4().hex[:12],
            command=spec.title,
            args=_jsonable({**args, **change.pinned}),
            requester=origin.user,
            channel=origin.channel,
            state=APPROVED if exempt else PENDING,
            summary=change.summary,
            approver_role=spec.approver_role.value,
            created_at=now,
            expires_at=now + self.ttl_seconds,
            updated_at=now,
            current_state=change.current,
            desired_state=change.desired,
            request_text=text or spec.title,
            incident_id=incident_id,
            target=change.target,
            basis=change.basis,
            no_undo=change.no_undo or None,
            undo_of=change.reverts,
        )
        if not await self.store.create_action(action):
            await self._refuse_busy(action)
        await self._audit("requested", action, origin.user,
                          detail={"args": action.args, "current": change.current, "desired": change.desired,
                                  "summary": change.summary, "exempt": exempt, "target": change.target,
                                  "reverts": change.reverts})
        return await self._finish_request(action, change, exempt)

    async def _finish_request(self, action: Action, change: Change, exempt: bool) -> Action:
        """Post the stored request for approval (or run it if exempt); a replay of a posted request does nothing."""
        if action.message_ts:
            return action
        view = blocks.approval_message(action, change.warnings, pending=not exempt, exempt=exempt)
        try:
            ts = await self.messenger.post(action.channel, view.text, view.blocks)
        except DeliveryError as exc:
            failed = await self.store.transition(action.id, (PENDING, APPROVED), FAILED, self.clock(), error=exc.code)
            if failed is None:  # the message did arrive (its answer was lost): someone already acted on it
                log.warning("request message answer lost, but the request went on", extra={"action_id": action.id,
                                                                                          "error": exc.code})
                return (await self.store.get_action(action.id)) or action
            await self._audit("failed", failed, detail={"error": f"could not post the approval message: {exc.code}"})
            await self._update_message(failed)
            raise
        action.message_ts = ts
        await self.store.set_fields(action.id, message_ts=ts)
        await self.audit.post(action.channel, ts, blocks.requested_line(action, exempt))
        if change.reverts:
            await self._link_undo(action, change.reverts)
        if exempt:
            await self._execute(action)
        return action

    async def _refuse_busy(self, action: Action) -> None:
        """One change at a time per target: name the request in the way (the store refused the insert)."""
        first = await self.store.active_for_target(action.target)
        if first is None:  # it finished between the insert and this read: the user may simply ask again
            raise CommandError(f"Another change on {action.target} was in progress a moment ago; ask again. "
                               "Nothing was changed.")
        where = blocks.request_link(first)
        raise CommandError(f"{action.target} already has a change request {first.state}: `{first.id}` "
                           f"({first.summary}, asked by <@{first.requester}>){where}. One change at a time per "
                           "target: wait for it to finish, or deny it, then ask again. Nothing was changed.")

    async def _link_undo(self, undo: Action, original_id: str) -> None:
        """Link an undo request and the change it reverts, both ways, and say so in the original's thread."""
        original = await self.store.get_action(original_id)
        if original is None:
            return
        await self.store.set_fields(original.id, undone_by=undo.id)
        original.undone_by = undo.id
        if original.message_ts:
            await self.audit.post(original.channel, original.message_ts,
                                  f":leftwards_arrow_with_hook: Undo requested by <@{undo.requester}>: request "
                                  f"`{undo.id}`{blocks.request_link(undo)}.")
        await self._update_message(original)

    # --- decisions --------------------------------------------------------------------------

    async def approve(self, action_id: str, origin: Origin) -> Action | None:
        action = await self._clicked(action_id, origin)
        if action is None:
            await self._tell(origin, "That request no longer exists.")
            return None
        roles = await self.policy.roles_of(origin.user)
        reason = self.policy.may_approve(Role(action.approver_role), roles, origin.user == action.requester)
        if reason is not None:
            await self._audit("approval_refused", action, origin.user, detail={"reason": reason},
                              text=f":no_entry: <@{origin.user}> tried to approve: {reason}")
            await self._tell(origin, reason)
            return None
        claimed = await self.store.transition(
            action.id, (PENDING,), APPROVED, self.clock(), unexpired=True, approver=origin.user
        )
        if claimed is None:
            current = await self.store.get_action(action_id)
            if replaying.get() and current is not None and current.state == APPROVED and \
                    current.approver == origin.user:  # this very click, replayed: its replica died before running it
                return await self._execute(current)
            await self._explain_lost(action_id, origin)
            return None
        await self._audit("approved", claimed, origin.user, detail={"requester": claimed.requester},
                          text=f":white_check_mark: Approved by <@{origin.user}>.")
        return await self._execute(claimed)

    async def deny(self, action_id: str, origin: Origin) -> Action | None:
        action = await self._clicked(action_id, origin)
        if action is None:
            await self._tell(origin, "That request no longer exists.")
            return None
        roles = await self.policy.roles_of(origin.user)
        is_requester = origin.user == action.requester
        if not (is_requester or Role.admin in roles or Role(action.approver_role) in roles):
            await self._tell(origin, f"Denying this needs the {action.approver_role} role (or being the requester).")
            return None
        denied = await self.store.transition(action.id, (PENDING,), DENIED, self.clock(), approver=origin.user)
        if denied is None:
            await self._explain_lost(action_id, origin)
            return None
        verb = "Withdrawn by the requester" if is_requester else "Denied"
        await self._audit("denied", denied, origin.user,
                          text=f":no_entry_sign: {verb} (<@{origin.user}>). Nothing was changed.")
        await self._update_message(denied)
        return denied

    async def _clicked(self, action_id: str, origin: Origin) -> Action | None:
        """The request a button on its message was clicked for. The click names the message: when the store
        does not know its ts yet (the post's answer is late or lost, or its replica died before storing it),
        it is taken from the click, so every later step still goes to the thread and updates the message."""
        action = await self.store.get_action(action_id)
        if action is not None and not action.message_ts and origin.message_ts and origin.channel == action.channel:
            action.message_ts = origin.message_ts
            await self.store.set_fields(action.id, message_ts=origin.message_ts)
        return action

    async def _explain_lost(self, action_id: str, origin: Origin) -> None:
        """Someone else (or the clock) got there first: say what state the request is in."""
        current = await self.store.get_action(action_id)
        if current is None:
            return
        if current.state == PENDING and current.expires_at <= self.clock():
            await self.expire_due()
            await self._tell(origin, "This request has expired; nothing was changed. Ask again if it is still needed.")
            return
        who = f" by <@{current.approver}>" if current.approver else ""
        await self._tell(origin, f"This request is already {current.state}{who}; nothing more was done.")

    # --- execution --------------------------------------------------------------------------

    async def _execute(self, action: Action) -> Action:
        running = await self.store.transition(action.id, (APPROVED,), RUNNING, self.clock(), heartbeat_at=self.clock())
        if running is None:  # another replica took it between our two steps
            return (await self.store.get_action(action.id)) or action
        await self._audit("running", running, text=f":gear: Running `{running.command}` ({running.summary})…")
        await self._update_message(running)
        beat = asyncio.create_task(self._heartbeat(running.id))
        outcome: Outcome | None = None
        try:
            outcome = await self._apply(running)
        except Stale as exc:
            finished = await self.store.transition(running.id, (RUNNING,), STALE, self.clock(), error=str(exc))
            await self._audit("stale", running, detail={"was": exc.was, "now": exc.now, "approver": running.approver},
                              text=(f":arrows_counterclockwise: Stale, not run: {escape(str(exc))}. The "
                                    "approval was for the state shown in the request. Nothing was changed; "
                                    "*Request again* on the message asks anew with today's state."))
        except Exception as exc:
            error = user_message(exc)
            finished = await self.store.transition(running.id, (RUNNING,), FAILED, self.clock(), error=error)
            await self._audit("failed", running, detail={"error": error, "approver": running.approver},
                              text=f":x: Failed: {error}")
        else:
            result = {"before": outcome.before, "after": outcome.after}
            undo = (json.dumps({"command": outcome.undo.command, "args": outcome.undo.args,
                                "summary": outcome.undo.summary}, sort_keys=True, default=str)
                    if outcome.undo is not None else None)
            verifying = self.verdicts.marks(outcome.verify) if outcome.verify is not None else {}
            finished = await self.store.transition(
                running.id, (RUNNING,), DONE, self.clock(), result=json.dumps(result), undo_spec=undo, **verifying
            )
            await self._audit("done", running,
                              detail={**result, "approver": running.approver, "requester": running.requester},
                              text=f":large_green_circle: Done: {outcome.before} → {outcome.after}")
            if outcome.detail is not None and running.message_ts:
                await self._post_detail(running, outcome)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        final = finished or (await self.store.get_action(running.id)) or running
        if final.state == DONE and outcome is not None and outcome.verify is not None:
            final = await self.verdicts.begin(final, outcome.verify)
        await self._update_message(final)
        if final.undo_of and final.state in (DONE, FAILED, STALE):
            original = await self.store.get_action(final.undo_of)
            if original is not None:
                await self._update_message(original)
        return final

    async def _apply(self, action: Action) -> Outcome:
        spec = self.registry.get(action.command)
        if spec is None:
            raise RuntimeError(f"command {action.command!r} is no longer known to this bot")
        roles = await self.policy.roles_of(action.requester)

        async def progress(text: str) -> None:
            if action.message_ts:
                await self.audit.post(action.channel, action.message_ts, text)

        ctx = self.make_context(action.requester, action.channel, roles, progress, action.incident_id, spec.needs)
        ctx.request_id = action.id
        change = await spec.fn(ctx, **action.args)
        if not isinstance(change, Change):
            raise TypeError(f"change command {action.command!r} returned {type(change).__name__}, not Change")
        now = change.current if change.basis is None else change.basis
        if now != action.bound_to:
            raise Stale(action.bound_to, now)
        return await change.apply()

    async def _post_detail(self, action: Action, outcome: Outcome) -> None:
        assert outcome.detail is not None and action.message_ts is not None
        rendered = render_reply(outcome.detail)
        try:
            await self.messenger.post(action.channel, rendered.text, rendered.blocks, thread_ts=action.message_ts)
            for file in rendered.files:
                await self.messenger.upload(action.channel, action.message_ts, file)
        except DeliveryError as exc:
            log.error("result detail not posted", extra={"action_id": action.id, "error": exc.code})

    async def _heartbeat(self, action_id: str) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await self.store.heartbeat(action_id, self.clock())
            except Exception as exc:  # the store may blip; the action itself must carry on
                log.warning("heartbeat failed", extra={"action_id": action_id, "error": str(exc)})

    # --- housekeeping (scheduled) -----------------------------------------------------------

    async def expire_due(self) -> list[Action]:
        expired = await self.store.expire_due(self.clock())
        for action in expired:
            ttl = duration_text(action.expires_at - action.created_at)
            await self._audit("expired", action,
                              text=f":hourglass: Expired after {ttl} without approval. Nothing was changed.")
            await self._update_message(action)
        return expired

    async def recover_interrupted(self, stale_after: float | None = None) -> list[Action]:
        """Mark actions whose runner stopped heart-beating as interrupted, and say so in their thread."""
        window = stale_after if stale_after is not None else self.heartbeat_seconds * 3
        now = self.clock()
        interrupted = await self.store.interrupt_stale(now, now - window)
        for action in interrupted:
            await self._audit(INTERRUPTED, action,
                              text=(":warning: Interrupted: the bot stopped while this was running. Its effect may be "
                                    "partial; check the current state before asking again."))
            await self._update_message(action)
        await self.verdicts.resume_stale(window)
        await self.redraw_unshown(window)
        return interrupted

    async def pending_count(self) -> int:
        return len(await self.store.actions_in(PENDING))

    # --- helpers ----------------------------------------------------------------------------

    async def _audit(self, event: str, action: Action, actor: str = "cf", *, text: str | None = None,
                     detail: dict[str, Any] | None = None) -> None:
        """One step of `action` in the audit: stored, then said in the request's thread once it has one."""
        await self.audit.record(event, actor, action.command, action_id=action.id, channel=action.channel,
                                thread_ts=action.message_ts, text=text, detail=detail, incident_id=action.incident_id)

    async def _update_message(self, action: Action) -> None:
        if not action.message_ts:
            return
        undo_state = None
        if action.undone_by:
            undo = await self.store.get_action(action.undone_by)
            undo_state = undo.state if undo is not None else None
        view = blocks.approval_message(action, pending=action.state == PENDING, undo_state=undo_state)
        try:
            await self.messenger.update(action.channel, action.message_ts, view.text, view.blocks)
        except DeliveryError as exc:
            log.error("request message not updated", extra={"action_id": action.id, "error": exc.code})
            return
        if action.state in FINAL_STATES and action.verdict != VERIFYING:
            await self.store.mark_shown(action)

    async def redraw_unshown(self, stale_after: float) -> int:
        """Redraw the request messages whose last update was lost (Slack failed it, or its replica died)."""
        owed = await self.store.unshown(self.clock() - stale_after)
        for action in owed:
            await self._update_message(action)
        return len(owed)

    async def _tell(self, origin: Origin, text: str) -> None:
        try:
            await self.messenger.respond(origin, text)
        except DeliveryError as exc:
            log.error("could not answer the user", extra={"user": origin.user, "error": exc.code})


def _jsonable(args: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(args, default=str))
    return out


__all__ = ["DENIED", "DONE", "EXPIRED", "FAILED", "INTERRUPTED", "RUNNING", "STALE", "Approvals", "Stale"]
