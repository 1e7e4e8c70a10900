"""What the fuzz (test_fuzz.py, `python -m bench fuzz`) found, each kept as a plain regression test: signed
deliveries that used to end in a listener traceback. Through the real web app, signed as Slack signs."""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import pytest

from incidents.views import DECLARE_CALLBACK, declare_modal
from tests.harness import CHANNEL, OPERATOR, BotHarness
from tests.incident_support import start
from tests.slack_sim import Delivery, sign, slash_body, view_submission_body


@pytest.fixture
async def bot(sim, tmp_path) -> AsyncIterator[BotHarness]:
    harness = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}")
    yield harness
    await harness.close()


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info or r.stack_info]


async def post_json(bot: BotHarness, payload: object) -> Delivery:
    body = json.dumps(payload)
    delivery = await bot.driver.post_raw(body, {**sign(body, bot.driver.signing_secret),
                                                "Content-Type": "application/json"})
    await bot.settle()
    return delivery


@pytest.mark.parametrize("url", ["ftp://x", "not a url", "http://", "javascript:alert(1)", "http://[::1",
                                 "http://host:port/x"])
async def test_a_response_url_that_is_no_http_url_is_400_before_anything_runs(bot: BotHarness, caplog,
                                                                                url: str) -> None:
    """It used to pass, run the command, and fail in the answer (aiohttp's InvalidURL) with a traceback."""
    body = slash_body("help", OPERATOR, CHANNEL, "/cf", response_url=url)
    delivery = await bot.driver.post_raw(body)
    await bot.settle()
    assert delivery.status == 400, delivery
    why = "is not a URL" if "[" in url or "port" in url else "is not an http(s) URL"
    assert [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()] == [
        f"refused a malformed Slack request: response_url {why}"]
    assert bot.sim.calls == [] and tracebacks(caplog) == []


@pytest.mark.parametrize("key", ["event", "view"])
async def test_a_null_event_or_view_is_400(bot: BotHarness, caplog, key: str) -> None:
    """Bolt reads `body.get("event", {})`: a present null used to raise inside Bolt's middleware."""
    delivery = await post_json(bot, {"type": "app_rate_limited", "team_id": "T0CANDLE", key: None})
    assert delivery.status == 400, delivery
    assert tracebacks(caplog) == []


async def test_a_home_tab_slack_refuses_is_one_line(bot: BotHarness, caplog) -> None:
    """views.publish refused (here: no such user) used to escape the Home tab listener as a traceback."""
    caplog.set_level(logging.INFO)
    delivery = await post_json(bot, {"type": "event_callback", "team_id": "T0CANDLE", "api_app_id": "A0CFBOT",
                                     "event_id": "Ev0HOME", "event_time": 1700000000,
                                     "event": {"type": "app_home_opened", "user": "", "tab": "home"}})
    assert delivery.status == 200
    assert [c.error for c in bot.sim.calls_to("views.publish")] == ["invalid_arguments"]
    assert [r.getMessage() for r in caplog.records if r.name == "incidents.slack"] == ["Home tab not published"]
    assert tracebacks(caplog) == []


def declare_submission(**view_changes: object) -> dict[str, object]:
    """A declare modal's submit, as the simulator builds it, with some of its view's fields changed."""
    raw = view_submission_body(OPERATOR, {**declare_modal(CHANNEL), "id": "V0DECLARE"},
                               {"title": {"value": "Editor down"}}, callback_id=DECLARE_CALLBACK)
    payload: dict[str, Any] = json.loads(urllib.parse.parse_qs(raw)["payload"][0])
    for key, value in view_changes.items():
        if value is DROP:
            del payload["view"][key]
        else:
            payload["view"][key] = value
    return payload


DROP = object()


@pytest.mark.parametrize("change", [{"type": DROP}, {"type": None}, {"type": "workflow_step"}],
                         ids=["no view.type", "view.type null", "a workflow_step view without its step"])
async def test_a_view_submission_bolt_would_index_into_is_400(bot: BotHarness, caplog, change) -> None:
    """Bolt reads `body["view"]["type"]` (and then `body["workflow_step"]`) while matching listeners, and its
    error handler does the same again: such a body used to escape as aiohttp's own 500."""
    body = "payload=" + urllib.parse.quote(json.dumps(declare_submission(**change)))
    delivery = await bot.driver.post_raw(body)
    await bot.settle()
    assert delivery.status == 400, delivery
    assert tracebacks(caplog) == [] and bot.sim.calls_to("conversations.create") == []


async def test_response_urls_that_are_not_objects_are_400(bot: BotHarness, caplog) -> None:
    payload = {**declare_submission(), "response_urls": ["https://hooks.slack.example/x"]}
    delivery = await bot.driver.post_raw("payload=" + urllib.parse.quote(json.dumps(payload)))
    await bot.settle()
    assert delivery.status == 400 and tracebacks(caplog) == []


async def test_an_answer_to_a_response_url_that_is_no_url_is_a_delivery_error() -> None:
    # over HTTP the edge refuses such a delivery (400); Socket Mode skips that check, so the messenger holds too
    from bot.messenger import DeliveryError, Origin, SlackMessenger, web_client

    messenger = SlackMessenger(web_client("xoxb-test", "http://127.0.0.1:9/api/"))
    try:
        with pytest.raises(DeliveryError):
            await messenger.respond(Origin(user="U1", channel="C1", response_url="not a url"), "hello")
    finally:
        await messenger.close()
