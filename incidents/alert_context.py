"""Context on arrival: what an on-call looks up first, gathered before the alert's message is posted.

What is gathered follows what fired (its rule and labels):

- a workload (a `deployment`, `app` or `pod` label): its pods that are not ready, its recent warning
  events, the count and three newest ERROR lines of its logs (last 10 minutes), its last rollout, and
  the changes cf itself made to it in the last 24 hours (the audit trail: who asked, who approved,
  what, when, the request id);
- the database (the connection and slow-query rules): the connection summary and the longest-running
  query;
- Redis (the memory rule): memory against maxmemory, and the hit rate.

Each part is one call with its own time budget, all run at once: a part that fails, is not configured
or is slow shows as one `unavailable (reason)` line (`commands.parts.optional`), never as a delay past
`BUDGET`. The parts reuse the commands' own code: `db connections`, `redis memory`, `redis hitrate` and
`rollout history` are called as the functions they are (their titles are their verdicts), the pod and
event lines are `commands.support.kube`'s. Everything outside text is escaped here (`base.text`).

The parts are stored with the alert group (`cf_alert_groups.context`), so a redraw shows the context as
it was on arrival, with the time it was read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from base.text import clip, code, literal, one_line, plural
from commands.base import CommandError, Context
from commands.cache.redis import redis_hitrate, redis_memory
from commands.clients import AuditEntryView
from commands.database.postgres import db_connections
from commands.parts import Failed, optional
from commands.reply import Reply, Table
from commands.scaling.rollouts import rollout_history
from commands.support.kube import event_row, newest_first, pod_ready, pod_restarts, pod_status
from incidents.alert_rules import AlertRule, label_values
from integrations.protocols import Obj

PART_BUDGET = 3.0  # seconds for one part
BUDGET = 3.5  # seconds for all of them (they run at once); the message is posted after at most this
LOG_WINDOW = 600  # ERROR lines of the last 10 minutes (the runbook's `--since=10m | grep ERROR`)
LOG_PODS = 5  # pods whose logs are read
LOG_BYTES = 512 * 1024  # per container
CHANGES_WINDOW = 24 * 3600
NEEDS = ("kube", "audit", "postgres", "redis")
DATABASE_RULES = ("db-high-connections", "db-slow-queries")
REDIS_RULES = ("redis-high-memory",)


@dataclass(frozen=True)
class ContextPart:
    """One line (or a few) of context: `text` is mrkdwn the bot made (outside text escaped); `failed` the
    reason it could not be had."""

    label: str
    text: str = ""
    failed: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContextPart:
        return cls(str(data.get("label", "")), str(data.get("text", "")), str(data.get("failed", "")))


def subject(rule: AlertRule, labels: dict[str, str]) -> tuple[str, str]:
    """(kind, name) of what the alert is about: ("workload", app), ("pod", pod), ("database", ""), ("redis", "")
    or ("", "") when there is no context to gather for it (a node, a generic alert without such labels)."""
    if rule.key in DATABASE_RULES:
        return "database", ""
    if rule.key in REDIS_RULES:
        return "redis", ""
    workload = label_values({"pod": labels.get("deployment") or labels.get("app") or ""}).get("pod")
    if workload:  # (label_values keeps a value only when it is a plain Kubernetes name)
        return "workload", workload
    pod = label_values(labels).get("pod")
    return ("pod", pod) if pod else ("", "")


async def gather(ctx: Context, rule: AlertRule, labels: dict[str, str]) -> list[ContextPart]:
    """The context parts for this alert, each within its budget (all at once, at most BUDGET seconds)."""
    kind, name = subject(rule, labels)
    ctx = ctx.narrowed(NEEDS)
    if kind == "pod":
        resolved = await _part("Pod", _app_of_pod(ctx, name))
        if isinstance(resolved, ContextPart):
            return [resolved]
        name = resolved
    started = time.monotonic()
    if kind in ("workload", "pod"):
        calls = _workload(ctx, name)
    elif kind == "database":
        calls = [("Connections", _title(db_connections(ctx))), ("Longest-running query", _longest_query(ctx))]
    elif kind == "redis":
        calls = [("Memory", _title(redis_memory(ctx))), ("Hit rate", _title(redis_hitrate(ctx)))]
    else:
        return []
    left = max(BUDGET - (time.monotonic() - started), 0.5)
    return list(await asyncio.gather(*(_shown(label, call, min(PART_BUDGET, left)) for label, call in calls)))


def _workload(ctx: Context, app: str) -> list[tuple[str, Awaitable[str]]]:
    """One pod listing shared by two parts (shielded: one part's timeout does not cancel the other's read)."""
    async def list_pods() -> list[Obj]:
        return await ctx.kube.list_pods(ctx.namespace, label_selector=f"app={app}")  # (NotConfigured inside)

    listing = asyncio.ensure_future(list_pods())
    listing.add_done_callback(lambda f: f.cancelled() or f.exception())  # a failure is reported by the parts

    async def pods() -> list[Obj]:
        return await asyncio.shield(listing)

    return [
        ("Pods not ready", _not_ready(pods(), app)),
        ("Warning events", _warnings(ctx, app)),
        ("ERROR logs, last 10 min", _errors(ctx, pods())),
        ("Last rollout", _last_rollout(ctx, app)),
        ("Changes by cf, last 24 h", _changes(ctx, app)),
    ]


async def _part(label: str, call: Awaitable[str], budget: float = PART_BUDGET) -> str | ContextPart:
    """The call's value, or the part as unavailable: a system's failure, a timeout, not configured, or a
    command's refusal (a deployment that is not there)."""
    try:
        got = await optional(label, call, timeout=budget)
    except CommandError as exc:
        return ContextPart(label, failed=literal(one_line(str(exc), 160)))
    if isinstance(got, Failed):
        return ContextPart(label, failed=got.reason)
    return got


async def _shown(label: str, call: Awaitable[str], budget: float) -> ContextPart:
    got = await _part(label, call, budget)
    return got if isinstance(got, ContextPart) else ContextPart(label, got)


async def _title(reply: Awaitable[Reply]) -> str:
    """A command's verdict (its title), as the command itself says it."""
    return literal((await reply).title)


async def _app_of_pod(ctx: Context, pod: str) -> str:
    found = await ctx.kube.get_pod(ctx.namespace, pod)
    return str((found.get("metadata", {}).get("labels") or {}).get("app") or pod)


async def _not_ready(listing: Awaitable[list[Obj]], app: str) -> str:
    pods = await listing
    if not pods:
        return f"no pods with label {code(f'app={app}')}"
    bad = [p for p in pods if pod_status(p) not in ("Running", "Succeeded")
           or pod_ready(p).split("/")[0] != pod_ready(p).split("/")[1]]
    if not bad:
        return f"none: all {plural(len(pods), 'pod')} ready"
    lines = [f"{code(p['metadata']['name'])} {pod_ready(p)} {literal(pod_status(p), 40)}, "
             f"{plural(pod_restarts(p), 'restart')}" for p in bad[:5]]
    more = f" (+{len(bad) - 5} more)" if len(bad) > 5 else ""
    return f"{len(bad)} of {len(pods)}{more}: " + "; ".join(lines)


async def _warnings(ctx: Context, app: str) -> str:
    events = await ctx.kube.list_events(ctx.namespace, field_selector="type=Warning")
    mine = [e for e in events if _belongs(str((e.get("involvedObject") or {}).get("name", "")), app)]
    if not mine:
        return "none"
    rows = [event_row(e) for e in newest_first(mine)[:3]]
    lines = [f"{literal(seen)} ago {code(reason, 60)} {code(obj, 80)}: {literal(message, 160)}"
             for seen, _, reason, obj, message in rows]
    return f"{plural(len(mine), 'event')}, newest:\n" + "\n".join(f"• {line}" for line in lines)


def _belongs(name: str, app: str) -> bool:
    return name == app or name.startswith(app + "-")


async def _errors(ctx: Context, listing: Awaitable[list[Obj]]) -> str:
    pods = sorted(await listing, key=lambda p: str(p["metadata"].get("creationTimestamp", "")), reverse=True)
    reads = [(p["metadata"]["name"], c["name"]) for p in pods[:LOG_PODS]
             for c in p.get("spec", {}).get("containers") or []]
    texts = await asyncio.gather(*(ctx.kube.pod_log(ctx.namespace, pod, container=container,
                                                    since_seconds=LOG_WINDOW, timestamps=True,
                                                    limit_bytes=LOG_BYTES) for pod, container in reads))
    found: list[tuple[str, str, str]] = []
    for (pod, _), text in zip(reads, texts, strict=True):
        for raw in text.splitlines():
            stamp, _, body = raw.partition(" ")
            if "ERROR" in body:
                found.append((stamp, pod, body))
    read = f"from {plural(len(pods[:LOG_PODS]), 'pod')}" + (f" of {len(pods)}" if len(pods) > LOG_PODS else "")
    if not found:
        return f"no ERROR lines {read}"
    newest = sorted(found)[-3:]
    shown = "\n".join(f"{stamp[11:19]} {pod.rsplit('-', 1)[-1]} | {clip(body, 200)}" for stamp, pod, body in newest)
    return f"{plural(len(found), 'line')} {read}; newest:\n```{literal(shown)}```"


async def _last_rollout(ctx: Context, app: str) -> str:
    history = await rollout_history(ctx, app)
    tables = [p for p in history.parts if isinstance(p, Table)]
    if not tables or not tables[0].rows:
        return "no revisions recorded"
    revision, cause, image, replicas, age = (str(c) for c in tables[0].rows[-1])
    why = "" if cause == "<none>" else f", change-cause {code(cause, 120)}"
    return f"revision {literal(revision)}, {literal(age)} ago: {code(image, 150)}{why} ({literal(replicas)} replicas)"


async def _changes(ctx: Context, app: str) -> str:
    entries = await ctx.audit.query(50, target=f"deployment/{app}", since_seconds=CHANGES_WINDOW)
    latest: dict[str, AuditEntryView] = {}
    for entry in entries:  # newest first: the first entry of a request is its latest state
        if entry.action_id and entry.action_id not in latest:
            latest[entry.action_id] = entry
    if not latest:
        return f"none through cf for {code(f'deployment/{app}')}"
    names = await ctx.audit.names({p for e in latest.values() for p in (e.requester, e.approver) if p})
    lines = [_change_line(e, names) for e in list(latest.values())[:5]]
    more = f" (+{len(latest) - 5} more: `/cf audit deployment/{literal(app)}`)" if len(latest) > 5 else ""
    return "\n".join(f"• {line}" for line in lines) + more


def _change_line(entry: AuditEntryView, names: dict[str, str]) -> str:
    who = f"@{literal(names.get(entry.requester, entry.requester))}" if entry.requester else "?"
    approved = f", approved by @{literal(names.get(entry.approver, entry.approver))}" if entry.approver else ""
    when = time.strftime("%H:%M UTC", time.gmtime(entry.at))
    line = entry.command_line or entry.command
    return (f"{when} {who}{approved}: {code('/cf ' + line, 120)} — {literal(entry.event)} · "
            f"request {code(entry.action_id)}")


async def _longest_query(ctx: Context) -> str:
    rows = await ctx.postgres.active_older_than(0)
    if not rows:
        return "no active query"
    row = max(rows, key=lambda r: float(r.get("age_s") or 0))
    return (f"pid {literal(row.get('pid'))}, running {float(row.get('age_s') or 0):.0f} s, "
            f"{literal(row.get('application', ''), 60)}: {code(row.get('query', ''), 300)}")


Gatherer = Callable[[Context, AlertRule, dict[str, str]], Awaitable[list[ContextPart]]]
