"""Server-side printing: `meta.k8s.io/v1` Tables, the way kubectl asks for `get` output.

kubectl sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...` and prints the
columns it gets back (priority-1 columns only with `-o wide`), so the columns and cell text
here are the API server's (pkg/printers/internalversion). Each row carries the object's
metadata (or the whole object) so kubectl can add NAMESPACE for `-A` and labels for `-L`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from . import printers
from .resources import ResourceType

Column = tuple[str, str, int, str]  # name, type, priority, description


def column_definitions(columns: list[Column]) -> list[dict[str, Any]]:
    return [{"name": name, "type": type_, "format": "name" if i == 0 and name == "Name" else "",
             "description": description, "priority": priority}
            for i, (name, type_, priority, description) in enumerate(columns)]


def _row_object(rt: ResourceType, obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def table(rt: ResourceType, objects: list[dict[str, Any]], now: datetime, resource_version: str,
          include: str = "Metadata", headers: bool = True) -> dict[str, Any]:
    columns, row_fn = printers.PRINTERS.get(rt.kind, printers.GENERIC)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": row_fn(obj, now)}
        embedded = _row_object(rt, obj, include)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    result: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
                              "metadata": {"resourceVersion": resource_version}}
    result["columnDefinitions"] = column_definitions(columns) if headers else []
    result["rows"] = rows
    return result


def wants_table(accept: str) -> bool:
    """True when the client prefers a Table (the first acceptable media range asks for one)."""
    for media_range in accept.split(","):
        params = dict(p.strip().split("=", 1) for p in media_range.split(";")[1:] if "=" in p)
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return True
        if media_range.strip().split(";")[0] in ("application/json", "*/*", "application/yaml"):
            return False
    return False
