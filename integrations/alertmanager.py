"""Alertmanager's HTTP API v2: silences, for the Silence and Unsilence buttons of an alert's message.

    POST   {url}/api/v2/silences        {"matchers": [...], "startsAt", "endsAt", "createdBy", "comment"}
                                         -> 200 {"silenceID": "..."}; 400 with Alertmanager's reason
    GET    {url}/api/v2/silence/{id}    -> the silence, with "status": {"state": "active"|"pending"|"expired"}
    GET    {url}/api/v2/silences        -> every silence Alertmanager keeps (expired ones too, for a while)
    DELETE {url}/api/v2/silence/{id}    -> 200: expired now; 404: no such silence

A matcher is `{"name", "value", "isRegex": false, "isEqual": true}`: the buttons silence exact label
values, never patterns. Every call ends within `timeout` seconds. Failures are the typed errors of
`integrations.errors`: down or slow is `Unavailable`, a silence Alertmanager refuses is `SilenceError`
carrying its own words, an unknown silence `NotFound`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from integrations.errors import Forbidden, IntegrationError, NotFound, Unavailable
from integrations.webjson import JsonClient

SYSTEM = "Alertmanager"
MAX_ANSWER_BYTES = 8 * 2**20


class SilenceError(IntegrationError):
    """Alertmanager refused the silence itself (a bad matcher, an end before the start): its own words."""


def matchers(labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """Exact-equality matchers for these labels, in name order."""
    return [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in sorted(labels.items())]


class Alertmanager(JsonClient):
    """The session handling is `JsonClient`'s; the answers are read here, where Alertmanager's own words
    (a JSON string, not an object) and its "already expired" are known."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        super().__init__(SYSTEM, timeout)
        self.base = url.rstrip("/")

    @property
    def where(self) -> str:
        return self.base

    async def create_silence(self, labels: Mapping[str, str], starts: datetime, ends: datetime, created_by: str,
                             comment: str) -> str:
        """A silence of exactly these label values from `starts` to `ends`; its id."""
        body = {"matchers": matchers(labels), "startsAt": _stamp(starts), "endsAt": _stamp(ends),
                "createdBy": created_by, "comment": comment}
        answer = await self._call("POST", "/api/v2/silences", body)
        silence_id = answer.get("silenceID") if isinstance(answer, dict) else None
        if not isinstance(silence_id, str) or not silence_id:
            raise IntegrationError(SYSTEM, "the answer to a new silence had no silenceID.", code="BadAnswer")
        return silence_id

    async def get_silence(self, silence_id: str) -> dict[str, Any]:
        answer = await self._call("GET", f"/api/v2/silence/{quote(silence_id, safe='')}")
        if not isinstance(answer, dict):
            raise IntegrationError(SYSTEM, "unexpected answer for a silence.", code="BadAnswer")
        return answer

    async def silences(self) -> list[dict[str, Any]]:
        answer = await self._call("GET", "/api/v2/silences")
        return [s for s in answer if isinstance(s, dict)] if isinstance(answer, list) else []

    async def expire_silence(self, silence_id: str) -> None:
        """Expire it now. One that is already expired counts as done (Alertmanager refuses to expire it twice)."""
        try:
            await self._call("DELETE", f"/api/v2/silence/{quote(silence_id, safe='')}")
        except SilenceError:
            state = ((await self.get_silence(silence_id)).get("status") or {}).get("state")
            if state != "expired":
                raise

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        url = f"{self.base}{path}"
        try:
            async with self._client().request(method, url, json=body, headers={"Accept": "application/json"}) as resp:
                status = resp.status
                raw = await resp.content.read(MAX_ANSWER_BYTES + 1)
        except TimeoutError:
            raise Unavailable(SYSTEM, f"no answer from {self.base} within {self.timeout:g}s.", code="Timeout") \
                from None
        except aiohttp.ClientError as exc:
            raise Unavailable(SYSTEM, f"cannot reach {urlsplit(self.base).netloc or self.base} "
                                      f"({type(exc).__name__}).", code="Unreachable") from None
        if len(raw) > MAX_ANSWER_BYTES:
            raise IntegrationError(SYSTEM, "the answer is too large.", code="TooLarge")
        return _answer(raw, status)



def _stamp(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _answer(raw: bytes, status: int) -> Any:
    try:
        data = json.loads(raw) if raw.strip() else None
    except ValueError:
        data = raw.decode(errors="replace").strip()
    if status < 300:
        return data
    said = (data if isinstance(data, str) else json.dumps(data))[:300] if data else f"HTTP {status}"
    if status in (401, 403):
        raise Forbidden(SYSTEM, f"the request was refused (HTTP {status}): {said}", code=str(status))
    if status == 404:
        raise NotFound(SYSTEM, f"no such silence (or no v2 API at this URL): {said}", code="404")
    if status >= 500 and "expired" not in said.lower():
        raise Unavailable(SYSTEM, f"the server failed (HTTP {status}): {said}", code=str(status))
    raise SilenceError(SYSTEM, said, code=str(status))
