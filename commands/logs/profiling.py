"""`pprof POD|APP`: the runbook's "Profile memory usage" (curl localhost:4000/debug/pprof/heap > heap.prof).

The profile is fetched through the API server's pods proxy, never by exec. For an app, the pod using
the most memory by metrics.k8s.io is profiled (the one the runbook's `top pods --sort-by=memory`
points at). The file goes to the thread as it was fetched, so `go tool pprof` can open it; when it
parses as profile.proto, the message shows its top functions by in-use space, as
`go tool pprof -top -sample_index=inuse_space` would. When it does not parse, the file is still
attached and the message says it could not be read, and why.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from base.text import code, literal, one_line
from commands.args import k8s_name, opt, pos
from commands.base import CommandError, Context, command
from commands.reply import Code, Fields, File, Note, Part, Reply, Table, Text
from commands.support.kube import mem_text, usage
from commands.support.proxy import human_bytes, port_number, running, target_pods
from integrations import pprof
from integrations.errors import IntegrationError

AREA = "Logs & Metrics"
HEAP_PATH = "/debug/pprof/heap"
DEFAULT_PORT = 4000  # the runbook's `curl localhost:4000/debug/pprof/heap`
SAMPLE_TYPE = "inuse_space"
TOP = 12
FUNCTION_CHARS = 110
Obj = dict[str, Any]


@command(
    "pprof",
    summary="A pod's heap profile through the pods proxy (no exec): top functions by in-use memory; "
            "the profile attached.",
    area=AREA,
    args=[pos("TARGET", k8s_name, "a pod, or an app (its pod using the most memory is profiled)"),
          opt("--port", port_number, f"the port serving /debug/pprof (default {DEFAULT_PORT})", metavar="PORT")],
    example="/cf pprof graphql-api",
    needs=["kube"],
)
async def pprof_heap(ctx: Context, target: str, port: int | None = None) -> Reply:
    pods = [p for p in await target_pods(ctx, target) if running(p)]
    if not pods:
        raise CommandError(f"No running pod of `{target}` to profile: `/cf pods {target}` shows why.")
    pod, why = await _choose(ctx, pods)
    name, port = pod["metadata"]["name"], port or DEFAULT_PORT
    try:
        answer = await ctx.kube.pod_proxy_get(ctx.namespace, name, port, HEAP_PATH)
    except IntegrationError as exc:
        return Reply(title=f"Could not fetch the heap profile of {name}", level="error", parts=[
            Text(literal(exc.message)),
            Note(f"Is pprof served on port {port}? `--port` picks another; "
                 f"`/cf describe pod {name}` lists its ports.")])
    if not answer.ok:
        return Reply(title=f"{name} answered HTTP {answer.status} for {HEAP_PATH} on port {port}", level="warn",
                     parts=[Code(answer.body[:600].decode("utf-8", "replace")),
                            Note("The service may not register net/http/pprof on this port; `--port` picks another.")])
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    try:
        profile = await asyncio.to_thread(pprof.parse, answer.body)
    except pprof.ProfileError as exc:
        unread = File(f"heap-{name}-{stamp}.bin", answer.body, f"What {name} answered for {HEAP_PATH}")
        return Reply(title=f"Fetched {HEAP_PATH} from {name}, but it could not be read as a heap profile",
                     level="warn", files=[unread], parts=[
                         Text(f"The answer ({human_bytes(len(answer.body))}, "
                              f"{code(answer.content_type or 'no content type')}) is not a pprof profile: "
                              f"{literal(exc)}."),
                         Note(f"It is attached as fetched (`{unread.filename}`).")])
    return _report(name, why, profile, File(f"heap-{name}-{stamp}.pb.gz", answer.body, f"Heap profile of {name}"))


async def _choose(ctx: Context, pods: list[Obj]) -> tuple[Obj, str]:
    """The pod to profile, and why it was chosen (said in the reply)."""
    if len(pods) == 1:
        return pods[0], ""
    try:
        metrics = {m["metadata"]["name"]: usage(m)[1] for m in await ctx.kube.pod_metrics(ctx.namespace)}
    except IntegrationError:
        metrics = {}
    measured = [(metrics[p["metadata"]["name"]], p) for p in pods if p["metadata"]["name"] in metrics]
    if not measured:
        return pods[0], f"the first of {len(pods)} running pods (no memory metrics to choose by)"
    memory, pod = max(measured, key=lambda m: m[0])
    return pod, f"the most memory of {len(pods)} running pods ({mem_text(memory)} by metrics.k8s.io)"


def _report(name: str, why: str, profile: pprof.Profile, file: File) -> Reply:
    sample_type = SAMPLE_TYPE if SAMPLE_TYPE in [t for t, _ in profile.sample_types] else \
        (profile.default_type or profile.sample_types[-1][0])
    unit = dict(profile.sample_types)[sample_type]
    total = profile.total(sample_type)
    shown = _amount(total, unit)
    rows, running_sum = [], 0
    for entry in profile.top(sample_type, TOP):
        running_sum += entry.flat
        rows.append([_amount(entry.flat, unit), _pct(entry.flat, total), _pct(running_sum, total),
                     _amount(entry.cum, unit), _pct(entry.cum, total), one_line(entry.function, FUNCTION_CHARS)])
    taken = profile.taken_at
    fields = Fields([("Pod", code(name)), ("Sample type", f"{sample_type} ({unit})"),
                     ("Total", shown), ("Taken", taken.strftime("%Y-%m-%d %H:%M:%S UTC") if taken else "not recorded")])
    parts: list[Part] = [fields]
    if why:
        parts.append(Note(f"Profiled {code(name)}: {why}."))
    parts.append(Table(["FLAT", "FLAT%", "SUM%", "CUM", "CUM%", "FUNCTION"], rows, empty="The profile has no samples."))
    parts.append(Note(f"The profile is attached as `{file.filename}`: `go tool pprof -top {file.filename}`, or "
                      "`-http=:8080` for the graph."))
    return Reply(title=f"Heap profile of {name}: {shown} {sample_type.replace('_', ' ')}", parts=parts,
                 files=[file], level="info")


def _amount(value: int, unit: str) -> str:
    return human_bytes(value) if unit == "bytes" else f"{value:,}"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"
