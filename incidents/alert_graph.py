"""The graph of an alert's own expression over the last hour, with its threshold, in the message's thread.

The expression is the alert's `generatorURL` query parameter `g0.expr` (Prometheus puts the rule's
expression there). A rule of the form `LHS > N` (or `>=`, `<`, `<=`) is drawn as LHS with N as the
threshold line, so the picture shows how far over it went; the unit comes from `/cf graph`'s alias of
that alert (error rate as %, latency in seconds), when it has one. Drawing is `/cf graph`'s own
(`commands.logs.graph.render_png`: matplotlib's Agg canvas in a worker thread, one at a time).

It runs after the message is posted (`AlertService.spawn`), so it never delays the message. Prometheus
not configured: nothing is drawn (the footer's source link still opens the expression in Prometheus);
down, refusing the query or without data: one line in the thread says so, never a blank image.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from base.text import code, literal
from bot.messenger import DeliveryError, Messenger
from commands.base import Services
from commands.logs.graph import ALIASES, MAX_SERIES, Chart, plan_step, render_png
from commands.reply import File
from integrations.errors import IntegrationError
from integrations.prometheus import Series

log = logging.getLogger(__name__)

WINDOW = 3600  # the last hour
_COMPARISON = re.compile(r"^(?P<lhs>.+?)\s*(?P<op>[<>]=?)\s*(?P<value>[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)\s*$",
                         re.DOTALL)


def expression(alert: dict[str, Any]) -> str | None:
    """The alert's PromQL from its generatorURL (`g0.expr`), or None."""
    url = str(alert.get("generatorURL") or "")
    found = parse_qs(urlsplit(url).query).get("g0.expr") if url.startswith(("http://", "https://")) else None
    return found[0].strip() if found and found[0].strip() else None


def split_threshold(expr: str) -> tuple[str, float | None]:
    """`(A) > 0.05` -> (`A`, 0.05); an expression that is not one comparison with a number stays whole."""
    match = _COMPARISON.match(expr.strip())
    if not match or _depth(match.group("lhs")) != 0:
        return expr, None
    lhs = match.group("lhs").strip()
    if lhs.startswith("(") and lhs.endswith(")") and _depth(lhs[1:-1]) == 0 and _balanced(lhs[1:-1]):
        lhs = lhs[1:-1].strip()
    return lhs, float(match.group("value"))


def _depth(text: str) -> int:
    return text.count("(") - text.count(")")


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


class AlertGraphs:
    def __init__(self, services: Services, messenger: Messenger, clock: Any = time.time) -> None:
        self.services = services
        self.messenger = messenger
        self.clock = clock

    async def attach(self, channel: str, thread_ts: str, alert: dict[str, Any]) -> str:
        """Draw and upload the graph; what happened, in a word (for logs and tests)."""
        prometheus = self.services.get("prometheus")
        expr = expression(alert)
        if prometheus is None or expr is None:
            return "skipped"
        name = str(alert.get("alertname") or "alert")
        drawn = await self._draw(prometheus, name, expr)
        try:
            if isinstance(drawn, File):
                await self.messenger.upload(channel, thread_ts, drawn)
                return "uploaded"
            await self.messenger.post(channel, drawn, thread_ts=thread_ts)
        except DeliveryError as exc:
            log.warning("alert graph not posted", extra={"alert": name, "error": exc.code})
            return "failed"
        return "said"

    async def _draw(self, prometheus: Any, name: str, expr: str) -> File | str:
        lhs, threshold = split_threshold(expr)
        end = self.clock()
        step, _ = plan_step(WINDOW, None)
        try:
            result = await prometheus.query_range(lhs, datetime.fromtimestamp(end - WINDOW, UTC),
                                                  datetime.fromtimestamp(end, UTC), step)
        except IntegrationError as exc:
            return f":warning: Graph of {code(lhs, 200)} unavailable: {literal(exc.message, 300, one_line=True)}"
        drawn = _drawable(result.series)
        if not drawn:
            return f":grey_question: No data for {code(lhs, 200)} in the last hour, so no graph."
        unit = next((a.unit for a in ALIASES.values() if a.alert == name), "")
        chart = Chart(title=f"{name}: {lhs[:90]}{'…' if len(lhs) > 90 else ''} (last 1h)",
                      series=[(s.name[:80] or "value", s.points) for s in drawn],
                      start=end - WINDOW, end=end, unit=unit, threshold=threshold)
        png = await asyncio.to_thread(render_png, chart)
        return File(f"{name}.png", png, f"{name} over the last hour" + (f", threshold {threshold:g}"
                                                                       if threshold is not None else ""))


def _drawable(series: list[Series]) -> list[Series]:
    """Series with a finite value, highest first, at most MAX_SERIES."""
    finite = [(max(v for _, v in s.points if math.isfinite(v)), s) for s in series
              if any(math.isfinite(v) for _, v in s.points)]
    return [s for _, s in sorted(finite, key=lambda pair: pair[0], reverse=True)[:MAX_SERIES]]
