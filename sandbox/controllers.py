"""The controller manager: runs every controller to a fixed point after each API write.

The store queues every change in `store.dirty`. `Controllers.run()` drains that queue in
passes: each pass maps the changes to work items (this Deployment, that ReplicaSet, the
budgets of a namespace, ...), deduplicated, and runs them; their writes feed the next pass.
Because every controller writes only when something differs, the passes end. No sleeps: when
an API call returns, the cluster has settled as far as it can without time passing. What takes
time goes on `timers`: with `start_seconds` > 0 a bound pod's containers start that much later
(a `("start", ...)` item), and the rollout waits for them, so `kubectl rollout status` waits too.
With 0 they start in the same write, and a rollout is over when the API call returns.

Also here: binding pods where the scheduler (`scheduling.py`) places them and retrying the
pending ones when room appears (a pod deleted, a node changed), the garbage collector
(ownerReferences cascade) and node health (a NotReady node's pods turn unready).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from . import daemonsets, workloads
from . import pods as podlib
from .autoscaling import reconcile_autoscalers
from .disruption import reconcile_budgets
from .endpoints import reconcile_endpoints
from .events import Recorder
from .metrics import Metrics
from .resources import ResourceType
from .scheduling import Scheduler
from .store import Change, Store, clone
from .timers import Timers, Work
from .util import controller_ref, rfc3339

MAX_PASSES = 200


class Controllers:
    def __init__(self, store: Store, recorder: Recorder, metrics: Metrics, start_seconds: float = 0.0):
        self.store = store
        self.recorder = recorder
        self.metrics = metrics
        self.start_seconds = start_seconds
        self.timers = Timers()
        self.scheduler = Scheduler(store)
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
                self.handle(item)
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
            if deleted and change.obj["spec"].get("nodeName"):
                work[("pending",)] = None  # its requests are free now
        if kind == "Node":
            work[("node", name)] = None
            work[("pending",)] = None
        if kind in ("PodDisruptionBudget",) and not deleted:
            work[("pdb", ns)] = None
        if kind == "HorizontalPodAutoscaler" and not deleted:
            work[("hpa", ns)] = None

    def handle(self, item: Work) -> None:
        what = item[0]
        if what == "Deployment":
            workloads.reconcile_deployment(self, item[1], item[2])
        elif what == "ReplicaSet":
            workloads.reconcile_replica_set(self, item[1], item[2])
        elif what == "DaemonSet":
            daemonsets.reconcile_daemon_set(self, item[1], item[2])
        elif what == "schedule":
            self._schedule_existing(item[1], item[2], retry=False)
        elif what == "pending":
            self._retry_pending()
        elif what == "start":
            self._start_containers(item[1], item[2], item[3])
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

    def create_pod(self, pod: dict[str, Any], node: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create a controller's pod bound where the scheduler places it (or Pending if nothing fits).

        `node` skips the scheduler, as the DaemonSet controller's pods do.
        """
        podlib.prepare(pod, self.store)
        why = ""
        if node is None:
            node, why = self.scheduler.place(pod)
        if node is None:
            podlib.unschedulable(pod, why, self.store)
            created = self.store.create(self.rt("Pod"), pod)
            self.recorder.record(created, "Warning", "FailedScheduling", why, "scheduler")
            return created
        return self._bind(pod, node, self.store.create)

    def _bind(self, pod: dict[str, Any], node: dict[str, Any],
              write: Callable[[ResourceType, dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Bind `pod` to `node` and start its containers now, or after `start_seconds`."""
        md, host = pod["metadata"], node["metadata"]["name"]
        if self.start_seconds <= 0:
            podlib.start(pod, node, self.store, self.ip_pool)
        else:
            podlib.bind(pod, node, self.store)
        stored: dict[str, Any] = write(self.rt("Pod"), pod)
        self.recorder.record(stored, "Normal", "Scheduled",
                             f"Successfully assigned {md['namespace']}/{md['name']} to {host}", "scheduler")
        if self.start_seconds <= 0:
            self._record_start(stored, host)
        else:
            due = self.store.now() + timedelta(seconds=self.start_seconds)
            self.timers.at(due, ("start", md["namespace"], md["name"], stored["metadata"]["uid"]))
        return stored

    def _record_start(self, pod: dict[str, Any], host: str) -> None:
        for c in pod["spec"].get("containers") or []:
            where = f"spec.containers{{{c['name']}}}"
            for reason, message in (("Pulled", f'Container image "{c["image"]}" already present on machine'),
                                    ("Created", f"Created container: {c['name']}"),
                                    ("Started", f"Started container {c['name']}")):
                self.recorder.record(pod, "Normal", reason, message, "kubelet", host=host, field_path=where)

    def _start_containers(self, namespace: str, name: str, uid: str) -> None:
        """The kubelet's report, `start_seconds` after the bind: the containers run."""
        pod = self.store.get(self.rt("Pod"), namespace, name)
        if pod is None or pod["metadata"]["uid"] != uid or not podlib.creating(pod):
            return
        node = self.store.get(self.rt("Node"), "", pod["spec"].get("nodeName", ""))
        if node is None:
            return
        updated = clone(pod)
        podlib.start(updated, node, self.store, self.ip_pool)
        self._record_start(self.store.update(self.rt("Pod"), updated), node["metadata"]["name"])

    def delete_pod(self, pod: dict[str, Any]) -> None:
        md = pod["metadata"]
        for c in pod["spec"].get("containers") or []:
            self.recorder.record(pod, "Normal", "Killing", f"Stopping container {c['name']}", "kubelet",
                                 host=pod["spec"].get("nodeName"), field_path=f"spec.containers{{{c['name']}}}")
        self.store.delete(self.rt("Pod"), md["namespace"], md["name"])
        if not pod["spec"].get("hostNetwork"):
            self.ip_pool.release((pod.get("status") or {}).get("podIP"))

    def _schedule_existing(self, namespace: str, name: str, retry: bool) -> None:
        """Try to place a pending pod. A failure is a FailedScheduling event when the message is new or
        this is a retry after room may have appeared (the event's count grows, as the real one's does)."""
        pod = self.store.get(self.rt("Pod"), namespace, name)
        if pod is None or pod["spec"].get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            return
        node, why = self.scheduler.place(pod)
        if node is not None:
            self._bind(clone(pod), node, self.store.update)
            return
        before = podlib.scheduling_message(pod)
        if before != why:
            updated = clone(pod)
            podlib.unschedulable(updated, why, self.store)
            pod = self.store.update(self.rt("Pod"), updated)
        if retry or before != why:
            self.recorder.record(pod, "Warning", "FailedScheduling", why, "scheduler")

    def _retry_pending(self) -> None:
        """Room may have appeared: try the pending pods again, oldest first, as the scheduling queue does."""
        pending = [p for p in self.store.list(self.rt("Pod")) if not p["spec"].get("nodeName")]
        pending.sort(key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["namespace"],
                                    p["metadata"]["name"]))
        for pod in pending:
            self._schedule_existing(pod["metadata"]["namespace"], pod["metadata"]["name"], retry=True)

    def _node_changed(self, name: str) -> None:
        """Node health feeds pod readiness; a new node needs DS pods (pending pods are retried apart)."""
        node = self.store.get(self.rt("Node"), "", name)
        pods = self.store.list(self.rt("Pod"))
        if node is None:  # the pod garbage collector: pods bound to a deleted node go
            for pod in pods:
                if pod["spec"].get("nodeName") == name:
                    self.delete_pod(pod)
        else:
            ready, now = podlib.node_ready(node), rfc3339(self.store.now())
            for pod in pods:
                if pod["spec"].get("nodeName") == name and podlib.pod_ready(pod) != ready:
                    if ready and _crashing(pod):  # also those whose containers are still being created
                        continue
                    updated = clone(pod)
                    podlib.set_ready(updated, ready, now)
                    self.store.update(self.rt("Pod"), updated)
        for ds in self.store.list(self.rt("DaemonSet")):
            daemonsets.reconcile_daemon_set(self, ds["metadata"]["namespace"], ds["metadata"]["name"])

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
