"""JSON over HTTP for the SaaS integrations (Statuspage, PagerDuty): one request, one typed error.

Each client owns one `aiohttp.ClientSession` (made on first use, inside the running loop) and calls
`request_json`. Every request has a total timeout; the answer's status becomes an
`integrations.errors` type with one line the user can act on. Headers are never logged, because
they carry API keys.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from integrations.errors import Forbidden, IntegrationError, NotFound, Unavailable


class JsonClient:
    """A lazily created session plus `request`, shared by the clients below."""

    def __init__(self, system: str, timeout: float) -> None:
        self.system = system
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def request(self, method: str, url: str, *, what: str, headers: dict[str, str] | None = None,
                      body: dict[str, Any] | None = None) -> Any:
        """Send `body` as JSON; return the decoded answer, or raise a typed error naming `what`."""
        sent = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
        try:
            async with self._client().request(method, url, data=json.dumps(body or {}), headers=sent) as resp:
                text = await resp.text()
                status = resp.status
        except TimeoutError:
            raise Unavailable(self.system, f"{what}: no answer within {self.timeout:g}s.") from None
        except aiohttp.ClientError as exc:
            raise Unavailable(self.system, f"{what}: cannot reach {url.split('/')[2]} ({type(exc).__name__}).") \
                from None
        if status >= 300:
            raise _error(self.system, what, status, text)
        try:
            return json.loads(text) if text.strip() else {}
        except ValueError:
            raise IntegrationError(self.system, f"{what}: the answer was not JSON (HTTP {status}).") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _error(system: str, what: str, status: int, text: str) -> IntegrationError:
    detail = _detail(text)
    suffix = f": {detail}" if detail else "."
    if status in (401, 403):
        return Forbidden(system, f"{what}: the credentials were refused (HTTP {status}){suffix}")
    if status == 404:
        return NotFound(system, f"{what}: not found (HTTP 404){suffix}")
    if status in (420, 429):
        return Unavailable(system, f"{what}: rate limited (HTTP {status}); try again in a minute.")
    if status >= 500:
        return Unavailable(system, f"{what}: the service failed (HTTP {status}).")
    return IntegrationError(system, f"{what}: refused (HTTP {status}){suffix}")


def _detail(text: str) -> str:
    """The error message the API put in its answer, if it put one, in one short line."""
    try:
        data = json.loads(text)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    parts: list[str] = []
    for key in ("error", "message", "errors"):
        value = data.get(key)
        if isinstance(value, list):
            parts.extend(str(v) for v in value)
        elif value:
            parts.append(str(value))
    return "; ".join(parts)[:200]
