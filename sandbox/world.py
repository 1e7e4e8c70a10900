"""Seed the Candlefish cluster, replaying its history so the present looks lived-in.

The world is built in time order on a frozen clock: namespaces and system add-ons months ago,
the collaboration services' first release, the current node group three weeks ago (pending
pods land on it then), each service's latest rollout at a different moment (graphql-api's
within the hour, so `kubectl get events` has something to say), and finally the events
older than the API server's one-hour TTL are dropped. Pods take the cluster's `start_seconds`
to start in the past too (each rollout rolls at that pace on the frozen clock), and every pod
is running by the present. Everything goes through the same defaulting and controllers as API
writes, so ReplicaSets, revisions, pods and statuses are exactly what the controllers would
have made. Same seed (and start_seconds), same cluster.
"""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from . import manifests
from .cluster import Cluster
from .defaults import apply_defaults
from .store import clone
from .util import rfc3339

NODES = [("ip-10-0-1-11.ec2.internal", "10.0.1.11", "us-east-1a"),
         ("ip-10-0-2-12.ec2.internal", "10.0.2.12", "us-east-1b"),
         ("ip-10-0-3-13.ec2.internal", "10.0.3.13", "us-east-1c")]
KUBELET = "v1.32.1-eks-5d632ec"

# when each collaboration service got its current release (before now)
ROLLOUTS = {
    "document-service": timedelta(days=6, hours=3),
    "collaboration-editor": timedelta(days=2, hours=19),
    "websocket-service": timedelta(hours=26, minutes=12),
    "graphql-api": timedelta(minutes=47),
}
LOAD_GENERATOR_AGE = timedelta(hours=2)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class World:
    def __init__(self, cluster: Cluster, now: datetime | None = None):
        self.cluster = cluster
        self.store = cluster.store
        self.now = now or datetime.now(UTC)

    def at(self, ago: timedelta) -> None:
        self.cluster.advance(self.now - ago)  # pods bound before then have started by then

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create like `kubectl apply` would (defaults, controllers), keeping any given status."""
        obj = copy.deepcopy(manifest)
        group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
        rt = self.cluster.rt(obj["kind"], group)
        apply_defaults(obj, self.store)
        created = self.store.create(rt, obj)
        self.cluster.settle()
        return created

    def build(self, extra_pods: int = 0) -> None:
        self.at(timedelta(days=182))
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self._namespace(name)
        for manifest in manifests.system_workloads():
            self.apply(manifest)
        self.at(timedelta(days=118))
        self._namespace("collaboration", {"app.kubernetes.io/part-of": manifests.PART_OF})
        self.at(timedelta(days=97))
        for manifest in manifests.config_and_secrets(_b64):
            self.apply(manifest)
        for name, spec in manifests.SERVICES.items():
            self.apply(manifests.app_deployment(name, spec["tags"][0], f"initial release {spec['tags'][0]}"))
            self.apply(manifests.app_service(name))
        for manifest in manifests.edge_and_policy():
            self.apply(manifest)
        self.at(timedelta(days=21, hours=4))
        for name, ip, zone in NODES:
            self.apply(self._node(name, ip, zone))
        self._replace_pods_older_than(timedelta(days=21, hours=4))
        load_made = False
        for index, (name, ago) in enumerate(sorted(ROLLOUTS.items(), key=lambda item: -item[1])):
            if extra_pods and not load_made and ago < LOAD_GENERATOR_AGE:
                self._load_generator(extra_pods)
                load_made = True
            self.at(ago)
            self._rollout(name, 4117 + 53 * index)
        if extra_pods and not load_made:
            self._load_generator(extra_pods)
        self.cluster.advance(None)
        self._refresh_heartbeats()
        self.cluster.recorder.prune(timedelta(hours=1))
        self.store.dirty.clear()

    def _namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}})
        self.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name}})

    def _load_generator(self, replicas: int) -> None:
        self.at(LOAD_GENERATOR_AGE)
        self.apply(manifests.load_generator(replicas))

    def _rollout(self, name: str, pipeline: int) -> None:
        rt = self.cluster.rt("Deployment", "apps")
        tag = manifests.SERVICES[name]["tags"][1]
        dep = clone(self.store.require(rt, "collaboration", name))
        container = dep["spec"]["template"]["spec"]["containers"][0]
        container["image"] = container["image"].rsplit(":", 1)[0] + f":{tag}"
        dep["metadata"]["annotations"]["kubernetes.io/change-cause"] = (
            f"deploy {name} {tag} (ci pipeline #{pipeline})")
        self.store.update(rt, dep)
        self.cluster.settle()

    def _node(self, name: str, ip: str, zone: str) -> dict[str, Any]:
        rng = self.store.rng
        instance = f"i-0abc{rng.getrandbits(52):013x}"
        now = rfc3339(self.store.now())
        pressure = [("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available")]
        conditions = [{"type": t, "status": "False", "lastHeartbeatTime": now, "lastTransitionTime": now,
                       "reason": r, "message": m} for t, r, m in pressure]
        conditions.append({"type": "Ready", "status": "True", "lastHeartbeatTime": now, "lastTransitionTime": now,
                           "reason": "KubeletReady", "message": "kubelet is posting ready status"})
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {
                "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/instance-type": "m5.xlarge",
                "beta.kubernetes.io/os": "linux", "eks.amazonaws.com/capacityType": "ON_DEMAND",
                "eks.amazonaws.com/nodegroup": "general", "eks.amazonaws.com/nodegroup-image": "ami-0c5b8e2d7f1a3b946",
                "failure-domain.beta.kubernetes.io/region": "us-east-1",
                "failure-domain.beta.kubernetes.io/zone": zone, "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "m5.xlarge", "topology.kubernetes.io/region": "us-east-1",
                "topology.kubernetes.io/zone": zone},
                "annotations": {"alpha.kubernetes.io/provided-node-ip": ip, "node.alpha.kubernetes.io/ttl": "0",
                                "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
            "spec": {"providerID": f"aws:///{zone}/{instance}"},
            "status": {
                "capacity": {"cpu": "4", "ephemeral-storage": "83873772Ki", "hugepages-1Gi": "0",
                             "hugepages-2Mi": "0", "memory": "16181260Ki", "pods": "110"},
                "allocatable": {"cpu": "3920m", "ephemeral-storage": "76224326324", "hugepages-1Gi": "0",
                                "hugepages-2Mi": "0", "memory": "15164428Ki", "pods": "110"},
                "conditions": conditions,
                "addresses": [{"type": "InternalIP", "address": ip}, {"type": "InternalDNS", "address": name},
                              {"type": "Hostname", "address": name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"machineID": f"{rng.getrandbits(128):032x}", "systemUUID": self.store.new_uid(),
                             "bootID": self.store.new_uid(), "kernelVersion": "6.1.129-138.220.amzn2023.x86_64",
                             "osImage": "Amazon Linux 2023.6.20250317", "containerRuntimeVersion": "containerd://1.7.25",
                             "kubeletVersion": KUBELET, "kubeProxyVersion": KUBELET, "operatingSystem": "linux",
                             "architecture": "amd64"},
            },
        }

    def _replace_pods_older_than(self, ago: timedelta) -> None:
        """The node group was replaced: every pod from before it was recreated on the new nodes."""
        cutoff = rfc3339(self.now - ago)
        for pod in self.store.list(self.cluster.rt("Pod")):
            if pod["metadata"]["creationTimestamp"] < cutoff:
                self.cluster.controllers.delete_pod(pod)
        self.cluster.settle()

    def _refresh_heartbeats(self) -> None:
        rt = self.cluster.rt("Node")
        now = rfc3339(self.store.now())
        for node in self.store.list(rt):
            updated = clone(node)
            for cond in updated["status"]["conditions"]:
                cond["lastHeartbeatTime"] = now
            self.store.update(rt, updated)
        self.cluster.settle()
