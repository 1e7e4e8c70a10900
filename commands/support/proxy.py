"""Reaching a pod's own HTTP endpoints through the API server's pods proxy (`pprof`, `metrics --per-pod`,
`ws probe --in-cluster`).

The runbook does these with `kubectl exec -it POD -- curl localhost:4000/...`; the bot never execs into a
pod (that needs `pods/exec`, which is a shell in production). `GET pods/NAME:PORT/proxy/PATH` reaches
the same port with `get pods/proxy` only, and only the paths the commands ask for. A private module
(the catalog does not import it as commands), so command modules can share it without importing each other.
"""

from __future__ import annotations

import re
from typing import Any

from commands.base import CommandError, Context
from commands.support.kube import app_names
from integrations.errors import NotFound

Obj = dict[str, Any]


def port_number(raw: str) -> int:
    """A TCP port, as `--port` takes it."""
    if not re.fullmatch(r"[0-9]{1,5}", raw) or not 1 <= int(raw) <= 65535:
        raise ValueError(f"`{raw[:20]}` is not a port number (1-65535).")
    return int(raw)


async def target_pods(ctx: Context, target: str) -> list[Obj]:
    """An app's pods (label app=TARGET), else the pod named TARGET; neither is a refusal naming the apps."""
    pods = await ctx.kube.list_pods(ctx.namespace, label_selector=f"app={target}")
    if pods:
        return sorted(pods, key=lambda p: p["metadata"]["name"])
    try:
        return [await ctx.kube.get_pod(ctx.namespace, target)]
    except NotFound:
        apps = app_names(await ctx.kube.list_pods(ctx.namespace))
        known = ", ".join(f"`{a}`" for a in apps) or "none"
        raise CommandError(f"No app or pod called `{target}` in namespace `{ctx.namespace}`. Apps: {known}.") from None


def running(pod: Obj) -> bool:
    """Phase Running with an IP: something may answer on its ports (readiness aside)."""
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and bool(status.get("podIP"))


def ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def declared_port(pod: Obj, names: tuple[str, ...] = ("metrics", "http")) -> int | None:
    """The first container port named one of `names`, else the first declared port (the proxy's own default)."""
    ports = [p for c in (pod.get("spec") or {}).get("containers") or [] for p in c.get("ports") or []]
    for name in names:
        for p in ports:
            if p.get("name") == name and p.get("containerPort"):
                return int(p["containerPort"])
    return int(ports[0]["containerPort"]) if ports and ports[0].get("containerPort") else None


def short(name: str, many: bool) -> str:
    """A pod's name, or its random suffix where several pods of one app share a table."""
    return name.rsplit("-", 1)[-1] if many else name


def human_bytes(value: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= size:
            return f"{value / size:.1f} {unit}"
    return f"{int(value)} B"
