"""Served versions that differ from the stored one: autoscaling/v1 HorizontalPodAutoscalers.

HPAs are stored as autoscaling/v2 (what `kubectl get hpa` and the printers read); `kubectl
autoscale` and AutoscalingV1Api speak v1, whose single `targetCPUUtilizationPercentage` is the
v2 CPU Resource metric. Requests are converted to the stored version on the way in and
responses (objects, lists, watch events) back to the requested version on the way out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .util import dig

Obj = dict[str, Any]


def _cpu_target(metrics: list[Obj]) -> int | None:
    for metric in metrics:
        if metric.get("type") == "Resource" and dig(metric, "resource", "name") == "cpu":
            value = dig(metric, "resource", "target", "averageUtilization")
            return None if value is None else int(value)
    return None


def _cpu_current(metrics: list[Obj]) -> int | None:
    for metric in metrics:
        if metric.get("type") == "Resource" and dig(metric, "resource", "name") == "cpu":
            value = dig(metric, "resource", "current", "averageUtilization")
            return None if value is None else int(value)
    return None


def hpa_v1_to_v2(obj: Obj) -> Obj:
    spec = dict(obj.get("spec") or {})
    target = spec.pop("targetCPUUtilizationPercentage", None)
    if target is not None:
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": target}}}]
    out = {**obj, "apiVersion": "autoscaling/v2", "spec": spec}
    status = dict(obj.get("status") or {})
    current = status.pop("currentCPUUtilizationPercentage", None)
    if current is not None:
        status["currentMetrics"] = [{"type": "Resource", "resource": {"name": "cpu", "current": {
            "averageUtilization": current}}}]
    if obj.get("status") is not None:
        out["status"] = status
    return out


def hpa_v2_to_v1(obj: Obj) -> Obj:
    spec = {k: v for k, v in (obj.get("spec") or {}).items() if k not in ("metrics", "behavior")}
    target = _cpu_target(dig(obj, "spec", "metrics", default=[]))
    if target is not None:
        spec["targetCPUUtilizationPercentage"] = target
    status = {k: v for k, v in (obj.get("status") or {}).items() if k not in ("currentMetrics", "conditions")}
    current = _cpu_current(dig(obj, "status", "currentMetrics", default=[]))
    if current is not None:
        status["currentCPUUtilizationPercentage"] = current
    return {**obj, "apiVersion": "autoscaling/v1", "spec": spec, "status": status}


# (group, served version, plural) -> (to storage, from storage)
CONVERTERS: dict[tuple[str, str, str], tuple[Callable[[Obj], Obj], Callable[[Obj], Obj]]] = {
    ("autoscaling", "v1", "horizontalpodautoscalers"): (hpa_v1_to_v2, hpa_v2_to_v1),
}


def inbound(key: tuple[str, str, str], body: Any) -> Any:
    """A request body in the served version -> the stored version (patches pass unchanged)."""
    pair = CONVERTERS.get(key)
    if pair is None or not isinstance(body, dict) or "spec" not in body:
        return body
    return pair[0](body)


def outbound(key: tuple[str, str, str], payload: Any) -> Any:
    """A response in the stored version -> the served version (objects, lists; Status untouched)."""
    pair = CONVERTERS.get(key)
    if pair is None or not isinstance(payload, dict):
        return payload
    kind = payload.get("kind", "")
    if kind.endswith("List") and "items" in payload:
        return {**payload, "apiVersion": f"{key[0]}/{key[1]}", "items": [pair[1](i) for i in payload["items"]]}
    if kind in ("Status", "Table"):
        return payload
    return pair[1](payload)
