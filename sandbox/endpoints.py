"""The endpoints controllers: each selector Service gets an Endpoints object and an
EndpointSlice listing its pods (`kubectl describe service` reads the slices).

Ready pods go in `addresses`, unready ones in `notReadyAddresses` / `ready: false` (so a
NotReady node or a crash-looping pod visibly drops out of its Service), and named target
ports are resolved against the pods' container ports, as kube-controller-manager does.
"""

from __future__ import annotations

from typing import Any

from .pods import pod_ready
from .store import Store
from .util import owner_ref, random_suffix

MANAGED = "endpointslice.kubernetes.io/skip-mirror"


def _target_port(port: dict[str, Any], pods: list[dict[str, Any]]) -> int:
    target = port.get("targetPort", port["port"])
    if isinstance(target, int):
        return target
    for pod in pods:
        for container in pod["spec"].get("containers") or []:
            for cport in container.get("ports") or []:
                if cport.get("name") == target:
                    return int(cport["containerPort"])
    return int(port["port"])


def _address(pod: dict[str, Any]) -> dict[str, Any]:
    md = pod["metadata"]
    return {"ip": pod["status"]["podIP"], "nodeName": pod["spec"].get("nodeName", ""),
            "targetRef": {"kind": "Pod", "namespace": md["namespace"], "name": md["name"], "uid": md["uid"]}}


def reconcile_endpoints(store: Store, namespace: str) -> None:
    svc_rt, ep_rt = store.registry.kind("Service"), store.registry.kind("Endpoints")
    pods = [p for p in store.list(store.registry.kind("Pod"), namespace) if (p.get("status") or {}).get("podIP")]
    services = {s["metadata"]["name"]: s for s in store.list(svc_rt, namespace) if s["spec"].get("selector")}
    for ep in store.list(ep_rt, namespace):
        if ep["metadata"]["name"] not in services and (ep["metadata"].get("labels") or {}).get(MANAGED):
            store.delete(ep_rt, namespace, ep["metadata"]["name"])
    for name, svc in services.items():
        selector = svc["spec"]["selector"]
        members = [p for p in pods if all((p["metadata"].get("labels") or {}).get(k) == v
                                          for k, v in selector.items())]
        subset: dict[str, Any] = {}
        ready = sorted((_address(p) for p in members if pod_ready(p)), key=lambda a: a["ip"])
        unready = sorted((_address(p) for p in members if not pod_ready(p)), key=lambda a: a["ip"])
        if ready:
            subset["addresses"] = ready
        if unready:
            subset["notReadyAddresses"] = unready
        if subset:
            subset["ports"] = [{"name": p.get("name", ""), "port": _target_port(p, members),
                                "protocol": p.get("protocol", "TCP")} for p in svc["spec"].get("ports") or []]
        _reconcile_slice(store, svc, members, subset.get("ports", []))
        labels = {**(svc["metadata"].get("labels") or {}), MANAGED: "true"}
        existing = store.get(ep_rt, namespace, name)
        if existing is None:
            store.create(ep_rt, {"metadata": {"name": name, "namespace": namespace, "labels": labels},
                                 "subsets": [subset] if subset else []})
        elif existing.get("subsets") != ([subset] if subset else []) or existing["metadata"].get("labels") != labels:
            store.update(ep_rt, {**existing, "metadata": {**existing["metadata"], "labels": labels},
                                 "subsets": [subset] if subset else []})


def _reconcile_slice(store: Store, svc: dict[str, Any], members: list[dict[str, Any]],
                     ports: list[dict[str, Any]]) -> None:
    rt = store.registry.kind("EndpointSlice", "discovery.k8s.io")
    md = svc["metadata"]
    endpoints = []
    for pod in sorted(members, key=lambda p: p["status"]["podIP"]):
        ready = pod_ready(pod)
        address = _address(pod)
        endpoints.append({"addresses": [address["ip"]],
                          "conditions": {"ready": ready, "serving": ready, "terminating": False},
                          "nodeName": address["nodeName"], "targetRef": address["targetRef"]})
    owned = store.owned_by(md["uid"], rt)
    body = {"addressType": "IPv4", "endpoints": endpoints, "ports": ports}
    if not owned:
        store.create(rt, {"metadata": {
            "name": f"{md['name']}-{random_suffix(store.rng)}", "namespace": md["namespace"],
            "generateName": f"{md['name']}-",
            "labels": {"kubernetes.io/service-name": md["name"],
                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
            "ownerReferences": [owner_ref(svc, "v1", "Service")]}, **body})
    elif any(owned[0].get(k) != v for k, v in body.items()):
        store.update(rt, {**owned[0], **body})
