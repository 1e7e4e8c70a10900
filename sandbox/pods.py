"""Pod construction and the kubelet's side of a pod's life.

A controller builds a pod from its template here; the scheduler (`scheduling.py`) picks a node and
`bind` records it there, containers still being created (Pending, ContainerCreating, not ready);
`start` writes the status a healthy kubelet reports once they run: Running, Ready, container
statuses, IPs. How long that takes is the cluster's `start_seconds` (0: at once, in the same
write). Readiness follows the node (a NotReady node's pods are not ready), which is what the
node-not-ready scenario shows.
"""

from __future__ import annotations

import copy
import hashlib
import random
from typing import Any

from .defaults import apply_defaults, qos_class
from .util import dig, rfc3339


class IpPool:
    """Pod IPs from the node's subnet (the VPC CNI hands out secondary IPs), never two alike."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def allocate(self, node_ip: str, rng: random.Random) -> str:
        first, second, third, _ = (int(part) for part in node_ip.split("."))
        for _ in range(10_000):
            ip = f"{first}.{second}.{third + 8 * rng.randint(0, 31)}.{rng.randint(2, 254)}"
            if ip not in self.used:
                self.used.add(ip)
                return ip
        raise RuntimeError(f"pod IP range of node {node_ip} exhausted")

    def release(self, ip: str | None) -> None:
        if ip:
            self.used.discard(ip)


def node_condition(node: dict[str, Any], type_: str) -> dict[str, Any] | None:
    conditions: list[dict[str, Any]] = dig(node, "status", "conditions", default=[])
    return next((c for c in conditions if c.get("type") == type_), None)


def node_ready(node: dict[str, Any]) -> bool:
    cond = node_condition(node, "Ready")
    return cond is not None and cond.get("status") == "True"


def node_ip(node: dict[str, Any]) -> str:
    for address in dig(node, "status", "addresses", default=[]):
        if address.get("type") == "InternalIP":
            return str(address["address"])
    return ""


def tolerates(pod_spec: dict[str, Any], taint: dict[str, Any]) -> bool:
    for tol in pod_spec.get("tolerations") or []:
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists":
            if not tol.get("key") or tol["key"] == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and tol.get("value", "") == taint.get("value", ""):
            return True
    return False


def pod_ready(pod: dict[str, Any]) -> bool:
    for cond in dig(pod, "status", "conditions", default=[]):
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def from_template(template: dict[str, Any], name: str, namespace: str, owner_ref: dict[str, Any],
                  extra_labels: dict[str, str]) -> dict[str, Any]:
    tmpl = copy.deepcopy(template)
    md = tmpl.get("metadata") or {}
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "generateName": name.rsplit("-", 1)[0] + "-",
            "namespace": namespace,
            "labels": {**(md.get("labels") or {}), **extra_labels},
            "ownerReferences": [owner_ref],
        },
        "spec": tmpl.get("spec") or {},
    }
    if md.get("annotations"):
        pod["metadata"]["annotations"] = md["annotations"]
    return pod


def prepare(pod: dict[str, Any], store: Any) -> dict[str, Any]:
    apply_defaults(pod, store)
    return pod


def _image_id(image: str) -> str:
    repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _condition(type_: str, status: bool, when: str, reason: str | None = None) -> dict[str, Any]:
    cond: dict[str, Any] = {"type": type_, "status": "True" if status else "False",
                            "lastProbeTime": None, "lastTransitionTime": when}
    if reason:
        cond["reason"] = reason
    return cond


def _conditions(scheduled_at: str, now: str, started: bool, ready: bool, reason: str | None,
                message: str | None = None) -> list[dict[str, Any]]:
    unready = [_condition(type_, ready, now, reason) for type_ in ("Ready", "ContainersReady")]
    if message:
        for cond in unready:
            cond["message"] = message
    return [
        _condition("PodReadyToStartContainers", started, now),
        _condition("Initialized", True, scheduled_at),
        *unready,
        _condition("PodScheduled", True, scheduled_at),
    ]


def bind(pod: dict[str, Any], node: dict[str, Any], store: Any) -> None:
    """Bind `pod` to `node`: the kubelet has it, its containers are still being created."""
    now = rfc3339(store.now())
    spec = pod["spec"]
    spec["nodeName"] = node["metadata"]["name"]
    host = node_ip(node)
    names = [c["name"] for c in spec.get("containers") or []]
    pod["status"] = {
        "phase": "Pending",
        "conditions": _conditions(now, now, False, False, "ContainersNotReady",
                                  f"containers with unready status: [{' '.join(names)}]"),
        "hostIP": host,
        "hostIPs": [{"ip": host}],
        "startTime": now,
        "containerStatuses": [
            {"name": c["name"], "state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {},
             "ready": False, "restartCount": 0, "image": c.get("image", ""), "imageID": "", "started": False}
            for c in spec.get("containers") or []
        ],
        "qosClass": qos_class(spec),
    }


def creating(pod: dict[str, Any]) -> bool:
    """Bound, containers not started yet (what `bind` leaves)."""
    return any(dig(s, "state", "waiting", "reason") == "ContainerCreating"
               for s in dig(pod, "status", "containerStatuses", default=[]))


def start(pod: dict[str, Any], node: dict[str, Any], store: Any, ip_pool: IpPool) -> None:
    """Bind `pod` to `node` (if `bind` has not) and give it the status of containers that started cleanly."""
    now = rfc3339(store.now())
    spec = pod["spec"]
    spec["nodeName"] = node["metadata"]["name"]
    old = pod.get("status") or {}
    scheduled_at = next((c["lastTransitionTime"] for c in old.get("conditions") or []
                         if c.get("type") == "PodScheduled" and c.get("status") == "True"), now)
    host = node_ip(node)
    pod_ip = host if spec.get("hostNetwork") else ip_pool.allocate(host, store.rng)
    ready = node_ready(node)
    statuses = [
        {
            "name": c["name"],
            "state": {"running": {"startedAt": now}},
            "lastState": {},
            "ready": ready,
            "restartCount": 0,
            "image": c.get("image", ""),
            "imageID": _image_id(c.get("image", "")),
            "containerID": f"containerd://{store.rng.getrandbits(256):064x}",
            "started": True,
        }
        for c in spec.get("containers") or []
    ]
    pod["status"] = {
        "phase": "Running",
        "conditions": _conditions(scheduled_at, now, True, ready, None if ready else "ContainersNotReady"),
        "hostIP": host,
        "hostIPs": [{"ip": host}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": old.get("startTime", now),
        "containerStatuses": statuses,
        "qosClass": qos_class(spec),
    }


def scheduling_message(pod: dict[str, Any]) -> str | None:
    """The scheduler's last word on a pod it could not place (None: it has not failed to)."""
    for cond in dig(pod, "status", "conditions", default=[]):
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return str(cond.get("message", ""))
    return None


def unschedulable(pod: dict[str, Any], message: str, store: Any) -> None:
    """Pending, PodScheduled=False (Unschedulable) with the scheduler's message; the condition keeps its
    transition time while the pod stays unschedulable."""
    now = rfc3339(store.now())
    if scheduling_message(pod) is not None:
        now = next(c["lastTransitionTime"] for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    pod["status"] = {
        "phase": "Pending",
        "conditions": [{**_condition("PodScheduled", False, now, "Unschedulable"), "message": message}],
        "qosClass": qos_class(pod["spec"]),
    }


def set_ready(pod: dict[str, Any], ready: bool, when: str) -> None:
    """Flip readiness (node went NotReady or came back); containers follow."""
    for cond in dig(pod, "status", "conditions", default=[]):
        if cond["type"] in ("Ready", "ContainersReady") and (cond["status"] == "True") != ready:
            cond["status"] = "True" if ready else "False"
            cond["lastTransitionTime"] = when
            if ready:
                cond.pop("reason", None)
            else:
                cond["reason"] = "NodeNotReady"
    for status in dig(pod, "status", "containerStatuses", default=[]):
        status["ready"] = ready
