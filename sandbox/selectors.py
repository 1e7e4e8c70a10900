"""Label and field selectors: the query-string syntax and the LabelSelector object form.

Both compile to a predicate over an object dict so list, watch, deletecollection and the
controllers (which match pods to ReplicaSets and budgets) share one implementation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import bad_request
from .util import dig

Predicate = Callable[[dict[str, Any]], bool]

_REQ = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9._/-]+)\s*"
    r"(?:(?P<op>==|=|!=|\s+in\s+|\s+notin\s+|>|<)\s*(?P<value>\([^)]*\)|[A-Za-z0-9._-]*))?\s*$"
)


def _split(selector: str) -> list[str]:
    """Split on commas that are not inside an `in (...)` value list."""
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return [p for p in parts if p.strip()]


def _requirement(text: str) -> Callable[[dict[str, str]], bool]:
    match = _REQ.match(text)
    if not match:
        raise bad_request(f"unable to parse requirement: found '{text.strip()}', expected: identifier")
    key, op, value = match["key"], (match["op"] or "").strip(), match["value"]
    if match["neg"]:
        if op:
            raise bad_request(f"unable to parse requirement: found '{text.strip()}'")
        return lambda labels: key not in labels
    if not op:
        return lambda labels: key in labels
    if op in ("=", "=="):
        return lambda labels: labels.get(key) == value
    if op == "!=":
        return lambda labels: labels.get(key) != value
    if op in ("in", "notin"):
        values = {v.strip() for v in value.strip("()").split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    number = float(value)
    if op == ">":
        return lambda labels: key in labels and _num(labels[key]) > number
    return lambda labels: key in labels and _num(labels[key]) < number


def _num(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def parse_label_selector(selector: str | None) -> Callable[[dict[str, str]], bool] | None:
    """Compile `app=x,tier in (a,b),!legacy` into a predicate over a labels dict."""
    if not selector or not selector.strip():
        return None
    requirements = [_requirement(part) for part in _split(selector)]
    return lambda labels: all(req(labels) for req in requirements)


def label_selector_predicate(selector: str | None) -> Predicate | None:
    matcher = parse_label_selector(selector)
    if matcher is None:
        return None
    return lambda obj: matcher(dig(obj, "metadata", "labels", default={}))


def field_selector_predicate(selector: str | None) -> Predicate | None:
    """Compile `spec.nodeName=x,status.phase!=Failed`; any dotted path into the object works."""
    if not selector or not selector.strip():
        return None
    checks: list[tuple[list[str], str, str]] = []
    for part in _split(selector):
        match = re.match(r"^\s*([A-Za-z0-9._-]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not match:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{part}'")
        checks.append((match[1].split("."), match[2], match[3]))

    def predicate(obj: dict[str, Any]) -> bool:
        for path, op, value in checks:
            actual = dig(obj, *path, default="")
            actual = str(actual).lower() if isinstance(actual, bool) else str(actual)
            if (actual == value) != (op != "!="):
                return False
        return True

    return predicate


def match_label_selector(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """metav1.LabelSelector semantics: matchLabels AND matchExpressions; empty matches everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            ok = labels.get(key) in values
        elif op == "NotIn":
            ok = labels.get(key) not in values
        elif op == "Exists":
            ok = key in labels
        else:  # DoesNotExist
            ok = key not in labels
        if not ok:
            return False
    return True


def selector_string(selector: dict[str, Any] | None) -> str:
    """LabelSelector -> the query-string form (what Scale.status.selector and kubectl show)."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr["operator"], expr["key"], ",".join(sorted(expr.get("values") or []))
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": key, "DoesNotExist": f"!{key}"}[op])
    return ",".join(parts)
