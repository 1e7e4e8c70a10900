"""Fault scenarios layered on the seeded world, for demos and fire drills.

Each scenario changes the cluster the way the fault would have left it a few minutes ago:
the statuses, events, metrics and logs an engineer would find while investigating. A scenario that
also shows in the services' own metrics turns the stand-ins' knobs (`TRAFFIC`, `apply_traffic`), so a
Prometheus scraping them fires the shipped alert as it would in production.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .cluster import Cluster
from .store import clone
from .util import rfc3339

if TYPE_CHECKING:
    from .probe_targets import Knobs


def _pods(cluster: Cluster, namespace: str, app: str) -> list[dict[str, Any]]:
    pods = cluster.store.list(cluster.rt("Pod"), namespace)
    return sorted((p for p in pods if p["metadata"].get("labels", {}).get("app") == app),
                  key=lambda p: p["metadata"]["name"])


def crashloop(cluster: Cluster) -> None:
    """One document-service pod OOMKilled seven times and now in CrashLoopBackOff."""
    store, rt = cluster.store, cluster.rt("Pod")
    pod = clone(_pods(cluster, "collaboration", "document-service")[0])
    now = store.now()
    name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    for cs in pod["status"]["containerStatuses"]:
        cs.update(ready=False, started=False, restartCount=7)
        cs["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message":
                                   f"back-off 5m0s restarting failed container={cs['name']} "
                                   f"pod={name}_collaboration({uid})"}}
        cs["lastState"] = {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                          "startedAt": rfc3339(now - timedelta(minutes=6, seconds=41)),
                                          "finishedAt": rfc3339(now - timedelta(minutes=2, seconds=9)),
                                          "containerID": cs["containerID"]}}
    for cond in pod["status"]["conditions"]:
        if cond["type"] in ("Ready", "ContainersReady"):
            cond.update(status="False", reason="ContainersNotReady", lastTransitionTime=rfc3339(now),
                        message="containers with unready status: [document-service]")
    updated = store.update(rt, pod)
    host = pod["spec"]["nodeName"]
    where = "spec.containers{document-service}"
    cluster.recorder.record(updated, "Warning", "BackOff",
                            f"Back-off restarting failed container document-service in pod {name}_collaboration({uid})",
                            "kubelet", host=host, field_path=where, count=31, first_seen=timedelta(minutes=38))
    cluster.recorder.record(updated, "Normal", "Pulled",
                            'Container image "ghcr.io/candlefish/document-service:3.8.1" already present on machine',
                            "kubelet", host=host, field_path=where, count=7, first_seen=timedelta(minutes=41))
    cluster.settle()


def memory_pressure(cluster: Cluster) -> None:
    """graphql-api pods running at ~94% of their memory limit; readiness probes start timing out."""
    cluster.metrics.memory_pressure[("collaboration", "graphql-api")] = 0.94
    for pod in _pods(cluster, "collaboration", "graphql-api"):
        ip = pod["status"].get("podIP", "")
        cluster.recorder.record(
            pod, "Warning", "Unhealthy",
            f'Readiness probe failed: Get "http://{ip}:4000/ready": context deadline exceeded '
            "(Client.Timeout exceeded while awaiting headers)",
            "kubelet", host=pod["spec"].get("nodeName"), field_path="spec.containers{graphql-api}",
            count=9, first_seen=timedelta(minutes=12))
    cluster.settle()


def node_not_ready(cluster: Cluster, node_name: str = "ip-10-0-3-13.ec2.internal") -> None:
    """The kubelet on ip-10-0-3-13 stopped reporting: NotReady, unreachable taints, its pods unready."""
    store, rt = cluster.store, cluster.rt("Node")
    node = clone(store.require(rt, "", node_name))
    since = rfc3339(store.now() - timedelta(minutes=4, seconds=20))
    for cond in node["status"]["conditions"]:
        cond.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.",
                    lastTransitionTime=since)
    node["spec"]["taints"] = [
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": since},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": since},
    ]
    updated = store.update(rt, node)
    cluster.recorder.record(updated, "Normal", "NodeNotReady", f"Node {node_name} status is now: NodeNotReady",
                            "node", first_seen=timedelta(minutes=4, seconds=20))
    cluster.settle()


def db_pool_exhausted(cluster: Cluster) -> None:
    """One graphql-api pod's database pool is used up (20 of 20 active, requests queueing); the others are fine.

    Scraping the service through its load balancer lands on any one pod, so this is the fault that only a
    per-pod scrape (`/cf metrics graphql-api --per-pod`) is sure to show.
    """
    pod = _pods(cluster, "collaboration", "graphql-api")[-1]
    cluster.pod_http.exhausted_pools.add(pod["metadata"]["name"])
    cluster.recorder.record(
        pod, "Warning", "Unhealthy",
        f'Readiness probe failed: Get "http://{pod["status"].get("podIP", "")}:4000/ready": context deadline '
        "exceeded (Client.Timeout exceeded while awaiting headers)",
        "kubelet", host=pod["spec"].get("nodeName"), field_path="spec.containers{graphql-api}",
        count=4, first_seen=timedelta(minutes=7))
    cluster.settle()


SCENARIOS: dict[str, Callable[[Cluster], None]] = {
    "none": lambda cluster: None,
    "crashloop": crashloop,
    "memory-pressure": memory_pressure,
    "node-not-ready": node_not_ready,
    "db-pool-exhausted": db_pool_exhausted,
}


def db_pool_exhausted_traffic(knobs: Knobs) -> None:
    """What the services' exporters report meanwhile: the requests that land on the pod with no free
    connection queue for one, and many of those time out as 503 — about 11 % of graphql-api's answers are
    5xx and its p95 is 3.4 s, over the runbook's 5 % and 2 s (alerts GraphQLHighErrorRate and
    GraphQLHighLatency in deploy/prometheus/rules.yml)."""
    knobs.error_rate = 0.11
    knobs.latency_p95_seconds = 3.4


# A scenario's effect on the stand-ins' metrics (sandbox.probe_targets), where it has one: what a Prometheus
# scraping them sees, so the shipped rules fire as they would in production.
TRAFFIC: dict[str, Callable[[Knobs], None]] = {
    "db-pool-exhausted": db_pool_exhausted_traffic,
}


def apply_traffic(knobs: Knobs, name: str | None) -> bool:
    """Turn the knobs as scenario `name` would; False when it leaves the metrics as they are."""
    turn = TRAFFIC.get(name or "none")
    if turn is None:
        return False
    turn(knobs)
    return True


def apply_scenario(cluster: Cluster, name: str | None) -> None:
    if name is None:
        return
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; valid scenarios: {', '.join(sorted(SCENARIOS))}")
    SCENARIOS[name](cluster)
