"""Per-user rate limit (issue 15 §4): past `limits.commands_per_minute` slash commands and clicks in a sliding
minute a person is told to slow down and when they can go on, nothing of the excess runs, the ack stays fast,
and other people are not slowed. Through the real web app with signed requests and the Slack simulator; the
window itself is checked directly on `bot.ratelimit.SlidingWindow`."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.ratelimit import SlidingWindow
from incidents.views import RUN
from tests.harness import CHANNEL, OPERATOR, VIEWER, BotHarness
from tests.incident_support import FakeClock, start
from tests.slack_sim import Delivery, block_actions_body, new_trigger_id, sign, slash_body

LIMIT = 5
HELP = "/cf help"  # what a help answer says of itself (its usage lines)


@pytest.fixture
async def limited(sim, tmp_path) -> AsyncIterator[tuple[BotHarness, FakeClock]]:
    clock = FakeClock()
    harness = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}", clock=clock,
                          config={"limits": {"commands_per_minute": LIMIT}})
    yield harness, clock
    await harness.close()


def answers(bot: BotHarness, user: str, needle: str) -> list[str]:
    return [e["text"] + str(e["blocks"]) for e in bot.sim.ephemerals(CHANNEL, user)
            if needle in e["text"] + str(e["blocks"])]


def run_button_message(ts: str) -> dict[str, Any]:
    """A message with one command-line button (`cf_run:0` runs `help` as the clicker)."""
    return {"ts": ts, "text": "buttons", "blocks": [{"type": "actions", "block_id": "b", "elements": [
        {"type": "button", "action_id": f"{RUN}:0", "value": "help",
         "text": {"type": "plain_text", "text": "Help"}}]}]}


async def click_run(bot: BotHarness, user: str) -> Delivery:
    message = run_button_message("1700000000.000100")
    body = block_actions_body(user, CHANNEL, message, f"{RUN}:0", "help",
                              response_url=bot.sim.new_response_url(CHANNEL, user, message["ts"]),
                              trigger_id=new_trigger_id())
    delivery = await bot.driver.post_raw(body)
    await bot.settle()
    return delivery


async def test_one_user_past_the_limit_is_told_to_slow_down_and_others_are_not(limited) -> None:
    bot, clock = limited
    for i in range(LIMIT):
        assert (await bot.slash("help", user=VIEWER)).status == 200
        assert len(answers(bot, VIEWER, HELP)) == i + 1
    calls_before = len(bot.sim.calls)
    clock.advance(10)  # the window slides: the first command leaves it at +60 s, i.e. 50 s from now
    for _ in range(3):
        delivery = await bot.slash("help", user=VIEWER)
        assert delivery.status == 200 and delivery.elapsed < 1.0, delivery
        told = delivery.json()
        assert told["response_type"] == "ephemeral"
        assert "Slow down" in told["text"] and f"sent {LIMIT} commands and clicks" in told["text"], told
        assert "Nothing was run. You can go on in 50s (at " in told["text"], told
    assert len(answers(bot, VIEWER, HELP)) == LIMIT  # none of the excess ran
    assert len(answers(bot, VIEWER, "Slow down")) == 3  # each one was told (by its ack)
    assert bot.sim.calls[calls_before:] == []  # refusing costs no Web API call at all
    # someone else, at the same moment, is served as usual
    for _ in range(LIMIT):
        delivery = await bot.slash("help", user=OPERATOR)
        assert delivery.status == 200 and delivery.body == ""
    assert len(answers(bot, OPERATOR, HELP)) == LIMIT and answers(bot, OPERATOR, "Slow down") == []
    # when the oldest command has left the minute, the viewer goes on
    clock.advance(50)
    assert (await bot.slash("help", user=VIEWER)).body == ""
    assert len(answers(bot, VIEWER, HELP)) == LIMIT + 1


async def test_clicks_count_and_an_excess_click_runs_nothing(limited) -> None:
    bot, _clock = limited
    for _ in range(LIMIT - 1):
        await bot.slash("help", user=VIEWER)
    delivery = await click_run(bot, VIEWER)  # the last one that fits: it runs `help` as the clicker
    assert delivery.status == 200
    assert len(answers(bot, VIEWER, HELP)) == LIMIT
    for _ in range(3):  # past the limit: acked fast, nothing runs, told once (through the response_url)
        delivery = await click_run(bot, VIEWER)
        assert delivery.status == 200 and delivery.body == "" and delivery.elapsed < 1.0
    assert len(answers(bot, VIEWER, HELP)) == LIMIT
    told = answers(bot, VIEWER, "Slow down")
    assert len(told) == 1 and "You can go on in" in told[0], told
    assert (await click_run(bot, OPERATOR)).status == 200  # another person's click runs
    assert len(answers(bot, OPERATOR, HELP)) == 1


async def test_a_slack_retry_is_not_counted_twice(limited) -> None:
    bot, _clock = limited
    body = slash_body("help", VIEWER, CHANNEL, "/cf", response_url=bot.sim.new_response_url(CHANNEL, VIEWER),
                      trigger_id=new_trigger_id())
    first = await bot.driver.post_raw(body)
    retry = await bot.driver.post_raw(body, {**sign(body, bot.driver.signing_secret, int(time.time()) - 1),
                                             "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    await bot.settle()
    assert first.status == retry.status == 200
    assert len(answers(bot, VIEWER, HELP)) == 1  # run once (the store's delivery claim)
    for _ in range(LIMIT - 1):  # and counted once: LIMIT - 1 more fit
        assert (await bot.slash("help", user=VIEWER)).body == ""
    assert "Slow down" in (await bot.slash("help", user=VIEWER)).body


async def test_modal_submissions_and_events_are_not_counted(limited) -> None:
    bot, _clock = limited
    for _ in range(LIMIT):
        await bot.slash("help", user=OPERATOR)
    event = json.dumps({"type": "event_callback", "team_id": "T0CANDLE", "api_app_id": "A0CFBOT", "event_id": "Ev1",
                        "event_time": 1700000000, "event": {"type": "app_home_opened", "user": OPERATOR,
                                                            "channel": "D1", "tab": "home"}})
    delivery = await bot.driver.post_raw(event, {**sign(event, bot.driver.signing_secret),
                                                 "Content-Type": "application/json"})
    await bot.settle()
    assert delivery.status == 200 and bot.sim.home_view(OPERATOR) is not None


def test_the_window_slides_and_forgets() -> None:
    clock = FakeClock(1_000.0)
    window = SlidingWindow(3, 60.0, clock=clock, max_users=2)
    assert all(window.check("a").allowed for _ in range(3))
    clock.advance(30)
    refused = window.check("a")
    assert not refused.allowed and refused.first_refusal and refused.retry_after == 30 and refused.go_on_at == 1060
    assert not window.check("a").first_refusal  # the same burst: told once
    assert window.check("b").allowed  # others have their own window
    clock.advance(30)
    assert window.check("a").allowed  # the first three left at exactly +60 s
    # a repeated delivery key is answered as the first time and not counted again
    assert window.check("c", key="k1").allowed and window.check("c", key="k1").allowed
    assert [window.check("c").allowed for _ in range(3)] == [True, True, False]
    # bounded: at most max_users users, idle ones dropped after a window
    assert len(window._users) <= 2
    clock.advance(61)
    window.check("d")
    assert list(window._users) == ["d"] and not window._keys
