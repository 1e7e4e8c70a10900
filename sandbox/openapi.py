"""A minimal OpenAPI v3 index: just enough for `kubectl apply` / `kubectl create -f`.

kubectl validates manifests with `--validate=strict` by default. It first asks OpenAPI v3
whether the server supports the `fieldValidation` query parameter on the kind's PATCH
operation; if so it leaves validation to the server, and without OpenAPI at all it refuses
("failed to download openapi"). So each group/version document lists, per resource, a PATCH
operation tagged with `x-kubernetes-group-version-kind` and the `fieldValidation` parameter.
The PATCH operations deliberately declare no request body: kubectl then computes apply
patches from its built-in Go types instead of needing full schemas, which we do not serve.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .resources import Registry

QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")


def _prefix(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def group_version_doc(registry: Registry, group: str, version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for rt in registry.types:
        if rt.group != group or rt.version != version or "patch" not in rt.verbs:
            continue
        scope = "/namespaces/{namespace}" if rt.namespaced else ""
        path = f"/{_prefix(group, version)}{scope}/{rt.plural}/{{name}}"
        paths[path] = {"patch": {
            "operationId": f"patch{rt.kind}",
            "parameters": [{"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                           for name in QUERY_PARAMS],
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": rt.kind},
        }}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.3"}, "paths": paths,
            "components": {"schemas": {}}}


def index(registry: Registry) -> dict[str, Any]:
    paths = {}
    for group, versions in registry.group_versions().items():
        for version in versions:
            doc = json.dumps(group_version_doc(registry, group, version), sort_keys=True).encode()
            digest = hashlib.sha512(doc).hexdigest()[:64].upper()
            prefix = _prefix(group, version)
            paths[prefix] = {"serverRelativeURL": f"/openapi/v3/{prefix}?hash={digest}"}
    return {"paths": paths}


def lookup(registry: Registry, path: str) -> dict[str, Any] | None:
    """The document for `/openapi/v3/<api/v1 | apis/G/V>`, or None."""
    parts = path.strip("/").split("/")[2:]
    if parts[:1] == ["api"] and len(parts) == 2:
        group, version = "", parts[1]
    elif parts[:1] == ["apis"] and len(parts) == 3:
        group, version = parts[1], parts[2]
    else:
        return None
    if not registry.serves(group, version):
        return None
    return group_version_doc(registry, group, version)
