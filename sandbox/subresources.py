"""Subresources with their own body kinds: scale, eviction, log; and the metrics API.

- `deployments|replicasets/NAME/scale` speaks autoscaling/v1 Scale (kubectl scale PATCHes it).
- `pods/NAME/eviction` takes a policy/v1 Eviction and honours PodDisruptionBudgets (drain).
- `pods/NAME/log` answers text/plain.
- metrics.k8s.io/v1beta1 pods and nodes are computed from the running pods on each request.
"""

from __future__ import annotations

from typing import Any

from . import errors
from .api import Api, Reply, ResourceRequest
from .disruption import check_eviction
from .logs import container_log
from .patch import apply_patch
from .selectors import label_selector_predicate, selector_string
from .store import clone
from .util import dig
from .validation import validate_replicas


class Subresources:
    def __init__(self, api: Api):
        self.api = api
        self.cluster = api.cluster
        self.store = api.store

    # --- scale ---------------------------------------------------------------------------

    def _scale(self, obj: dict[str, Any]) -> dict[str, Any]:
        md = obj["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in md},
            "spec": {"replicas": obj["spec"].get("replicas", 0)},
            "status": {"replicas": dig(obj, "status", "replicas", default=0),
                       "selector": selector_string(obj["spec"].get("selector"))},
        }

    def scale(self, req: ResourceRequest) -> Reply:
        current = self.store.require(req.rt, req.namespace, req.name)
        if req.method == "GET":
            return 200, self._scale(current)
        if req.method == "PUT":
            body = req.body if isinstance(req.body, dict) else {}
        else:
            body = apply_patch(req.content_type, self._scale(current), req.body)
        wanted_rv = dig(body, "metadata", "resourceVersion")
        if req.method == "PUT" and wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise errors.conflict(req.rt.qualified, req.name)
        replicas = dig(body, "spec", "replicas", default=0)
        validate_replicas("Scale.autoscaling", req.name, replicas)
        if req.dry_run:
            return 200, {**self._scale(current), "spec": {"replicas": replicas}}
        updated = clone(current)
        updated["spec"]["replicas"] = replicas
        self.store.update(req.rt, updated)
        self.cluster.settle()
        return 200, self._scale(self.store.require(req.rt, req.namespace, req.name))

    # --- eviction ------------------------------------------------------------------------

    def evict(self, req: ResourceRequest) -> Reply:
        pod = self.store.require(req.rt, req.namespace, req.name)
        body = req.body if isinstance(req.body, dict) else {}
        body_name = dig(body, "metadata", "name")
        if body_name and body_name != req.name:
            raise errors.bad_request(f"name in URL does not match name in Eviction object: "
                                     f"{req.name} vs {body_name}")
        check_eviction(self.store, pod)
        dry_run = "All" in (dig(body, "deleteOptions", "dryRun", default=[]) or []) or req.dry_run
        if not dry_run:
            self.cluster.controllers.delete_pod(pod)
            self.cluster.settle()
        return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    # --- logs ----------------------------------------------------------------------------

    def log(self, req: ResourceRequest) -> Reply:
        pod = self.store.require(req.rt, req.namespace, req.name)
        for key in ("tailLines", "sinceSeconds", "limitBytes"):
            value = req.query.get(key)
            if value not in (None, "") and not value.lstrip("-").isdigit():
                raise errors.bad_request(f'strconv.ParseInt: parsing "{value}": invalid syntax')
        text = container_log(pod, req.query.get("container"), self.store.now(), req.query, self.cluster.seed)
        return 200, text

    # --- metrics.k8s.io ------------------------------------------------------------------

    def metrics(self, req: ResourceRequest) -> Reply:
        metrics = self.cluster.metrics
        pods_rt, nodes_rt = self.cluster.rt("Pod"), self.cluster.rt("Node")
        if req.rt.kind == "PodMetrics":
            pods = self.store.list(pods_rt, req.namespace or None)
            items = [m for m in (metrics.pod_metrics(p) for p in pods) if m is not None]
        else:
            pods = self.store.list(pods_rt)
            items = [m for m in (metrics.node_metrics(n, pods) for n in self.store.list(nodes_rt))
                     if m is not None]
        predicate = label_selector_predicate(req.query.get("labelSelector"))
        if predicate is not None:
            items = [m for m in items if predicate(m)]
        items.sort(key=lambda m: (m["metadata"].get("namespace", ""), m["metadata"]["name"]))
        if req.name:
            found = next((m for m in items if m["metadata"]["name"] == req.name), None)
            if found is None:
                raise errors.not_found(req.rt.qualified, req.name)
            return 200, found
        return 200, {"kind": f"{req.rt.kind}List", "apiVersion": req.rt.api_version,
                     "metadata": {}, "items": items}
