"""The soak's judge: after the quiet period, check the invariants against the system, not the bot's word.

Three witnesses outside the bot: the cluster (kubectl: every applied restart is a ReplicaSet whose
`kubernetes.io/change-cause` names the request, `cf restart soak-07 (request 1a2b3c4d5e6f)`; the soak's
deployments keep every revision, `revisionHistoryLimit: 1000`), the store read directly (the actions'
states and the audit entries with their times), and the Slack stand-in's record of what people saw
(every command came from a channel of its own, so an answer belongs to exactly one command). The bot's
own claims (its metrics, its logs) are not used.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench.soak_driver import Sent
from bench.soak_procs import CFBOT, kubectl
from tests.slacksim import SlackSim

CAUSE = re.compile(r"^cf restart (soak-[0-9]+) \(request ([0-9a-f]+)\)$")
TERMINAL = ("done", "failed", "denied", "expired", "interrupted", "stale")
# what the request's thread says for each end (bot/approvals.py, bot/verdicts.py)
THREAD_LINE = {"done": ("Done:",), "failed": ("Failed:",), "interrupted": ("Interrupted:",),
               "stale": ("Stale, not run",), "denied": ("Denied (<@", "Withdrawn by the requester (<@"),
               "expired": ("Expired after",)}
# how the request message reads once it has ended (bot/blocks.py approval_message's text)
MESSAGE_STATUS = {"done": "— :large_green_circle: Done", "failed": "— :x: Failed",
                  "interrupted": "— :warning: Interrupted", "stale": "— :arrows_counterclockwise: Stale",
                  "denied": "— :no_entry_sign: Denied", "expired": "— :hourglass: Expired"}
VERDICT_LINE = {"verified": ("Verified in", "— verified"), "not_verified": ("Not verified after", "— not verified")}
DECISION = re.compile(r"(?:Approved by <@(U[A-Z0-9]+)>|Denied \(<@(U[A-Z0-9]+)>\)|"
                      r"Withdrawn by the requester \(<@(U[A-Z0-9]+)>\))")


@dataclass
class Invariant:
    name: str
    checked: int = 0
    violations: list[str] = field(default_factory=list)

    def fail(self, example: str) -> None:
        self.violations.append(example)


@dataclass
class Evidence:
    actions: list[dict[str, Any]]
    audit: dict[str, list[dict[str, Any]]]  # action id -> its entries, in the store's order
    replica_sets: list[dict[str, Any]]
    chain_exit: int
    chain_output: str


async def gather_evidence(store_url: str, kubeconfig: str) -> Evidence:
    async with await psycopg.AsyncConnection.connect(store_url, row_factory=dict_row) as conn:
        cur = await conn.execute("SELECT * FROM cf_actions ORDER BY created_at")
        actions = list(await cur.fetchall())
        cur = await conn.execute("SELECT id, at, action_id, event, actor FROM cf_audit "
                                 "WHERE action_id IS NOT NULL ORDER BY id")
        audit: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in await cur.fetchall():
            audit[row["action_id"]].append(row)
    rs = json.loads(await kubectl(kubeconfig, "get", "rs", "-n", "collaboration", "-o", "json"))["items"]
    proc = await asyncio.create_subprocess_exec(CFBOT, "audit", "verify", env={**os.environ, "DATABASE_URL": store_url},
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return Evidence(actions, dict(audit), rs, int(proc.returncode or 0), out.decode().strip())


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def applied_by_request(ev: Evidence) -> dict[str, list[dict[str, Any]]]:
    """Request id -> the ReplicaSets whose change-cause names it (each one an applied restart)."""
    applied: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rs in ev.replica_sets:
        cause = (rs["metadata"].get("annotations") or {}).get("kubernetes.io/change-cause", "")
        match = CAUSE.match(cause)
        if match:
            applied[match.group(2)].append(rs)
    return applied


def applied_by_state(ev: Evidence) -> Counter[str]:
    """How many restart requests ended in each state, split by whether the cluster shows them applied."""
    applied = applied_by_request(ev)
    return Counter(f"{a['state']}, {'applied' if applied.get(a['id']) else 'not applied'}"
                   for a in ev.actions if a["command"] == "restart")


def judge(ev: Evidence, sim: SlackSim, sent: list[Sent]) -> list[Invariant]:
    actions = {a["id"]: a for a in ev.actions}
    applied = applied_by_request(ev)
    restarts = [a for a in ev.actions if a["command"] == "restart"]
    return [
        _witness_complete(ev.replica_sets),
        _at_most_once(restarts, applied),
        _exactly_once_when_done(restarts, applied),
        _nothing_unapproved(actions, applied, ev.audit),
        _audit_before_effect(actions, applied, ev.audit),
        _terminal(ev.actions),
        _one_at_a_time(ev.actions, ev.audit),
        _one_request_per_command(ev.actions, sent),
        _end_shown(ev.actions, sim),
        _commands_answered(sim, sent),
        _clicks_answered(sim, sent),
        _chain(ev),
    ]


def _witness_complete(replica_sets: list[dict[str, Any]]) -> Invariant:
    """The count is only as good as the ReplicaSets kept: each soak deployment must still have one for every
    revision it reached (revisions count up by one per new template; `revisionHistoryLimit: 1000`)."""
    inv = Invariant("the cluster kept every revision's ReplicaSet (the count below is complete; none pruned)")
    revisions: dict[str, set[int]] = defaultdict(set)
    for rs in replica_sets:
        owner = next((o["name"] for o in rs["metadata"].get("ownerReferences") or []), "")
        if owner.startswith("soak-"):
            revisions[owner].add(int((rs["metadata"].get("annotations") or {}).get(
                "deployment.kubernetes.io/revision", "0")))
    for owner, seen in sorted(revisions.items()):
        inv.checked += 1
        if seen != set(range(1, max(seen) + 1)):
            inv.fail(f"{owner}: revisions {sorted(set(range(1, max(seen) + 1)) - seen)} have no ReplicaSet")
    return inv


def _at_most_once(restarts: list[dict[str, Any]], applied: dict[str, list[dict[str, Any]]]) -> Invariant:
    inv = Invariant("every approved change applied at most once (ReplicaSets per request id ≤ 1)")
    for action in restarts:
        inv.checked += 1
        if len(applied.get(action["id"], [])) > 1:
            inv.fail(f"{action['id']} in {action['channel']} ({action['state']}): {len(applied[action['id']])} "
                     "ReplicaSets")
    return inv


def _exactly_once_when_done(restarts: list[dict[str, Any]], applied: dict[str, list[dict[str, Any]]]) -> Invariant:
    inv = Invariant("applied exactly once unless it ended failed/interrupted (done: 1; stale/denied/expired: 0)")
    for action in restarts:
        n, state = len(applied.get(action["id"], [])), action["state"]
        inv.checked += 1
        if (state == "done" and n != 1) or (state in ("stale", "denied", "expired", "pending") and n != 0):
            inv.fail(f"{action['id']} in {action['channel']} ended {state} with {n} ReplicaSets "
                     f"(result {action.get('result')})")
    return inv


def _nothing_unapproved(actions: dict[str, dict[str, Any]], applied: dict[str, list[dict[str, Any]]],
                        audit: dict[str, list[dict[str, Any]]]) -> Invariant:
    inv = Invariant("nothing applied without its request approved (every change-cause names an approved request)")
    for request_id, sets in applied.items():
        inv.checked += 1
        action = actions.get(request_id)
        events = {e["event"] for e in audit.get(request_id, [])}
        if action is None:
            inv.fail(f"{sets[0]['metadata']['name']} names request {request_id}, which the store does not know")
        elif "approved" not in events or not action.get("approver"):
            inv.fail(f"{request_id} applied but never approved (state {action['state']})")
        elif action["approver"] == action["requester"]:
            inv.fail(f"{request_id} approved by its requester")
    return inv


def _audit_before_effect(actions: dict[str, dict[str, Any]], applied: dict[str, list[dict[str, Any]]],
                         audit: dict[str, list[dict[str, Any]]]) -> Invariant:
    """Each applied change: requested, approved and running in the store, in that order, the `running`
    entry no later than the ReplicaSet's creationTimestamp (whole seconds: the entry's time is floored)."""
    inv = Invariant("every transition audited before its effect (requested < approved < running ≤ ReplicaSet)")
    for request_id, sets in applied.items():
        if request_id not in actions:
            continue
        inv.checked += 1
        first: dict[str, dict[str, Any]] = {}
        for entry in audit.get(request_id, []):
            first.setdefault(entry["event"], entry)
        steps = [first.get(e) for e in ("requested", "approved", "running")]
        missing = [e for e, s in zip(("requested", "approved", "running"), steps, strict=True) if s is None]
        if missing:
            inv.fail(f"{request_id}: no {', '.join(missing)} entry in the audit")
            continue
        ids = [s["id"] for s in steps if s is not None]
        if ids != sorted(ids):
            inv.fail(f"{request_id}: audit order {ids}")
        running_at = steps[2]["at"] if steps[2] else math.inf
        for rs in sets:
            created = _epoch(rs["metadata"]["creationTimestamp"])
            if math.floor(running_at) > created:
                inv.fail(f"{request_id}: running audited at {running_at:.3f}, ReplicaSet "
                         f"{rs['metadata']['name']} created {rs['metadata']['creationTimestamp']}")
    return inv


def _terminal(actions: list[dict[str, Any]]) -> Invariant:
    """Every action ended; a done restart (which is always verified) has its verdict, verified or not."""
    inv = Invariant("every action in a terminal state at the end (none pending/approved/running; every done "
                    "restart verified or not verified, none verifying or never verified)")
    for action in actions:
        inv.checked += 1
        if action["state"] not in TERMINAL:
            inv.fail(f"{action['id']} in {action['channel']} stuck {action['state']}")
        elif action.get("verdict") == "verifying":
            inv.fail(f"{action['id']} in {action['channel']} done, verdict stuck verifying")
        elif action["state"] == "done" and action["command"] == "restart" and not action.get("verdict"):
            inv.fail(f"{action['id']} in {action['channel']} done, never verified (no verdict)")
    return inv


def _one_at_a_time(actions: list[dict[str, Any]], audit: dict[str, list[dict[str, Any]]]) -> Invariant:
    """Per target, the spans from `running` to the entry that ended it never overlap."""
    inv = Invariant("one change at a time per target (running spans never overlap)")
    spans: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for action in actions:
        events = audit.get(action["id"], [])
        start = next((e["at"] for e in events if e["event"] == "running"), None)
        if start is None:
            continue
        end = next((e["at"] for e in events if e["event"] in ("done", "failed", "stale", "interrupted")), math.inf)
        spans[action["target"]].append((start, end, action["id"]))
    for target, items in spans.items():
        items.sort()
        for (_s1, e1, a1), (s2, _e2, a2) in itertools.pairwise(items):
            inv.checked += 1
            if s2 < e1:
                inv.fail(f"{target}: {a2} started running while {a1} still ran")
    return inv


def _one_request_per_command(actions: list[dict[str, Any]], sent: list[Sent]) -> Invariant:
    """A command delivered several times (retries, to several replicas) makes at most one request."""
    inv = Invariant("every command run once however often delivered (at most one request per command)")
    per_channel: dict[str, int] = defaultdict(int)
    for action in actions:
        per_channel[action["channel"]] += 1
    for cmd in sent:
        if cmd.kind == "change":
            inv.checked += 1
            if per_channel.get(cmd.channel, 0) > 1:
                inv.fail(f"{cmd.text} in {cmd.channel}: {per_channel[cmd.channel]} requests")
    return inv


def _texts(sim: SlackSim, channel: str) -> list[str]:
    return [str(m.get("text") or "") for m in sim.history(channel) if m.get("user") == sim.bot_user_id]


def _message_blocks(sim: SlackSim, channel: str) -> list[str]:
    """The request message's blocks as text (what the message shows, beyond its fallback text)."""
    return [json.dumps(m.get("blocks") or []) for m in sim.history(channel)
            if m.get("user") == sim.bot_user_id and m.get("thread_ts") in (None, m["ts"])]


def _end_shown(actions: list[dict[str, Any]], sim: SlackSim) -> Invariant:
    """Each request whose message was posted: how it ended (and its verdict) shown in Slack — a line in its
    thread, or the request message itself (updated to its end; a thread line can be lost to Slack after
    slack_sdk's retries, by design, while the message update carries the same news)."""
    inv = Invariant("every request's end shown in Slack (its thread or its message: state, then verdict)")
    for action in actions:
        messages = [m for m in sim.history(action["channel"]) if m.get("user") == sim.bot_user_id]
        if not messages and not action["message_ts"]:
            continue  # its request message was never posted (the requester was told privately)
        inv.checked += 1
        texts = [str(m.get("text") or "") for m in messages]
        tops = [str(m.get("text") or "") for m in messages if m.get("thread_ts") in (None, m["ts"])]
        lines, status = THREAD_LINE.get(action["state"], ()), MESSAGE_STATUS.get(action["state"])
        said = any(line in t for t in texts for line in lines) or any(status and status in t for t in tops)
        if lines and not said:
            inv.fail(f"{action['id']} ended {action['state']}: neither a {lines[0]!r} line nor the message says so "
                     f"in {action['channel']}")
        verdict = VERDICT_LINE.get(action.get("verdict") or "")
        if verdict is not None and not any(verdict[0] in t for t in texts) and not any(t.endswith(verdict[1])
                                                                                    for t in tops):
            inv.fail(f"{action['id']} {action['verdict']}: neither a {verdict[0]!r} line nor the message says so "
                     f"in {action['channel']}")
    return inv


def _commands_answered(sim: SlackSim, sent: list[Sent]) -> Invariant:
    """An acknowledged slash command: a message from the bot in its channel, or something only its sender
    sees there (a response_url answer, an ephemeral, the ack's own text)."""
    inv = Invariant("every acknowledged command answered in Slack (a result or an error), none lost")
    for cmd in sent:
        if cmd.kind == "click" or not cmd.acked:
            continue
        inv.checked += 1
        top = [m for m in sim.history(cmd.channel) if m.get("user") == sim.bot_user_id
               and m.get("thread_ts") in (None, m["ts"])]
        if not (top or sim.ephemerals(cmd.channel, cmd.user) or cmd.ack_text):
            replicas = sorted({d.replica for d in cmd.deliveries if d.status == 200})
            inv.fail(f"/cf {cmd.text} in {cmd.channel} at {cmd.at:.1f}, acknowledged by replica(s) {replicas}: "
                     "no answer")
    return inv


def _clicks_answered(sim: SlackSim, sent: list[Sent]) -> Invariant:
    """Per request and clicker: as many answers as acknowledged clicks — the thread's line naming them
    (Approved by / Denied / Withdrawn; or, where that line was lost to Slack, the request message naming
    them as the approver or denier) or a private answer (already approved by …, an error)."""
    inv = Invariant("every acknowledged click answered in Slack (its decision in the thread, or privately)")
    clicks: dict[tuple[str, str], int] = defaultdict(int)
    for click in sent:
        if click.kind == "click" and click.acked:
            clicks[(click.channel, click.user)] += 1
    for (channel, user), n in clicks.items():
        inv.checked += n
        named = sum(1 for t in _texts(sim, channel) for m in DECISION.finditer(t) if user in m.groups())
        if not named and any(f"approved by <@{user}>" in b or f"Denied by <@{user}>" in b
                             for b in _message_blocks(sim, channel)):
            named = 1  # the decision's thread line lost to Slack, but the request message names the decider
        private = len(sim.ephemerals(channel, user))
        if named + private < n:
            inv.fail(f"{user} clicked {n}x in {channel}: {named} decision line(s), {private} private answer(s)")
    return inv


def _chain(ev: Evidence) -> Invariant:
    inv = Invariant("the audit hash chain verifies (cfbot audit verify: exit 0)", checked=1)
    if ev.chain_exit != 0:
        inv.fail(f"exit {ev.chain_exit}: {ev.chain_output[-300:]}")
    return inv


def dump_channels(sim: SlackSim, sent: list[Sent], ev: Evidence, invariants: list[Invariant]) -> str:
    """For a human after a failed run: each channel named by a violation, as Slack and the store saw it."""
    channels = sorted({c for inv in invariants for v in inv.violations for c in re.findall(r"C0SK[0-9]+", v)})
    by_channel = {a["channel"]: a for a in ev.actions}
    out: list[str] = []
    for channel in channels:
        out.append(f"## {channel}")
        for s in (s for s in sent if s.channel == channel):
            out.append(f"sent {s.kind} {s.text!r} by {s.user} at {s.at:.3f} trigger {s.trigger}")
            out += [f"  delivery retry={d.retry} replica={d.replica} at={d.at:.3f} status={d.status} "
                    f"{d.elapsed * 1000:.0f} ms {d.error} {d.body[:100]!r}" for d in s.deliveries]
        for m in sim.history(channel):
            out.append(f"message {m['ts']} thread={m.get('thread_ts')} user={m.get('user')}: "
                       f"{str(m.get('text'))[:200]!r}")
        out += [f"ephemeral {e['ts']} to {e['user']} via {e['source']}: {str(e['text'])[:200]!r}"
                for e in sim.ephemerals(channel)]
        hooks = {s.response_url: f"{s.kind} {s.user} {s.trigger[-6:]}" for s in sent if s.channel == channel}
        for call in sim.calls:
            if call.method == "response_url" and call.args.get("url") in hooks:
                out.append(f"call response_url for {hooks[call.args['url']]} at {call.at:.3f} status={call.status} "
                           f"error={call.error} text={str(call.args.get('text'))[:120]!r}")
            elif call.args.get("channel") == channel:
                out.append(f"call {call.method} at {call.at:.3f} status={call.status} error={call.error} "
                           f"thread={call.args.get('thread_ts')} text={str(call.args.get('text'))[:120]!r}")
        action = by_channel.get(channel)
        if action is not None:
            out.append(f"action {action['id']} state={action['state']} verdict={action.get('verdict')} "
                       f"message_ts={action['message_ts']} approver={action.get('approver')}")
            out += [f"  audit {e['id']} {e['at']:.3f} {e['event']} by {e['actor']}"
                    for e in ev.audit.get(action["id"], [])]
        out.append("")
    return "\n".join(out)
