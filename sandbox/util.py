"""Small helpers shared by the sandbox modules: time formats, names, hashes, nested dicts.

Everything that must look like the real API server's output (RFC 3339 timestamps, the
"safe" alphabet used for generated names, kubectl's human ages) lives here so the other
modules stay about behaviour, not formatting.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

# The alphabet apimachinery's rand.String / SafeEncodeString use: no vowels, no 0/1/3.
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def rfc3339(ts: datetime) -> str:
    """metav1.Time: second precision, always UTC with a Z."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(ts: datetime) -> str:
    """metav1.MicroTime, used by Event.eventTime."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_nano(ts: datetime) -> str:
    """The kubelet's log timestamp format (nanoseconds; we only have microseconds)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def human_duration(delta: timedelta) -> str:
    """apimachinery's duration.HumanDuration, which every AGE column uses."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def age(timestamp: str | None, now: datetime) -> str:
    ts = parse_time(timestamp)
    return "<unknown>" if ts is None else human_duration(now - ts)


def random_suffix(rng: random.Random, length: int = 5) -> str:
    return "".join(rng.choice(SAFE_ALPHABET) for _ in range(length))


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def template_hash(template: dict[str, Any]) -> str:
    """pod-template-hash: FNV-32a of the template, "safe encoded" as the controller does.

    The real controller hashes the Go struct dump; we hash canonical JSON, which keeps the
    property that matters: equal templates give equal hashes. Always 10 characters.
    """
    digits = f"{fnv32a(canonical(template).encode()):010d}"
    return "".join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in digits)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def semantic(value: Any) -> Any:
    """Drop nulls and empty values, so `{"creationTimestamp": null}` (what Go clients send for
    an unset time) compares equal to an absent field, as it does after the server decodes it."""
    if isinstance(value, dict):
        pruned = {k: semantic(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [], "")}
    if isinstance(value, list):
        return [semantic(v) for v in value]
    return value


def dig(obj: Any, *path: str, default: Any = None) -> Any:
    """obj["a"]["b"]... or default when any step is missing or not a dict."""
    for key in path:
        if not isinstance(obj, dict) or key not in obj or obj[key] is None:
            return default
        obj = obj[key]
    return obj


def controller_ref(obj: dict[str, Any]) -> dict[str, Any] | None:
    refs: list[dict[str, Any]] = dig(obj, "metadata", "ownerReferences", default=[])
    return next((ref for ref in refs if ref.get("controller")), None)


def owner_ref(owner: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def parse_quantity(value: str | int | float) -> float:
    """A resource.Quantity as a float in base units (cores, bytes)."""
    if isinstance(value, int | float):
        return float(value)
    suffixes = {
        "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
        "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    }
    for suffix in sorted(suffixes, key=len, reverse=True):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * suffixes[suffix]
    return float(value)
