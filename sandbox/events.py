"""core/v1 Events as the controllers and the kubelet would record them.

Repeats of the same (object, reason, message) bump `count` and `lastTimestamp` on the first
event instead of adding new ones, like client-go's event correlator, so `kubectl get events`
reads like a real cluster's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .store import Store
from .util import rfc3339, rfc3339_micro

SOURCES = {
    "kubelet": "kubelet",
    "scheduler": "default-scheduler",
    "deployment": "deployment-controller",
    "replicaset": "replicaset-controller",
    "daemonset": "daemonset-controller",
    "node": "node-controller",
    "hpa": "horizontal-pod-autoscaler",
}


class Recorder:
    def __init__(self, store: Store):
        self.store = store
        self.rt = store.registry.kind("Event")
        self._seen: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._serial = 0

    def record(self, obj: dict[str, Any], type_: str, reason: str, message: str, source: str,
               *, host: str | None = None, field_path: str | None = None, count: int = 1,
               first_seen: timedelta | None = None) -> dict[str, Any]:
        """Record an event about `obj`; `first_seen` backdates the first occurrence (seeding)."""
        md = obj["metadata"]
        key = (md["uid"], reason, message)
        now = self.store.now()
        existing = self._existing(key)
        if existing is not None:
            event = dict(existing)
            event["count"] = existing.get("count", 1) + count
            event["lastTimestamp"] = rfc3339(now)
            return self.store.update(self.rt, event)
        first = now - first_seen if first_seen else now
        namespace = md.get("namespace") or "default"
        self._serial += 1
        involved = {"kind": obj["kind"], "namespace": md.get("namespace", ""), "name": md["name"],
                    "uid": md["uid"], "apiVersion": obj["apiVersion"],
                    "resourceVersion": md.get("resourceVersion", "")}
        if not md.get("namespace"):
            involved.pop("namespace")
        if field_path:
            involved["fieldPath"] = field_path
        component = SOURCES[source]
        event = {
            "metadata": {"name": f"{md['name']}.{int(first.timestamp() * 1e9) + self._serial:x}",
                         "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": {"component": component, **({"host": host} if host else {})},
            "firstTimestamp": rfc3339(first),
            "lastTimestamp": rfc3339(now),
            "eventTime": rfc3339_micro(first),
            "count": count,
            "type": type_,
            "reportingComponent": component,
            "reportingInstance": host or "",
        }
        created = self.store.create(self.rt, event)
        self._seen[key] = (namespace, created["metadata"]["name"])
        return created

    def _existing(self, key: tuple[str, str, str]) -> dict[str, Any] | None:
        where = self._seen.get(key)
        return None if where is None else self.store.get(self.rt, *where)

    def prune(self, older_than: timedelta) -> None:
        """Drop events whose last occurrence is older than the TTL (the API server's is one hour)."""
        cutoff = rfc3339(self.store.now() - older_than)
        for event in self.store.list(self.rt):
            if event["lastTimestamp"] < cutoff:
                self.store.delete(self.rt, event["metadata"]["namespace"], event["metadata"]["name"])
