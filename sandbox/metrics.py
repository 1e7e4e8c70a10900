"""metrics.k8s.io: plausible, deterministic CPU and memory usage for running pods and nodes.

Usage is a stable function of the pod's name and the container's requests, so numbers do not
jump between calls; scenarios lift an app's memory towards its limit (memory-pressure).
Like metrics-server, pods that are not running and nodes that are not Ready have no metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .pods import node_ready
from .store import Store
from .util import dig, fnv32a, parse_quantity, rfc3339

NODE_OVERHEAD = (0.22, 1.4 * 2**30)  # kubelet, containerd and the OS: cores, bytes
MI = 2**20


def _fraction(seed: str, low: float, high: float) -> float:
    return low + (fnv32a(seed.encode()) % 10_000) / 10_000 * (high - low)


@dataclass
class Metrics:
    store: Store
    # (namespace, app label) -> fraction of the memory limit in use (scenarios set this)
    memory_pressure: dict[tuple[str, str], float] = field(default_factory=dict)

    def container_usage(self, pod: dict[str, Any], container: dict[str, Any]) -> tuple[float, float]:
        """(cores, bytes) for one container."""
        seed = f"{pod['metadata']['name']}/{container['name']}"
        requests = dig(container, "resources", "requests", default={})
        limits = dig(container, "resources", "limits", default={})
        cpu_request = parse_quantity(requests.get("cpu", "50m"))
        mem_request = parse_quantity(requests.get("memory", "64Mi"))
        cpu = cpu_request * _fraction(seed + "/cpu", 0.2, 0.65)
        memory = mem_request * _fraction(seed + "/mem", 0.45, 0.85)
        app = dig(pod, "metadata", "labels", "app", default="")
        pressure = self.memory_pressure.get((pod["metadata"].get("namespace", ""), app))
        if pressure is not None and limits.get("memory"):
            memory = parse_quantity(limits["memory"]) * (pressure + _fraction(seed, -0.02, 0.02))
        return cpu, memory

    def _running(self, pod: dict[str, Any]) -> bool:
        if dig(pod, "status", "phase") != "Running":
            return False
        node = self.store.get(self.store.registry.kind("Node"), "", pod["spec"].get("nodeName", ""))
        return node is not None and node_ready(node)

    def pod_metrics(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        if not self._running(pod):
            return None
        now = self.store.now()
        containers = []
        for c in pod["spec"].get("containers") or []:
            cpu, memory = self.container_usage(pod, c)
            containers.append({"name": c["name"], "usage": _usage(cpu, memory)})
        md = pod["metadata"]
        return {
            "kind": "PodMetrics",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {"name": md["name"], "namespace": md["namespace"], "creationTimestamp": rfc3339(now),
                         "labels": md.get("labels", {})},
            "timestamp": rfc3339(now - timedelta(seconds=11)),
            "window": "15.011s",
            "containers": containers,
        }

    def pod_cpu_utilization(self, pod: dict[str, Any]) -> int | None:
        """Percent of the CPU request in use, as the HPA computes it."""
        if not self._running(pod):
            return None
        used = requested = 0.0
        for c in pod["spec"].get("containers") or []:
            used += self.container_usage(pod, c)[0]
            requested += parse_quantity(dig(c, "resources", "requests", "cpu", default="50m"))
        return round(100 * used / requested) if requested else None

    def node_metrics(self, node: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any] | None:
        if not node_ready(node):
            return None
        cpu, memory = NODE_OVERHEAD
        name = node["metadata"]["name"]
        for pod in pods:
            if pod["spec"].get("nodeName") == name and self._running(pod):
                for c in pod["spec"].get("containers") or []:
                    c_cpu, c_mem = self.container_usage(pod, c)
                    cpu, memory = cpu + c_cpu, memory + c_mem
        now = self.store.now()
        return {
            "kind": "NodeMetrics",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {"name": name, "creationTimestamp": rfc3339(now),
                         "labels": node["metadata"].get("labels", {})},
            "timestamp": rfc3339(now - timedelta(seconds=13)),
            "window": "20.05s",
            "usage": _usage(cpu, memory),
        }


def _usage(cores: float, memory: float) -> dict[str, str]:
    return {"cpu": f"{int(cores * 1e9)}n", "memory": f"{int(memory // 1024)}Ki"}
