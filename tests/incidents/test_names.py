"""People by name, not by raw user id, where Slack would not render a mention (issue 13 §4): the
`incident list` table and the postmortem draft (a Markdown file). Names come from the one lookup the
audit view uses (`AuditTrail.names`: Slack's users.info, cached); Slack messages keep `<@U…>`
mentions, which Slack itself shows as names."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from bot.store import Action
from tests.harness import ADMIN, APPROVER, CHANNEL, OPERATOR, VIEWER
from tests.incident_support import button, start

PEOPLE = {
    OPERATOR: {"name": "omar", "real_name": "Omar Operator", "display_name": "omar"},
    APPROVER: {"name": "priya", "real_name": "Priya Raman", "display_name": "priya"},
    VIEWER: {"name": "vic", "real_name": "Vic Viewer", "display_name": "vic"},
    ADMIN: {"name": "ada", "real_name": "Ada Admin", "display_name": ""},  # no display name: the real name
}
RAW_IDS = re.compile(r"\bU0[A-Z0-9]+\b")


@pytest.fixture
async def bot(sim, tmp_path):
    sim.users = dict(PEOPLE)
    harness = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}")
    yield harness
    await harness.close()


def table_text(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"])


def incident_channel(sim) -> str:
    return next(c["id"] for c in sim.channels.values() if c["name"].startswith("inc-"))


async def test_incident_list_names_the_commander(bot, sim) -> None:
    await bot.slash("incident declare sev2 GraphQL errors", user=OPERATOR)
    await bot.slash("incident declare sev3 Slow uploads", user=OPERATOR)
    await bot.slash(f"incident assign commander <@{APPROVER}|priya> --id INC-2", user=OPERATOR)
    await bot.slash("incident list", user=VIEWER)
    listing = table_text(bot.messages(CHANNEL)[-1]).split("```")[1]  # the table (a code block: no mentions)
    rows = {line.split()[0]: line for line in listing.split("\\n") if line.startswith("INC-")}
    assert re.search(r"\bomar\b", rows["INC-1"]) and re.search(r"\bpriya\b", rows["INC-2"]), listing
    assert not RAW_IDS.search(listing), listing


async def test_postmortem_draft_names_people(bot, sim) -> None:
    await bot.slash("incident declare sev2 GraphQL errors", user=OPERATOR)
    cid = incident_channel(sim)
    await bot.slash(f"incident assign commander <@{APPROVER}|priya>", user=OPERATOR, channel=cid)
    await bot.slash(f"incident update Asked <@{VIEWER}|vic> to watch the pool", user=OPERATOR, channel=cid)
    now = time.time()
    await bot.runtime.store.create_action(Action(
        id="a1b2c3d4", command="scale", args={"deployment": "graphql-api", "replicas": 6}, requester=OPERATOR,
        channel=cid, state="pending", summary="Scale graphql-api to 6", approver_role="approver",
        created_at=now, expires_at=now + 900, updated_at=now, incident_id="INC-1"))
    await bot.slash("incident resolve", user=ADMIN, channel=cid)

    update = next(m for m in sim.messages(cid) if "watch the pool" in table_text(m))
    assert f"Asked <@{VIEWER}" in table_text(update)  # a mention typed in an update stays one: Slack names it
    resolution = sim.messages(cid)[-1]  # a Slack message: the requester is a mention Slack shows as a name
    assert f"requested by <@{OPERATOR}>" in table_text(resolution)

    await bot.click(resolution["ts"], button(resolution, "Postmortem draft")["action_id"], VIEWER, channel=cid)
    md = next(f for f in sim.files if f["filename"] == "postmortem-inc-1.md")["content"].decode()
    assert "by @omar" in md  # declared by
    assert "**Commander:** @priya" in md
    assert "| @omar | declared |" in md and "| @Ada Admin | resolved |" in md  # the Who column
    assert "user: @priya" in md  # whom the assign named
    assert "Asked @vic to watch the pool" in md  # a mention typed in an update
    assert "requested by @omar" in md  # the open change request among the action items
    assert not RAW_IDS.search(md), md
    looked_up = [c.args.get("user") for c in sim.calls_to("users.info")]
    assert len(looked_up) == len(set(looked_up))  # each person looked up once, then cached

