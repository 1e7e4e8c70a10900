"""Prometheus' HTTP API v1: instant and range queries, for `/cf graph` and an alert's context.

    POST {url}/api/v1/query        query=EXPR [time=T] timeout=D
    POST {url}/api/v1/query_range  query=EXPR start=T end=T step=S timeout=D

(POST with a form body, as Grafana does, so a long expression never meets a URL length limit.) The
answer is `{"status": "success", "data": {"resultType": "matrix"|"vector"|"scalar"|"string", "result":
[...]}, "warnings": [...]}`, or `{"status": "error", "errorType": "bad_data"|"execution"|"timeout"|...,
"error": "..."}` with HTTP 400, 422 or 503.

Every call ends within `timeout` seconds: the client's own bound, and the same bound (a little less)
sent as the query's `timeout`, so Prometheus stops working on a query nobody waits for. Failures are the
typed errors of `integrations.errors`: a query Prometheus refuses is `QueryError` carrying Prometheus'
own words (a parse error points at the column), down or slow is `Unavailable`. Values come as floats;
Prometheus' `NaN`, `+Inf` and `-Inf` are kept as such.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from integrations.errors import Forbidden, IntegrationError, NotFound, Unavailable

SYSTEM = "Prometheus"
MAX_POINTS = 11_000  # Prometheus refuses a query_range that would give more points per series
MAX_ANSWER_BYTES = 32 * 2**20  # a bigger answer is refused, not read into memory


class QueryError(IntegrationError):
    """Prometheus refused the query itself (bad PromQL, too many points): `message` is what it said."""


@dataclass(frozen=True)
class Series:
    """One time series of an answer: its labels (with `__name__` when it has one) and (time, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]

    @property
    def name(self) -> str:
        """`metric{a="1",b="2"}`, as Prometheus writes a series; `{}` for an expression's unlabelled result."""
        labels = {k: v for k, v in self.labels.items() if k != "__name__"}
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        metric = self.labels.get("__name__", "")
        return f"{metric}{{{inner}}}" if inner or not metric else metric


@dataclass(frozen=True)
class QueryResult:
    """An answer: its result type, its series (a scalar is one series with no labels), Prometheus' warnings."""

    kind: str
    series: list[Series]
    warnings: list[str] = field(default_factory=list)


class Prometheus:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.base = url.rstrip("/")
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def where(self) -> str:
        return self.base

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def query(self, expr: str, at: datetime | None = None) -> QueryResult:
        """The expression's value at `at` (default: now)."""
        form = {"query": expr}
        if at is not None:
            form["time"] = _stamp(at)
        return await self._call("query", form)

    async def query_range(self, expr: str, start: datetime, end: datetime, step: float) -> QueryResult:
        """The expression from `start` to `end`, every `step` seconds (at most MAX_POINTS points per series)."""
        form = {"query": expr, "start": _stamp(start), "end": _stamp(end), "step": f"{step:g}"}
        return await self._call("query_range", form)

    async def _call(self, endpoint: str, form: dict[str, str]) -> QueryResult:
        url = f"{self.base}/api/v1/{endpoint}"
        form = {**form, "timeout": f"{max(int(self.timeout * 900), 100)}ms"}  # a little under ours
        try:
            async with self._client().post(url, data=form, headers={"Accept": "application/json"}) as resp:
                status = resp.status
                body = await resp.content.read(MAX_ANSWER_BYTES + 1)
        except TimeoutError:
            raise Unavailable(SYSTEM, f"no answer from {self.base} within {self.timeout:g}s.", code="Timeout") \
                from None
        except aiohttp.ClientError as exc:
            raise Unavailable(SYSTEM, f"cannot reach {urlsplit(self.base).netloc or self.base} "
                                      f"({type(exc).__name__}).", code="Unreachable") from None
        if len(body) > MAX_ANSWER_BYTES:
            raise IntegrationError(SYSTEM, f"the answer is larger than {MAX_ANSWER_BYTES // 2**20} MB; "
                                           "narrow the query (fewer series, a shorter range or a coarser step).",
                                   code="TooLarge")
        return _result(_decode(body, status), status)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _stamp(moment: datetime) -> str:
    return f"{moment.timestamp():.3f}"


def _decode(body: bytes, status: int) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        return data
    if status in (401, 403):
        raise Forbidden(SYSTEM, f"the request was refused (HTTP {status}): does the URL need credentials?",
                        code=str(status))
    if status == 404:
        raise NotFound(SYSTEM, "no query API at this URL (HTTP 404): is `prometheus.url` the server's base URL?",
                       code="404")
    if status >= 500:
        raise Unavailable(SYSTEM, f"the server failed (HTTP {status}).", code=str(status))
    raise IntegrationError(SYSTEM, f"the answer was not Prometheus JSON (HTTP {status}).", code=str(status))


def _result(data: dict[str, Any], status: int) -> QueryResult:
    if data.get("status") != "success":
        kind = str(data.get("errorType") or status)
        said = str(data.get("error") or f"HTTP {status}")
        if kind in ("timeout", "canceled", "unavailable") or status == 503:
            raise Unavailable(SYSTEM, f"the query did not finish: {said}", code=kind)
        raise QueryError(SYSTEM, said, code=kind)
    answer = data.get("data") or {}
    kind = str(answer.get("resultType", ""))
    raw = answer.get("result")
    warnings = [str(w) for w in data.get("warnings") or []]
    if kind == "scalar" and isinstance(raw, list):
        return QueryResult(kind, [Series({}, [_point(raw)])], warnings)
    if kind in ("vector", "matrix") and isinstance(raw, list):
        series = [Series({str(k): str(v) for k, v in (s.get("metric") or {}).items()},
                         [_point(p) for p in s.get("values") or ([s["value"]] if "value" in s else [])])
                  for s in raw]
        return QueryResult(kind, series, warnings)
    if kind == "string":
        raise QueryError(SYSTEM, "the expression is a string, not a number or a series.", code="bad_data")
    raise IntegrationError(SYSTEM, f"unexpected answer (result type {kind or 'missing'}).", code="BadAnswer")


def _point(raw: Any) -> tuple[float, float]:
    try:
        return float(raw[0]), float(raw[1])
    except (TypeError, ValueError, IndexError):
        raise IntegrationError(SYSTEM, f"unexpected sample in the answer: {str(raw)[:80]}", code="BadAnswer") \
            from None
