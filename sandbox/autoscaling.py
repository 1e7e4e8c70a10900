"""HorizontalPodAutoscalers: their status after every change, and their bounds on a timer.

`reconcile_autoscalers` runs with the other controllers after each write and reports what a real
HPA would observe (current replicas, CPU utilisation of the target, conditions), so `kubectl get
hpa` and `describe hpa` show live numbers. `enforce_bounds` is one sync of the HPA controller,
which the served sandbox runs every `hpa_sync_seconds` (the real controller's period is 15 s):
a target scaled outside [minReplicas, maxReplicas] is scaled back to the nearest bound, with the
real controller's `SuccessfulRescale` event ("New size: 20; reason: Current number of replicas
above Spec.MaxReplicas") and `lastScaleTime`. Within the bounds it does not scale on CPU: the
sandbox's metrics are not load, and an autoscaler undoing `kubectl scale 10` would only confuse.
A target at 0 replicas is left alone, as the real one leaves it ("scaling is disabled").
"""

from __future__ import annotations

from typing import Any

from .events import Recorder
from .metrics import Metrics
from .selectors import match_label_selector
from .store import Store, clone
from .util import dig, rfc3339

ABOVE = "Current number of replicas above Spec.MaxReplicas"
BELOW = "Current number of replicas below Spec.MinReplicas"
READY = ("ReadyForNewScale", "recommended size matches current size")


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


def _target(store: Store, hpa: dict[str, Any]) -> dict[str, Any] | None:
    ref = hpa["spec"].get("scaleTargetRef") or {}
    if ref.get("kind") != "Deployment":
        return None
    return store.get(store.registry.kind("Deployment", "apps"), hpa["metadata"]["namespace"], ref.get("name", ""))


def _bounded(hpa: dict[str, Any], current: int) -> tuple[int, str]:
    """(desired replicas, rescale reason) by the bounds alone; a target at 0 stays at 0."""
    low, high = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
    if current == 0 and low != 0:
        return 0, ""
    if current > high:
        return high, ABOVE
    if current < low:
        return low, BELOW
    return current, ""


def enforce_bounds(store: Store, recorder: Recorder) -> None:
    """One sync of the HPA controller: put each target scaled outside its bounds back inside them."""
    rt = store.registry.kind("HorizontalPodAutoscaler", "autoscaling")
    for hpa in store.list(rt):
        dep = _target(store, hpa)
        if dep is None:
            continue
        desired, reason = _bounded(hpa, dig(dep, "status", "replicas", default=0))
        now = rfc3339(store.now())
        status = clone(hpa.get("status") or {})
        old = status.get("conditions") or []
        if reason and dep["spec"].get("replicas") != desired:
            scaled = clone(dep)
            scaled["spec"]["replicas"] = desired
            store.update(store.registry.kind("Deployment", "apps"), scaled)
            status["lastScaleTime"] = now
            able = _condition(old, "AbleToScale", "True", "SucceededRescale",
                              f"the HPA controller was able to update the target scale to {desired}", now)
            recorder.record(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}", "hpa")
        else:
            able = _condition(old, "AbleToScale", "True", *READY, now)
        status["conditions"] = [able, *(c for c in old if c.get("type") != "AbleToScale")]
        if status != hpa.get("status"):
            store.update(rt, {**store.require(rt, hpa["metadata"]["namespace"], hpa["metadata"]["name"]),
                              "status": status})


def _status(store: Store, metrics: Metrics, hpa: dict[str, Any]) -> dict[str, Any] | None:
    dep = _target(store, hpa)
    if dep is None:
        return None
    pods = [p for p in store.list(store.registry.kind("Pod"), hpa["metadata"]["namespace"])
            if match_label_selector(dep["spec"].get("selector"), dig(p, "metadata", "labels", default={}))]
    utilisations = [u for u in (metrics.pod_cpu_utilization(p) for p in pods) if u is not None]
    current = dig(dep, "status", "replicas", default=0)
    low, high = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
    desired = _bounded(hpa, current)[0]
    now = rfc3339(store.now())
    old = dig(hpa, "status", "conditions", default=[])
    status: dict[str, Any] = {"currentReplicas": current, "desiredReplicas": desired}
    if "lastScaleTime" in (hpa.get("status") or {}):
        status["lastScaleTime"] = hpa["status"]["lastScaleTime"]
    if utilisations:
        avg = round(sum(utilisations) / len(utilisations))
        status["currentMetrics"] = [{"type": "Resource", "resource": {"name": "cpu", "current": {
            "averageUtilization": avg, "averageValue": f"{_avg_cpu_milli(metrics, pods)}m"}}}]
    limited = current != desired and not (current == 0 and low != 0)
    able = next((c for c in old if c.get("type") == "AbleToScale"), None)  # the last sync's word
    if current == 0 and low != 0:
        active = _condition(old, "ScalingActive", "False", "ScalingDisabled",
                            "scaling is disabled since the replica count of the target is zero", now)
    else:
        active = _condition(old, "ScalingActive", "True" if utilisations else "False",
                            "ValidMetricFound" if utilisations else "FailedGetResourceMetric",
                            "the HPA was able to successfully calculate a replica count from cpu resource "
                            "utilization (percentage of request)" if utilisations
                            else "the HPA was unable to compute the replica count: no metrics returned", now)
    status["conditions"] = [
        able or _condition(old, "AbleToScale", "True", *READY, now),
        active,
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
