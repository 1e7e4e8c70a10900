"""Incidents through the Slack simulator: declare (one line and modal), the channel and its name,
topic, invites, the pinned checklist, the announcement; assign, update, resolve, timeline; commands
run in the incident channel audited under the incident."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.harness import ADMIN, APPROVER, CHANNEL, OPERATOR, VIEWER
from tests.incident_support import button, buttons, start


@pytest.fixture
async def bot(sim, tmp_path):
    sim.usergroups = {"S0RESPOND": ["U0RESP1", "U0RESP2"]}
    harness = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}",
                          config={"incidents": {"responders": ["U0ONCALL", "S0RESPOND"]}})
    yield harness
    await harness.close()


def today() -> str:
    return time.strftime("%Y%m%d", time.gmtime())


def channel_named(sim, name: str) -> dict[str, Any]:
    found = [c for c in sim.channels.values() if c["name"] == name]
    assert found, f"no channel #{name}; channels: {[c['name'] for c in sim.channels.values()]}"
    return found[0]


def pinned(sim, channel: dict[str, Any]) -> dict[str, Any]:
    ts = sim.pins(channel["id"])
    assert len(ts) == 1
    return next(m for m in sim.messages(channel["id"]) if m["ts"] == ts[0])


async def test_one_line_declare_builds_the_incident_channel(bot, sim) -> None:
    delivery = await bot.slash("incident declare sev1 Editor is down", user=OPERATOR)
    assert delivery.status == 200 and delivery.elapsed < 1.0
    ch = channel_named(sim, f"inc-{today()}-editor-is-down")
    assert "SEV1" in ch["topic"]["value"] and "investigating" in ch["topic"]["value"]
    assert f"<@{OPERATOR}>" in ch["topic"]["value"]  # the declarer commands until someone else is assigned
    assert "INC-1" in ch["purpose"]["value"]
    assert {OPERATOR, "U0ONCALL", "U0RESP1", "U0RESP2"} <= set(ch["members"])
    summary = pinned(sim, ch)
    text = json.dumps(summary["blocks"])
    assert "Runbook checklist" in text and "Complete system outage" in text and "/cf status" in text
    values = {b["text"]["text"]: b["value"] for b in buttons(summary)}
    assert values["Page on-call"] == "page primary"
    assert values["Update status page (approval)"] == "statuspage open"
    assert all(b["action_id"].startswith("cf_run:") for b in buttons(summary))
    announcement = bot.messages(CHANNEL)[-1]
    assert f"<#{ch['id']}>" in json.dumps(announcement["blocks"]) and "SEV1" in json.dumps(announcement["blocks"])
    assert any("INC-1 declared" in t for t in bot.private_texts())
    events = [e.event for e in await bot.runtime.store.audit_for_incident("INC-1")]
    assert events[0] == "declared"


async def test_name_taken_moves_to_the_next_suffix_and_long_titles_fit(bot, sim) -> None:
    base = f"inc-{today()}-database-outage"
    sim.add_channel(name=base)
    sim.add_channel(name=f"{base}-2")
    await bot.slash("incident declare sev2 Database outage", user=OPERATOR)
    ch = channel_named(sim, f"{base}-3")
    assert "Database outage" in json.dumps(pinned(sim, ch)["blocks"])  # checklist for the database type
    refused = [c for c in sim.calls if c.method == "conversations.create" and c.error == "name_taken"]
    assert len(refused) == 2

    await bot.slash("incident declare sev3 " + "Ünïcode Title, with punctuation! " * 6, user=OPERATOR)
    created = [c.args["name"] for c in sim.calls if c.method == "conversations.create" and not c.error]
    assert len(created[-1]) <= 80 and created[-1].startswith(f"inc-{today()}-unicode-title-with-punctuation")


async def test_the_type_is_guessed_only_from_unambiguous_words_and_said_so(bot, sim) -> None:
    # issue 13 §4: "leak" (and the "ql" of graphql) once made a memory leak a data breach
    await bot.slash("incident declare sev2 Memory leak in graphql-api", user=OPERATOR)
    text = json.dumps(pinned(sim, channel_named(sim, f"inc-{today()}-memory-leak-in-graphql-api"))["blocks"])
    assert "High memory / CPU" in text and "Data breach" not in text and "isolate the database" not in text
    reply = bot.private_texts()[-1]
    assert "`memory` was guessed from the title" in reply and "--type KIND" in reply

    await bot.slash("incident declare sev3 Something odd with customer invoices", user=OPERATOR)
    text = json.dumps(pinned(sim, channel_named(sim, f"inc-{today()}-something-odd-with-customer-invoices"))["blocks"])
    assert "Runbook checklist \\u2014 Incident*" in text  # nothing unambiguous: the general checklist
    assert "general checklist" in bot.private_texts()[-1]

    await bot.slash("incident declare sev2 Customer data leak --type security", user=OPERATOR)
    assert "guessed" not in bot.private_texts()[-1]  # chosen, not guessed


async def test_modal_declares_with_its_fields(bot, sim) -> None:
    await bot.slash("incident declare", user=OPERATOR)
    assert len(sim.views) == 1
    view = next(iter(sim.views.values()))
    assert view["callback_id"] == "cf_incident_declare" and view["private_metadata"] == CHANNEL

    empty = await bot.driver.submit_view(view, {"title": {"value": ""}}, user=OPERATOR)
    assert empty.json()["response_action"] == "errors" and "title" in empty.json()["errors"]

    values = {"title": {"value": "Search is slow"},
              "severity": {"value": {"type": "static_select", "selected_option": {"value": "sev3"}}},
              "kind": {"value": {"type": "static_select", "selected_option": {"value": "database"}}}}
    delivery = await bot.driver.submit_view(view, values, user=OPERATOR)
    await bot.settle()
    assert delivery.status == 200 and not delivery.body
    ch = channel_named(sim, f"inc-{today()}-search-is-slow")
    assert "SEV3" in ch["topic"]["value"]
    assert "Database outage" in json.dumps(pinned(sim, ch)["blocks"])


async def test_viewer_gets_no_modal_and_no_incident(bot, sim) -> None:
    await bot.slash("incident declare", user=VIEWER)
    await bot.slash("incident declare sev1 Everything is on fire", user=VIEWER)
    assert not sim.views
    assert not [c for c in sim.calls if c.method == "conversations.create"]
    assert any("operator* role" in t for t in bot.private_texts())


async def test_assign_update_resolve_and_timeline(bot, sim) -> None:
    await bot.slash("incident declare sev2 GraphQL errors", user=OPERATOR)
    ch = channel_named(sim, f"inc-{today()}-graphql-errors")
    cid = ch["id"]

    await bot.slash(f"incident assign commander <@{APPROVER}|arjun>", user=OPERATOR, channel=cid)
    assert f"commander <@{APPROVER}>" in sim.channels[cid]["topic"]["value"]
    assert any(f"made <@{APPROVER}> the commander" in m["text"] for m in sim.messages(cid))

    await bot.slash("incident update --status identified Connection pool exhausted", user=OPERATOR, channel=cid)
    update = sim.messages(cid)[-1]
    assert "Connection pool exhausted" in json.dumps(update["blocks"])
    assert "identified" in sim.channels[cid]["topic"]["value"]

    await bot.slash("oncall", user=VIEWER, channel=cid)  # any command here is audited under the incident
    await bot.slash("incident resolve", user=ADMIN, channel=cid)
    assert "resolved" in sim.channels[cid]["topic"]["value"]
    resolution = sim.messages(cid)[-1]
    assert "INC-1 resolved" in json.dumps(resolution["blocks"])
    assert button(resolution, "Postmortem draft")["value"] == "incident timeline"
    assert not buttons(pinned(sim, ch))  # the summary keeps its checklist but loses its buttons
    assert "resolved after" in json.dumps(bot.messages(CHANNEL)[-1]["blocks"])

    await bot.click(resolution["ts"], button(resolution, "Postmortem draft")["action_id"], VIEWER, channel=cid)
    draft = next(f for f in sim.files if f["filename"] == "postmortem-inc-1.md")
    assert draft["thread_ts"] == resolution["ts"]
    md = draft["content"].decode()
    for step in ("| declared |", "| assigned |", "| updated |", "`oncall`", "| resolved |", "Connection pool"):
        assert step in md, step
    entries = await bot.runtime.store.audit_for_incident("INC-1")
    assert any(e.event == "ran" and e.command == "oncall" for e in entries)

    await bot.slash("incident resolve", user=ADMIN, channel=cid)
    assert any("already resolved" in t for t in bot.private_texts())


async def test_outside_the_channel_the_incident_must_be_clear(bot, sim) -> None:
    await bot.slash("incident update Still looking", user=OPERATOR)
    assert any("No incident is open" in t for t in bot.private_texts())
    await bot.slash("incident declare sev2 First thing", user=OPERATOR)
    await bot.slash("incident update Looking into it", user=OPERATOR)  # the only open one
    first = channel_named(sim, f"inc-{today()}-first-thing")
    assert "Looking into it" in json.dumps(sim.messages(first["id"])[-1]["blocks"])
    await bot.slash("incident declare sev3 Second thing", user=OPERATOR)
    await bot.slash("incident update Which one?", user=OPERATOR)
    assert any("Several incidents are open (INC-1, INC-2)" in t for t in bot.private_texts())
    await bot.slash("incident update --id INC-2 This one", user=OPERATOR)
    second = channel_named(sim, f"inc-{today()}-second-thing")
    assert "This one" in json.dumps(sim.messages(second["id"])[-1]["blocks"])
    await bot.slash("incident list", user=VIEWER)
    listing = json.dumps(bot.messages(CHANNEL)[-1]["blocks"])
    assert "INC-1" in listing and "INC-2" in listing


async def test_bad_assignments_are_refused(bot, sim) -> None:
    await bot.slash("incident declare sev4 Minor glitch", user=OPERATOR)
    cid = channel_named(sim, f"inc-{today()}-minor-glitch")["id"]
    await bot.slash("incident assign captain <@U0X>", user=OPERATOR, channel=cid)
    await bot.slash("incident assign comms @someone", user=OPERATOR, channel=cid)
    texts = " ".join(bot.private_texts())
    assert "not one of: commander, comms, scribe" in texts and "is not a Slack user" in texts
