"""The Slack simulator against the real clients: slack_sdk's AsyncWebClient and a slack_bolt
AsyncApp served over HTTP. If these pass, a bot that works against the sim talks to Slack the
way Slack expects."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.app.async_server import AsyncSlackAppServer
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.slack_sim import (
    SlackDriver,
    SlackSim,
    block_actions_body,
    sign,
    slash_body,
    view_submission_body,
)

SECRET = "sim-signing-secret"
TS = re.compile(r"^\d{10}\.\d{6}$")


def button(action_id: str, text: str = "Go", value: str = "v", **extra: Any) -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": text},
            "value": value, **extra}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.fixture
async def sim() -> AsyncIterator[SlackSim]:
    s = SlackSim(bot_token="xoxb-test", team_id="T0CANDLE", bot_user_id="U0CFBOT")
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
def client(sim: SlackSim) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=sim.api_url)


@asynccontextmanager
async def serve(app: AsyncApp) -> AsyncIterator[str]:
    """Serve a bolt app over real HTTP on a free port; yield its request URL."""
    runner = web.AppRunner(AsyncSlackAppServer(port=0, path="/slack/events", app=app).web_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/slack/events"
    finally:
        await runner.cleanup()


def bolt_app(sim: SlackSim) -> AsyncApp:
    return AsyncApp(client=AsyncWebClient(token=sim.bot_token, base_url=sim.api_url), signing_secret=SECRET)


# ---- Web API: messages ---------------------------------------------------------------------------
async def test_post_update_thread_broadcast_and_ephemeral(sim: SlackSim, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C0INCIDENT", text="scale requested",
                                           blocks=[section("*scale* graphql-api 3 -> 10")])
    assert posted["ok"] and posted["channel"] == "C0INCIDENT" and TS.match(posted["ts"])
    assert posted["message"]["user"] == "U0CFBOT" and posted["message"]["bot_id"]
    assert posted["message"]["blocks"][0]["text"]["text"] == "*scale* graphql-api 3 -> 10"

    reply = await client.chat_postMessage(channel="C0INCIDENT", thread_ts=posted["ts"], text="approved")
    loud = await client.chat_postMessage(channel="C0INCIDENT", thread_ts=posted["ts"], text="done",
                                         reply_broadcast=True)
    updated = await client.chat_update(channel="C0INCIDENT", ts=posted["ts"], text="scale done")
    eph = await client.chat_postEphemeral(channel="C0INCIDENT", user="U0OPERATOR", text="only you")

    assert [posted["ts"], reply["ts"], loud["ts"]] == sorted({posted["ts"], reply["ts"], loud["ts"]})
    assert updated["message"]["text"] == "scale done" and updated["ts"] == posted["ts"]
    visible = sim.messages("C0INCIDENT")
    assert [m["text"] for m in visible] == ["scale done", "done"]  # the parent and the broadcast reply
    parent = visible[0]
    assert parent["edited"]["user"] == "U0CFBOT"
    assert parent["blocks"], "chat.update without blocks keeps the old blocks, as Slack does"
    assert parent["reply_count"] == 2
    assert [m["text"] for m in sim.thread("C0INCIDENT", posted["ts"])] == ["approved", "done"]
    assert TS.match(eph["message_ts"])
    assert [e["text"] for e in sim.ephemerals("C0INCIDENT", user="U0OPERATOR")] == ["only you"]
    assert sim.ephemerals("C0INCIDENT", user="U0SOMEONE") == []
    assert [c.method for c in sim.calls] == ["chat.postMessage"] * 3 + ["chat.update", "chat.postEphemeral"]
    assert "scale done" in sim.transcript() and "only you" in sim.transcript()


async def test_update_and_delete_only_the_bots_own_messages(sim: SlackSim, client: AsyncWebClient) -> None:
    human = sim.add_message("C0INCIDENT", "a person said this", user="U0ADMIN")
    with pytest.raises(SlackApiError) as refused:
        await client.chat_update(channel="C0INCIDENT", ts=human["ts"], text="rewritten")
    assert refused.value.response["error"] == "cant_update_message"
    with pytest.raises(SlackApiError) as missing:
        await client.chat_update(channel="C0INCIDENT", ts="1000000000.000100", text="x")
    assert missing.value.response["error"] == "message_not_found"
    mine = await client.chat_postMessage(channel="C0INCIDENT", text="temporary")
    await client.chat_delete(channel="C0INCIDENT", ts=mine["ts"])
    assert [m["text"] for m in sim.messages("C0INCIDENT")] == ["a person said this"]
    link = await client.chat_getPermalink(channel="C0INCIDENT", message_ts=human["ts"])
    assert link["permalink"].endswith("/archives/C0INCIDENT/p" + human["ts"].replace(".", ""))


async def test_form_and_json_bodies_are_decoded_the_same(sim: SlackSim, client: AsyncWebClient) -> None:
    blocks = [section("hello")]
    await client.api_call("chat.postMessage", data={"channel": "C0INCIDENT", "text": "form",
                                                    "blocks": json.dumps(blocks)})
    await client.chat_postMessage(channel="C0INCIDENT", text="json", blocks=blocks)
    async with aiohttp.ClientSession() as session:  # the token as a form field, no header
        async with session.post(sim.api_url + "auth.test", data={"token": "xoxb-test"}) as resp:
            assert (await resp.json())["user_id"] == "U0CFBOT"
        async with session.post(sim.api_url + "auth.test", json={"token": "xoxb-test"}) as resp:
            assert (await resp.json())["error"] == "not_authed"  # Slack reads no token from JSON
    form, as_json = sim.calls_to("chat.postMessage")
    assert form.args["blocks"] == blocks == as_json.args["blocks"]
    assert "token" not in form.args and form.at <= as_json.at


async def test_wrong_token_and_unknown_method(sim: SlackSim) -> None:
    with pytest.raises(SlackApiError) as bad:
        await AsyncWebClient(token="xoxb-wrong", base_url=sim.api_url).auth_test()
    assert bad.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as unknown:
        await AsyncWebClient(token="xoxb-test", base_url=sim.api_url).api_call("chat.teleport")
    assert unknown.value.response["error"] == "unknown_method"
    assert [(c.method, c.error) for c in sim.calls] == [("auth.test", "invalid_auth"),
                                                         ("chat.teleport", "unknown_method")]


# ---- Web API: validation -------------------------------------------------------------------------
def _actions(n: int) -> dict[str, Any]:
    return {"type": "actions", "elements": [button(f"b{i}") for i in range(n)]}


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([section("x")] * 51, "/blocks"),
        ([section("x" * 3001)], "/blocks/0/text/text"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "/blocks/0/text/text"),
        ([{"type": "actions", "elements": [button("a", text="t" * 76)]}], "/blocks/0/elements/0/text/text"),
        ([_actions(26)], "/blocks/0/elements"),
        ([{"type": "actions", "elements": [button("a", value="v" * 2001)]}], "/blocks/0/elements/0/value"),
        ([section("")], "/blocks/0/text/text"),
        ([{"type": "sections", "text": {"type": "mrkdwn", "text": "typo"}}], "/blocks/0/type"),
    ],
    ids=["51-blocks", "section-3001", "header-151", "button-text-76", "26-elements", "value-2001",
         "empty-text", "unknown-type"],
)
async def test_block_kit_limits_refused_like_slack(sim: SlackSim, client: AsyncWebClient,
                                                   blocks: list, pointer: str) -> None:
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="C0INCIDENT", text="fallback", blocks=blocks)
    body = refused.value.response.data
    assert body["error"] == "invalid_blocks"
    assert any(m.startswith("[ERROR] ") and m.endswith(f"[json-pointer:{pointer}]")
               for m in body["response_metadata"]["messages"]), body
    assert sim.messages("C0INCIDENT") == []


async def test_limits_at_the_edge_are_accepted(sim: SlackSim, client: AsyncWebClient) -> None:
    blocks = [section("x" * 3000), _actions(25)] + [{"type": "divider"}] * 48
    await client.chat_postMessage(channel="C0INCIDENT", text="t" * 40_000, blocks=blocks)
    assert len(sim.messages("C0INCIDENT")[0]["blocks"]) == 50
    with pytest.raises(SlackApiError) as too_long:
        await client.chat_postMessage(channel="C0INCIDENT", text="t" * 40_001)
    assert too_long.value.response["error"] == "msg_too_long"
    with pytest.raises(SlackApiError) as empty:  # api_call: chat_postMessage itself warns first
        await client.api_call("chat.postMessage", json={"channel": "C0INCIDENT", "text": ""})
    assert empty.value.response["error"] == "no_text"


# ---- Web API: files --------------------------------------------------------------------------------
async def test_files_upload_v2_three_calls_end_to_end(sim: SlackSim, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel="C0INCIDENT", text="logs requested")
    result = await client.files_upload_v2(channel="C0INCIDENT", thread_ts=parent["ts"], content="line 1\nline 2\n",
                                          filename="graphql-api.log", title="graphql-api logs",
                                          initial_comment="last 2 lines")
    assert result["file"]["id"].startswith("F") and result["file"]["title"] == "graphql-api logs"
    assert [c.method for c in sim.calls[1:]] == ["files.getUploadURLExternal", "upload_url",
                                                 "files.completeUploadExternal"]
    assert sim.calls_to("files.getUploadURLExternal")[0].args["length"] == "14"
    (f,) = sim.files
    assert f == {"id": result["file"]["id"], "filename": "graphql-api.log", "title": "graphql-api logs",
                 "content": b"line 1\nline 2\n", "channel": "C0INCIDENT", "channels": ["C0INCIDENT"],
                 "thread_ts": parent["ts"], "initial_comment": "last 2 lines"}
    (share,) = sim.thread("C0INCIDENT", parent["ts"])
    assert share["text"] == "last 2 lines" and share["files"][0]["name"] == "graphql-api.log"


async def test_completing_an_upload_that_never_happened_fails(sim: SlackSim, client: AsyncWebClient) -> None:
    url = await client.files_getUploadURLExternal(filename="x.txt", length=3)
    with pytest.raises(SlackApiError) as refused:
        await client.files_completeUploadExternal(files=[{"id": url["file_id"]}], channel_id="C0INCIDENT")
    assert refused.value.response["error"] == "file_not_found"
    assert sim.files == []


# ---- Web API: conversations ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "error"),
    [("Inc-2024", "invalid_name_specials"), ("inc 2024", "invalid_name_specials"),
     ("inc." + "x", "invalid_name_specials"), ("a" * 81, "invalid_name_maxlength"), ("", "invalid_name_required"),
     ("---", "invalid_name_punctuation")],
)
async def test_conversations_create_name_rules(client: AsyncWebClient, name: str, error: str) -> None:
    with pytest.raises(SlackApiError) as refused:
        await client.conversations_create(name=name)
    assert refused.value.response["error"] == error


async def test_conversations_create_then_name_taken(sim: SlackSim, client: AsyncWebClient) -> None:
    created = await client.conversations_create(name="inc-2024-11-27-graphql_" + "a" * 57)
    channel = created["channel"]
    assert channel["id"].startswith("C") and channel["is_member"] and len(channel["name"]) == 80
    with pytest.raises(SlackApiError) as taken:
        await client.conversations_create(name=channel["name"])
    assert taken.value.response["error"] == "name_taken"
    await client.conversations_setTopic(channel=channel["id"], topic="SEV1 graphql-api")
    await client.conversations_invite(channel=channel["id"], users="U1,U2")
    with pytest.raises(SlackApiError) as again:
        await client.conversations_invite(channel=channel["id"], users="U1")
    assert again.value.response["error"] == "already_in_channel"
    info = await client.conversations_info(channel=channel["id"])
    assert info["channel"]["topic"]["value"] == "SEV1 graphql-api"
    members = await client.conversations_members(channel=channel["id"])
    assert members["members"] == ["U0CFBOT", "U1", "U2"]


async def test_not_in_channel_until_joined(sim: SlackSim, client: AsyncWebClient) -> None:
    sim.not_in_channel.add("C0PRIVATE")
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="C0PRIVATE", text="hello")
    assert refused.value.response["error"] == "not_in_channel"
    joined = await client.conversations_join(channel="C0PRIVATE")
    assert joined["channel"]["is_member"]
    await client.chat_postMessage(channel="C0PRIVATE", text="hello")
    assert [m["text"] for m in sim.messages("C0PRIVATE")] == ["hello"]


async def test_history_replies_pins_and_reactions(sim: SlackSim, client: AsyncWebClient) -> None:
    first = await client.chat_postMessage(channel="C0INCIDENT", text="one")
    await client.chat_postMessage(channel="C0INCIDENT", text="two")
    await client.chat_postMessage(channel="C0INCIDENT", text="reply", thread_ts=first["ts"])
    history = await client.conversations_history(channel="C0INCIDENT", limit=1)
    assert [m["text"] for m in history["messages"]] == ["two"] and history["has_more"]
    cursor = history["response_metadata"]["next_cursor"]
    rest = await client.conversations_history(channel="C0INCIDENT", cursor=cursor)
    assert [m["text"] for m in rest["messages"]] == ["one"] and rest["messages"][0]["reply_count"] == 1
    replies = await client.conversations_replies(channel="C0INCIDENT", ts=first["ts"])
    assert [m["text"] for m in replies["messages"]] == ["one", "reply"]
    await client.pins_add(channel="C0INCIDENT", timestamp=first["ts"])
    await client.reactions_add(channel="C0INCIDENT", timestamp=first["ts"], name="white_check_mark")
    with pytest.raises(SlackApiError) as twice:
        await client.reactions_add(channel="C0INCIDENT", timestamp=first["ts"], name="white_check_mark")
    assert twice.value.response["error"] == "already_reacted"
    assert sim.pins("C0INCIDENT") == [first["ts"]]
    assert sim.messages("C0INCIDENT")[0]["reactions"][0]["users"] == ["U0CFBOT"]


async def test_usergroups_and_users(sim: SlackSim, client: AsyncWebClient) -> None:
    sim.usergroups = {"S0ONCALL": ["U1", "U2"]}
    sim.users = {"U0ADMIN": {"name": "ada", "real_name": "Ada Admin", "tz": "Europe/London"}}
    assert (await client.usergroups_users_list(usergroup="S0ONCALL"))["users"] == ["U1", "U2"]
    with pytest.raises(SlackApiError) as missing:
        await client.usergroups_users_list(usergroup="S0NOPE")
    assert missing.value.response["error"] == "no_such_subteam"
    ada = (await client.users_info(user="U0ADMIN"))["user"]
    assert (ada["name"], ada["real_name"], ada["tz"]) == ("ada", "Ada Admin", "Europe/London")
    stranger = (await client.users_info(user="U0STRANGER"))["user"]
    assert stranger["id"] == "U0STRANGER" and stranger["profile"]["real_name"]


# ---- Web API: views ---------------------------------------------------------------------------------
MODAL = {"type": "modal", "callback_id": "scale", "title": {"type": "plain_text", "text": "Scale"},
         "submit": {"type": "plain_text", "text": "Scale"},
         "blocks": [{"type": "input", "block_id": "replicas", "label": {"type": "plain_text", "text": "Replicas"},
                     "element": {"type": "plain_text_input", "action_id": "n"}}]}


async def test_views_trigger_rules_and_home(sim: SlackSim, client: AsyncWebClient) -> None:
    from tests.slacksim import new_trigger_id

    trigger = new_trigger_id()
    opened = await client.views_open(trigger_id=trigger, view=MODAL)
    assert opened["view"]["id"] in sim.views and opened["view"]["callback_id"] == "scale"
    with pytest.raises(SlackApiError) as reused:
        await client.views_open(trigger_id=trigger, view=MODAL)
    assert reused.value.response["error"] == "exchanged_trigger_id"
    stale = f"{int((time.time() - 4) * 1000)}.1.abc"
    with pytest.raises(SlackApiError) as expired:
        await client.views_open(trigger_id=stale, view=MODAL)
    assert expired.value.response["error"] == "expired_trigger_id"
    with pytest.raises(SlackApiError) as long_title:
        await client.views_open(trigger_id=new_trigger_id(), view={**MODAL, "title": {
            "type": "plain_text", "text": "x" * 25}})
    assert long_title.value.response["error"] == "invalid_arguments"
    home = {"type": "home", "blocks": [section("on call: ada")]}
    await client.views_publish(user_id="U0ADMIN", view=home)
    assert sim.home_view("U0ADMIN")["blocks"] == home["blocks"]
    assert sim.home_view("U0OTHER") is None


# ---- failure injection -------------------------------------------------------------------------------
async def test_429_is_retried_by_the_rate_limit_handler(sim: SlackSim) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=sim.api_url,
                            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    sim.fail_next("chat.postMessage", error="ratelimited", status=429, retry_after=0)
    posted = await client.chat_postMessage(channel="C0INCIDENT", text="after the wait")
    assert posted["ok"]
    first, second = sim.calls_to("chat.postMessage")
    assert (first.status, first.error) == (429, "ratelimited") and second.error is None
    assert [m["text"] for m in sim.messages("C0INCIDENT")] == ["after the wait"]


async def test_429_without_retry_handler_surfaces_with_retry_after(sim: SlackSim, client: AsyncWebClient) -> None:
    sim.fail_next("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as limited:
        await client.chat_postMessage(channel="C0INCIDENT", text="x")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"


async def test_injected_api_errors_and_500s(sim: SlackSim, client: AsyncWebClient) -> None:
    sim.fail_next("conversations.info", error="channel_not_found", status=200, times=2)
    sim.fail_next("users.info", status=500)
    for _ in range(2):
        with pytest.raises(SlackApiError) as refused:
            await client.conversations_info(channel="C0INCIDENT")
        assert refused.value.response.status_code == 200
        assert refused.value.response["error"] == "channel_not_found"
    assert (await client.conversations_info(channel="C0INCIDENT"))["ok"]  # only `times` failures
    with pytest.raises(SlackApiError) as broken:
        await client.users_info(user="U1")
    assert broken.value.response.status_code == 500


async def test_wait_for_returns_value_or_fails_with_a_dump(sim: SlackSim, client: AsyncWebClient) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await client.chat_postMessage(channel="C0INCIDENT", text="eventually")

    task = asyncio.create_task(later())
    got = await sim.wait_for(lambda s: s.messages("C0INCIDENT"), timeout=2)
    await task
    assert got[0]["text"] == "eventually"
    with pytest.raises(AssertionError, match=r"chat.postMessage C0INCIDENT\s+eventually"):
        await sim.wait_for(lambda s: len(s.messages("C0INCIDENT")) > 1, timeout=0.1)


# ---- request payloads and signatures -----------------------------------------------------------------
def test_sign_matches_slacks_documented_example() -> None:
    # The worked example from Slack's "Verifying requests from Slack" guide.
    body = ("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
            "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
            "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
            "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    headers = sign(body, "8f742231b10e8888abcd99yyyzzz85a5", timestamp=1531420618)
    assert headers == {"X-Slack-Request-Timestamp": "1531420618", "X-Slack-Signature":
                       "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"}


def test_slash_body_fields_in_slacks_order() -> None:
    body = slash_body("scale graphql-api 10", "U0OPERATOR", response_url="http://x/r", trigger_id="1.2.3")
    fields = parse_qs(body, keep_blank_values=True)
    assert list(fields) == ["token", "team_id", "team_domain", "channel_id", "channel_name", "user_id",
                            "user_name", "command", "text", "api_app_id", "is_enterprise_install",
                            "response_url", "trigger_id"]
    assert fields["command"] == ["/cf"] and fields["text"] == ["scale graphql-api 10"]
    assert fields["channel_id"] == ["C0INCIDENT"] and fields["team_id"] == ["T0CANDLE"]


def test_block_actions_body_takes_the_button_from_the_message() -> None:
    message = {"ts": "1732700000.000100", "text": "approve?", "blocks": [
        {"type": "actions", "block_id": "approval", "elements": [button("approve", "Approve", "42", style="primary")]}]}
    payload = json.loads(parse_qs(block_actions_body("U1", "C0INCIDENT", message, "approve", "42"))["payload"][0])
    assert payload["type"] == "block_actions" and payload["message"]["ts"] == message["ts"]
    assert payload["container"] == {"type": "message", "message_ts": message["ts"], "channel_id": "C0INCIDENT",
                                    "is_ephemeral": False}
    (action,) = payload["actions"]
    assert (action["block_id"], action["value"], action["style"], action["text"]["text"]) == (
        "approval", "42", "primary", "Approve")


# ---- a real bolt app over HTTP -------------------------------------------------------------------------
async def test_bolt_slash_command_ack_respond_and_say(sim: SlackSim) -> None:
    app = bolt_app(sim)
    seen: dict[str, Any] = {}

    @app.command("/cf")
    async def cf(ack, command, respond, say) -> None:
        await ack(text=f"working on `{command['text']}`")
        seen.update(command)
        await respond(text="you asked for a scale")
        await say(text="scaling graphql-api to 10")

    async with serve(app) as url:
        driver = SlackDriver(sim, app_url=url, signing_secret=SECRET)
        status, body, elapsed = await driver.slash("/cf scale graphql-api 10", user="U0OPERATOR",
                                                   channel="C0INCIDENT")
        assert status == 200 and elapsed < 3
        assert body == "working on `scale graphql-api 10`"
        await sim.wait_for(lambda s: s.messages("C0INCIDENT"))
    assert {k: seen[k] for k in ("command", "text", "user_id", "channel_id", "team_id", "channel_name")} == {
        "command": "/cf", "text": "scale graphql-api 10", "user_id": "U0OPERATOR", "channel_id": "C0INCIDENT",
        "team_id": "T0CANDLE", "channel_name": "incident"}
    (hook,) = sim.calls_to("response_url")
    assert hook.args["text"] == "you asked for a scale" and hook.args["url"] == seen["response_url"]
    # The ack body is shown when the HTTP answer arrives, which may be after respond() has posted.
    assert {(e["source"], e["text"]) for e in sim.ephemerals("C0INCIDENT", "U0OPERATOR")} == {
        ("ack", "working on `scale graphql-api 10`"), ("response_url", "you asked for a scale")}
    assert [m["text"] for m in sim.messages("C0INCIDENT")] == ["scaling graphql-api to 10"]
    assert sim.calls_to("auth.test"), "bolt authorizes with auth.test against the sim"


async def test_bolt_block_action_click_and_replace_original(sim: SlackSim, client: AsyncWebClient) -> None:
    app = bolt_app(sim)
    seen: dict[str, Any] = {}

    @app.action("approve")
    async def approve(ack, body, action, respond) -> None:
        await ack()
        seen.update(user=body["user"]["id"], channel=body["channel"]["id"], ts=body["message"]["ts"],
                    value=action["value"], block_id=action["block_id"])
        await respond(replace_original=True, text="approved by <@U0ADMIN>", blocks=[section("approved")])

    posted = await client.chat_postMessage(channel="C0INCIDENT", text="approve scale?", blocks=[
        section("scale graphql-api 3 -> 10?"),
        {"type": "actions", "block_id": "approval", "elements": [
            button("approve", "Approve", "action-17", style="primary"), button("deny", "Deny", "action-17")]}])
    async with serve(app) as url:
        driver = SlackDriver(sim, app_url=url, signing_secret=SECRET)
        with pytest.raises(AssertionError, match=r"'approve \(Approve\)', 'deny \(Deny\)'"):
            await driver.click("C0INCIDENT", posted["ts"], "retry", user="U0ADMIN")
        status, _, _ = await driver.click("C0INCIDENT", posted["ts"], "approve", user="U0ADMIN")
        assert status == 200
        await sim.wait_for(lambda s: s.calls_to("response_url"))
    assert seen == {"user": "U0ADMIN", "channel": "C0INCIDENT", "ts": posted["ts"], "value": "action-17",
                    "block_id": "approval"}
    (message,) = sim.messages("C0INCIDENT")
    assert message["text"] == "approved by <@U0ADMIN>" and message["blocks"] == [section("approved")]


async def test_bolt_view_submission(sim: SlackSim) -> None:
    app = bolt_app(sim)
    seen: dict[str, Any] = {}

    @app.view("scale")
    async def submitted(ack, view, body) -> None:
        seen.update(replicas=view["state"]["values"]["replicas"]["n"]["value"], user=body["user"]["id"],
                    meta=view["private_metadata"])
        await ack(response_action="errors", errors={"replicas": "at most 20"})

    async with serve(app) as url:
        driver = SlackDriver(sim, app_url=url, signing_secret=SECRET)
        view = {**MODAL, "id": "V0MODAL", "private_metadata": "action-17"}
        status, body, _ = await driver.submit_view(view, {"replicas": {"n": "50"}}, user="U0ADMIN")
    assert status == 200 and json.loads(body) == {"response_action": "errors", "errors": {"replicas": "at most 20"}}
    assert seen == {"replicas": "50", "user": "U0ADMIN", "meta": "action-17"}


async def test_bolt_refuses_forged_and_stale_signatures(sim: SlackSim) -> None:
    app = bolt_app(sim)
    ran: list[str] = []

    @app.command("/cf")
    async def cf(ack, command) -> None:
        ran.append(command["text"])
        await ack()

    body = slash_body("db failover", "U0MALLORY")
    async with serve(app) as url:
        driver = SlackDriver(sim, app_url=url, signing_secret=SECRET)
        forged = await driver.post_raw(body, sign(body, "not-the-secret"))
        stale = await driver.post_raw(body, sign(body, SECRET, timestamp=int(time.time()) - 301))
        unsigned = await driver.post_raw(body, {})
        tampered = await driver.post_raw(body.replace("failover", "snapshot"), sign(body, SECRET))
        good = await driver.post_raw(view_submission_body("U1", MODAL, {}), None)
    assert [d.status for d in (forged, stale, unsigned, tampered)] == [401, 401, 401, 401]
    assert ran == [] and good.status == 404  # signed fine; no listener for it, so bolt says 404


# ---- response_url semantics ---------------------------------------------------------------------------
async def _post_json(url: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.post(url, json=payload) as resp:
        return resp.status, await resp.json()


async def test_response_url_types_replace_delete_and_use_limit(sim: SlackSim, client: AsyncWebClient) -> None:
    command_url = sim.new_response_url(channel="C0INCIDENT", user="U0OPERATOR")
    assert (await _post_json(command_url, {"text": "just you"}))[0] == 200
    assert (await _post_json(command_url, {"text": "everyone", "response_type": "in_channel"}))[0] == 200
    assert [e["text"] for e in sim.ephemerals("C0INCIDENT", "U0OPERATOR")] == ["just you"]
    assert [m["text"] for m in sim.messages("C0INCIDENT")] == ["everyone"]

    posted = await client.chat_postMessage(channel="C0INCIDENT", text="approve?")
    action_url = sim.new_response_url("C0INCIDENT", "U0ADMIN", message_ts=posted["ts"])
    await _post_json(action_url, {"replace_original": True, "text": "approved"})
    assert [m["text"] for m in sim.messages("C0INCIDENT")] == ["everyone", "approved"]
    await _post_json(action_url, {"delete_original": True})
    assert [m["text"] for m in sim.messages("C0INCIDENT")] == ["everyone"]

    for _ in range(3):
        await _post_json(command_url, {"text": "again"})
    status, body = await _post_json(command_url, {"text": "one too many"})
    assert (status, body["error"]) == (404, "used_url")
    status, body = await _post_json(sim.new_response_url("C0INCIDENT", "U1"), {"blocks": [section("x" * 3001)]})
    assert (status, body["error"]) == (400, "invalid_blocks")
    recorded = sim.calls_to("response_url")
    assert recorded[0].args == {"text": "just you", "url": command_url}
    assert [c.error for c in recorded[-2:]] == ["used_url", "invalid_blocks"]


async def test_click_on_an_ephemeral_message_replaces_it(sim: SlackSim, client: AsyncWebClient) -> None:
    app = bolt_app(sim)
    containers: list[dict[str, Any]] = []

    @app.action("confirm")
    async def confirm(ack, body, respond) -> None:
        await ack()
        containers.append(body["container"])
        await respond(replace_original=True, text="confirmed")

    eph = await client.chat_postEphemeral(channel="C0INCIDENT", user="U0OPERATOR", text="sure?", blocks=[
        {"type": "actions", "elements": [button("confirm", "Yes")]}])
    async with serve(app) as url:
        driver = SlackDriver(sim, app_url=url, signing_secret=SECRET)
        with pytest.raises(AssertionError, match="shown only to U0OPERATOR"):
            await driver.click("C0INCIDENT", eph["message_ts"], "confirm", user="U0OTHER")
        await driver.click("C0INCIDENT", eph["message_ts"], "confirm", user="U0OPERATOR")
        await sim.wait_for(lambda s: s.calls_to("response_url"))
    assert containers[0]["is_ephemeral"] is True and containers[0]["message_ts"] == eph["message_ts"]
    assert [e["text"] for e in sim.ephemerals("C0INCIDENT", "U0OPERATOR")] == ["confirmed"]
    assert sim.messages("C0INCIDENT") == []


async def test_driver_notes_what_slack_would_show_for_a_failed_ack(sim: SlackSim) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    app = web.Application()
    app.router.add_post("/slack/events", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        driver = SlackDriver(sim, f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events", SECRET)
        delivery = await driver.slash("/cf status", user="U0OPERATOR")
    finally:
        await runner.cleanup()
    assert (delivery.status, delivery.body) == (500, "boom")
    assert 'failed with the error "dispatch_failed"' in sim.transcript()
    assert sim.ephemerals("C0INCIDENT") == []


async def test_direct_messages_open_a_dm_channel(sim: SlackSim, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="U0ADMIN", text="you were paged")
    assert posted["channel"].startswith("D")
    opened = await client.conversations_open(users="U0ADMIN")
    assert opened["channel"]["id"] == posted["channel"]
    assert [m["text"] for m in sim.messages(posted["channel"])] == ["you were paged"]


async def test_another_process_with_the_sync_client(sim: SlackSim) -> None:
    """The bot also runs as a subprocess (``cfbot run``); the sim must serve it the same way."""
    script = (
        "import os, sys\n"
        "from slack_sdk import WebClient\n"
        "c = WebClient(token='xoxb-test', base_url=os.environ['SLACK_API_URL'])\n"
        "ts = c.chat_postMessage(channel='C0INCIDENT', text='from a subprocess')['ts']\n"
        "c.files_upload_v2(channel='C0INCIDENT', thread_ts=ts, content=b'\\x00bin', filename='dump.bin')\n"
        "print(ts)\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, env={**os.environ, "SLACK_API_URL": sim.api_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, err.decode()
    ts = out.decode().strip()
    assert [m["text"] for m in sim.messages("C0INCIDENT")] == ["from a subprocess"]
    assert sim.files[0]["content"] == b"\x00bin" and sim.files[0]["thread_ts"] == ts
