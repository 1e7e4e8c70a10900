"""Formatting Kubernetes objects the way kubectl prints them (ages, pod status, readiness).

Shared by the command modules; plain functions over the JSON dicts the Kube integration returns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(value: str | None, now: datetime | None = None) -> str:
    """kubectl's HumanDuration: 45s, 12m, 5h3m, 3d4h, 90d."""
    start = parse_time(value)
    if start is None:
        return "<unknown>"
    seconds = int(((now or datetime.now(UTC)) - start).total_seconds())
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    return f"{days}d"


def pod_ready(pod: Obj) -> str:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    total = len(pod.get("spec", {}).get("containers") or statuses)
    ready = sum(1 for c in statuses if c.get("ready"))
    return f"{ready}/{total}"


def pod_restarts(pod: Obj) -> int:
    return sum(int(c.get("restartCount", 0)) for c in pod.get("status", {}).get("containerStatuses") or [])


def pod_status(pod: Obj) -> str:
    """The STATUS column of `kubectl get pods` (waiting/terminated reasons win over the phase)."""
    meta, status = pod.get("metadata", {}), pod.get("status", {})
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for c in status.get("initContainerStatuses") or []:
        state = c.get("state", {})
        if state.get("terminated", {}).get("exitCode", 0) != 0:
            return f"Init:{state['terminated'].get('reason') or 'Error'}"
        if state.get("waiting", {}).get("reason") not in (None, "PodInitializing"):
            return f"Init:{state['waiting']['reason']}"
    for c in reversed(status.get("containerStatuses") or []):
        state = c.get("state", {})
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated", {}).get("reason"):
            reason = state["terminated"]["reason"]
    if meta.get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def deployment_ready(dep: Obj) -> str:
    status = dep.get("status", {})
    return f"{status.get('readyReplicas', 0) or 0}/{dep.get('spec', {}).get('replicas', 0)}"


def replicas_text(n: int) -> str:
    return f"{n} replica" + ("" if n == 1 else "s")
