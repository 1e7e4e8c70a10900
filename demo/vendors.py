"""Demo part: local stand-ins for Atlassian Statuspage and PagerDuty (`demo.app.SETUPS`).

`cfbot demo` has no internet and no accounts, yet `statuspage open` and `page primary` should do
what they do in production. This part serves both APIs' few endpoints on a free local port — the
same paths, status codes and answer shapes the real services use — and points real `Statuspage`
and `PagerDuty` clients at them. What they received is kept in memory for the session only.
"""

from __future__ import annotations

import itertools
import json
import secrets
from typing import Any

from aiohttp import web

from demo.parts import DemoEnv, DemoPart
from integrations.pagerduty import PagerDuty
from integrations.statuspage import Statuspage

PAGE_ID = "cfdemo"
API_KEY = "demo-statuspage-key"
ROUTING_KEY = "demo0routing0key0000000000000000"
COMPONENTS = {"editor": "cmp0editor", "api": "cmp0api", "websocket": "cmp0websocket"}


class VendorStandIns:
    """Statuspage v1 (`/v1/pages/{page}/incidents[/{id}]`) and PagerDuty Events v2 (`/v2/enqueue`)."""

    def __init__(self) -> None:
        self.incidents: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/pages/{page}/incidents", self._create)
        app.router.add_patch("/v1/pages/{page}/incidents/{incident}", self._update)
        app.router.add_get("/v1/pages/{page}/incidents/{incident}", self._read)
        app.router.add_post("/v2/enqueue", self._enqueue)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any] | None:
        try:
            data = json.loads(await request.text())
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    async def _create(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"OAuth {API_KEY}":
            return web.json_response({"error": "Could not authenticate"}, status=401)
        body = await self._body(request)
        if body is None or not isinstance(body.get("incident"), dict) or not body["incident"].get("name"):
            return web.json_response({"error": "incident[name] is required"}, status=422)
        incident_id = f"demo{next(self._ids):04d}"
        incident = {"id": incident_id, "page_id": request.match_info["page"],
                    "shortlink": f"https://stspg.io/{secrets.token_hex(3)}", **body["incident"]}
        incident["incident_updates"] = [_update_of(body["incident"])]
        self.incidents[incident_id] = incident
        return web.json_response(incident, status=201)

    async def _update(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"OAuth {API_KEY}":
            return web.json_response({"error": "Could not authenticate"}, status=401)
        incident = self.incidents.get(request.match_info["incident"])
        body = await self._body(request)
        if incident is None:
            return web.json_response({"error": "Incident not found"}, status=404)
        if body is None or not isinstance(body.get("incident"), dict):
            return web.json_response({"error": "incident is required"}, status=422)
        incident.update(body["incident"])
        incident["incident_updates"] = [_update_of(incident), *incident.get("incident_updates", [])]
        return web.json_response(incident)

    async def _read(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"OAuth {API_KEY}":
            return web.json_response({"error": "Could not authenticate"}, status=401)
        incident = self.incidents.get(request.match_info["incident"])
        if incident is None:
            return web.json_response({"error": "Incident not found"}, status=404)
        return web.json_response(incident)

    async def _enqueue(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if body is None or body.get("routing_key") != ROUTING_KEY or body.get("event_action") not in (
                "trigger", "acknowledge", "resolve"):
            return web.json_response({"status": "invalid event", "message": "Event object is invalid",
                                      "errors": ["routing_key or event_action is invalid"]}, status=400)
        self.events.append(body)
        return web.json_response({"status": "success", "message": "Event processed",
                                  "dedup_key": body.get("dedup_key") or secrets.token_hex(16)}, status=202)


def _update_of(incident: dict[str, Any]) -> dict[str, Any]:
    """One entry of `incident_updates`, newest first, as Statuspage lists them."""
    return {"status": incident.get("status"), "body": incident.get("body", "")}


async def vendors_part(env: DemoEnv) -> DemoPart:
    stand_ins = VendorStandIns()
    url = await stand_ins.start()
    env.stack.push_async_callback(stand_ins.stop)
    statuspage = Statuspage(f"{url}/v1", PAGE_ID, API_KEY, timeout=5)
    pagerduty = PagerDuty(f"{url}/v2/enqueue", ROUTING_KEY, source="cf-demo", timeout=5)
    config = {"statuspage": {"api_url": f"{url}/v1", "page_id": PAGE_ID, "components": COMPONENTS},
              "pagerduty": {"events_url": f"{url}/v2/enqueue", "source": "cf-demo"}}
    return DemoPart(services={"statuspage": statuspage, "pagerduty": pagerduty}, config=config,
                    note=f"Status page and PagerDuty: local stand-ins at {url} (components: editor, api, websocket)")
