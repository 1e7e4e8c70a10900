"""Status page changes end in a verdict read back from Statuspage (issue 13 §1-§2): `statuspage open` is
undone by resolving that very incident, through a second approval; an update or a resolution says why it
has no undo. The stand-in keeps its incidents, so it is the judge of what the public page shows."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from commands.base import Services
from integrations.statuspage import Statuspage
from tests.harness import APPROVER, APPROVER2, OPERATOR, BotHarness
from tests.incident_support import StatuspageStandIn, start

KEY = "sp-verdict-key"
COMPONENTS = {"editor": "cmp-editor", "api": "cmp-api"}


@pytest.fixture
async def site() -> AsyncIterator[StatuspageStandIn]:
    stand_in = StatuspageStandIn()
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


@pytest.fixture
async def bot(sim: Any, tmp_path: Any, site: StatuspageStandIn) -> AsyncIterator[BotHarness]:
    services: Services = {"statuspage": Statuspage(site.url + "/v1", "page123", KEY, timeout=5)}
    harness = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}", services=services,
                          config={"statuspage": {"page_id": "page123", "components": COMPONENTS},
                                  "approvals": {"verify_timeout_seconds": 3}})
    yield harness
    await harness.close()


def message(bot: BotHarness, ts: str) -> dict[str, Any]:
    return next(m for m in bot.messages() if m["ts"] == ts)


def blocks_text(msg: dict[str, Any]) -> str:
    return json.dumps(msg["blocks"], ensure_ascii=False)


def buttons(msg: dict[str, Any]) -> dict[str, str]:
    return {e["action_id"]: e.get("value", "") for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"]}


async def request_and_approve(bot: BotHarness, text: str) -> tuple[dict[str, Any], str]:
    await bot.slash(text, user=OPERATOR)
    request = bot.last_request()
    await bot.click(request["ts"], "cf_approve", APPROVER)
    return request, " ".join(bot.thread_texts(request["ts"]))


def only_incident(site: StatuspageStandIn) -> dict[str, Any]:
    [incident] = site.incidents.values()
    return incident


async def test_open_is_verified_and_undo_resolves_that_incident(bot: BotHarness, site: StatuspageStandIn) -> None:
    request, thread = await request_and_approve(bot, "statuspage open Editor slow --components editor")
    incident = only_incident(site)
    assert incident["status"] == "investigating"
    assert "Verified in" in thread and "public incident “Editor slow” is investigating" in thread
    final = message(bot, request["ts"])
    assert "cf_undo" in buttons(final) and "resolve the public incident “Editor slow”" in blocks_text(final)

    await bot.click(request["ts"], "cf_undo", OPERATOR)
    undo = bot.last_request()
    assert undo["ts"] != request["ts"] and "Reverts request" in blocks_text(undo)
    assert incident["status"] == "investigating"  # nothing public changes before a second person approves
    await bot.click(undo["ts"], "cf_approve", APPROVER2)
    assert incident["status"] == "resolved"  # the stand-in: that very incident, resolved
    assert site.writes[-1].path == f"/v1/pages/page123/incidents/{incident['id']}"
    assert site.writes[-1].body["incident"]["components"] == {"cmp-editor": "operational"}
    undo_thread = " ".join(bot.thread_texts(undo["ts"]))
    assert "Verified in" in undo_thread and "is resolved" in undo_thread
    assert "No undo: subscribers were told it is resolved" in blocks_text(message(bot, undo["ts"]))


async def test_update_is_verified_with_its_text_and_has_no_undo(bot: BotHarness, site: StatuspageStandIn) -> None:
    await request_and_approve(bot, "statuspage open Editor slow")
    request, thread = await request_and_approve(bot, "statuspage update --status identified Cache node replaced")
    incident = only_incident(site)
    assert incident["status"] == "identified" and incident["incident_updates"][0]["body"] == "Cache node replaced"
    assert "Verified in" in thread and "is identified with the update posted" in thread
    final = message(bot, request["ts"])
    assert "cf_undo" not in buttons(final)
    assert "No undo: a public update cannot be unsaid" in blocks_text(final)


async def test_resolve_by_id_is_verified(bot: BotHarness, site: StatuspageStandIn) -> None:
    await request_and_approve(bot, "statuspage open Editor slow")
    sp_id = only_incident(site)["id"]
    await bot.slash("statuspage resolve --id nosuch1", user=OPERATOR)
    assert any("No open status page incident has id `nosuch1`" in t for t in bot.private_texts())
    _, thread = await request_and_approve(bot, f"statuspage resolve All good again --id {sp_id}")
    assert only_incident(site)["status"] == "resolved"
    assert site.writes[-1].body["incident"]["body"] == "All good again"
    assert "Verified in" in thread and "is resolved" in thread


async def test_a_change_the_page_did_not_keep_is_not_verified(bot: BotHarness, site: StatuspageStandIn) -> None:
    await request_and_approve(bot, "statuspage open Editor slow")
    site.ignore_status = True  # the page answers 200 but keeps its status
    request, thread = await request_and_approve(bot, "statuspage update --status monitoring Fix deployed")
    assert only_incident(site)["status"] == "investigating"
    assert "Not verified after" in thread and "is investigating, not monitoring" in thread
    final = blocks_text(message(bot, request["ts"]))
    assert "Not verified" in final
    action = await bot.runtime.store.get_action(request_id(bot, request))
    assert action is not None and action.verdict == "not_verified"


def request_id(bot: BotHarness, request: dict[str, Any]) -> str:
    text = blocks_text(request)
    return text.split("Request `")[1].split("`")[0]
