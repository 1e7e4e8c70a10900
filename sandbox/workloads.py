"""The workload controllers: Deployment -> ReplicaSets -> Pods (DaemonSets are in `daemonsets.py`).

They follow kube-controller-manager's observable behaviour: a Deployment whose pod template
changes gets a new ReplicaSet (`<deploy>-<template hash>`, next `deployment.kubernetes.io/revision`);
a template equal to an old ReplicaSet's (rollout undo) revives that ReplicaSet with a new revision
number. A RollingUpdate moves pods over as the real controller does: the new ReplicaSet grows
while the total stays within replicas + maxSurge, the old ones shrink while the available pods
stay at or above replicas - maxUnavailable (unhealthy old pods go first), so with pods that take
time to start the rollout takes that time. Recreate empties the old ReplicaSets before the new one
grows. A scale during a rollout is not spread proportionally over the ReplicaSets (the real
controller does); it simply becomes the rollout's new target. ReplicaSets create and delete pods
to match their replica count. Each function reads the store, writes only what changed, and
returns; the next change (a pod turned ready) calls it again.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from . import pods as podlib
from .selectors import match_label_selector
from .store import clone
from .util import controller_ref, dig, owner_ref, random_suffix, rfc3339, semantic, template_hash

if TYPE_CHECKING:
    from .controllers import Controllers

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
NOT_COPIED = {
    "kubectl.kubernetes.io/last-applied-configuration", REVISION, "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas", "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
}


def revision(obj: dict[str, Any]) -> int:
    return int(dig(obj, "metadata", "annotations", REVISION, default="0") or 0)


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    tmpl: dict[str, Any] = clone(template)
    labels = dig(tmpl, "metadata", "labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return tmpl


def _same_template(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The controller's EqualIgnoreHash: equal once the hash label and empty fields are ignored."""
    return bool(semantic(_without_hash(a)) == semantic(_without_hash(b)))


def _percent_or_int(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value or 0)


def owned_alive(ctl: Controllers, owner: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    uid = owner["metadata"]["uid"]
    return [o for o in ctl.store.owned_by(uid, ctl.rt(kind)) if (controller_ref(o) or {}).get("uid") == uid]


# --- Deployment --------------------------------------------------------------------------


def reconcile_deployment(ctl: Controllers, namespace: str, name: str) -> None:
    dep = ctl.store.get(ctl.rt("Deployment"), namespace, name)
    if dep is None:
        return
    rss = owned_alive(ctl, dep, "ReplicaSet")
    if not dep["spec"].get("paused"):
        new_rs = _new_replica_set(ctl, dep, rss)
        olds = [rs for rs in owned_alive(ctl, dep, "ReplicaSet") if rs["metadata"]["uid"] != new_rs["metadata"]["uid"]]
        if dig(dep, "spec", "strategy", "type") == "Recreate":
            _recreate(ctl, dep, new_rs, olds)
        else:
            _roll(ctl, dep, new_rs, olds)
        _cleanup_history(ctl, dep)
    _update_deployment_status(ctl, namespace, name)


def _spec(rs: dict[str, Any]) -> int:
    return int(rs["spec"].get("replicas", 0))


def _available(rs: dict[str, Any]) -> int:
    return int(dig(rs, "status", "availableReplicas", default=0))


def _oldest_first(rss: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rss, key=lambda rs: (rs["metadata"]["creationTimestamp"], rs["metadata"]["name"]))


def _fenceposts(dep: dict[str, Any], desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as numbers; both 0 would deadlock, so unavailable becomes 1."""
    rolling = dig(dep, "spec", "strategy", "rollingUpdate", default={}) or {}
    surge = _percent_or_int(rolling.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = _percent_or_int(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
    return surge, 1 if surge == 0 and unavailable == 0 else unavailable


def _roll(ctl: Controllers, dep: dict[str, Any], new_rs: dict[str, Any], olds: list[dict[str, Any]]) -> None:
    """One step of a rolling update: scale the new ReplicaSet up if the surge allows, else the old ones down."""
    desired = dep["spec"].get("replicas", 1)
    surge, unavailable = _fenceposts(dep, desired)
    total = _spec(new_rs) + sum(_spec(rs) for rs in olds)
    if _spec(new_rs) > desired:
        _scale_rs(ctl, dep, new_rs, desired)
        return
    if _spec(new_rs) < desired and total < desired + surge:
        _scale_rs(ctl, dep, new_rs, _spec(new_rs) + min(desired + surge - total, desired - _spec(new_rs)))
        return
    new_rs = _scale_rs(ctl, dep, new_rs, _spec(new_rs))  # keeps its desired-replicas note current
    _scale_down_old(ctl, dep, new_rs, [rs for rs in olds if _spec(rs) > 0], desired - unavailable)


def _scale_down_old(ctl: Controllers, dep: dict[str, Any], new_rs: dict[str, Any], olds: list[dict[str, Any]],
                    min_available: int) -> None:
    """reconcileOldReplicaSets: first the old pods that are not available, then as many as availability allows."""
    if not olds:
        return
    total = _spec(new_rs) + sum(_spec(rs) for rs in olds)
    budget = total - min_available - (_spec(new_rs) - _available(new_rs))
    if budget <= 0:
        return
    olds = _oldest_first(olds)
    cleaned = 0
    for i, rs in enumerate(olds):
        unhealthy = _spec(rs) - _available(rs)
        if cleaned >= budget:
            break
        if unhealthy > 0:
            step = min(budget - cleaned, unhealthy)
            olds[i] = _scale_rs(ctl, dep, rs, _spec(rs) - step)
            cleaned += step
    removable = _available(new_rs) + sum(_available(rs) for rs in olds) - min_available
    removed = 0
    for rs in olds:
        if removed >= removable:
            break
        if _spec(rs) > 0:
            step = min(_spec(rs), removable - removed)
            _scale_rs(ctl, dep, rs, _spec(rs) - step)
            removed += step


def _recreate(ctl: Controllers, dep: dict[str, Any], new_rs: dict[str, Any], olds: list[dict[str, Any]]) -> None:
    """Recreate: every old pod goes before the new ReplicaSet gets any."""
    for rs in olds:
        _scale_rs(ctl, dep, rs, 0)
    if any(owned_alive(ctl, rs, "Pod") for rs in olds):
        return
    _scale_rs(ctl, dep, new_rs, dep["spec"].get("replicas", 1))


def _new_replica_set(ctl: Controllers, dep: dict[str, Any], rss: list[dict[str, Any]]) -> dict[str, Any]:
    template = _without_hash(dep["spec"]["template"])
    max_rev = max((revision(rs) for rs in rss), default=0)
    current = next((rs for rs in rss if _same_template(rs["spec"]["template"], template)), None)
    annotations = {k: v for k, v in (dep["metadata"].get("annotations") or {}).items() if k not in NOT_COPIED}
    if current is not None:
        if revision(current) < max_rev or revision(dep) != revision(current):
            rs = clone(current)
            rs_ann = rs["metadata"].setdefault("annotations", {})
            if revision(current) < max_rev:
                old = str(revision(current))
                history = [h for h in rs_ann.get("deployment.kubernetes.io/revision-history", "").split(",") if h]
                rs_ann["deployment.kubernetes.io/revision-history"] = ",".join([*history, old])
                rs_ann[REVISION] = str(max_rev + 1)
            rs_ann.update(annotations)
            current = ctl.store.update(ctl.rt("ReplicaSet"), rs)
        _set_deployment_revision(ctl, dep, revision(current))
        return current
    return _create_replica_set(ctl, dep, template, max_rev + 1, annotations)


def _create_replica_set(ctl: Controllers, dep: dict[str, Any], template: dict[str, Any], rev: int,
                        annotations: dict[str, str]) -> dict[str, Any]:
    md = dep["metadata"]
    collision = 0
    while True:
        seed = semantic(template) if collision == 0 else {"template": semantic(template), "collisionCount": collision}
        pod_hash = template_hash(seed)
        name = f"{md['name']}-{pod_hash}"
        if ctl.store.get(ctl.rt("ReplicaSet"), md["namespace"], name) is None:
            break
        collision += 1
    template = clone(template)
    template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
    selector = clone(dep["spec"]["selector"])
    selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
    desired = dep["spec"].get("replicas", 1)
    surge = _percent_or_int(dig(dep, "spec", "strategy", "rollingUpdate", "maxSurge", default="25%"),
                            desired, round_up=True)
    rs: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": md["namespace"],
            "labels": dict(template["metadata"]["labels"]),
            "annotations": {**annotations, REVISION: str(rev),
                            "deployment.kubernetes.io/desired-replicas": str(desired),
                            "deployment.kubernetes.io/max-replicas": str(desired + surge)},
            "ownerReferences": [owner_ref(dep, "apps/v1", "Deployment")],
        },
        "spec": {"replicas": 0, "minReadySeconds": dep["spec"].get("minReadySeconds", 0),
                 "selector": selector, "template": template},
        "status": {"replicas": 0},
    }
    rs["kind"] = "ReplicaSet"
    podlib.prepare(rs, ctl.store)
    created = ctl.store.create(ctl.rt("ReplicaSet"), rs)
    _set_deployment_revision(ctl, dep, rev)
    return created


def _set_deployment_revision(ctl: Controllers, dep: dict[str, Any], rev: int) -> None:
    current = ctl.store.get(ctl.rt("Deployment"), dep["metadata"]["namespace"], dep["metadata"]["name"])
    if current is None or revision(current) == rev:
        return
    updated = clone(current)
    updated["metadata"].setdefault("annotations", {})[REVISION] = str(rev)
    ctl.store.update(ctl.rt("Deployment"), updated)


def _scale_rs(ctl: Controllers, dep: dict[str, Any], rs: dict[str, Any], replicas: int) -> dict[str, Any]:
    """Set a ReplicaSet's replicas (and the deployment's desired count on it); the current ReplicaSet back."""
    current = ctl.store.get(ctl.rt("ReplicaSet"), rs["metadata"]["namespace"], rs["metadata"]["name"])
    if current is None:
        return rs
    old = _spec(current)
    desired_note = str(dep["spec"].get("replicas", 1))
    ann = dig(current, "metadata", "annotations", default={})
    if old == replicas and (replicas == 0 or ann.get("deployment.kubernetes.io/desired-replicas") == desired_note):
        return current
    updated = clone(current)
    updated["spec"]["replicas"] = replicas
    updated["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/desired-replicas"] = desired_note
    stored: dict[str, Any] = ctl.store.update(ctl.rt("ReplicaSet"), updated)
    if old != replicas:
        direction = "up" if replicas > old else "down"
        ctl.recorder.record(dep, "Normal", "ScalingReplicaSet",
                            f"Scaled {direction} replica set {rs['metadata']['name']} from {old} to {replicas}",
                            "deployment")
    return stored


def _cleanup_history(ctl: Controllers, dep: dict[str, Any]) -> None:
    limit = dep["spec"].get("revisionHistoryLimit", 10)
    old = [rs for rs in owned_alive(ctl, dep, "ReplicaSet")
           if rs["spec"].get("replicas", 0) == 0 and revision(rs) != revision(dep)
           and dig(rs, "status", "replicas", default=0) == 0]
    old.sort(key=revision)
    for rs in old[: max(0, len(old) - limit)]:
        ctl.store.delete(ctl.rt("ReplicaSet"), rs["metadata"]["namespace"], rs["metadata"]["name"])


def _condition(existing: list[dict[str, Any]], type_: str, status: bool, reason: str, message: str,
               now: str) -> dict[str, Any]:
    """A condition that keeps its timestamps while nothing about it changes (no write churn)."""
    old = next((c for c in existing if c.get("type") == type_), None)
    new = {"type": type_, "status": "True" if status else "False", "lastUpdateTime": now,
           "lastTransitionTime": now, "reason": reason, "message": message}
    if old is not None:
        if (old["status"], old.get("reason"), old.get("message")) == (new["status"], reason, message):
            return old
        if old["status"] == new["status"]:
            new["lastTransitionTime"] = old["lastTransitionTime"]
    return new


def _update_deployment_status(ctl: Controllers, namespace: str, name: str) -> None:
    dep = ctl.store.get(ctl.rt("Deployment"), namespace, name)
    if dep is None:
        return
    rss = owned_alive(ctl, dep, "ReplicaSet")
    new_rs = next((rs for rs in rss if revision(rs) == revision(dep)), None)
    desired = dep["spec"].get("replicas", 1)

    def total(field: str) -> int:
        return sum(dig(rs, "status", field, default=0) for rs in rss)

    replicas, ready, available = total("replicas"), total("readyReplicas"), total("availableReplicas")
    updated = dig(new_rs, "status", "replicas", default=0) if new_rs else 0
    spec_total = sum(rs["spec"].get("replicas", 0) for rs in rss)
    max_unavailable = _percent_or_int(
        dig(dep, "spec", "strategy", "rollingUpdate", "maxUnavailable", default="25%"), desired, round_up=False)
    now = rfc3339(ctl.store.now())
    conditions = dig(dep, "status", "conditions", default=[])
    rs_name = new_rs["metadata"]["name"] if new_rs else ""
    complete = updated == desired and replicas == desired and available == desired
    available_cond = _condition(
        conditions, "Available", available >= desired - max_unavailable,
        *(("MinimumReplicasAvailable", "Deployment has minimum availability.")
          if available >= desired - max_unavailable
          else ("MinimumReplicasUnavailable", "Deployment does not have minimum availability.")), now)
    progressing_cond = _condition(
        conditions, "Progressing", True,
        *(("NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.') if complete
          else ("ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')), now)
    status: dict[str, Any] = {"observedGeneration": dep["metadata"].get("generation", 1)}
    for field, value in (("replicas", replicas), ("updatedReplicas", updated), ("readyReplicas", ready),
                         ("availableReplicas", available),
                         ("unavailableReplicas", max(0, spec_total - available))):
        if value:
            status[field] = value
    status["conditions"] = [available_cond, progressing_cond]
    if dep.get("status") != status:
        ctl.store.update(ctl.rt("Deployment"), {**dep, "status": status})


# --- ReplicaSet --------------------------------------------------------------------------


def reconcile_replica_set(ctl: Controllers, namespace: str, name: str) -> None:
    rs = ctl.store.get(ctl.rt("ReplicaSet"), namespace, name)
    if rs is None:
        return
    pods = _claim(ctl, rs, owned_alive(ctl, rs, "Pod"))
    want = rs["spec"].get("replicas", 1)
    if len(pods) < want:
        ref = owner_ref(rs, "apps/v1", "ReplicaSet")
        hash_label = {HASH_LABEL: dig(rs, "spec", "template", "metadata", "labels", HASH_LABEL, default="")}
        for _ in range(want - len(pods)):
            pod_name = unique_pod_name(ctl, namespace, name)
            pod = podlib.from_template(rs["spec"]["template"], pod_name, namespace, ref,
                                       hash_label if hash_label[HASH_LABEL] else {})
            ctl.create_pod(pod)
            ctl.recorder.record(rs, "Normal", "SuccessfulCreate", f"Created pod: {pod_name}", "replicaset")
    elif len(pods) > want:
        for pod in _victims(pods, len(pods) - want):
            ctl.delete_pod(pod)
            ctl.recorder.record(rs, "Normal", "SuccessfulDelete",
                                f"Deleted pod: {pod['metadata']['name']}", "replicaset")
    _update_rs_status(ctl, namespace, name)


def _claim(ctl: Controllers, rs: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Release pods relabelled out of the selector (quarantine): they stay, a replacement is made."""
    kept = []
    for pod in pods:
        if match_label_selector(rs["spec"].get("selector"), pod["metadata"].get("labels") or {}):
            kept.append(pod)
            continue
        released = clone(pod)
        refs = [r for r in released["metadata"].get("ownerReferences", []) if r["uid"] != rs["metadata"]["uid"]]
        if refs:
            released["metadata"]["ownerReferences"] = refs
        else:
            released["metadata"].pop("ownerReferences", None)
        ctl.store.update(ctl.rt("Pod"), released)
    return kept


def unique_pod_name(ctl: Controllers, namespace: str, prefix: str) -> str:
    while True:
        name = f"{prefix}-{random_suffix(ctl.store.rng)}"
        if ctl.store.get(ctl.rt("Pod"), namespace, name) is None:
            return name


def _victims(pods: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """Scale-down order: unscheduled, then still starting, then not ready, then the youngest (ReplicaSet
    controller's)."""
    def rank(pod: dict[str, Any]) -> tuple[int, int, int, str, str]:
        return (0 if not pod["spec"].get("nodeName") else 1, 1 if dig(pod, "status", "phase") == "Running" else 0,
                1 if podlib.pod_ready(pod) else 0, _neg(pod["metadata"]["creationTimestamp"]), pod["metadata"]["name"])
    return sorted(pods, key=rank)[:count]


def _neg(timestamp: str) -> str:
    """Sort key that puts later RFC 3339 timestamps first."""
    return "".join(chr(255 - ord(c)) for c in timestamp)


def _update_rs_status(ctl: Controllers, namespace: str, name: str) -> None:
    rs = ctl.store.get(ctl.rt("ReplicaSet"), namespace, name)
    if rs is None:
        return
    pods = owned_alive(ctl, rs, "Pod")
    ready = sum(1 for p in pods if podlib.pod_ready(p))
    status: dict[str, Any] = {"replicas": len(pods)}
    if pods:
        status["fullyLabeledReplicas"] = len(pods)
    if ready:
        status["readyReplicas"] = ready
        status["availableReplicas"] = ready
    status["observedGeneration"] = rs["metadata"].get("generation", 1)
    if rs.get("status") != status:
        ctl.store.update(ctl.rt("ReplicaSet"), {**rs, "status": status})
