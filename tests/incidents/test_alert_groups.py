"""One message per Alertmanager group, through its whole life: members fire and resolve in place, Ack
(who and when; the incident's reminders stop), Silence and Unsilence against a real Alertmanager (its v2
API lists the silence active with the group's labels as matchers, then expired), and the refusals:
a viewer may not silence, Alertmanager not configured or down records nothing."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from bot.config import parse_settings
from bot.services import build_services
from commands.base import Services
from incidents.wiring import operations
from tests import prometheus_support
from tests.harness import BASE_CONFIG, CHANNEL, OPERATOR, VIEWER, BotHarness, merge
from tests.incident_support import ALERT_TOKEN, FakeClock, am_alert, am_payload, button, buttons, post_webhook, start
from tests.processes import free_port
from tests.prometheus_support import Monitoring

monitoring = prometheus_support.monitoring
GROUP = '{}:{alertname="RedisHighMemory"}'


@pytest.fixture
async def bot(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("CF_ALERTS_TOKEN", ALERT_TOKEN)
    harness = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}")
    yield harness
    await harness.close()


def alert_messages(bot: BotHarness, channel: str = CHANNEL) -> list[dict[str, Any]]:
    return [m for m in bot.messages(channel) if "FIRING" in m["text"] or "RESOLVED" in m["text"]]


def shown(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


def redis_alert(instance: str, status: str = "firing", starts: str = "2026-01-10T10:00:00Z") -> dict[str, Any]:
    return am_alert("RedisHighMemory", status, fingerprint=f"fp-{instance}", starts=starts,
                    labels={"instance": instance}, summary=f"{instance} at 97%")


async def test_a_group_is_one_message_updated_as_its_alerts_fire_and_resolve(bot, sim) -> None:
    one, two = redis_alert("redis-0:9121"), redis_alert("redis-1:9121")
    status, body = await post_webhook(bot, am_payload(one, group=GROUP))
    assert status == 200 and body["posted"] == 1
    [first] = alert_messages(bot)
    assert "_1 alert, firing_" in shown(first)

    # Alertmanager sends the whole group again with a new member: the same message lists both
    _, body = await post_webhook(bot, am_payload(one, two, group=GROUP))
    assert body == {"ok": True, "posted": 1, "updated": 0, "duplicate": 1}
    [message] = alert_messages(bot)
    assert message["ts"] == first["ts"] and "*2 alerts* — 2 firing, 0 resolved" in shown(message)
    assert "`instance=redis-0:9121`" in shown(message) and "`instance=redis-1:9121`" in shown(message)
    assert [b["text"]["text"] for b in buttons(message)][-3:] == ["Ack", "Silence 1h", "Silence 4h"]

    # one resolves: redrawn in place, said in the thread; the other still fires
    _, body = await post_webhook(bot, am_payload(redis_alert("redis-0:9121", "resolved"), two, group=GROUP))
    assert body["updated"] == 1 and body["duplicate"] == 1
    [message] = alert_messages(bot)
    assert "FIRING" in message["text"] and "*2 alerts* — 1 firing, 1 resolved" in shown(message)
    assert any("Resolved: `RedisHighMemory`" in t and "1 of the group still firing" in t
               for t in bot.thread_texts(first["ts"]))

    # the last one resolves: the message is resolved, without buttons
    await post_webhook(bot, am_payload(redis_alert("redis-0:9121", "resolved"),
                                       redis_alert("redis-1:9121", "resolved"), group=GROUP))
    [message] = alert_messages(bot)
    assert message["ts"] == first["ts"] and "RESOLVED" in message["text"] and not buttons(message)
    assert "*2 alerts* — 0 firing, 2 resolved" in shown(message)
    assert len(sim.calls_to("chat.postMessage")) == 1 + 2  # the message and two resolution notes, no other post

    # the group fires again later: a new episode, a new message
    await post_webhook(bot, am_payload(redis_alert("redis-0:9121", starts="2026-01-10T12:00:00Z"), group=GROUP))
    assert len(alert_messages(bot)) == 2 and "FIRING" in alert_messages(bot)[-1]["text"]


async def test_ack_records_who_and_when_and_stops_the_incident_reminders(sim, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CF_ALERTS_TOKEN", ALERT_TOKEN)
    clock = FakeClock()
    bot = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}", clock=clock,
                      config={"alerts": {"declare_incident_on_critical": True, "critical_incident_severity": "sev2"}})
    try:
        for name in ("DatabaseHighConnections", "GraphQLHighLatency"):  # two groups, two incidents
            await post_webhook(bot, am_payload(am_alert(name, severity="critical"), group=f"{{}}:{{alertname={name}}}"))
        ops = operations(bot.runtime)
        assert ops is not None
        acked_incident, other = await ops.incidents.open_incidents()
        channel = acked_incident.channel
        assert channel is not None
        [before] = alert_messages(bot, channel)
        await bot.click(before["ts"], button(before, "Ack")["action_id"], VIEWER, channel=channel)
        [message] = alert_messages(bot, channel)
        name = (await bot.runtime.audit.names([VIEWER]))[VIEWER]
        assert f"acked by @{name}" in shown(message) and "Ack" not in [b["text"]["text"] for b in buttons(message)]
        [entry] = [e for e in await bot.runtime.audit.tail(20) if e.event == "alert_acked"]
        assert entry.actor == VIEWER and entry.at == clock.now and entry.incident_id == acked_incident.id
        assert any("Acknowledged by" in t and f"Reminders for {acked_incident.id} stop" in t
                   for t in bot.thread_texts(message["ts"], channel=channel))

        clock.advance(31 * 60)  # past sev2's 30 minutes: only the incident nobody acknowledged is reminded
        assert await ops.incidents.remind_due() == 1
        reminded = [c.args.get("channel") for c in sim.calls_to("chat.postMessage")
                    if "No update on" in str(c.args.get("text", ""))]
        assert other.channel in reminded and acked_incident.channel not in reminded

        await bot.stale_click(before, "cf_alert_ack", OPERATOR, channel=channel)  # an old copy
        assert any("Already acknowledged" in t for t in bot.private_texts())
    finally:
        await bot.close()


@pytest.mark.parametrize("case", ["viewer", "not configured", "alertmanager down"])
async def test_silence_refusals_record_nothing(sim, tmp_path, monkeypatch, case: str) -> None:
    monkeypatch.setenv("CF_ALERTS_TOKEN", ALERT_TOKEN)
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config, user, said = {
        "viewer": ({}, VIEWER, "needs the *operator* role"),
        "not configured": ({}, OPERATOR, "Alertmanager is not configured"),
        "alertmanager down": ({"alertmanager": {"url": down, "timeout_seconds": 2}}, OPERATOR,
                              "Could not silence: Alertmanager: cannot reach"),
    }[case]
    bot = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}", config=config, services=_with_alertmanager(config))
    try:
        await post_webhook(bot, am_payload(redis_alert("redis-0:9121"), group=GROUP))
        [message] = alert_messages(bot)
        await bot.click(message["ts"], button(message, "Silence 1h")["action_id"], user)
        assert any(said in t for t in bot.private_texts()), (said, bot.private_texts())
        [group] = await bot.runtime.store.driver.fetch("SELECT * FROM cf_alert_groups")
        assert group["silence_id"] is None and group["silenced_by"] is None
        assert not [e for e in await bot.runtime.audit.tail(50) if e.event == "alert_silenced"]
        [message] = alert_messages(bot)
        assert "silenced by" not in shown(message) and button(message, "Silence 1h")
    finally:
        await bot.close()


def _with_alertmanager(config: dict[str, Any]) -> Services:
    return build_services(parse_settings(merge(BASE_CONFIG, config), "test"), only={"alertmanager"})


@pytest.mark.timeout(90)
async def test_silence_and_unsilence_through_a_real_alertmanager(sim, tmp_path, monkeypatch,
                                                               monitoring: Monitoring) -> None:
    monkeypatch.setenv("CF_ALERTS_TOKEN", ALERT_TOKEN)
    config = {"alertmanager": {"url": monitoring.alertmanager_url}}
    bot = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}", config=config, services=_with_alertmanager(config))
    try:
        alert = redis_alert("redis-0:9121")
        await post_webhook(bot, am_payload(alert, group=GROUP))
        [message] = alert_messages(bot)
        await bot.click(message["ts"], button(message, "Silence 1h")["action_id"], OPERATOR)
        name = (await bot.runtime.audit.names([OPERATOR]))[OPERATOR]

        [silence] = await _silences(monitoring)
        assert silence["status"]["state"] == "active" and silence["createdBy"] == name
        assert {(m["name"], m["value"], m["isRegex"], m["isEqual"]) for m in silence["matchers"]} == \
            {(k, v, False, True) for k, v in alert["labels"].items()}
        assert f"/archives/{CHANNEL}/p{message['ts'].replace('.', '')}" in silence["comment"]
        [message] = alert_messages(bot)
        assert f"silenced by @{name} until" in shown(message)
        assert [b["text"]["text"] for b in buttons(message)][-1] == "Unsilence"
        [entry] = [e for e in await bot.runtime.audit.tail(20) if e.event == "alert_silenced"]
        assert entry.actor == OPERATOR and entry.detail["silence_id"] == silence["id"]
        assert entry.detail["matchers"] == alert["labels"]

        await bot.click(message["ts"], button(message, "Unsilence")["action_id"], OPERATOR)
        [silence] = await _silences(monitoring)
        assert silence["status"]["state"] == "expired"
        [message] = alert_messages(bot)
        assert "silenced by" not in shown(message) and button(message, "Silence 4h")
        assert [e.event for e in await bot.runtime.audit.tail(20)].count("alert_unsilenced") == 1
    finally:
        await bot.close()


async def _silences(monitoring: Monitoring) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, \
            session.get(f"{monitoring.alertmanager_url}/api/v2/silences") as resp:
        assert resp.status == 200
        return list(await resp.json())
