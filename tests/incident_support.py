"""Helpers for the incident, alert, paging and job tests: a bot with a controllable clock, the
Alertmanager webhook as Alertmanager sends it, and local Statuspage / PagerDuty stand-ins that
record every request so tests can assert the documented bodies and headers."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.config import parse_settings
from bot.messenger import SlackMessenger, web_client
from bot.slack_app import group_resolver
from commands.base import Services
from incidents.assemble import build_runtime, build_web_application
from tests.harness import BASE_CONFIG, BOT_TOKEN, SIGNING_SECRET, BotHarness, merge
from tests.slack_sim import SlackDriver, SlackSim

ALERT_TOKEN = "test-alert-token"


class FakeClock:
    """Epoch seconds that only move when a test says so."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def start(sim: SlackSim, database_url: str, *, config: dict[str, Any] | None = None,
                services: Services | None = None, clock: Any = time.time) -> BotHarness:
    """`tests.harness.start_bot`, plus a clock for the runtime (jobs, reminders, expiry)."""
    settings = parse_settings(merge(BASE_CONFIG, config or {}), "test config")
    client = web_client(BOT_TOKEN, sim.api_url)
    runtime = await build_runtime(settings, database_url=database_url, messenger=SlackMessenger(client),
                                  services=services.copy() if services else Services(),
                                  resolve_group=group_resolver(client), clock=clock)
    runner = web.AppRunner(build_web_application(runtime, client, SIGNING_SECRET), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    app_url = f"http://127.0.0.1:{port}/slack/events"
    await runtime.start()
    return BotHarness(sim, runtime, SlackDriver(sim, app_url, SIGNING_SECRET), runner, app_url)


def alerts_url(bot: BotHarness) -> str:
    return bot.app_url.replace("/slack/events", "/alerts/alertmanager")


async def post_webhook(bot: BotHarness, payload: Any, token: str | None = ALERT_TOKEN,
                       raw: bytes | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = raw if raw is not None else json.dumps(payload).encode()
    async with aiohttp.ClientSession() as session:
        async with session.post(alerts_url(bot), data=body, headers=headers) as resp:
            text = await resp.text()
    await bot.settle()
    try:
        return resp.status, json.loads(text)
    except ValueError:
        return resp.status, text


def am_alert(name: str, status: str = "firing", *, severity: str = "warning", fingerprint: str | None = None,
             starts: str = "2026-01-10T10:00:00Z", labels: dict[str, str] | None = None,
             summary: str = "") -> dict[str, Any]:
    """One alert as Alertmanager's webhook (version 4) carries it."""
    return {
        "status": status,
        "labels": {"alertname": name, "severity": severity, "namespace": "collaboration", **(labels or {})},
        "annotations": {"summary": summary or f"{name} is firing", "runbook_url": "https://runbook.example/x"},
        "startsAt": starts,
        "endsAt": "2026-01-10T10:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph?g0.expr=up&g0.tab=1",
        "fingerprint": fingerprint or f"fp{abs(hash(name)) % 10**8:08d}",
    }


def am_payload(*alerts: dict[str, Any], group: str = "{}:{alertname=\"x\"}") -> dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {
        "version": "4", "groupKey": group, "truncatedAlerts": 0, "status": status, "receiver": "cf",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager.example", "alerts": list(alerts),
    }


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [el for b in message.get("blocks", []) if b.get("type") == "actions" for el in b["elements"]]


def button(message: dict[str, Any], label_start: str) -> dict[str, Any]:
    for el in buttons(message):
        if el["text"]["text"].startswith(label_start):
            return el
    raise AssertionError(f"no button {label_start!r}: {[b['text']['text'] for b in buttons(message)]}")


# --- SaaS stand-ins ------------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class StandIn:
    """A local HTTP server that records requests; `reply` decides each answer."""

    requests: list[Seen] = field(default_factory=list)
    url: str = ""
    fail_with: int | None = None
    _runner: web.AppRunner | None = None

    async def start(self) -> StandIn:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.text()
        body = json.loads(raw) if raw else None
        self.requests.append(Seen(request.method, request.path, dict(request.headers), body))
        if self.fail_with is not None:
            return web.json_response({"error": "refused by the stand-in"}, status=self.fail_with)
        status, answer = self.reply(request.method, request.path, body)
        return web.json_response(answer, status=status)

    def reply(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        raise NotImplementedError


@dataclass
class StatuspageStandIn(StandIn):
    """Statuspage v1 as cf uses it. Incidents are kept, so a GET reads back what was written (with
    `incident_updates`, newest first, as the API lists them); `ignore_status` makes the page accept a
    PATCH but keep its status (a change that did not take, for the *Not verified* tests)."""

    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    ignore_status: bool = False

    @property
    def writes(self) -> list[Seen]:
        """What the page was asked to change (reads left out)."""
        return [r for r in self.requests if r.method != "GET"]

    def reply(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        incident = (body or {}).get("incident", {})
        sp_id = path.rsplit("/", 1)[-1]
        if method == "GET":
            found = self.incidents.get(sp_id)
            return (200, found) if found else (404, {"error": "Incident not found"})
        update = {"status": incident.get("status"), "body": incident.get("body", "")}
        if method == "POST":
            created = {"id": f"sp{len(self.requests)}", "shortlink": "https://stspg.io/abc", **incident}
            self.incidents[created["id"]] = {**created, "incident_updates": [update]}
            return 201, created
        stored = self.incidents.get(sp_id)
        if stored is not None:
            kept = stored["status"]
            stored.update(incident)
            stored["incident_updates"] = [update, *stored["incident_updates"]]
            if self.ignore_status:
                stored["status"] = kept
        return 200, {"id": sp_id, **incident}


class PagerDutyStandIn(StandIn):
    def reply(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        return 202, {"status": "success", "message": "Event processed", "dedup_key": body["dedup_key"]}
