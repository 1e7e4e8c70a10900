"""The controller manager: runs every controller to a fixed point after each API write.

The store queues every change in `store.dirty`. `Controllers.run()` drains that queue in
passes: each pass maps the changes to work items (this Deployment, that ReplicaSet, the
budgets of a namespace, ...), deduplicated, and runs them; their writes feed the next pass.
Because every controller writes only when something differs, the passes end, usually in
three or four. No timers and no sleeps: when an API call returns, the cluster has settled,
which is what lets `kubectl rollout status` finish at once and drain find the pods gone.

Also here: the scheduler (round-robin over schedulable nodes), the garbage collector
(ownerReferences cascade) and node health (a NotReady node's pods turn unready).
"""

from __future__ import annotations

from typing import Any

from . import pods as podlib
from . import workloads
from .autoscaling import reconcile_autoscalers
from .disruption import reconcile_budgets
from .endpoints import reconcile_endpoints
from .events import Recorder
from .metrics import Metrics
from .resources import ResourceType
from .store import Change, Store, clone
from .util import controller_ref, rfc3339

MAX_PASSES = 200
Work = tuple[str, ...]


class Controllers:
    def __init__(self, store: Store, recorder: Recorder, metrics: Metrics):
        self.store = store
        self.recorder = recorder
        self.metrics = metrics
        self._next_node = 0
        self.ip_pool = podlib.IpPool()
        self._types = {t.kind: store.registry.storage(t) for t in store.registry.types
                       if t.group != "metrics.k8s.io"}

    def rt(self, kind: str) -> ResourceType:
        return self._types[kind]

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        for _ in range(MAX_PASSES):
            if not self.store.dirty:
                return
            batch, self.store.dirty = self.store.dirty, []
            work: dict[Work, None] = {}
            for change in batch:
                self._route(change, work)
            for item in work:
                self._handle(item)
        raise RuntimeError("sandbox controllers did not settle; a controller keeps rewriting an object")

    def _route(self, change: Change, work: dict[Work, None]) -> None:
        kind, md = change.rt.kind, change.obj["metadata"]
        ns, name = md.get("namespace", ""), md["name"]
        deleted = change.type == "DELETED"
        if deleted:
            work[("gc", md["uid"])] = None
            if kind == "Namespace":
                work[("namespace-gc", name)] = None
        if kind in ("Deployment", "ReplicaSet", "DaemonSet") and not deleted:
            work[(kind, ns, name)] = None
        if kind == "Deployment":
            work[("hpa", ns)] = None
        owner = controller_ref(change.obj)
        if kind == "ReplicaSet" and owner and owner["kind"] == "Deployment":
            work[("Deployment", ns, owner["name"])] = None
        if kind in ("Pod", "Service"):
            work[("endpoints", ns)] = None
        if kind == "Pod":
            if owner and owner["kind"] in ("ReplicaSet", "DaemonSet"):
                work[(owner["kind"], ns, owner["name"])] = None
            work[("pdb", ns)] = None
            if not deleted and not change.obj["spec"].get("nodeName"):
                work[("schedule", ns, name)] = None
        if kind == "Node":
            work[("node", name)] = None
        if kind in ("PodDisruptionBudget",) and not deleted:
            work[("pdb", ns)] = None
        if kind == "HorizontalPodAutoscaler" and not deleted:
            work[("hpa", ns)] = None

    def _handle(self, item: Work) -> None:
        what = item[0]
        if what == "Deployment":
            workloads.reconcile_deployment(self, item[1], item[2])
        elif what == "ReplicaSet":
            workloads.reconcile_replica_set(self, item[1], item[2])
        elif what == "DaemonSet":
            workloads.reconcile_daemon_set(self, item[1], item[2])
        elif what == "schedule":
            self._schedule_existing(item[1], item[2])
        elif what == "node":
            self._node_changed(item[1])
        elif what == "pdb":
            reconcile_budgets(self.store, item[1])
        elif what == "endpoints":
            reconcile_endpoints(self.store, item[1])
        elif what == "hpa":
            reconcile_autoscalers(self.store, self.metrics, item[1])
        elif what == "gc":
            self._collect(item[1])
        elif what == "namespace-gc":
            self._empty_namespace(item[1])

    # --- pods and the scheduler ----------------------------------------------------------

    def pick_node(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        nodes = sorted((n for n in self.store.list(self.rt("Node")) if podlib.fits(n, pod["spec"])),
                       key=lambda n: n["metadata"]["name"])
        if not nodes:
            return None
        node = nodes[self._next_node % len(nodes)]
        self._next_node += 1
        return node

    def create_pod(self, pod: dict[str, Any], node: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create a controller's pod already bound and started (or Pending if nothing fits)."""
        podlib.prepare(pod, self.store)
        node = node or self.pick_node(pod)
        if node is None:
            podlib.unschedulable(pod, self._unschedulable_message(), self.store)
            created = self.store.create(self.rt("Pod"), pod)
            self.recorder.record(created, "Warning", "FailedScheduling", self._unschedulable_message(),
                                 "scheduler")
            return created
        podlib.start(pod, node, self.store, self.ip_pool)
        created = self.store.create(self.rt("Pod"), pod)
        self._record_start(created, node)
        return created

    def _record_start(self, pod: dict[str, Any], node: dict[str, Any]) -> None:
        md, host = pod["metadata"], node["metadata"]["name"]
        self.recorder.record(pod, "Normal", "Scheduled",
                             f"Successfully assigned {md['namespace']}/{md['name']} to {host}", "scheduler")
        for c in pod["spec"].get("containers") or []:
            where = f"spec.containers{{{c['name']}}}"
            for reason, message in (("Pulled", f'Container image "{c["image"]}" already present on machine'),
                                    ("Created", f"Created container: {c['name']}"),
                                    ("Started", f"Started container {c['name']}")):
                self.recorder.record(pod, "Normal", reason, message, "kubelet", host=host, field_path=where)

    def _unschedulable_message(self) -> str:
        nodes = self.store.list(self.rt("Node"))
        cordoned = sum(1 for n in nodes if n["spec"].get("unschedulable"))
        not_ready = sum(1 for n in nodes if not podlib.node_ready(n) and not n["spec"].get("unschedulable"))
        parts = []
        if cordoned:
            parts.append(f"{cordoned} node(s) were unschedulable")
        if not_ready:
            parts.append(f"{not_ready} node(s) had untolerated taint {{node.kubernetes.io/unreachable: }}")
        return f"0/{len(nodes)} nodes are available: {', '.join(parts) or 'no nodes available'}."

    def delete_pod(self, pod: dict[str, Any]) -> None:
        md = pod["metadata"]
        for c in pod["spec"].get("containers") or []:
            self.recorder.record(pod, "Normal", "Killing", f"Stopping container {c['name']}", "kubelet",
                                 host=pod["spec"].get("nodeName"), field_path=f"spec.containers{{{c['name']}}}")
        self.store.delete(self.rt("Pod"), md["namespace"], md["name"])
        if not pod["spec"].get("hostNetwork"):
            self.ip_pool.release((pod.get("status") or {}).get("podIP"))

    def _schedule_existing(self, namespace: str, name: str) -> None:
        pod = self.store.get(self.rt("Pod"), namespace, name)
        if pod is None or pod["spec"].get("nodeName"):
            return
        node = self.pick_node(pod)
        if node is None:
            if (pod.get("status") or {}).get("conditions") is None:
                updated = clone(pod)
                podlib.unschedulable(updated, self._unschedulable_message(), self.store)
                self.store.update(self.rt("Pod"), updated)
            return
        updated = clone(pod)
        podlib.start(updated, node, self.store, self.ip_pool)
        self._record_start(self.store.update(self.rt("Pod"), updated), node)

    def _node_changed(self, name: str) -> None:
        """Node health feeds pod readiness; any node change may free pending pods or need DS pods."""
        node = self.store.get(self.rt("Node"), "", name)
        pods = self.store.list(self.rt("Pod"))
        if node is None:  # the pod garbage collector: pods bound to a deleted node go
            for pod in pods:
                if pod["spec"].get("nodeName") == name:
                    self.delete_pod(pod)
            pods = self.store.list(self.rt("Pod"))
        else:
            ready, now = podlib.node_ready(node), rfc3339(self.store.now())
            for pod in pods:
                if pod["spec"].get("nodeName") == name and podlib.pod_ready(pod) != ready:
                    if ready and _crashing(pod):
                        continue
                    updated = clone(pod)
                    podlib.set_ready(updated, ready, now)
                    self.store.update(self.rt("Pod"), updated)
        for pod in pods:
            if not pod["spec"].get("nodeName"):
                self._schedule_existing(pod["metadata"]["namespace"], pod["metadata"]["name"])
        for ds in self.store.list(self.rt("DaemonSet")):
            workloads.reconcile_daemon_set(self, ds["metadata"]["namespace"], ds["metadata"]["name"])

    # --- garbage collection --------------------------------------------------------------

    def _collect(self, uid: str) -> None:
        for rt, obj in self.store.dependents(uid):
            refs = obj["metadata"].get("ownerReferences") or []
            if any(r["uid"] == uid for r in refs):
                md = obj["metadata"]
                if rt.kind == "Pod":
                    self.delete_pod(obj)
                else:
                    self.store.delete(rt, md.get("namespace", ""), md["name"])

    def _empty_namespace(self, namespace: str) -> None:
        for rt in self.store.registry.types:
            if rt.namespaced and rt.group != "metrics.k8s.io":
                for obj in self.store.list(rt, namespace):
                    self.store.delete(rt, namespace, obj["metadata"]["name"])


def _crashing(pod: dict[str, Any]) -> bool:
    return any((s.get("state") or {}).get("waiting") for s in (pod.get("status") or {}).get("containerStatuses") or [])
