"""Resource semantics of the API server: list, get, create, update, patch, delete.

This layer knows HTTP only as a parsed `ResourceRequest`; it enforces the API's rules
(namespace must exist, resourceVersion preconditions, status vs. spec subresources, dry run,
propagation of deletes), writes to the store, lets the controllers settle, and returns a
(status code, body) pair. Subresources other than `status` live in `subresources.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import conversions, errors, printing
from .cluster import Cluster
from .defaults import apply_defaults
from .patch import apply_patch
from .resources import ResourceType
from .selectors import field_selector_predicate, label_selector_predicate
from .store import clone
from .util import rfc3339
from .validation import validate

SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation", "managedFields")
# kinds whose status a create may not set (their controllers own it)
RESET_STATUS = {"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Job", "CronJob", "Pod",
                "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service", "Namespace"}
# kinds whose DELETE answers with the object rather than a Status (registry ReturnDeletedObject)
RETURNS_OBJECT = {"Pod", "Service", "Namespace"}
PROTECTED_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}


@dataclass
class ResourceRequest:
    method: str
    rt: ResourceType
    namespace: str  # "" for cluster-scoped or all namespaces
    name: str = ""
    sub: str = ""
    query: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    accept: str = "application/json"
    body: Any = None
    view: tuple[str, str, str] = ("", "", "")  # (group, version, plural) the client asked for

    @property
    def dry_run(self) -> bool:
        return self.query.get("dryRun") == "All"


Reply = tuple[int, Any]


class Api:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.store = cluster.store

    # --- reads ---------------------------------------------------------------------------

    def matching(self, req: ResourceRequest) -> list[dict[str, Any]]:
        objects = self.store.list(req.rt, req.namespace or None)
        for predicate in (label_selector_predicate(req.query.get("labelSelector")),
                          field_selector_predicate(req.query.get("fieldSelector"))):
            if predicate is not None:
                objects = [o for o in objects if predicate(o)]
        objects.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return objects

    def render_list(self, req: ResourceRequest, objects: list[dict[str, Any]]) -> dict[str, Any]:
        if printing.wants_table(req.accept):
            return printing.table(req.rt, objects, self.store.now(), self.store.resource_version,
                                  req.query.get("includeObject", "Metadata"))
        return {"kind": f"{req.rt.kind}List", "apiVersion": req.rt.api_version,
                "metadata": {"resourceVersion": self.store.resource_version}, "items": objects}

    def render_one(self, req: ResourceRequest, obj: dict[str, Any]) -> dict[str, Any]:
        if printing.wants_table(req.accept):
            return printing.table(req.rt, [obj], self.store.now(), obj["metadata"].get("resourceVersion", ""),
                                  req.query.get("includeObject", "Metadata"))
        return obj

    def list(self, req: ResourceRequest) -> Reply:
        return 200, self.render_list(req, self.matching(req))

    def get(self, req: ResourceRequest) -> Reply:
        return 200, self.render_one(req, self.store.require(req.rt, req.namespace, req.name))

    # --- writes --------------------------------------------------------------------------

    def _check_body(self, req: ResourceRequest, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        if body.get("kind") not in (None, "", req.rt.kind):
            raise errors.bad_request(f"the API version in the data ({body.get('apiVersion')}) does not match "
                                     f"the expected API version ({req.rt.api_version})"
                                     if body.get("apiVersion") != req.rt.api_version
                                     else f"kind {body['kind']} does not match {req.rt.kind}")
        md = body.setdefault("metadata", {})
        if req.rt.namespaced:
            if md.get("namespace") and md["namespace"] != req.namespace:
                raise errors.bad_request("the namespace of the provided object does not match the namespace "
                                         "sent on the request")
            md["namespace"] = req.namespace
        return body

    def _require_namespace(self, namespace: str) -> None:
        if namespace and self.store.get(self.cluster.rt("Namespace"), "", namespace) is None:
            raise errors.not_found("namespaces", namespace)

    def create(self, req: ResourceRequest) -> Reply:
        obj = self._check_body(req, clone(req.body))
        md = obj["metadata"]
        if req.rt.namespaced:
            self._require_namespace(req.namespace)
        if not md.get("name") and not md.get("generateName"):
            raise errors.invalid(req.rt.kind_group, "", [("metadata.name",
                                                         "Required value: name or generateName is required")])
        for key in SERVER_FIELDS:
            md.pop(key, None)
        if req.rt.kind in RESET_STATUS:
            obj.pop("status", None)
        obj["kind"], obj["apiVersion"] = req.rt.kind, req.rt.api_version
        apply_defaults(obj, self.store)
        validate(req.rt, obj)
        if req.dry_run:
            if self.store.get(req.rt, req.namespace, md.get("name", "")) is not None:
                raise errors.already_exists(req.rt.qualified, md["name"])
            md.update(uid=self.store.new_uid(), creationTimestamp=rfc3339(self.store.now()))
            return 201, obj
        created = self.store.create(req.rt, obj)
        self.cluster.settle()
        return 201, created

    def _commit(self, req: ResourceRequest, current: dict[str, Any], new: dict[str, Any]) -> Reply:
        md = new.setdefault("metadata", {})
        if md.get("name", current["metadata"]["name"]) != current["metadata"]["name"]:
            raise errors.bad_request(f"the name of the object ({md['name']}) does not match the name on the "
                                     f"URL ({current['metadata']['name']})")
        md["name"] = current["metadata"]["name"]
        if req.rt.namespaced:
            md["namespace"] = req.namespace
        wanted_rv = md.get("resourceVersion")
        if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise errors.conflict(req.rt.qualified, md["name"])
        if req.sub == "status":
            new = {**clone(current), "status": new.get("status")}
        elif req.rt.has_status():
            new["status"] = clone(current.get("status"))
            if new["status"] is None:
                new.pop("status")
        new["kind"], new["apiVersion"] = req.rt.kind, req.rt.api_version
        apply_defaults(new, self.store)
        validate(req.rt, new)
        if req.dry_run:
            return 200, new
        updated = self.store.update(req.rt, new)
        self.cluster.settle()
        return 200, updated

    def replace(self, req: ResourceRequest) -> Reply:
        current = self.store.require(req.rt, req.namespace, req.name)
        return self._commit(req, current, self._check_body(req, clone(req.body)))

    def patch(self, req: ResourceRequest) -> Reply:
        current = self.store.get(req.rt, req.namespace, req.name)
        if current is None:
            if req.content_type.startswith("application/apply-patch"):
                body = conversions.inbound(req.view, req.body)
                return self.create(ResourceRequest("POST", req.rt, req.namespace, query=req.query, body=body,
                                                   view=req.view))
            raise errors.not_found(req.rt.qualified, req.name)
        if req.view != req.rt.key:  # patch the object as the client sees it, then store it
            seen = conversions.outbound(req.view, clone(current))
            patched = conversions.inbound(req.view, apply_patch(req.content_type, seen, req.body))
        else:
            patched = apply_patch(req.content_type, clone(current), req.body)
        return self._commit(req, current, patched)

    # --- deletes -------------------------------------------------------------------------

    def _options(self, req: ResourceRequest) -> dict[str, Any]:
        options = dict(req.body) if isinstance(req.body, dict) else {}
        for key in ("propagationPolicy", "gracePeriodSeconds"):
            if key in req.query:
                options.setdefault(key, req.query[key])
        if options.get("orphanDependents") is True:
            options.setdefault("propagationPolicy", "Orphan")
        return options

    def delete(self, req: ResourceRequest) -> Reply:
        current = self.store.require(req.rt, req.namespace, req.name)
        options = self._options(req)
        pre = options.get("preconditions") or {}
        md = current["metadata"]
        if pre.get("uid") and pre["uid"] != md["uid"]:
            raise errors.ApiError(409, "Conflict", f"Precondition failed: UID in precondition: {pre['uid']}, "
                                                   f"UID in object meta: {md['uid']}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != md["resourceVersion"]:
            raise errors.ApiError(409, "Conflict", f"Precondition failed: ResourceVersion in precondition: "
                                                   f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                                   f"{md['resourceVersion']}")
        if req.rt.kind == "Namespace" and req.name in PROTECTED_NAMESPACES:
            raise errors.ApiError(403, "Forbidden", f'namespaces "{req.name}" is forbidden: this namespace may '
                                                    "not be deleted", {"name": req.name, "kind": "namespaces"})
        if req.dry_run or "All" in (options.get("dryRun") or []):
            return self._deleted_reply(req, current)
        if options.get("propagationPolicy") == "Orphan":
            self._orphan(md["uid"])
        if req.rt.kind == "Pod":
            self.cluster.controllers.delete_pod(current)
        else:
            self.store.delete(req.rt, req.namespace, req.name)
        self.cluster.settle()
        return self._deleted_reply(req, current)

    def _deleted_reply(self, req: ResourceRequest, obj: dict[str, Any]) -> Reply:
        if req.rt.kind in RETURNS_OBJECT:
            gone = clone(obj)
            gone["metadata"]["deletionTimestamp"] = rfc3339(self.store.now())
            gone["metadata"]["deletionGracePeriodSeconds"] = 0
            if req.rt.kind == "Namespace":
                gone["status"] = {"phase": "Terminating"}
            return 200, gone
        details: dict[str, Any] = {"name": obj["metadata"]["name"]}
        if req.rt.group:
            details["group"] = req.rt.group
        details.update(kind=req.rt.plural, uid=obj["metadata"]["uid"])
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def _orphan(self, uid: str) -> None:
        for rt, dependent in self.store.dependents(uid):
            updated = clone(dependent)
            refs = [r for r in updated["metadata"].get("ownerReferences", []) if r["uid"] != uid]
            if refs:
                updated["metadata"]["ownerReferences"] = refs
            else:
                updated["metadata"].pop("ownerReferences", None)
            self.store.update(rt, updated)

    def delete_collection(self, req: ResourceRequest) -> Reply:
        victims = self.matching(req)
        if not req.dry_run:
            for obj in victims:
                md = obj["metadata"]
                if req.rt.kind == "Pod":
                    self.cluster.controllers.delete_pod(obj)
                else:
                    self.store.delete(req.rt, md.get("namespace", ""), md["name"])
            self.cluster.settle()
        return 200, {"kind": f"{req.rt.kind}List", "apiVersion": req.rt.api_version,
                     "metadata": {"resourceVersion": self.store.resource_version}, "items": victims}
