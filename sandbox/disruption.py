"""PodDisruptionBudgets: their status, and the eviction decision `kubectl drain` depends on.

The numbers follow the disruption controller: expected pods, currently healthy (Ready) pods,
desired healthy from minAvailable/maxUnavailable, and disruptionsAllowed = healthy - desired.
An eviction that would take a healthy pod below the budget is refused with the real 429.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import ApiError
from .pods import pod_ready
from .selectors import match_label_selector
from .store import Store
from .util import dig, rfc3339


def matching_budgets(store: Store, pod: dict[str, Any]) -> list[dict[str, Any]]:
    labels = dig(pod, "metadata", "labels", default={})
    return [pdb for pdb in store.list(store.registry.kind("PodDisruptionBudget", "policy"),
                                      pod["metadata"]["namespace"])
            if match_label_selector(pdb["spec"].get("selector"), labels)]


def _scaled(value: Any, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def budget_numbers(store: Store, pdb: dict[str, Any]) -> dict[str, int]:
    pods = [p for p in store.list(store.registry.kind("Pod"), pdb["metadata"]["namespace"])
            if match_label_selector(pdb["spec"].get("selector"), dig(p, "metadata", "labels", default={}))]
    expected = len(pods)
    healthy = sum(1 for p in pods if pod_ready(p))
    spec = pdb["spec"]
    if spec.get("maxUnavailable") is not None:
        desired = max(0, expected - _scaled(spec["maxUnavailable"], expected))
    else:
        desired = _scaled(spec.get("minAvailable", 1), expected)
    return {"currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
            "disruptionsAllowed": max(0, healthy - desired)}


def reconcile_budgets(store: Store, namespace: str) -> None:
    rt = store.registry.kind("PodDisruptionBudget", "policy")
    for pdb in store.list(rt, namespace):
        numbers = budget_numbers(store, pdb)
        allowed = numbers["disruptionsAllowed"] > 0
        old = dig(pdb, "status", "conditions", default=[])
        reason = "SufficientPods" if allowed else "InsufficientPods"
        cond = next((c for c in old if c.get("type") == "DisruptionAllowed" and c.get("reason") == reason), None)
        if cond is None:
            cond = {"type": "DisruptionAllowed", "status": "True" if allowed else "False", "reason": reason,
                    "message": "", "observedGeneration": pdb["metadata"].get("generation", 1),
                    "lastTransitionTime": rfc3339(store.now())}
        status = {**numbers, "observedGeneration": pdb["metadata"].get("generation", 1), "conditions": [cond]}
        if pdb.get("status") != status:
            store.update(rt, {**pdb, "status": status})


def check_eviction(store: Store, pod: dict[str, Any]) -> None:
    """Raise the API server's error when evicting `pod` would violate its budget."""
    budgets = matching_budgets(store, pod)
    if len(budgets) > 1:
        raise ApiError(500, "InternalError",
                       "This pod has more than one PodDisruptionBudget, which the eviction subresource "
                       "does not support.")
    if not budgets or dig(pod, "status", "phase") in ("Succeeded", "Failed", "Pending"):
        return
    pdb = budgets[0]
    numbers = budget_numbers(store, pdb)
    if not pod_ready(pod) and numbers["currentHealthy"] >= numbers["desiredHealthy"]:
        return  # an unhealthy pod may go while the budget itself is healthy (IfHealthyBudget)
    if numbers["disruptionsAllowed"] > 0 and pod_ready(pod):
        return
    cause = (f"The disruption budget {pdb['metadata']['name']} needs {numbers['desiredHealthy']} healthy pods "
             f"and has {numbers['currentHealthy']} currently")
    raise ApiError(429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.",
                   {"causes": [{"reason": "DisruptionBudget", "message": cause}]})
