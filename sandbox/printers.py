"""Column sets and row functions per kind, after the API server's internalversion printers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from .selectors import selector_string
from .util import age, dig, parse_time

Row = list[Any]
Column = tuple[str, str, int, str]


NAME_DESCRIPTION = ("Name must be unique within a namespace. Is required when creating resources, although some "
                    "resources may allow a client to request the generation of an appropriate name "
                    "automatically. Name is primarily intended for creation idempotence and configuration "
                    "definition. Cannot be updated.")
AGE_DESCRIPTION = ("CreationTimestamp is a timestamp representing the server time when this object was created. "
                   "It is not guaranteed to be set in happens-before order across separate operations.")


def _c(name: str, priority: int = 0, type_: str = "string") -> Column:
    description = {"Name": NAME_DESCRIPTION, "Age": AGE_DESCRIPTION}.get(name, "")
    return (name, type_, priority, description)


def _name(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["name"])


def _age(obj: dict[str, Any], now: datetime) -> str:
    return age(obj["metadata"].get("creationTimestamp"), now)


def _none(value: Any) -> Any:
    return "<none>" if value in (None, "", []) else value


def _containers(obj: dict[str, Any]) -> tuple[str, str]:
    containers = dig(obj, "spec", "template", "spec", "containers", default=[])
    return ",".join(c["name"] for c in containers), ",".join(c.get("image", "") for c in containers)


# --- pods --------------------------------------------------------------------------------


def _pod_row(pod: dict[str, Any], now: datetime) -> Row:
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    statuses = status.get("containerStatuses") or []
    restarts, ready, last_restart = 0, 0, None
    has_running = False
    for cs in reversed(statuses):
        restarts += cs.get("restartCount", 0)
        finished = parse_time(dig(cs, "lastState", "terminated", "finishedAt"))
        if finished and (last_restart is None or finished > last_restart):
            last_restart = finished
        state = cs.get("state") or {}
        if dig(state, "waiting", "reason"):
            reason = state["waiting"]["reason"]
        elif dig(state, "terminated", "reason"):
            reason = state["terminated"]["reason"]
        elif "terminated" in state:
            reason = f"ExitCode:{state['terminated'].get('exitCode', 0)}"
        elif cs.get("ready") and "running" in state:
            has_running = True
            ready += 1
    if reason == "Completed" and has_running:
        reason = "Running"
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({age(last_restart.strftime('%Y-%m-%dT%H:%M:%SZ'), now)} ago)"
    total = len(pod["spec"].get("containers") or [])
    gates = pod["spec"].get("readinessGates") or []
    return [_name(pod), f"{ready}/{total}", reason, restarts_text, _age(pod, now),
            _none(status.get("podIP")), _none(pod["spec"].get("nodeName")),
            _none(status.get("nominatedNodeName")), f"0/{len(gates)}" if gates else "<none>"]


POD = ([_c("Name"), _c("Ready"), _c("Status"), _c("Restarts"), _c("Age"), _c("IP", 1), _c("Node", 1),
        _c("Nominated Node", 1), _c("Readiness Gates", 1)], _pod_row)


# --- nodes -------------------------------------------------------------------------------


def _node_row(node: dict[str, Any], now: datetime) -> Row:
    ready = next((c for c in dig(node, "status", "conditions", default=[]) if c["type"] == "Ready"), None)
    status = ["Unknown"] if ready is None else ["Ready" if ready["status"] == "True" else "NotReady"]
    if dig(node, "spec", "unschedulable"):
        status.append("SchedulingDisabled")
    labels = node["metadata"].get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    if labels.get("kubernetes.io/role"):
        roles.append(labels["kubernetes.io/role"])
    info = dig(node, "status", "nodeInfo", default={})
    addresses = {a["type"]: a["address"] for a in dig(node, "status", "addresses", default=[])}
    return [_name(node), ",".join(status), ",".join(roles) or "<none>", _age(node, now),
            info.get("kubeletVersion", ""), _none(addresses.get("InternalIP")), _none(addresses.get("ExternalIP")),
            info.get("osImage", ""), info.get("kernelVersion", ""), info.get("containerRuntimeVersion", "")]


NODE = ([_c("Name"), _c("Status"), _c("Roles"), _c("Age"), _c("Version"), _c("Internal-IP", 1),
         _c("External-IP", 1), _c("OS-Image", 1), _c("Kernel-Version", 1), _c("Container-Runtime", 1)], _node_row)


# --- workloads ---------------------------------------------------------------------------


def _deployment_row(dep: dict[str, Any], now: datetime) -> Row:
    st = dep.get("status") or {}
    containers, images = _containers(dep)
    return [_name(dep), f"{st.get('readyReplicas', 0)}/{dep['spec'].get('replicas', 0)}",
            st.get("updatedReplicas", 0), st.get("availableReplicas", 0), _age(dep, now), containers, images,
            _none(selector_string(dep["spec"].get("selector")))]


DEPLOYMENT = ([_c("Name"), _c("Ready"), _c("Up-to-date", type_="integer"), _c("Available", type_="integer"),
               _c("Age"), _c("Containers", 1), _c("Images", 1), _c("Selector", 1)], _deployment_row)


def _replica_set_row(rs: dict[str, Any], now: datetime) -> Row:
    st = rs.get("status") or {}
    containers, images = _containers(rs)
    return [_name(rs), rs["spec"].get("replicas", 0), st.get("replicas", 0), st.get("readyReplicas", 0),
            _age(rs, now), containers, images, _none(selector_string(rs["spec"].get("selector")))]


REPLICA_SET = ([_c("Name"), _c("Desired", type_="integer"), _c("Current", type_="integer"),
                _c("Ready", type_="integer"), _c("Age"), _c("Containers", 1), _c("Images", 1),
                _c("Selector", 1)], _replica_set_row)


def _daemon_set_row(ds: dict[str, Any], now: datetime) -> Row:
    st = ds.get("status") or {}
    containers, images = _containers(ds)
    node_selector = dig(ds, "spec", "template", "spec", "nodeSelector", default={})
    return [_name(ds), st.get("desiredNumberScheduled", 0), st.get("currentNumberScheduled", 0),
            st.get("numberReady", 0), st.get("updatedNumberScheduled", 0), st.get("numberAvailable", 0),
            ",".join(f"{k}={v}" for k, v in sorted(node_selector.items())) or "<none>", _age(ds, now),
            containers, images, _none(selector_string(ds["spec"].get("selector")))]


DAEMON_SET = ([_c("Name"), _c("Desired", type_="integer"), _c("Current", type_="integer"),
               _c("Ready", type_="integer"), _c("Up-to-date", type_="integer"), _c("Available", type_="integer"),
               _c("Node Selector"), _c("Age"), _c("Containers", 1), _c("Images", 1), _c("Selector", 1)],
              _daemon_set_row)


# --- networking and config ---------------------------------------------------------------


def _ports(service: dict[str, Any]) -> str:
    out = []
    for p in dig(service, "spec", "ports", default=[]):
        node_port = f":{p['nodePort']}" if p.get("nodePort") else ""
        out.append(f"{p['port']}{node_port}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _service_row(svc: dict[str, Any], now: datetime) -> Row:
    spec = svc["spec"]
    external = "<none>"
    if spec.get("type") == "LoadBalancer":
        ingress = dig(svc, "status", "loadBalancer", "ingress", default=[])
        external = ",".join(i.get("hostname") or i.get("ip", "") for i in ingress) or "<pending>"
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    return [_name(svc), spec.get("type", "ClusterIP"), _none(spec.get("clusterIP")), external, _ports(svc),
            _age(svc, now), _none(selector)]


SERVICE = ([_c("Name"), _c("Type"), _c("Cluster-IP"), _c("External-IP"), _c("Port(s)"), _c("Age"),
            _c("Selector", 1)], _service_row)


def _ingress_row(ing: dict[str, Any], now: datetime) -> Row:
    rules = dig(ing, "spec", "rules", default=[])
    hosts = ",".join(r.get("host", "*") for r in rules) or "*"
    lb = dig(ing, "status", "loadBalancer", "ingress", default=[])
    address = ",".join(i.get("hostname") or i.get("ip", "") for i in lb)
    ports = "80, 443" if dig(ing, "spec", "tls") else "80"
    return [_name(ing), _none(dig(ing, "spec", "ingressClassName")), hosts, address, ports, _age(ing, now)]


INGRESS = ([_c("Name"), _c("Class"), _c("Hosts"), _c("Address"), _c("Ports"), _c("Age")], _ingress_row)


def _network_policy_row(np: dict[str, Any], now: datetime) -> Row:
    return [_name(np), _none(selector_string(dig(np, "spec", "podSelector"))), _age(np, now)]


NETWORK_POLICY = ([_c("Name"), _c("Pod-Selector"), _c("Age")], _network_policy_row)


def _config_map_row(cm: dict[str, Any], now: datetime) -> Row:
    return [_name(cm), len(cm.get("data") or {}) + len(cm.get("binaryData") or {}), _age(cm, now)]


def _secret_row(secret: dict[str, Any], now: datetime) -> Row:
    return [_name(secret), secret.get("type", "Opaque"), len(secret.get("data") or {}), _age(secret, now)]


def _namespace_row(ns: dict[str, Any], now: datetime) -> Row:
    return [_name(ns), dig(ns, "status", "phase", default="Active"), _age(ns, now)]


ACCESS = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}


def _pvc_row(pvc: dict[str, Any], now: datetime) -> Row:
    spec, st = pvc["spec"], pvc.get("status") or {}
    modes = ",".join(ACCESS.get(m, m) for m in st.get("accessModes") or [])
    return [_name(pvc), st.get("phase", "Pending"), spec.get("volumeName", ""),
            dig(st, "capacity", "storage", default=""), modes, spec.get("storageClassName", ""),
            _none(spec.get("volumeAttributesClassName")), _age(pvc, now), spec.get("volumeMode", "Filesystem")]


def _endpoints_row(ep: dict[str, Any], now: datetime) -> Row:
    pairs = [f"{a['ip']}:{p['port']}" for s in ep.get("subsets") or [] for a in s.get("addresses") or []
             for p in s.get("ports") or []]
    text = ",".join(pairs[:3]) + (f" + {len(pairs) - 3} more..." if len(pairs) > 3 else "")
    return [_name(ep), _none(text), _age(ep, now)]


def _endpoint_slice_row(es: dict[str, Any], now: datetime) -> Row:
    ports = ",".join(str(p.get("port")) for p in es.get("ports") or []) or "<unset>"
    addresses = [a for e in es.get("endpoints") or [] for a in e.get("addresses") or []]
    text = ",".join(addresses[:3]) + (f" + {len(addresses) - 3} more..." if len(addresses) > 3 else "")
    return [_name(es), es.get("addressType", ""), ports, text or "<unset>", _age(es, now)]


# --- policy, autoscaling, events ---------------------------------------------------------


def _pdb_row(pdb: dict[str, Any], now: datetime) -> Row:
    spec = pdb["spec"]
    na = "N/A"
    return [_name(pdb), str(spec["minAvailable"]) if spec.get("minAvailable") is not None else na,
            str(spec["maxUnavailable"]) if spec.get("maxUnavailable") is not None else na,
            dig(pdb, "status", "disruptionsAllowed", default=0), _age(pdb, now)]


def _hpa_targets(hpa: dict[str, Any]) -> str:
    current = dig(hpa, "status", "currentMetrics", default=[])
    parts = []
    for i, metric in enumerate(dig(hpa, "spec", "metrics", default=[])):
        if metric.get("type") != "Resource":
            parts.append("<unknown>")
            continue
        resource = metric["resource"]
        have = current[i]["resource"]["current"] if i < len(current) and current[i].get("resource") else {}
        if resource["target"].get("averageValue"):
            parts.append(f"{have.get('averageValue', '<unknown>')}/{resource['target']['averageValue']}")
            continue
        now_text = f"{have['averageUtilization']}%" if "averageUtilization" in have else "<unknown>"
        target = resource["target"].get("averageUtilization")
        parts.append(f"{resource['name']}: {now_text}/{f'{target}%' if target is not None else '<auto>'}")
    if len(parts) > 2:
        return f"{', '.join(parts[:2])} + {len(parts) - 2} more..."
    return ", ".join(parts) or "<none>"


def _hpa_row(hpa: dict[str, Any], now: datetime) -> Row:
    ref = hpa["spec"].get("scaleTargetRef") or {}
    minimum = hpa["spec"].get("minReplicas")
    return [_name(hpa), f"{ref.get('kind')}/{ref.get('name')}", _hpa_targets(hpa),
            "<unset>" if minimum is None else minimum, hpa["spec"]["maxReplicas"],
            dig(hpa, "status", "currentReplicas", default=0), _age(hpa, now)]


def _event_row(ev: dict[str, Any], now: datetime) -> Row:
    first = age(ev.get("firstTimestamp") or ev.get("eventTime"), now)
    last = age(ev["lastTimestamp"], now) if ev.get("lastTimestamp") else first
    count = ev.get("count", 1)
    if count > 1:
        last = f"{last} (x{count} over {first})"
    inv = ev.get("involvedObject") or {}
    source = ev.get("source") or {}
    source_text = ", ".join(x for x in (source.get("component"), source.get("host")) if x)
    return [last, ev.get("type", ""), ev.get("reason", ""), f"{inv.get('kind', '').lower()}/{inv.get('name', '')}",
            inv.get("fieldPath", ""), source_text, (ev.get("message") or "").strip(), first, count, _name(ev)]


def _generic_row(obj: dict[str, Any], now: datetime) -> Row:
    return [_name(obj), _age(obj, now)]


GENERIC = ([_c("Name"), _c("Age")], _generic_row)

PRINTERS: dict[str, tuple[list[Column], Callable[[dict[str, Any], datetime], Row]]] = {
    "Pod": POD,
    "Node": NODE,
    "Deployment": DEPLOYMENT,
    "ReplicaSet": REPLICA_SET,
    "DaemonSet": DAEMON_SET,
    "Service": SERVICE,
    "Ingress": INGRESS,
    "NetworkPolicy": NETWORK_POLICY,
    "ConfigMap": ([_c("Name"), _c("Data", type_="integer"), _c("Age")], _config_map_row),
    "Secret": ([_c("Name"), _c("Type"), _c("Data", type_="integer"), _c("Age")], _secret_row),
    "Namespace": ([_c("Name"), _c("Status"), _c("Age")], _namespace_row),
    "PersistentVolumeClaim": ([_c("Name"), _c("Status"), _c("Volume"), _c("Capacity"), _c("Access Modes"),
                               _c("StorageClass"), _c("VolumeAttributesClass"), _c("Age"), _c("VolumeMode", 1)],
                              _pvc_row),
    "Endpoints": ([_c("Name"), _c("Endpoints"), _c("Age")], _endpoints_row),
    "EndpointSlice": ([_c("Name"), _c("AddressType"), _c("Ports"), _c("Endpoints"), _c("Age")],
                      _endpoint_slice_row),
    "PodDisruptionBudget": ([_c("Name"), _c("Min Available"), _c("Max Unavailable"),
                             _c("Allowed Disruptions", type_="integer"), _c("Age")], _pdb_row),
    "HorizontalPodAutoscaler": ([_c("Name"), _c("Reference"), _c("Targets"), _c("MinPods", type_="integer"),
                                 _c("MaxPods", type_="integer"), _c("Replicas", type_="integer"), _c("Age")],
                                _hpa_row),
    "Event": ([_c("Last Seen"), _c("Type"), _c("Reason"), _c("Object"), _c("Subobject", 1), _c("Source", 1),
               _c("Message"), _c("First Seen", 1), _c("Count", 1, "integer"), _c("Name", 1)], _event_row),
}
