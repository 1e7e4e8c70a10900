"""The few validation rules whose absence would let a client break the controllers.

The real API server validates everything; we check what a typo in a demo or a test would
most likely hit (negative replicas, a selector that does not match the template, a pod
without containers) and answer with the real 422 Invalid wording.
"""

from __future__ import annotations

from typing import Any

from .errors import invalid
from .resources import ResourceType
from .selectors import match_label_selector
from .util import dig


def _go_map(labels: dict[str, str]) -> str:
    inner = ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items()))
    return f"map[string]string{{{inner}}}"


def validate(rt: ResourceType, obj: dict[str, Any]) -> None:
    causes: list[tuple[str, str]] = []
    spec = obj.get("spec") or {}
    if rt.kind in ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"):
        replicas = spec.get("replicas", 1)
        if not isinstance(replicas, int) or replicas < 0:
            causes.append(("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0"))
        selector = spec.get("selector")
        labels = dig(spec, "template", "metadata", "labels", default={})
        if not selector:
            causes.append(("spec.selector", "Required value"))
        elif not match_label_selector(selector, labels):
            causes.append(("spec.template.metadata.labels",
                           f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`"))
        _containers(dig(spec, "template", "spec", default={}), "spec.template.spec", causes)
    elif rt.kind == "Pod":
        _containers(spec, "spec", causes)
    elif rt.kind == "HorizontalPodAutoscaler":
        if not spec.get("maxReplicas"):
            causes.append(("spec.maxReplicas", "Required value"))
    if causes:
        raise invalid(rt.kind_group, obj["metadata"].get("name", ""), causes)


def _containers(pod_spec: dict[str, Any], where: str, causes: list[tuple[str, str]]) -> None:
    containers = pod_spec.get("containers") or []
    if not containers:
        causes.append((f"{where}.containers", "Required value"))
    for i, c in enumerate(containers):
        if not c.get("name"):
            causes.append((f"{where}.containers[{i}].name", "Required value"))
        if not c.get("image"):
            causes.append((f"{where}.containers[{i}].image", "Required value"))


def validate_replicas(kind_group: str, name: str, replicas: Any) -> None:
    if not isinstance(replicas, int) or replicas < 0:
        raise invalid(kind_group, name, [("spec.replicas",
                                          f"Invalid value: {replicas}: must be greater than or equal to 0")])
