"""kube-scheduler's side of a pod: which node has room for it, and if none, why not in its words.

A pod fits a node when the node is schedulable (not cordoned, unless the pod tolerates that), every
NoSchedule/NoExecute taint is tolerated, the nodeSelector matches, and the pod's cpu and memory
requests fit in the node's `status.allocatable` minus the requests of the pods already bound there
(NodeResourcesFit). The filters run in kube-scheduler's order and the first that fails names the
node's reason. When no node fits, the message is kube-scheduler 1.32's FitError with the preemption
note after it, reasons counted and sorted as it sorts them:

    0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu. preemption: 0/3 nodes
    are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for
    incoming pod.

(every sandbox pod has priority 0, so preemption never finds a victim). The number of pods per
node (`allocatable.pods`) is not enforced, so `--pods N` seeds stay runnable.

Capacity of the default world (three m5.xlarge nodes, as EKS reports them):

    allocatable per node      cpu 3920m, memory 15164428Ki (14.46 GiB)        x3 = 11760m, 43.4 GiB
    DaemonSets per node       aws-node 25m + kube-proxy 100m = 125m            x3 =   375m
    kube-system Deployments   coredns 2 x 100m/70Mi, metrics-server 100m/70Mi   =   300m, 210Mi
    collaboration             graphql-api 3 x 500m/512Mi, websocket-service 3 x 250m/256Mi,
                              document-service 2 x 250m/768Mi, collaboration-editor 2 x 100m/128Mi
                                                                                = 2950m, 4.0 GiB
    requested in all          3625m of 11760m cpu (31%), 4.2 GiB of 43.4 GiB memory (10%)
                              (1225m, 1075m and 1325m on the three nodes)

CPU is what runs out: 8.1 cores are free, but in per-node remainders of 2695m, 2845m and 2595m,
so 15 more graphql-api pods (500m each) fit, 18 in all. Scaling graphql-api from 3 to 10 fits,
with room for a rolling update's surge (13); at 20, its HPA's maximum, 2 pods stay Pending (the
cluster is smaller than its autoscaler's ceiling, as clusters without a node autoscaler are); at
40, under the bot's limit of 50, 22 do, each with `0/3 nodes are available: 3 Insufficient cpu.
preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.`
The load generator's pods (`--pods N`) ask for 2m and 8Mi each, so 1,500 of them fit beside the apps.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .pods import node_ready, tolerates
from .store import Change, Store
from .util import dig, parse_quantity

UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
DONE_PHASES = ("Succeeded", "Failed")


def pod_requests(spec: dict[str, Any]) -> tuple[int, int]:
    """(millicores, bytes) the scheduler reserves: the containers' sum, or the largest init container's.

    A container with a limit and no request asks for its limit (the API server defaults it so).
    """

    def one(container: dict[str, Any], name: str) -> float:
        resources = container.get("resources") or {}
        value = (resources.get("requests") or {}).get(name, (resources.get("limits") or {}).get(name))
        return parse_quantity(value) if value is not None else 0.0

    def total(name: str) -> float:
        running = sum(one(c, name) for c in spec.get("containers") or [])
        init = max((one(c, name) for c in spec.get("initContainers") or []), default=0.0)
        overhead = (spec.get("overhead") or {}).get(name)
        return max(running, init) + (parse_quantity(overhead) if overhead is not None else 0.0)

    return round(total("cpu") * 1000), round(total("memory"))


class NodeUsage:
    """The requests of the pods bound to each node, kept current from every store write."""

    def __init__(self) -> None:
        self.used: dict[str, list[int]] = {}
        self._requests: dict[str, tuple[int, int]] = {}  # by pod uid: a pod's containers do not change

    def observe(self, change: Change) -> None:
        if change.rt.kind != "Pod":
            return
        if change.old is not None:
            self._count(change.old, -1)
        if change.type != "DELETED":
            self._count(change.obj, 1)
        else:
            self._requests.pop(change.obj["metadata"]["uid"], None)

    def _count(self, pod: dict[str, Any], sign: int) -> None:
        node = pod["spec"].get("nodeName")
        if not node or dig(pod, "status", "phase") in DONE_PHASES:
            return
        uid = pod["metadata"]["uid"]
        if uid not in self._requests:
            self._requests[uid] = pod_requests(pod["spec"])
        cpu, memory = self._requests[uid]
        used = self.used.setdefault(node, [0, 0])
        used[0] += sign * cpu
        used[1] += sign * memory

    def of(self, node_name: str) -> tuple[int, int]:
        cpu, memory = self.used.get(node_name, (0, 0))
        return cpu, memory


def allocatable(node: dict[str, Any]) -> tuple[int, int]:
    alloc = dig(node, "status", "allocatable", default={})
    return (round(parse_quantity(alloc.get("cpu", 0)) * 1000), round(parse_quantity(alloc.get("memory", 0))))


def _taint_text(taint: dict[str, Any]) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"


class Scheduler:
    """Picks a node for a pod: round-robin over the nodes it fits, like spreading, so the seeded world
    keeps one layout; or says, in kube-scheduler's words, why it fits none."""

    def __init__(self, store: Store):
        self.store = store
        self.usage = NodeUsage()
        store.observers.append(self.usage.observe)
        self._next = 0

    def place(self, pod: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """(node, "") for a node with room, or (None, the FailedScheduling message)."""
        nodes = sorted(self.store.list(self.store.registry.kind("Node")), key=lambda n: n["metadata"]["name"])
        need = pod_requests(pod["spec"])
        fitting: list[dict[str, Any]] = []
        failures: list[tuple[list[str], bool]] = []
        for node in nodes:
            reasons, resolvable = self.why_not(node, pod["spec"], need)
            if reasons:
                failures.append((reasons, resolvable))
            else:
                fitting.append(node)
        if fitting:
            node = fitting[self._next % len(fitting)]
            self._next += 1
            return node, ""
        return None, fit_error(len(nodes), failures, pod["spec"])

    def why_not(self, node: dict[str, Any], spec: dict[str, Any], need: tuple[int, int]) -> tuple[list[str], bool]:
        """The first failing filter's reasons (empty: the pod fits), and whether preemption could help."""
        if dig(node, "spec", "unschedulable") and not tolerates(spec, UNSCHEDULABLE_TAINT):
            return ["node(s) were unschedulable"], False
        taints = dig(node, "spec", "taints", default=[])
        for taint in taints:
            if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(spec, taint):
                return [_taint_text(taint)], False
        if not node_ready(node) and not taints and not tolerates(spec, NOT_READY_TAINT):
            return [_taint_text(NOT_READY_TAINT)], False  # the node lifecycle controller's taint, implied
        labels = dig(node, "metadata", "labels", default={})
        if not all(labels.get(k) == v for k, v in (spec.get("nodeSelector") or {}).items()):
            return ["node(s) didn't match Pod's node affinity/selector"], False
        (cpu, memory), (used_cpu, used_memory) = allocatable(node), self.usage.of(node["metadata"]["name"])
        reasons = []
        if need[0] > 0 and need[0] > cpu - used_cpu:
            reasons.append("Insufficient cpu")
        if need[1] > 0 and need[1] > memory - used_memory:
            reasons.append("Insufficient memory")
        return reasons, True


def _histogram(reasons: list[str]) -> str:
    return ", ".join(sorted(f"{count} {reason}" for reason, count in Counter(reasons).items()))


def fit_error(total: int, failures: list[tuple[list[str], bool]], spec: dict[str, Any]) -> str:
    """kube-scheduler's FitError text, with DefaultPreemption's verdict after it."""
    if total == 0:
        return "no nodes available to schedule pods"
    head = f"0/{total} nodes are available"
    message = f"{head}: {_histogram([r for reasons, _ in failures for r in reasons])}."
    if spec.get("preemptionPolicy") == "Never":
        return f"{message} preemption: not eligible due to preemptionPolicy=Never."
    verdicts = [NO_VICTIMS if resolvable else NOT_HELPFUL for _, resolvable in failures]
    return f"{message} preemption: {head}: {_histogram(verdicts)}."
