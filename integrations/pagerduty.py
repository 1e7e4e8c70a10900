"""PagerDuty Events API v2: trigger and resolve an alert that pages the on-call rotation.

    POST {events_url}   (default https://events.pagerduty.com/v2/enqueue)
    {"routing_key": ..., "event_action": "trigger"|"resolve", "dedup_key": ...,
     "payload": {"summary", "source", "severity", "component", "group", "class", "custom_details"},
     "client": "cf", "links": [...]}

The answer is `202 {"status": "success", "dedup_key": ...}`. The dedup key is chosen by the caller
and tied to the incident, so paging twice for one incident updates one PagerDuty alert, and
resolving the incident resolves it. The routing key (env PAGERDUTY_ROUTING_KEY) goes only in the body.
"""

from __future__ import annotations

from typing import Any

from integrations.webjson import JsonClient

SYSTEM = "PagerDuty"
SUMMARY_LIMIT = 1024


class PagerDuty:
    def __init__(self, events_url: str, routing_key: str, source: str = "cf", timeout: float = 10.0) -> None:
        self.events_url = events_url
        self.source = source
        self._key = routing_key
        self._http = JsonClient(SYSTEM, timeout)

    @property
    def where(self) -> str:
        return self.events_url

    async def _enqueue(self, event: dict[str, Any], what: str) -> str:
        answer = await self._http.request("POST", self.events_url, what=what,
                                          body={"routing_key": self._key, **event})
        return str(answer.get("dedup_key") or event["dedup_key"]) if isinstance(answer, dict) else event["dedup_key"]

    async def trigger(self, *, summary: str, severity: str, dedup_key: str, component: str | None = None,
                      group: str | None = None, event_class: str | None = None,
                      details: dict[str, Any] | None = None, links: list[dict[str, str]] | None = None) -> str:
        """Page; returns the dedup key PagerDuty filed it under."""
        payload: dict[str, Any] = {"summary": summary[:SUMMARY_LIMIT], "source": self.source, "severity": severity}
        for key, value in (("component", component), ("group", group), ("class", event_class)):
            if value:
                payload[key] = value
        if details:
            payload["custom_details"] = details
        event: dict[str, Any] = {"event_action": "trigger", "dedup_key": dedup_key, "payload": payload,
                                 "client": "cf"}
        if links:
            event["links"] = links
        return await self._enqueue(event, "trigger the page")

    async def resolve(self, dedup_key: str) -> None:
        await self._enqueue({"event_action": "resolve", "dedup_key": dedup_key}, f"resolve {dedup_key}")

    async def close(self) -> None:
        await self._http.close()
