"""Statuspage (REST API v1) and PagerDuty (Events API v2) against local HTTP stand-ins that check
the documented requests: paths, `Authorization: OAuth <key>`, JSON bodies, dedup keys. Then the
whole flow through the Slack simulator: status page changes behind approval, paging tied to the
incident and resolved with it."""

from __future__ import annotations

import json
import time

import pytest

from commands.base import Services
from integrations.errors import Forbidden, Unavailable
from integrations.pagerduty import PagerDuty
from integrations.statuspage import Statuspage
from tests.harness import ADMIN, APPROVER, CHANNEL, OPERATOR, VIEWER
from tests.incident_support import PagerDutyStandIn, StatuspageStandIn, button, start

KEY, ROUTING = "sp-secret-key", "R0UTINGKEY0000000000000000000000"
COMPONENTS = {"editor": "cmp-editor", "api": "cmp-api"}


@pytest.fixture
async def statuspage_site():
    site = await StatuspageStandIn().start()
    yield site
    await site.stop()


@pytest.fixture
async def pagerduty_site():
    site = await PagerDutyStandIn().start()
    yield site
    await site.stop()


async def test_statuspage_client_sends_the_documented_requests(statuspage_site) -> None:
    client = Statuspage(statuspage_site.url + "/v1", "page123", KEY, timeout=5)
    try:
        created = await client.create_incident("Editor down", "investigating", "Looking.", "major", ["cmp-editor"])
        await client.update_incident(created["id"], "identified", "Found it.")
        await client.resolve_incident(created["id"], "Fixed.", ["cmp-editor"])
    finally:
        await client.close()
    post, patch, resolve = statuspage_site.requests
    assert (post.method, post.path) == ("POST", "/v1/pages/page123/incidents")
    assert post.headers["Authorization"] == f"OAuth {KEY}" and post.headers["Content-Type"] == "application/json"
    assert post.body == {"incident": {
        "name": "Editor down", "status": "investigating", "body": "Looking.", "impact_override": "major",
        "deliver_notifications": True, "component_ids": ["cmp-editor"], "components": {"cmp-editor": "partial_outage"}}}
    assert (patch.method, patch.path) == ("PATCH", f"/v1/pages/page123/incidents/{created['id']}")
    assert patch.body == {"incident": {"status": "identified", "body": "Found it.", "deliver_notifications": True}}
    assert resolve.body["incident"]["status"] == "resolved"
    assert resolve.body["incident"]["components"] == {"cmp-editor": "operational"}


async def test_pagerduty_client_sends_the_documented_events(pagerduty_site) -> None:
    client = PagerDuty(pagerduty_site.url + "/v2/enqueue", ROUTING, source="cf-test", timeout=5)
    try:
        key = await client.trigger(summary="Editor down", severity="critical", dedup_key="cf-inc-1-primary",
                                   group="collaboration", details={"escalation_level": "primary"})
        await client.resolve(key)
    finally:
        await client.close()
    trigger, resolve = pagerduty_site.requests
    assert trigger.path == "/v2/enqueue" and trigger.headers["Content-Type"] == "application/json"
    assert "Authorization" not in trigger.headers  # the routing key travels in the body only
    assert trigger.body == {"routing_key": ROUTING, "event_action": "trigger", "dedup_key": "cf-inc-1-primary",
                            "client": "cf", "payload": {"summary": "Editor down", "source": "cf-test",
                                                        "severity": "critical", "group": "collaboration",
                                                        "custom_details": {"escalation_level": "primary"}}}
    assert resolve.body == {"routing_key": ROUTING, "event_action": "resolve", "dedup_key": "cf-inc-1-primary"}


async def test_vendor_errors_are_one_clear_line(statuspage_site, pagerduty_site) -> None:
    statuspage_site.fail_with = 401
    client = Statuspage(statuspage_site.url, "page123", "wrong-key", timeout=5)
    with pytest.raises(Forbidden, match="credentials were refused"):
        await client.create_incident("x", "investigating", "y", "minor", [])
    await client.close()
    pagerduty_site.fail_with = 429
    pd = PagerDuty(pagerduty_site.url, ROUTING, timeout=5)
    with pytest.raises(Unavailable, match="rate limited"):
        await pd.trigger(summary="x", severity="info", dedup_key="k")
    await pd.close()
    dead = PagerDuty("http://127.0.0.1:9/v2/enqueue", ROUTING, timeout=2)
    with pytest.raises(Unavailable, match="cannot reach"):
        await dead.resolve("k")
    await dead.close()


@pytest.fixture
async def bot(sim, tmp_path, statuspage_site, pagerduty_site):
    services: Services = {"statuspage": Statuspage(statuspage_site.url + "/v1", "page123", KEY, timeout=5),
                "pagerduty": PagerDuty(pagerduty_site.url + "/v2/enqueue", ROUTING, timeout=5)}
    harness = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}", services=services,
                          config={"statuspage": {"page_id": "page123", "components": COMPONENTS}})
    yield harness
    await harness.close()


def incident_channel(sim) -> str:
    return next(c["id"] for c in sim.channels.values() if c["name"].startswith("inc-"))


async def approve_last(bot, channel: str) -> dict:
    request = bot.last_request(channel)
    await bot.click(request["ts"], "cf_approve", APPROVER, channel=channel)
    return request


async def test_incident_with_status_page_and_paging(bot, sim, statuspage_site, pagerduty_site) -> None:
    await bot.slash("incident declare sev1 Editor is down", user=OPERATOR)
    cid = incident_channel(sim)

    await bot.slash("statuspage open --components editor,api", user=OPERATOR, channel=cid)
    assert statuspage_site.requests == []  # public communication waits for a second person
    request = await approve_last(bot, cid)
    [opened] = statuspage_site.writes  # (and the reads that verified it)
    assert opened.body["incident"]["name"] == "Editor is down"  # the incident's title by default
    assert opened.body["incident"]["impact_override"] == "critical"  # from SEV1
    assert opened.body["incident"]["components"] == {"cmp-editor": "major_outage", "cmp-api": "major_outage"}
    assert any("Done:" in t and "stspg.io" in t for t in bot.thread_texts(request["ts"], cid))

    await bot.slash("incident update Root cause found --status identified", user=OPERATOR, channel=cid)
    update = sim.messages(cid)[-1]
    offer = button(update, "Post to status page")
    assert offer["value"] == "statuspage update --status identified 'Root cause found'"
    await bot.click(update["ts"], offer["action_id"], OPERATOR, channel=cid)
    await approve_last(bot, cid)
    patch = statuspage_site.writes[-1]
    assert patch.method == "PATCH" and patch.body["incident"] == {
        "status": "identified", "body": "Root cause found", "deliver_notifications": True}

    await bot.slash("page primary", user=OPERATOR, channel=cid)  # the summary's "Page on-call" button line
    await bot.slash("page manager Customers are calling --severity error", user=OPERATOR, channel=cid)
    primary, manager = pagerduty_site.requests
    assert primary.body["dedup_key"] == "cf-inc-1-primary" and primary.body["payload"]["severity"] == "critical"
    assert primary.body["payload"]["summary"] == "[INC-1 SEV1] Editor is down"
    assert manager.body["dedup_key"] == "cf-inc-1-manager" and manager.body["payload"]["severity"] == "error"
    assert manager.body["payload"]["summary"] == "[INC-1 SEV1] Customers are calling"

    await bot.slash("incident resolve", user=OPERATOR, channel=cid)
    resolves = [r.body for r in pagerduty_site.requests if r.body["event_action"] == "resolve"]
    assert sorted(r["dedup_key"] for r in resolves) == ["cf-inc-1-manager", "cf-inc-1-primary"]
    resolution = sim.messages(cid)[-1]
    await bot.click(resolution["ts"], button(resolution, "Resolve status page")["action_id"], OPERATOR, channel=cid)
    await approve_last(bot, cid)
    closing = statuspage_site.writes[-1]
    assert closing.body["incident"]["status"] == "resolved"
    assert closing.body["incident"]["components"] == {"cmp-editor": "operational", "cmp-api": "operational"}
    events = [e.event for e in await bot.runtime.store.audit_for_incident("INC-1")]
    for expected in ("statuspage_opened", "statuspage_updated", "paged", "page_resolved", "statuspage_resolved"):
        assert expected in events, expected
    assert KEY not in json.dumps([c.args for c in sim.calls]) and ROUTING not in json.dumps([c.args for c in sim.calls])


async def test_statuspage_without_approval_when_configured(sim, tmp_path, statuspage_site) -> None:
    services: Services = {"statuspage": Statuspage(statuspage_site.url, "page123", KEY, timeout=5)}
    harness = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}", services=services,
                          config={"statuspage": {"page_id": "page123", "require_approval": False}})
    try:
        await harness.slash("statuspage open Scheduled database maintenance --impact minor", user=OPERATOR)
        assert len(statuspage_site.writes) == 1
        assert statuspage_site.writes[0].body["incident"]["name"] == "Scheduled database maintenance"
        await harness.slash("statuspage resolve", user=OPERATOR)
        assert statuspage_site.writes[-1].body["incident"]["status"] == "resolved"
        await harness.slash("statuspage update --status monitoring nothing is open now", user=OPERATOR)
        assert any("No status page incident is open" in t for t in harness.private_texts())
    finally:
        await harness.close()


async def test_not_configured_and_bad_input(sim, tmp_path) -> None:
    harness = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}")
    try:
        await harness.slash("page primary The editor is down", user=OPERATOR)
        await harness.slash("statuspage open Editor down", user=OPERATOR)
        await harness.slash("page primary x", user=VIEWER)
        await harness.slash("oncall", user=VIEWER)
        texts = " ".join(harness.private_texts())
        assert "PagerDuty is not configured" in texts and "+1-555-0001" in texts
        assert "status page is not configured" in texts
        assert "operator* role" in texts
        table = json.dumps(harness.messages(CHANNEL)[-1]["blocks"])
        assert "Engineering Manager" in table and "+1-555-0003" in table
    finally:
        await harness.close()


async def test_unknown_component_is_refused(bot, statuspage_site) -> None:
    await bot.slash("statuspage open Slow editor --components editor,billing", user=ADMIN)
    assert any("Unknown status page component billing" in t for t in bot.private_texts())
    assert bot.requests() == [] and statuspage_site.requests == []


async def test_page_outside_an_incident_has_its_own_key(bot, pagerduty_site) -> None:
    started = time.time()
    await bot.slash("page Websocket drops everywhere", user=OPERATOR)
    [event] = pagerduty_site.requests
    assert event.body["dedup_key"].startswith("cf-page-") and event.body["payload"]["severity"] == "critical"
    assert event.body["payload"]["summary"] == "Websocket drops everywhere"
    assert time.time() - started < 5
