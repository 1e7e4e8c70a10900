"""Decode the Kubernetes protobuf request bodies that kubectl's typed clients send.

kubectl 1.32 sends `application/vnd.kubernetes.protobuf` bodies from its generated clients
(`kubectl create secret|configmap|namespace|deployment|service ...`) and does not fall back to
JSON on a 415, so the sandbox has to read them. A body is the magic `k8s\\0` followed by a
`runtime.Unknown` envelope {typeMeta, raw}; `raw` is the object's message. The table below
maps field numbers to JSON names for the kinds those commands create (numbers from
k8s.io/api's generated.proto). Unknown fields are skipped; Go's always-encoded zero values
are dropped unless the field is a pointer ("!" marks those).
"""

from __future__ import annotations

import base64
from typing import Any

from . import errors

MAGIC = b"k8s\x00"

# field number -> (json name, type). Types: s string, b bool, i integer, y bytes, map (string->string),
# mapb (string->bytes), mapq (string->Quantity), q Quantity, intstr IntOrString, or a message name.
# "*" suffix: repeated; "!" prefix: keep zero values (a pointer field); json name "" inlines the message.
SCHEMA: dict[str, dict[int, tuple[str, str]]] = {
    "ObjectMeta": {1: ("name", "s"), 2: ("generateName", "s"), 3: ("namespace", "s"), 5: ("uid", "s"),
                   6: ("resourceVersion", "s"), 11: ("labels", "map"), 12: ("annotations", "map"),
                   13: ("ownerReferences", "OwnerReference*"), 14: ("finalizers", "s*")},
    "OwnerReference": {5: ("apiVersion", "s"), 1: ("kind", "s"), 3: ("name", "s"), 4: ("uid", "s"),
                       6: ("controller", "!b"), 7: ("blockOwnerDeletion", "!b")},
    "Secret": {1: ("metadata", "ObjectMeta"), 5: ("immutable", "!b"), 2: ("data", "mapb"),
               4: ("stringData", "map"), 3: ("type", "s")},
    "ConfigMap": {1: ("metadata", "ObjectMeta"), 4: ("immutable", "!b"), 2: ("data", "map"),
                  3: ("binaryData", "mapb")},
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec")},
    "NamespaceSpec": {1: ("finalizers", "s*")},
    "ServiceAccount": {1: ("metadata", "ObjectMeta"), 2: ("secrets", "ObjectReference*"),
                       3: ("imagePullSecrets", "LocalObjectReference*"), 4: ("automountServiceAccountToken", "!b")},
    "ObjectReference": {1: ("kind", "s"), 2: ("namespace", "s"), 3: ("name", "s"), 4: ("uid", "s"),
                        5: ("apiVersion", "s"), 6: ("resourceVersion", "s"), 7: ("fieldPath", "s")},
    "LocalObjectReference": {1: ("name", "s")},
    "Service": {1: ("metadata", "ObjectMeta"), 2: ("spec", "ServiceSpec")},
    "ServiceSpec": {1: ("ports", "ServicePort*"), 2: ("selector", "map"), 3: ("clusterIP", "s"),
                    18: ("clusterIPs", "s*"), 4: ("type", "s"), 5: ("externalIPs", "s*"),
                    7: ("sessionAffinity", "s"), 10: ("externalName", "s"), 11: ("externalTrafficPolicy", "s"),
                    19: ("ipFamilies", "s*"), 17: ("ipFamilyPolicy", "s"), 22: ("internalTrafficPolicy", "s")},
    "ServicePort": {1: ("name", "s"), 2: ("protocol", "s"), 6: ("appProtocol", "s"), 3: ("port", "i"),
                    4: ("targetPort", "intstr"), 5: ("nodePort", "i")},
    "Deployment": {1: ("metadata", "ObjectMeta"), 2: ("spec", "DeploymentSpec")},
    "DeploymentSpec": {1: ("replicas", "!i"), 2: ("selector", "LabelSelector"), 3: ("template", "PodTemplateSpec"),
                       4: ("strategy", "DeploymentStrategy"), 5: ("minReadySeconds", "i"),
                       6: ("revisionHistoryLimit", "!i"), 7: ("paused", "b"), 9: ("progressDeadlineSeconds", "!i")},
    "DeploymentStrategy": {1: ("type", "s"), 2: ("rollingUpdate", "RollingUpdateDeployment")},
    "RollingUpdateDeployment": {1: ("maxUnavailable", "intstr"), 2: ("maxSurge", "intstr")},
    "LabelSelector": {1: ("matchLabels", "map"), 2: ("matchExpressions", "LabelSelectorRequirement*")},
    "LabelSelectorRequirement": {1: ("key", "s"), 2: ("operator", "s"), 3: ("values", "s*")},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec")},
    "PodSpec": {1: ("volumes", "Volume*"), 20: ("initContainers", "Container*"), 2: ("containers", "Container*"),
                3: ("restartPolicy", "s"), 4: ("terminationGracePeriodSeconds", "!i"), 6: ("dnsPolicy", "s"),
                7: ("nodeSelector", "map"), 8: ("serviceAccountName", "s"), 9: ("serviceAccount", "s"),
                10: ("nodeName", "s"), 11: ("hostNetwork", "b"), 15: ("imagePullSecrets", "LocalObjectReference*"),
                19: ("schedulerName", "s"), 22: ("tolerations", "Toleration*"), 24: ("priorityClassName", "s")},
    "Container": {1: ("name", "s"), 2: ("image", "s"), 3: ("command", "s*"), 4: ("args", "s*"),
                  5: ("workingDir", "s"), 6: ("ports", "ContainerPort*"), 19: ("envFrom", "EnvFromSource*"),
                  7: ("env", "EnvVar*"), 8: ("resources", "!ResourceRequirements"), 9: ("volumeMounts", "VolumeMount*"),
                  10: ("livenessProbe", "Probe"), 11: ("readinessProbe", "Probe"), 22: ("startupProbe", "Probe"),
                  13: ("terminationMessagePath", "s"), 20: ("terminationMessagePolicy", "s"),
                  14: ("imagePullPolicy", "s"), 16: ("stdin", "b"), 17: ("stdinOnce", "b"), 18: ("tty", "b")},
    "ContainerPort": {1: ("name", "s"), 2: ("hostPort", "i"), 3: ("containerPort", "i"), 4: ("protocol", "s"),
                      5: ("hostIP", "s")},
    "EnvVar": {1: ("name", "s"), 2: ("value", "s"), 3: ("valueFrom", "EnvVarSource")},
    "EnvVarSource": {3: ("configMapKeyRef", "KeySelector"), 4: ("secretKeyRef", "KeySelector")},
    "KeySelector": {1: ("", "LocalObjectReference"), 2: ("key", "s"), 3: ("optional", "!b")},
    "EnvFromSource": {1: ("prefix", "s"), 2: ("configMapRef", "EnvSource"), 3: ("secretRef", "EnvSource")},
    "EnvSource": {1: ("", "LocalObjectReference"), 2: ("optional", "!b")},
    "ResourceRequirements": {1: ("limits", "mapq"), 2: ("requests", "mapq")},
    "VolumeMount": {1: ("name", "s"), 2: ("readOnly", "b"), 3: ("mountPath", "s"), 4: ("subPath", "s")},
    "Volume": {1: ("name", "s"), 2: ("", "VolumeSource")},
    "VolumeSource": {2: ("emptyDir", "!EmptyDirVolumeSource"), 6: ("secret", "SecretVolumeSource"),
                     10: ("persistentVolumeClaim", "PersistentVolumeClaimVolumeSource"),
                     19: ("configMap", "ConfigMapVolumeSource")},
    "EmptyDirVolumeSource": {1: ("medium", "s"), 2: ("sizeLimit", "q")},
    "SecretVolumeSource": {1: ("secretName", "s"), 3: ("defaultMode", "!i"), 4: ("optional", "!b")},
    "ConfigMapVolumeSource": {1: ("", "LocalObjectReference"), 3: ("defaultMode", "!i"), 4: ("optional", "!b")},
    "PersistentVolumeClaimVolumeSource": {1: ("claimName", "s"), 2: ("readOnly", "b")},
    "Probe": {1: ("", "ProbeHandler"), 2: ("initialDelaySeconds", "i"), 3: ("timeoutSeconds", "i"),
              4: ("periodSeconds", "i"), 5: ("successThreshold", "i"), 6: ("failureThreshold", "i")},
    "ProbeHandler": {1: ("exec", "ExecAction"), 2: ("httpGet", "HTTPGetAction"), 3: ("tcpSocket", "TCPSocketAction")},
    "ExecAction": {1: ("command", "s*")},
    "HTTPGetAction": {1: ("path", "s"), 2: ("port", "intstr"), 3: ("host", "s"), 4: ("scheme", "s")},
    "TCPSocketAction": {1: ("port", "intstr"), 2: ("host", "s")},
    "Toleration": {1: ("key", "s"), 2: ("operator", "s"), 3: ("value", "s"), 4: ("effect", "s"),
                   5: ("tolerationSeconds", "!i")},
    "HorizontalPodAutoscaler/v1": {1: ("metadata", "ObjectMeta"), 2: ("spec", "HPASpecV1")},
    "HPASpecV1": {1: ("scaleTargetRef", "CrossVersionObjectReference"), 2: ("minReplicas", "!i"),
                  3: ("maxReplicas", "i"), 4: ("targetCPUUtilizationPercentage", "!i")},
    "CrossVersionObjectReference": {1: ("kind", "s"), 2: ("name", "s"), 3: ("apiVersion", "s")},
    "PodDisruptionBudget": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodDisruptionBudgetSpec")},
    "PodDisruptionBudgetSpec": {1: ("minAvailable", "!intstr"), 2: ("selector", "LabelSelector"),
                                3: ("maxUnavailable", "!intstr"), 4: ("unhealthyPodEvictionPolicy", "s")},
    "Eviction": {1: ("metadata", "ObjectMeta"), 2: ("deleteOptions", "DeleteOptions")},
    "DeleteOptions": {1: ("gracePeriodSeconds", "!i"), 2: ("preconditions", "Preconditions"),
                      3: ("orphanDependents", "!b"), 4: ("propagationPolicy", "s"), 5: ("dryRun", "s*")},
    "Preconditions": {1: ("uid", "s"), 2: ("resourceVersion", "s")},
}
TOP_LEVEL = {"Secret", "ConfigMap", "Namespace", "ServiceAccount", "Service", "Deployment", "Eviction",
             "DeleteOptions", "HorizontalPodAutoscaler/v1", "PodDisruptionBudget"}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, Any]]:
    """(field number, raw value): ints for varints, bytes for length-delimited; fixed widths skipped."""
    out: list[tuple[int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value - (1 << 64) if value >= 1 << 63 else value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            out.append((number, data[pos:pos + length]))
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise errors.bad_request(f"unsupported protobuf wire type {wire}")
    return out


def _map_entry(raw: bytes) -> tuple[str, bytes]:
    key, value = "", b""
    for number, item in _fields(raw):
        if number == 1:
            key = item.decode()
        elif number == 2:
            value = item
    return key, value


def _scalar(kind: str, raw: Any) -> Any:
    if kind == "s":
        return raw.decode()
    if kind == "b":
        return bool(raw)
    if kind == "i":
        return int(raw)
    if kind == "y":
        return base64.b64encode(raw).decode()
    if kind == "q":
        return _message("Quantity", raw).get("string", "") if raw else ""
    if kind == "intstr":
        fields = dict(_fields(raw))
        return fields.get(3, b"").decode() if fields.get(1) == 1 else int(fields.get(2, 0))
    return _message(kind, raw)


SCHEMA["Quantity"] = {1: ("string", "s")}


def _message(name: str, data: bytes) -> dict[str, Any]:
    schema = SCHEMA[name]
    obj: dict[str, Any] = {}
    for number, raw in _fields(data):
        if number not in schema:
            continue
        json_name, kind = schema[number]
        keep, kind = kind.startswith("!"), kind.lstrip("!")
        repeated, kind = kind.endswith("*"), kind.rstrip("*")
        if kind in ("map", "mapb", "mapq"):
            key, value = _map_entry(raw)
            obj.setdefault(json_name, {})[key] = _scalar({"map": "s", "mapb": "y", "mapq": "q"}[kind], value)
            continue
        value = _scalar(kind, raw)
        if not json_name:
            obj.update(value)
        elif repeated:
            obj.setdefault(json_name, []).append(value)
        elif keep or value not in ("", 0, False, {}):
            obj[json_name] = value
    return obj


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf request body as the JSON object a client would have sent."""
    if not body.startswith(MAGIC):
        raise errors.bad_request("protobuf body without the k8s envelope prefix")
    envelope = dict(_fields(body[len(MAGIC):]))
    type_meta = {n: v.decode() for n, v in _fields(envelope.get(1, b""))}
    api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")  # runtime.TypeMeta order
    message = f"{kind}/{api_version.rsplit('/', 1)[-1]}"
    message = message if message in TOP_LEVEL else kind
    if message not in TOP_LEVEL:
        raise errors.unsupported_media_type(f"application/vnd.kubernetes.protobuf for kind {kind!r}; send JSON")
    obj = _message(message, envelope.get(2, b""))
    return {"kind": kind, "apiVersion": api_version, **obj}
