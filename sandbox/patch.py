"""The three patch formats the API server accepts.

- JSON merge patch (RFC 7386): maps merge, null deletes, lists replace.
- JSON patch (RFC 6902): a list of add/remove/replace/move/copy/test operations.
  `kubectl rollout undo` uses it to copy an old ReplicaSet's template back.
- Strategic merge patch: merge patch plus per-field list strategies (lists of containers
  merge by name, env by name, ...) and `$patch`/`$retainKeys`/`$setElementOrder`/
  `$deleteFromPrimitiveList` directives. kubectl uses it for apply, scale, cordon and
  `rollout restart`. The real server reads the strategies from Go struct tags; we keep the
  small table of the ones our kinds use (apimachinery's strategicpatch package is the model).
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import ApiError, bad_request

# field name -> merge key, for lists that merge rather than replace. "ports" depends on the
# parent: a container's ports merge by containerPort, a Service's by port.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "conditions": "type",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "addresses": "type",
    "resourceClaims": "name",
}
# lists of scalars that merge as sets
PRIMITIVE_MERGE = {"finalizers"}
CONTAINER_LISTS = {"containers", "initContainers", "ephemeralContainers"}


def _merge_key(path: tuple[str, ...]) -> str | None:
    name = path[-1] if path else ""
    if name == "ports":
        if len(path) >= 2 and path[-2] in CONTAINER_LISTS:
            return "containerPort"
        if len(path) >= 2 and path[-2] == "spec":
            return "port"
        return None
    if name == "addresses" and "status" not in path:
        return None
    return MERGE_KEYS.get(name)


# --- JSON merge patch -------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- JSON patch ---------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f'json patch path "{path}" must start with /')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str], path: str) -> Any:
    for part in parts:
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                           f"doc is missing path: \"{path}\": missing value")
    return doc


def _add(doc: Any, parts: list[str], value: Any, path: str) -> Any:
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        parent.insert(index, value)
    else:
        parent[last] = value
    return doc


def _remove(doc: Any, parts: list[str], path: str) -> Any:
    parent = _resolve(doc, parts[:-1], path)
    _resolve(doc, parts, path)
    if isinstance(parent, list):
        del parent[int(parts[-1])]
    else:
        del parent[parts[-1]]
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise bad_request("json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        kind, path = op.get("op"), op.get("path", "")
        parts = _pointer(path)
        if kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")), path)
        elif kind == "remove":
            doc = _remove(doc, parts, path)
        elif kind == "replace":
            _resolve(doc, parts, path)
            doc = _add(_remove(doc, parts, path) if parts else doc, parts, copy.deepcopy(op.get("value")), path)
        elif kind in ("move", "copy"):
            source = _pointer(op["from"])
            value = copy.deepcopy(_resolve(doc, source, op["from"]))
            if kind == "move":
                doc = _remove(doc, source, op["from"])
            doc = _add(doc, parts, value, path)
        elif kind == "test":
            if _resolve(doc, parts, path) != op.get("value"):
                raise ApiError(422, "Invalid", f"testing value {path} failed")
        else:
            raise bad_request(f"Unexpected kind: {kind}")
    return doc


# --- strategic merge patch ---------------------------------------------------------------


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        raise bad_request("strategic merge patch must be a JSON object")
    return _smp_map(copy.deepcopy(target) if isinstance(target, dict) else {}, patch, ())


def _smp_map(original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        replaced: dict[str, Any] = _strip({k: v for k, v in patch.items() if k != "$patch"})
        return replaced
    result = original
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
            continue
        current = result.get(key)
        if isinstance(value, dict):
            merged = _smp_map(current if isinstance(current, dict) else {}, value, (*path, key))
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _smp_list(current if isinstance(current, list) else [], value, (*path, key))
        else:
            result[key] = value
    if isinstance(retain, list):
        for key in list(result):
            if key not in retain:
                del result[key]
    return result


def _smp_list(original: list[Any], patch: list[Any], path: tuple[str, ...]) -> list[Any]:
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [_strip(item) for item in patch if not (isinstance(item, dict) and item.get("$patch"))]
    if path[-1] in PRIMITIVE_MERGE:
        return original + [v for v in patch if v not in original]
    key = _merge_key(path)
    if key is None or not all(isinstance(item, dict) for item in patch):
        return [_strip(item) for item in patch]
    result = list(original)
    for item in patch:
        index = next((i for i, cur in enumerate(result)
                      if isinstance(cur, dict) and cur.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
            continue
        if index is None:
            result.append(_strip(item))
        else:
            merged = _smp_map(result[index], item, path)
            if merged is not None:
                result[index] = merged
    return result


def _strip(value: Any) -> Any:
    """Drop patch directives from a value that is inserted whole."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def apply_patch(content_type: str, target: dict[str, Any], body: Any) -> dict[str, Any]:
    """Dispatch on the request's Content-Type (parameters such as charset ignored)."""
    media = content_type.split(";")[0].strip().lower()
    if media == "application/merge-patch+json":
        result = merge_patch(target, body)
    elif media == "application/json-patch+json":
        result = json_patch(target, body)
    elif media == "application/strategic-merge-patch+json":
        result = strategic_merge_patch(target, body)
    elif media == "application/apply-patch+yaml":
        # server-side apply, approximated: the applied fields win, everything else is kept
        result = strategic_merge_patch(target, body)
    else:
        raise ApiError(415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media types include: "
                       "application/json-patch+json, application/merge-patch+json, "
                       "application/apply-patch+yaml, application/strategic-merge-patch+json")
    if not isinstance(result, dict):
        raise bad_request("the patch did not produce an object")
    return result
