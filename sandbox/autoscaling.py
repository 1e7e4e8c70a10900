"""HorizontalPodAutoscaler status: current replicas and CPU utilisation of the target.

The sandbox does not act on HPAs (a simulated autoscaler fighting `kubectl scale` in a demo
would only confuse); it reports what a real one would observe, so `kubectl get hpa` and
`describe hpa` show live numbers.
"""

from __future__ import annotations

from typing import Any

from .metrics import Metrics
from .selectors import match_label_selector
from .store import Store
from .util import dig, rfc3339


def _condition(old: list[dict[str, Any]], type_: str, status: str, reason: str, message: str,
               now: str) -> dict[str, Any]:
    prev = next((c for c in old if c.get("type") == type_), None)
    if prev and (prev["status"], prev["reason"], prev["message"]) == (status, reason, message):
        return prev
    return {"type": type_, "status": status, "lastTransitionTime": now, "reason": reason, "message": message}


def reconcile_autoscalers(store: Store, metrics: Metrics, namespace: str) -> None:
    rt = store.registry.kind("HorizontalPodAutoscaler", "autoscaling")
    for hpa in store.list(rt, namespace):
        status = _status(store, metrics, hpa)
        if status is not None and hpa.get("status") != status:
            store.update(rt, {**hpa, "status": status})


def _status(store: Store, metrics: Metrics, hpa: dict[str, Any]) -> dict[str, Any] | None:
    ref = hpa["spec"].get("scaleTargetRef") or {}
    if ref.get("kind") != "Deployment":
        return None
    dep = store.get(store.registry.kind("Deployment", "apps"), hpa["metadata"]["namespace"], ref.get("name", ""))
    if dep is None:
        return None
    pods = [p for p in store.list(store.registry.kind("Pod"), hpa["metadata"]["namespace"])
            if match_label_selector(dep["spec"].get("selector"), dig(p, "metadata", "labels", default={}))]
    utilisations = [u for u in (metrics.pod_cpu_utilization(p) for p in pods) if u is not None]
    current = dig(dep, "status", "replicas", default=0)
    low, high = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
    desired = min(high, max(low, current))
    now = rfc3339(store.now())
    old = dig(hpa, "status", "conditions", default=[])
    status: dict[str, Any] = {"currentReplicas": current, "desiredReplicas": desired}
    if "lastScaleTime" in (hpa.get("status") or {}):
        status["lastScaleTime"] = hpa["status"]["lastScaleTime"]
    if utilisations:
        avg = round(sum(utilisations) / len(utilisations))
        status["currentMetrics"] = [{"type": "Resource", "resource": {"name": "cpu", "current": {
            "averageUtilization": avg, "averageValue": f"{_avg_cpu_milli(metrics, pods)}m"}}}]
    limited = current != desired
    status["conditions"] = [
        _condition(old, "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size", now),
        _condition(old, "ScalingActive", "True" if utilisations else "False",
                   "ValidMetricFound" if utilisations else "FailedGetResourceMetric",
                   "the HPA was able to successfully calculate a replica count from cpu resource utilization "
                   "(percentage of request)" if utilisations
                   else "the HPA was unable to compute the replica count: no metrics returned", now),
        _condition(old, "ScalingLimited", "True" if limited else "False",
                   "TooManyReplicas" if current > high else ("TooFewReplicas" if limited else "DesiredWithinRange"),
                   "the desired replica count is more than the maximum replica count" if current > high
                   else ("the desired replica count is less than the minimum replica count" if limited
                         else "the desired count is within the acceptable range"), now),
    ]
    return status


def _avg_cpu_milli(metrics: Metrics, pods: list[dict[str, Any]]) -> int:
    values = []
    for pod in pods:
        if metrics.pod_cpu_utilization(pod) is None:
            continue
        values.append(sum(metrics.container_usage(pod, c)[0] for c in pod["spec"].get("containers") or []))
    return round(1000 * sum(values) / len(values)) if values else 0
