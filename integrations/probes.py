"""Probes from the outside: HTTP health endpoints, Prometheus /metrics, and a WebSocket handshake.

These are what the runbook does with `curl -I .../health`, `curl .../metrics | grep ...` and
`wscat -c wss://...`. Every probe has its own deadline; a health probe never raises (a failure is a
result, so one dead endpoint cannot hide the others), while a scrape or a WebSocket probe raises a
one-line `IntegrationError` that the bot shows as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from integrations import telemetry
from integrations.errors import IntegrationError, Unavailable

MAX_SCRAPE_BYTES = 8 * 2**20  # a /metrics page larger than this is not one we should parse in a bot
USER_AGENT = "cf-bot-probe/1"


@dataclass(frozen=True)
class HttpResult:
    """One health probe: the status code and latency, or why there was none."""

    name: str
    url: str
    status: int | None
    latency_ms: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 400


@dataclass(frozen=True)
class Sample:
    """One Prometheus series value: `name{labels} value`."""

    name: str
    labels: dict[str, str]
    value: float
    kind: str

    @property
    def series(self) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{self.name}{{{inner}}}" if inner else self.name


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error.strerror or str(exc.os_error)
        return f"cannot connect to {exc.host}:{exc.port} ({cause})"
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())[:160]


async def _probe(session: aiohttp.ClientSession, name: str, url: str, timeout: float) -> HttpResult:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            async with session.get(url, allow_redirects=False) as resp:
                await resp.content.read(64 * 1024)  # the body's start: a health page that hangs mid-body fails
                return HttpResult(name, url, resp.status, _elapsed_ms(started))
    except TimeoutError:
        return HttpResult(name, url, None, _elapsed_ms(started), f"no answer within {timeout:g}s")
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return HttpResult(name, url, None, _elapsed_ms(started), _reason(exc))


async def http_health(targets: Iterable[tuple[str, str, float]]) -> list[HttpResult]:
    """GET each (name, url, timeout) concurrently; results in the order given, failures included."""
    chosen = list(targets)
    if not chosen:
        return []
    headers = {"User-Agent": USER_AGENT}
    async with aiohttp.ClientSession(headers=headers) as session:
        results = list(await asyncio.gather(*(_probe(session, n, u, t) for n, u, t in chosen)))
    for r in results:
        telemetry.record("HTTP", r.name, r.latency_ms / 1000, None if r.error is None else "ProbeFailed")
    return results


async def scrape(url: str, timeout: float, system: str = "Prometheus") -> list[Sample]:
    """Fetch a Prometheus text exposition and parse it with prometheus_client's parser."""
    try:
        async with asyncio.timeout(timeout):
            async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as session:
                async with session.get(url) as resp:
                    if resp.status != 200:
                        raise Unavailable(system, f"{url} answered HTTP {resp.status}.")
                    body = await resp.content.read(MAX_SCRAPE_BYTES + 1)
    except TimeoutError:
        raise Unavailable(system, f"{url} did not answer within {timeout:g}s.") from None
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        raise Unavailable(system, f"could not scrape {url}: {_reason(exc)}.") from None
    if len(body) > MAX_SCRAPE_BYTES:
        raise IntegrationError(system, f"{url} returned more than {MAX_SCRAPE_BYTES // 2**20} MiB of metrics.")
    return parse_metrics(body.decode("utf-8", "replace"), url, system)


def parse_metrics(text: str, url: str = "", system: str = "Prometheus") -> list[Sample]:
    try:
        return [Sample(s.name, dict(s.labels), float(s.value), family.type)
                for family in text_string_to_metric_families(text) for s in family.samples]
    except (ValueError, TypeError, IndexError) as exc:
        where = f" from {url}" if url else ""
        raise IntegrationError(system, f"the metrics{where} are not in Prometheus text format ({_reason(exc)}).") \
            from None


async def websocket_connect_ms(url: str, timeout: float, system: str = "WebSocket", *, label: str | None = None,
                               headers: dict[str, str] | None = None, ssl: Any = None,
                               subprotocols: list[str] | None = None) -> float:
    """Open a WebSocket (the full opening handshake), close it, and return the time to open in ms.

    `headers`, `ssl` and `subprotocols` are for a handshake through the Kubernetes API server's pods
    proxy (its credentials and CA); `label` names the target in errors instead of the URL.
    """
    from websockets.asyncio.client import connect
    from websockets.exceptions import WebSocketException

    where = label or url
    extra: dict[str, Any] = {"ssl": ssl} if ssl is not None else {}
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            ws = await connect(url, open_timeout=None, proxy=None, user_agent_header=USER_AGENT, compression=None,
                               additional_headers=headers, subprotocols=subprotocols, **extra)  # type: ignore[arg-type]
    except TimeoutError:
        raise Unavailable(system, f"{where}: no handshake within {timeout:g}s.") from None
    except (WebSocketException, OSError, ValueError) as exc:
        raise Unavailable(system, f"{where}: {_reason(exc)}.") from None
    took = _elapsed_ms(started)
    with contextlib.suppress(TimeoutError, WebSocketException, OSError):  # closing is not what we measure
        async with asyncio.timeout(2):
            await ws.close()
    return took
