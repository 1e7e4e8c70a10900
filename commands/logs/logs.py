"""Logs & Metrics: `logs` (the runbook's kubectl logs); `metrics` and `ws probe` are in commands/logs/metrics.py.

`logs` reads every container of every pod of an app at once, with timestamps, and merges them into
one timeline. The message shows the newest lines (what an engineer looks at during an incident), as
many as fit, in one block per pod/container: the most recently active source first, and within a
block the log's own order, top to bottom, so a stack trace reads as it was written. The whole
output, oldest first as kubectl prints it, is attached.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from base.durations import duration_text
from base.patterns import UserPattern
from base.text import code, one_line, plural
from commands.args import duration, k8s_name, opt, pos, positive_int, regex, switch
from commands.base import Context, command
from commands.reply import Code, File, Level, Note, Part, Reply
from commands.support.proxy import target_pods
from integrations.errors import IntegrationError

AREA = "Logs & Metrics"
DEFAULT_TAIL = 200  # lines per container when neither --since nor --tail is given
MAX_TAIL = 5000
BYTES_PER_CONTAINER = 2 * 2**20
MESSAGE_CHARS = 2800  # what one code block holds, with room for the fences
LINE_CHARS = 300
CONCURRENCY = 8
MAX_PODS = 50  # kubectl refuses more than --max-log-requests; we read the first 50 and say so
Obj = dict[str, Any]


@dataclass(frozen=True)
class LogLine:
    at: str  # RFC 3339 with nanoseconds: sorts as text
    source: str
    text: str


def _tail(raw: str) -> int:
    value = positive_int(raw)
    if value > MAX_TAIL:
        raise ValueError(f"must be at most {MAX_TAIL:,}.")
    return value


@command(
    "logs",
    summary="Recent logs of every pod of an app (or one pod), most recent first; the whole output attached.",
    area=AREA,
    args=[
        pos("TARGET", k8s_name, "an app (label app=...) or a pod name"),
        opt("--since", duration, "only lines newer than this (e.g. 10m, 1h)"),
        opt("--grep", regex, "only lines matching this regular expression (e.g. ERROR)", metavar="PATTERN"),
        switch("--previous", "the previous (crashed) container's logs", short="-p"),
        opt("--tail", _tail, f"the last N lines per container (default {DEFAULT_TAIL} without --since)", metavar="N"),
    ],
    example="/cf logs graphql-api --since 10m --grep ERROR",
    needs=["kube"],
)
async def logs(ctx: Context, target: str, since: int | None = None, grep: UserPattern | None = None,
               previous: bool = False, tail: int | None = None) -> Reply:
    pods = await target_pods(ctx, target)
    tail = tail if tail is not None else (None if since else DEFAULT_TAIL)
    fetched = await _fetch_all(ctx, pods[:MAX_PODS], since, previous, tail)
    lines = sorted((line for found, _ in fetched for line in found), key=lambda ln: ln.at)
    problems = [p for _, p in fetched if p]
    if len(pods) > MAX_PODS:
        problems.insert(0, f"{len(pods) - MAX_PODS} of {len(pods)} pods (logs are read from the first {MAX_PODS})")
    cut = ""
    if grep:
        found = await grep.filter(lines, key=lambda ln: ln.text)
        lines = found.items
        if not found.complete:
            cut = (f"The pattern was matched against the oldest {found.examined:,} of {found.total:,} lines "
                   "within its time budget; narrow `--since` or `--tail` to search them all.")
    reply = _reply(target, pods, lines, problems, since=since, grep=grep, previous=previous)
    if cut:
        reply.parts.append(Note(cut))
    return reply




async def _fetch_all(ctx: Context, pods: list[Obj], since: int | None, previous: bool,
                     tail: int | None) -> list[tuple[list[LogLine], str]]:
    gate = asyncio.Semaphore(CONCURRENCY)
    many = len(pods) > 1

    async def one(pod: Obj, container: str, label: str) -> tuple[list[LogLine], str]:
        if previous and not _has_previous(pod, container):
            return [], f"{label}: no previous container"
        async with gate:
            try:
                text = await ctx.kube.pod_log(ctx.namespace, pod["metadata"]["name"], container=container,
                                              previous=previous, tail=tail, since_seconds=since, timestamps=True,
                                              limit_bytes=BYTES_PER_CONTAINER)
            except IntegrationError as exc:
                return [], f"{label}: {one_line(exc.message, 160)}"
        return _parse(text, label), ""

    jobs = []
    for pod in pods:
        containers = [c["name"] for c in pod.get("spec", {}).get("containers") or []]
        for container in containers:
            label = _label(pod["metadata"]["name"], container, many, len(containers) > 1)
            jobs.append(one(pod, container, label))
    return list(await asyncio.gather(*jobs))


def _has_previous(pod: Obj, container: str) -> bool:
    """Only a container that has terminated once has a previous log (asking otherwise is a 400)."""
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        if cs.get("name") == container:
            return bool((cs.get("lastState") or {}).get("terminated"))
    return False


def _label(pod: str, container: str, many_pods: bool, many_containers: bool) -> str:
    short = pod.rsplit("-", 1)[-1] if many_pods else pod
    return f"{short}/{container}" if many_containers else short


def _parse(text: str, source: str) -> list[LogLine]:
    out: list[LogLine] = []
    for raw in text.splitlines():
        stamp, _, body = raw.partition(" ")
        if not stamp[:4].isdigit():  # a line without a timestamp (a wrapped one): it belongs after its line
            stamp, body = (out[-1].at if out else ""), raw
        out.append(LogLine(stamp, source, body))
    return out


def _blocks(lines: list[LogLine]) -> list[list[str]]:
    """The newest lines that fit, one block per source: the most recently active source first, each
    block in its log's order (the merge sort is stable, so lines with one timestamp keep theirs)."""
    chosen: dict[str, list[str]] = {}
    used = 0
    for line in reversed(lines):
        entry = f"{line.at[11:19] or '--:--:--'} {line.source} | {line.text[:LINE_CHARS]}"
        cost = len(entry) + 1 + (0 if line.source in chosen else 1)  # a new block costs a blank line
        if used + cost > MESSAGE_CHARS:
            break
        chosen.setdefault(line.source, []).append(entry)
        used += cost
    return [entries[::-1] for entries in chosen.values()]


def _reply(target: str, pods: list[Obj], lines: list[LogLine], problems: list[str], *, since: int | None,
           grep: UserPattern | None, previous: bool) -> Reply:
    which = "previous " if previous else ""
    matching = f" matching {code(grep)}" if grep else ""
    window = f" in the last {duration_text(since)}" if since else ""
    title = f"{target}: {plural(len(lines), 'line')} of {which}logs{matching}{window} from {plural(len(pods), 'pod')}"
    blocks = _blocks(lines)
    shown = sum(len(b) for b in blocks)
    parts: list[Part] = [Code("\n\n".join("\n".join(b) for b in blocks), empty=f"No log lines{matching}{window}.")]
    files = []
    order = ("one block per pod/container, the most recently active first; each reads top to bottom in "
             "its log's own order" if len(blocks) > 1 else "top to bottom in the log's own order")
    if shown < len(lines):
        name = f"logs-{target}{'-previous' if previous else ''}.txt"
        full = "\n".join(f"{ln.at} [{ln.source}] {ln.text}" for ln in lines) + "\n"
        files.append(File(name, full.encode(), f"Logs of {target}, oldest first"))
        parts.append(Note(f"Newest {shown:,} of {len(lines):,} lines shown, {order}; all of them, "
                          f"oldest first, are attached as `{name}`."))
    elif lines:
        parts.append(Note(order[0].upper() + order[1:] + "."))
    if problems:
        parts.append(Note("Not read: " + "; ".join(problems[:5]) + (" …" if len(problems) > 5 else "")))
    level: Level = "warn" if grep and lines else "info"
    return Reply(title=title, parts=parts, files=files, level=level)
