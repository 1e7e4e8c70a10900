"""The DaemonSet controller: one pod per matching node, rolled when the template changes.

Its pods skip the scheduler (the controller names the node, as the real one does through node
affinity) but count against the node's allocatable like any other. Split from `workloads.py`,
whose helpers it shares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import pods as podlib
from .util import dig, owner_ref, semantic, template_hash
from .workloads import owned_alive, unique_pod_name

if TYPE_CHECKING:
    from .controllers import Controllers


def reconcile_daemon_set(ctl: Controllers, namespace: str, name: str) -> None:
    ds = ctl.store.get(ctl.rt("DaemonSet"), namespace, name)
    if ds is None:
        return
    nodes = {n["metadata"]["name"]: n for n in ctl.store.list(ctl.rt("Node"))}
    selector = dig(ds, "spec", "template", "spec", "nodeSelector", default={})
    wanted = {n for n, node in nodes.items()
              if all(dig(node, "metadata", "labels", k) == v for k, v in selector.items())}
    revision_hash = template_hash(semantic(ds["spec"]["template"]))
    by_node: dict[str, list[dict[str, Any]]] = {}
    for pod in owned_alive(ctl, ds, "Pod"):
        outdated = dig(pod, "metadata", "labels", "controller-revision-hash") != revision_hash
        if outdated or pod["spec"].get("nodeName") not in wanted or pod["spec"].get("nodeName") in by_node:
            ctl.delete_pod(pod)  # a template change rolls every node's pod; strays and doubles go
            ctl.recorder.record(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}",
                                "daemonset")
        else:
            by_node[pod["spec"]["nodeName"]] = [pod]
    ref = owner_ref(ds, "apps/v1", "DaemonSet")
    labels = {"controller-revision-hash": revision_hash,
              "pod-template-generation": str(ds["metadata"].get("generation", 1))}
    for node_name in sorted(wanted - set(by_node)):
        pod = podlib.from_template(ds["spec"]["template"], unique_pod_name(ctl, namespace, name),
                                   namespace, ref, labels)
        pod["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}}}
        ctl.create_pod(pod, node=nodes[node_name])
        ctl.recorder.record(ds, "Normal", "SuccessfulCreate",
                            f"Created pod: {pod['metadata']['name']}", "daemonset")
    _update_ds_status(ctl, namespace, name, len(wanted))


def _update_ds_status(ctl: Controllers, namespace: str, name: str, desired: int) -> None:
    ds = ctl.store.get(ctl.rt("DaemonSet"), namespace, name)
    if ds is None:
        return
    pods = owned_alive(ctl, ds, "Pod")
    ready = sum(1 for p in pods if podlib.pod_ready(p))
    status: dict[str, Any] = {"currentNumberScheduled": len(pods), "desiredNumberScheduled": desired,
                              "numberMisscheduled": 0, "numberReady": ready,
                              "observedGeneration": ds["metadata"].get("generation", 1),
                              "updatedNumberScheduled": len(pods)}
    if ready:
        status["numberAvailable"] = ready
    if len(pods) - ready:
        status["numberUnavailable"] = len(pods) - ready
    if ds.get("status") != status:
        ctl.store.update(ctl.rt("DaemonSet"), {**ds, "status": status})
