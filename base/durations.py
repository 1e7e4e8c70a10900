"""Spans of time as people type them and read them back: `90s`, `10m`, `1h30m`, `3d4h`.

One unit table and one way of writing a span, so `logs --since 1h30m`, `audit --since 2d`, an RDS
event window, a query's age and an incident's length all read alike. (Kubernetes ages keep kubectl's
own rounding, in `commands.support.kube.age`, because people compare them with kubectl's output.)
"""

from __future__ import annotations

UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def duration_text(seconds: float, units: int = 2) -> str:
    """`seconds` in its largest `units` non-zero units, the rest cut off (not rounded).

    45 -> `45s`, 600 -> `10m`, 5400 -> `1h30m`, 277200 -> `3d5h`; with `units=1`, 5400 -> `1h`.
    A window people typed (`10m`, `1h30m`, `2d`) reads back as they typed it; below a second, `0s`.
    """
    left = max(int(seconds), 0)
    shown: list[str] = []
    for unit, size in UNIT_SECONDS.items():
        if left >= size and len(shown) < units:
            shown.append(f"{left // size}{unit}")
            left %= size
    return "".join(shown) or "0s"
