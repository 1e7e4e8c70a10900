"""A simulated Candlefish Kubernetes cluster served over HTTP.

The sandbox speaks enough of the Kubernetes API for the real `kubectl` and the official
Python client: discovery, CRUD with the three patch formats, watches, server-side tables,
scale/eviction/log subresources and metrics.k8s.io. A small controller manager keeps
Deployments, ReplicaSets, DaemonSets, pods, budgets and autoscaler status true after every
write, synchronously; what takes time (pods starting, the HPA's sync) waits on timers that
the served sandbox's clock runs. The scheduler places pods against the nodes' allocatable cpu
and memory. The world (nodes, namespaces, the collaboration services, their config and
policies) is seeded deterministically, and scenarios inject faults.

Module map: resources (registry, discovery) -> store (objects, versions, watches) ->
api/subresources (semantics) -> server (HTTP); controllers/workloads/scheduling/disruption/
autoscaling keep state true, timers hold what is due later; printing/printers, logs, metrics
produce output; manifests/world/scenarios seed it; sandbox wires it to a port and a clock.
"""

from .sandbox import Sandbox, serve_forever

__all__ = ["Sandbox", "serve_forever"]
