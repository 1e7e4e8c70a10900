"""Atlassian Statuspage, REST API v1: open, update and resolve a public incident.

    POST  {api_url}/pages/{page_id}/incidents                 {"incident": {...}}
    PATCH {api_url}/pages/{page_id}/incidents/{incident_id}   {"incident": {...}}
    GET   {api_url}/pages/{page_id}/incidents/{incident_id}   (read back after a change)
    Authorization: OAuth <api key>

An incident carries `name`, `status` (investigating, identified, monitoring, resolved), `body` (the
update's text), `impact_override` (none, minor, major, critical), `component_ids` and `components`
(component id -> its status). The key comes from the environment (STATUSPAGE_API_KEY) and is only
ever put in the Authorization header.
"""

from __future__ import annotations

from typing import Any

from integrations.webjson import JsonClient

SYSTEM = "Statuspage"
# What an incident's impact means for the components it names, and their status once it resolves.
COMPONENT_STATUS = {"none": "degraded_performance", "minor": "degraded_performance", "major": "partial_outage",
                    "critical": "major_outage"}
OPERATIONAL = "operational"


class Statuspage:
    def __init__(self, api_url: str, page_id: str, api_key: str, timeout: float = 10.0) -> None:
        self.base = api_url.rstrip("/")
        self.page_id = page_id
        self._key = api_key
        self._http = JsonClient(SYSTEM, timeout)

    @property
    def where(self) -> str:
        return f"page {self.page_id} at {self.base}"

    def _url(self, incident_id: str | None = None) -> str:
        url = f"{self.base}/pages/{self.page_id}/incidents"
        return f"{url}/{incident_id}" if incident_id else url

    async def _send(self, method: str, url: str, what: str, incident: dict[str, Any] | None) -> dict[str, Any]:
        body = None if incident is None else {"incident": incident}
        answer = await self._http.request(method, url, what=what, headers={"Authorization": f"OAuth {self._key}"},
                                          body=body)
        return dict(answer) if isinstance(answer, dict) else {}

    async def get_incident(self, incident_id: str) -> dict[str, Any]:
        """The incident as the page has it now: `status`, `incident_updates` (newest first), `components`."""
        return await self._send("GET", self._url(incident_id), f"read incident {incident_id}", None)

    async def create_incident(self, name: str, status: str, body: str, impact: str,
                              component_ids: list[str]) -> dict[str, Any]:
        """Open a public incident; the named components take the status its impact implies."""
        incident: dict[str, Any] = {
            "name": name,
            "status": status,
            "body": body,
            "impact_override": impact,
            "deliver_notifications": True,
        }
        if component_ids:
            incident["component_ids"] = component_ids
            incident["components"] = {c: COMPONENT_STATUS[impact] for c in component_ids}
        return await self._send("POST", self._url(), "create the incident", incident)

    async def update_incident(self, incident_id: str, status: str, body: str,
                              component_ids: list[str] | None = None, component_status: str | None = None
                              ) -> dict[str, Any]:
        """Post an update; with components, set them to `component_status`."""
        incident: dict[str, Any] = {"status": status, "body": body, "deliver_notifications": True}
        if component_ids and component_status:
            incident["component_ids"] = component_ids
            incident["components"] = {c: component_status for c in component_ids}
        return await self._send("PATCH", self._url(incident_id), f"update incident {incident_id}", incident)

    async def resolve_incident(self, incident_id: str, body: str, component_ids: list[str]) -> dict[str, Any]:
        """Resolve it and put its components back to operational."""
        return await self.update_incident(incident_id, "resolved", body, component_ids, OPERATIONAL)

    async def close(self) -> None:
        await self._http.close()
