"""Container logs: deterministic, realistic lines per app, as `GET pods/NAME/log` returns them.

Lines sit on a fixed time grid (one every few seconds, per app) and each line's text is seeded
by its pod, container and grid slot, so two requests agree on every line they share and new
lines appear as time passes. A container's log starts with its boot lines at startedAt and
covers at most the last hour. graphql-api logs carry the database-pool-timeout ERRORs the
runbook investigates; a crash-looping container's logs end with its out-of-memory death.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from .errors import bad_request
from .util import dig, parse_time, rfc3339_nano

WINDOW = timedelta(hours=1)
Line = Callable[[random.Random, datetime], str]

OPERATIONS = ["GetDocument", "ListDocuments", "UpdateCursor", "GetWorkspace", "SearchDocuments",
              "CreateComment", "GetPresence", "UpdateDocumentTitle"]


def _graphql(rng: random.Random, ts: datetime) -> str:
    iso = ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    roll = rng.random()
    if roll < 0.07:
        return json.dumps({"level": "ERROR", "time": iso, "msg": "database pool timeout",
                           "error": "timeout exceeded when trying to connect: acquiring connection from pool "
                                    "'primary' took longer than 5000ms",
                           "pool": {"total": 20, "idle": 0, "waiting": rng.randint(12, 60)},
                           "operationName": rng.choice(OPERATIONS)})
    if roll < 0.10:
        return json.dumps({"level": "ERROR", "time": iso, "msg": "upstream request failed",
                           "error": "document-service returned 503 Service Unavailable",
                           "operationName": "GetDocument", "attempt": rng.randint(1, 3)})
    if roll < 0.16:
        return json.dumps({"level": "warn", "time": iso, "msg": "slow query",
                           "durationMs": rng.randint(800, 4200), "query": "documents_by_workspace"})
    return json.dumps({"level": "info", "time": iso, "msg": "request completed",
                       "operationName": rng.choice(OPERATIONS), "durationMs": rng.randint(4, 180),
                       "status": 200, "requestId": f"{rng.getrandbits(64):016x}"})


def _websocket(rng: random.Random, ts: datetime) -> str:
    stamp = ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    session = f"{rng.getrandbits(32):08x}"
    return rng.choice([
        f"{stamp} INFO  [ws] connection opened session={session} user=u_{rng.randint(1000, 99999)} "
        f"active={rng.randint(1800, 2600)}",
        f"{stamp} INFO  [ws] connection closed session={session} code=1000 duration={rng.randint(5, 3600)}s",
        f"{stamp} INFO  [redis] fanout channel=doc:{rng.randint(1, 9999)} subscribers={rng.randint(1, 40)}",
        f"{stamp} WARN  [ws] slow consumer, dropping frames session={session} buffered={rng.randint(64, 512)}KiB",
    ])


def _document(rng: random.Random, ts: datetime) -> str:
    stamp = ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    doc = f"doc_{rng.randint(10000, 99999)}"
    return rng.choice([
        f"[{stamp}] info: saved {doc} revision={rng.randint(2, 900)} bytes={rng.randint(900, 250000)} "
        f"in {rng.randint(3, 90)}ms",
        f"[{stamp}] info: loaded {doc} from s3 in {rng.randint(8, 140)}ms",
        f"[{stamp}] info: snapshot compaction {doc} ops={rng.randint(50, 4000)}",
        f"[{stamp}] warn: large document {doc} size={rng.randint(8, 40)}MiB kept in memory",
    ])


def _editor(rng: random.Random, ts: datetime) -> str:
    path = rng.choice(["/", "/assets/editor.3f2a9c.js", "/assets/editor.8b1d.css", "/healthz", "/favicon.ico"])
    status = 200 if rng.random() > 0.02 else 404
    return (f'10.0.{rng.randint(1, 3)}.{rng.randint(2, 250)} - - [{ts.strftime("%d/%b/%Y:%H:%M:%S +0000")}] '
            f'"GET {path} HTTP/1.1" {status} {rng.randint(200, 480000)} "-" '
            f'"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36"')


def _coredns(rng: random.Random, ts: datetime) -> str:
    host = rng.choice(["graphql-api", "websocket-service", "document-service", "redis-master"])
    return (f"[INFO] 10.0.{rng.randint(1, 3)}.{rng.randint(2, 250)}:{rng.randint(30000, 60000)} - "
            f'{rng.randint(1, 65535)} "A IN {host}.collaboration.svc.cluster.local. udp 62 false 512" '
            f"NOERROR qr,aa,rd 118 0.000{rng.randint(100, 999)}s")


def _klog(rng: random.Random, ts: datetime) -> str:
    text = rng.choice(['proxier.go:805] "SyncProxyRules complete" elapsed="{}ms"',
                       'reconciler.go:141] "Reconciled" ipamd="ok" elapsed="{}ms"',
                       'scraper.go:147] "Scrape finished" duration="{}ms" nodeCount=3 podCount=21'])
    return f"I{ts.strftime('%m%d %H:%M:%S.%f')}       1 {text.format(rng.randint(5, 90))}"


def _generic(rng: random.Random, ts: datetime) -> str:
    stamp = ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f"{stamp} INFO handled request path=/{rng.choice(['healthz', 'api', 'metrics'])} status=200 " \
           f"duration={rng.randint(1, 60)}ms"


# app -> (seconds between lines, line function, boot lines)
APPS: dict[str, tuple[int, Line, list[str]]] = {
    "graphql-api": (7, _graphql, ['{"level":"info","msg":"connecting to postgres","pool":"primary","max":20}',
                                  '{"level":"info","msg":"apollo server ready","port":4000}']),
    "websocket-service": (5, _websocket, ["INFO  [redis] connected to redis-master:6379",
                                          "INFO  [ws] listening on :8080"]),
    "document-service": (11, _document, ["info: document-service 3.8.1 starting (node v20.18.0)",
                                         "info: listening on :3000"]),
    "collaboration-editor": (4, _editor, ["nginx: [notice] start worker processes"]),
    "coredns": (9, _coredns, [".:53", "CoreDNS-1.11.3", "linux/amd64, go1.22.7"]),
    "aws-node": (30, _klog, ['I aws-vpc-cni: "Successfully copied CNI plugin binary and config file."']),
    "kube-proxy": (30, _klog, ['I server_linux.go:66] "Using iptables proxy"']),
    "metrics-server": (15, _klog, ['I serving.go:374] "Serving securely on [::]:10250"']),
}

OOM_TAIL = [
    "<--- Last few GCs --->",
    "[1:0x6a2c4e0]   612331 ms: Mark-Compact 1996.1 (2083.0) -> 1994.9 (2084.2) MB, 1821.40 / 0.00 ms "
    "(average mu = 0.143, current mu = 0.021) allocation failure; scavenge might not succeed",
    "<--- JS stacktrace --->",
    "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
]


def _app(pod: dict[str, Any], container: str) -> str:
    if container in APPS:
        return container
    return str(dig(pod, "metadata", "labels", "app", default=dig(pod, "metadata", "labels", "k8s-app",
                                                                default=container)))


def _lines(pod: dict[str, Any], container: str, start: datetime, end: datetime,
           seed: int, crashed: bool) -> list[tuple[datetime, str]]:
    period, line_fn, boot = APPS.get(_app(pod, container), (10, _generic, ["starting"]))
    first = max(start, end - WINDOW)
    out: list[tuple[datetime, str]] = []
    if first == start:
        out.extend((start + timedelta(milliseconds=40 * i), text) for i, text in enumerate(boot))
    tick = int(first.timestamp()) // period + 1
    while tick * period <= end.timestamp():
        rng = random.Random(f"{seed}/{pod['metadata']['name']}/{container}/{tick}")
        ts = datetime.fromtimestamp(tick * period + rng.random() * period * 0.9, first.tzinfo)
        if ts <= end:
            out.append((ts, line_fn(rng, ts)))
        tick += 1
    out.sort(key=lambda line: line[0])
    if crashed:
        out.extend((end - timedelta(milliseconds=30 * (len(OOM_TAIL) - i)), text)
                   for i, text in enumerate(OOM_TAIL))
    return out


def container_log(pod: dict[str, Any], container: str | None, now: datetime, query: dict[str, str],
                  seed: int = 0) -> str:
    """The text `kubectl logs` prints, honouring previous, tailLines, sinceSeconds, timestamps, limitBytes."""
    return _select(container_lines(pod, container, now, query, seed), now, query)


def follow_text(pod: dict[str, Any], container: str | None, after: datetime, now: datetime,
                query: dict[str, str], seed: int = 0) -> str:
    """The lines written in (after, now]: what `kubectl logs -f` receives next."""
    lines = [line for line in container_lines(pod, container, now, query, seed) if after < line[0] <= now]
    return _format(lines, query)


def container_lines(pod: dict[str, Any], container: str | None, now: datetime, query: dict[str, str],
                    seed: int = 0) -> list[tuple[datetime, str]]:
    """All (timestamp, line) pairs of the requested container instance, with the API's errors."""
    name = pod["metadata"]["name"]
    names = [c["name"] for c in pod["spec"].get("containers") or []]
    if not container:
        if len(names) != 1:
            raise bad_request(f"a container name must be specified for pod {name}, choose one of: "
                              f"[{' '.join(names)}]")
        container = names[0]
    if container not in names:
        raise bad_request(f"container {container} is not valid for pod {name}")
    cs = next((s for s in dig(pod, "status", "containerStatuses", default=[]) if s["name"] == container), None)
    if cs is None:
        raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
    terminated = dig(cs, "lastState", "terminated")
    if query.get("previous") in ("true", "1"):
        if not terminated:
            raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        start, end = parse_time(terminated["startedAt"]) or now, parse_time(terminated["finishedAt"]) or now
        return _lines(pod, container, start, end, seed, terminated.get("reason") == "OOMKilled")
    if dig(cs, "state", "waiting") and terminated:
        start, end = parse_time(terminated["startedAt"]) or now, parse_time(terminated["finishedAt"]) or now
        return _lines(pod, container, start, end, seed + 1, terminated.get("reason") == "OOMKilled")
    if dig(cs, "state", "waiting"):  # never ran yet (ContainerCreating): nothing to read
        reason = dig(cs, "state", "waiting", "reason", default="")
        raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
    started = parse_time(dig(cs, "state", "running", "startedAt") or dig(pod, "status", "startTime"))
    return _lines(pod, container, started or now, now, seed, False)


def _select(lines: list[tuple[datetime, str]], now: datetime, query: dict[str, str]) -> str:
    if query.get("sinceSeconds"):
        cutoff = now - timedelta(seconds=int(query["sinceSeconds"]))
        lines = [line for line in lines if line[0] >= cutoff]
    elif query.get("sinceTime"):
        cutoff_time = parse_time(query["sinceTime"])
        lines = [line for line in lines if cutoff_time is None or line[0] >= cutoff_time]
    if query.get("tailLines") not in (None, ""):
        tail = int(query["tailLines"])
        lines = lines[-tail:] if tail > 0 else []
    text = _format(lines, query)
    if query.get("limitBytes"):
        text = text.encode()[: int(query["limitBytes"])].decode(errors="ignore")
    return text


def _format(lines: list[tuple[datetime, str]], query: dict[str, str]) -> str:
    timestamps = query.get("timestamps") in ("true", "1")
    return "".join(f"{rfc3339_nano(ts)} {body}\n" if timestamps else f"{body}\n" for ts, body in lines)
