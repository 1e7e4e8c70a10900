"""Verdicts: after a change has run, watch the live system until it is *Verified* or *Not verified*.

    done --(verify)--> verifying --probe says done--> verified
                          \\--deadline passes--> not_verified

The change's `Outcome.verify` names a verifier (`commands.verify`) and its JSON params; they are stored
with the action, so the watch is data, not a closure: when the process watching stops (a deploy, a
crash) its heartbeat goes stale and the periodic sweep lets another replica — or this one, restarted —
claim the watch and resume it, saying so in the thread. The verdict is one compare-and-set
(`verifying -> verified|not_verified`), so two watchers can never both announce one.

While waiting, the verifier's progress line is posted to the request's thread when it changes, at most
once per `verify_progress_seconds` (the issue's 10 s), so a slow rollout reads as a short story, not a
flood. The verdict goes to the thread, the audit and the request message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from base.durations import duration_text
from base.text import code, escape
from bot.audit import AuditTrail
from bot.errors import user_message
from bot.store import NOT_VERIFIED, VERIFIED, VERIFYING, Action, Store
from commands.base import Context, Role
from commands.reply import Probe, Verification
from commands.verify import VERIFIERS

log = logging.getLogger(__name__)

# (requester, channel, roles, progress, incident id, needs) -> a Context, as for commands
ContextFactory = Callable[
    [str, str, frozenset[Role], Callable[[str], Awaitable[None]], str | None, tuple[str, ...]], Context
]


def dump(verification: Verification, default_timeout: float) -> str:
    return json.dumps({"check": verification.check, "params": verification.params,
                       "timeout": verification.timeout or default_timeout,
                       "look_further": verification.look_further}, sort_keys=True, default=str)


class Verdicts:
    def __init__(
        self,
        *,
        store: Store,
        audit: AuditTrail,
        make_context: ContextFactory,
        on_verdict: Callable[[Action], Awaitable[None]],
        timeout_seconds: float = 300.0,
        progress_seconds: float = 10.0,
        poll_seconds: float = 2.0,
        heartbeat_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.audit = audit
        self.make_context = make_context
        self.on_verdict = on_verdict
        self.timeout_seconds = timeout_seconds
        self.progress_seconds = progress_seconds
        self.poll_seconds = min(poll_seconds, progress_seconds)
        self.heartbeat_seconds = heartbeat_seconds
        self.clock = clock
        self.watching: dict[str, asyncio.Task[None]] = {}

    def marks(self, verification: Verification) -> dict[str, Any]:
        """The columns that make a change `verifying`, written in the same compare-and-set that makes it `done`:
        a replica that dies right after leaves a verification for a peer to resume, never a verdict for no one."""
        now = self.clock()
        timeout = verification.timeout or self.timeout_seconds
        return {"verdict": VERIFYING, "verify_spec": dump(verification, self.timeout_seconds), "verify_started": now,
                "verify_deadline": now + timeout, "heartbeat_at": now}

    async def begin(self, action: Action, verification: Verification) -> Action:
        """Start watching a change stored done and verifying (with `marks`), in the background."""
        if action.verdict is None:  # stored done without its marks: mark it now
            columns = {k: v for k, v in self.marks(verification).items() if k != "verdict"}
            marked = await self.store.set_verdict(action.id, (None,), VERIFYING, self.clock(), **columns)
            if marked is None:
                return action
            action = marked
        if action.verdict != VERIFYING:
            return action
        if verification.check not in VERIFIERS:  # a programming error: say so rather than watch forever
            return await self._conclude(action, NOT_VERIFIED, f"no verifier named {verification.check!r}")
        timeout = verification.timeout or self.timeout_seconds
        await self._say(action, f":mag: Verifying: watching for up to {duration_text(timeout)}…")
        if action.id not in self.watching:
            self._spawn(action)
        return action

    async def resume_stale(self, stale_after: float | None = None) -> list[Action]:
        """Claim verifications whose watcher stopped heart-beating and watch them here."""
        window = stale_after if stale_after is not None else self.heartbeat_seconds * 3
        resumed = []
        for action in await self.store.verifying():
            if action.id in self.watching:
                continue
            now = self.clock()
            claimed = await self.store.claim_verification(action.id, now, now - window)
            if claimed is None:
                continue
            await self.audit.record("verify_resumed", "cf", claimed.command, action_id=claimed.id,
                                    channel=claimed.channel, thread_ts=claimed.message_ts,
                                    text=":arrows_counterclockwise: The bot restarted while verifying this change; "
                                         "resuming the watch.", incident_id=claimed.incident_id)
            self._spawn(claimed)
            resumed.append(claimed)
        return resumed

    async def wait(self, timeout: float) -> bool:
        """Wait for the verifications being watched here (tests, the demo, a graceful stop)."""
        tasks = set(self.watching.values())
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        return all(t.done() for t in tasks)

    async def stop(self) -> None:
        """Stop watching (shutdown): the verdicts stay `verifying`, for another replica to resume."""
        tasks = list(self.watching.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- the watch ------------------------------------------------------------------------------

    def _spawn(self, action: Action) -> None:
        task = asyncio.create_task(self._watch(action), name=f"verify-{action.id}")
        self.watching[action.id] = task
        task.add_done_callback(lambda _t: self.watching.pop(action.id, None))

    async def _watch(self, action: Action) -> None:
        try:
            await self._watch_until_verdict(action)
        except asyncio.CancelledError:
            raise
        except Exception:  # the watch must never die silently: the sweep would resume it, say why here
            log.exception("verification watch failed", extra={"action_id": action.id})

    async def _watch_until_verdict(self, action: Action) -> None:
        stored = json.loads(action.verify_spec or "{}")
        spec = VERIFIERS[stored["check"]]
        params: dict[str, Any] = dict(stored.get("params") or {})
        deadline = float(action.verify_deadline or self.clock())
        ctx = self.make_context(action.requester, action.channel, frozenset(), _quiet, action.incident_id,
                                spec.needs)
        said, said_at, beat_at = "", 0.0, self.clock()
        while True:
            probe = await self._probe(spec.fn, ctx, params)
            now = self.clock()
            if probe.done:
                await self._conclude(action, VERIFIED, probe.progress)
                return
            if now >= deadline:
                await self._conclude(action, NOT_VERIFIED, probe.problem or probe.progress)
                return
            if probe.progress != said and now - said_at >= self.progress_seconds:
                await self._say(action, f":hourglass_flowing_sand: {escape(probe.progress)}")
                said, said_at = probe.progress, now
            if now - beat_at >= self.heartbeat_seconds:
                await self._beat(action.id, now)
                beat_at = now
            await asyncio.sleep(max(0.05, min(self.poll_seconds, deadline - now)))

    async def _probe(self, fn: Callable[..., Awaitable[Probe]], ctx: Context, params: dict[str, Any]) -> Probe:
        try:
            return await fn(ctx, **params)
        except Exception as exc:  # an unreachable API is "cannot tell yet", not a crashed watch
            text = f"could not check: {user_message(exc)}"
            return Probe(done=False, progress=text, problem=text)

    async def _beat(self, action_id: str, now: float) -> None:
        try:
            await self.store.verification_beat(action_id, now)
        except Exception as exc:  # the store may blip; the watch carries on
            log.warning("verification heartbeat failed", extra={"action_id": action_id, "error": str(exc)})

    async def _conclude(self, action: Action, verdict: str, seen: str) -> Action:
        """Announce the verdict once: the store (compare-and-set), the audit and thread, the request message.

        `verify_note` keeps the verdict's line as Slack mrkdwn, the outside text in it already escaped.
        """
        now = self.clock()
        took_seconds = max(0.0, now - (action.verify_started or now))
        took = "under a second" if took_seconds < 1 else duration_text(took_seconds)
        if verdict == VERIFIED:
            note = f"Verified in {took}" + (f": {escape(seen)}" if seen else ".")
        else:
            stored = json.loads(action.verify_spec or "{}")
            note = f"Not verified after {took}: {escape(seen.rstrip('.'))}."
            hints = []
            if stored.get("look_further"):
                hints.append(f"look further with {code(stored['look_further'])}")
            if action.undo_spec:
                hints.append(f"undo with {code('/cf undo ' + action.id)}")
            if hints:
                note += " You can " + " or ".join(hints) + "."
        final = await self.store.set_verdict(action.id, (VERIFYING,), verdict, now, verify_note=note)
        if final is None:  # another watcher (a resumed one) announced it first
            return (await self.store.get_action(action.id)) or action
        icon = ":white_check_mark:" if verdict == VERIFIED else ":warning:"
        await self.audit.record(verdict, "cf", final.command, action_id=final.id, channel=final.channel,
                                thread_ts=final.message_ts, text=f"{icon} {note}",
                                detail={"verdict": verdict, "seen": seen, "took_seconds": round(took_seconds, 1)},
                                incident_id=final.incident_id)
        await self.on_verdict(final)
        return final

    async def _say(self, action: Action, text: str) -> None:
        if action.message_ts:
            await self.audit.post(action.channel, action.message_ts, text)


async def _quiet(_text: str) -> None:
    return None


__all__ = ["NOT_VERIFIED", "VERIFIED", "VERIFYING", "Verdicts", "dump"]
