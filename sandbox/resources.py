"""The resource registry and the discovery documents built from it.

One table says which kinds exist, under which group/version and plural, whether they are
namespaced, which verbs and short names they have and which subresources hang off them.
The store, the router and discovery all read this table, so adding a kind is one line here
(plus a printer if it deserves more columns than NAME and AGE).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list")
STATUS_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class Subresource:
    """`deployments/scale` and friends; group/version are set when the body is another API's kind."""

    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str = ""
    version: str = ""


@dataclass(frozen=True)
class ResourceType:
    kind: str
    plural: str
    namespaced: bool
    group: str = ""
    version: str = "v1"
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[Subresource, ...] = field(default=())

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How error messages name the resource: `deployments.apps`, or `pods` for core."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def kind_group(self) -> str:
        """How Invalid errors name the kind: `Deployment.apps`, or `Pod` for core."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.plural)

    def subresource(self, name: str) -> Subresource | None:
        return next((s for s in self.subresources if s.name == name), None)

    def has_status(self) -> bool:
        return self.subresource("status") is not None

    def discovery_entries(self) -> list[dict[str, Any]]:
        main: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            main["shortNames"] = list(self.short_names)
        if self.categories:
            main["categories"] = list(self.categories)
        entries = [main]
        for sub in self.subresources:
            entry: dict[str, Any] = {"name": f"{self.plural}/{sub.name}", "singularName": "",
                                     "namespaced": self.namespaced}
            if sub.group or sub.version:
                entry["group"] = sub.group
                entry["version"] = sub.version
            entry["kind"] = sub.kind
            entry["verbs"] = list(sub.verbs)
            entries.append(entry)
        return entries


def _status(kind: str) -> Subresource:
    return Subresource("status", kind, STATUS_VERBS)


_SCALE = Subresource("scale", "Scale", STATUS_VERBS, "autoscaling", "v1")

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("Namespace", "namespaces", False, short_names=("ns",),
                 verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
                 subresources=(_status("Namespace"),)),
    ResourceType("Node", "nodes", False, short_names=("no",), subresources=(_status("Node"),)),
    ResourceType("Pod", "pods", True, short_names=("po",), categories=("all",), subresources=(
        Subresource("eviction", "Eviction", ("create",), "policy", "v1"),
        Subresource("log", "Pod", ("get",)),
        Subresource("proxy", "PodProxyOptions", ("create", "delete", "get", "patch", "update")),
        _status("Pod"),
    )),
    ResourceType("Event", "events", True, short_names=("ev",)),
    ResourceType("Service", "services", True, short_names=("svc",), categories=("all",),
                 subresources=(_status("Service"),)),
    ResourceType("Endpoints", "endpoints", True, short_names=("ep",)),
    ResourceType("ConfigMap", "configmaps", True, short_names=("cm",)),
    ResourceType("Secret", "secrets", True),
    ResourceType("PersistentVolumeClaim", "persistentvolumeclaims", True, short_names=("pvc",),
                 subresources=(_status("PersistentVolumeClaim"),)),
    ResourceType("ServiceAccount", "serviceaccounts", True, short_names=("sa",)),
    ResourceType("Deployment", "deployments", True, "apps", short_names=("deploy",), categories=("all",),
                 subresources=(_SCALE, _status("Deployment"))),
    ResourceType("ReplicaSet", "replicasets", True, "apps", short_names=("rs",), categories=("all",),
                 subresources=(_SCALE, _status("ReplicaSet"))),
    ResourceType("DaemonSet", "daemonsets", True, "apps", short_names=("ds",), categories=("all",),
                 subresources=(_status("DaemonSet"),)),
    # served (stored, listed, applied) for backups and restores; no controller runs their pods or jobs
    ResourceType("StatefulSet", "statefulsets", True, "apps", short_names=("sts",), categories=("all",),
                 subresources=(_SCALE, _status("StatefulSet"))),
    ResourceType("Job", "jobs", True, "batch", categories=("all",), subresources=(_status("Job"),)),
    ResourceType("CronJob", "cronjobs", True, "batch", short_names=("cj",), categories=("all",),
                 subresources=(_status("CronJob"),)),
    ResourceType("PodDisruptionBudget", "poddisruptionbudgets", True, "policy", short_names=("pdb",),
                 subresources=(_status("PodDisruptionBudget"),)),
    ResourceType("NetworkPolicy", "networkpolicies", True, "networking.k8s.io", short_names=("netpol",)),
    ResourceType("Ingress", "ingresses", True, "networking.k8s.io", short_names=("ing",),
                 subresources=(_status("Ingress"),)),
    ResourceType("HorizontalPodAutoscaler", "horizontalpodautoscalers", True, "autoscaling", "v2",
                 short_names=("hpa",), categories=("all",),
                 subresources=(_status("HorizontalPodAutoscaler"),)),
    # served for `kubectl autoscale`, stored as v2 (see conversions.py)
    ResourceType("HorizontalPodAutoscaler", "horizontalpodautoscalers", True, "autoscaling", "v1",
                 short_names=("hpa",), categories=("all",),
                 subresources=(_status("HorizontalPodAutoscaler"),)),
    ResourceType("EndpointSlice", "endpointslices", True, "discovery.k8s.io"),
    ResourceType("PodMetrics", "pods", True, "metrics.k8s.io", "v1beta1", verbs=READ_VERBS),
    ResourceType("NodeMetrics", "nodes", False, "metrics.k8s.io", "v1beta1", verbs=READ_VERBS),
)


class Registry:
    """Lookup of resource types by path (group, version, plural) and by kind."""

    def __init__(self, types: Iterable[ResourceType] = RESOURCES):
        self.types = tuple(types)
        self._by_key = {t.key: t for t in self.types}
        self._by_kind: dict[tuple[str, str], ResourceType] = {}
        for t in self.types:  # the first version registered is the stored (and preferred) one
            self._by_kind.setdefault((t.group, t.kind), t)

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_key.get((group, version, plural))

    def kind(self, kind: str, group: str = "") -> ResourceType:
        return self._by_kind[(group, kind)]

    def storage(self, rt: ResourceType) -> ResourceType:
        """The version objects of this resource are stored in (itself, except for extra served versions)."""
        return self._by_kind[(rt.group, rt.kind)]

    def group_versions(self) -> dict[str, list[str]]:
        """Group name -> served versions, in registry order (the first is preferred)."""
        groups: dict[str, list[str]] = {}
        for t in self.types:
            versions = groups.setdefault(t.group, [])
            if t.version not in versions:
                versions.append(t.version)
        return groups

    def serves(self, group: str, version: str) -> bool:
        return version in self.group_versions().get(group, [])

    # --- discovery documents -------------------------------------------------------------

    def api_versions(self, server: str) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}],
        }

    def api_group(self, name: str) -> dict[str, Any]:
        versions = self.group_versions()[name]
        listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"name": name, "versions": listed, "preferredVersion": listed[0]}

    def api_group_list(self) -> dict[str, Any]:
        groups = [self.api_group(g) for g in self.group_versions() if g]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def api_resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        for t in self.types:
            if t.group == group and t.version == version:
                resources.extend(t.discovery_entries())
        group_version = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
                "resources": resources}
