"""The Alertmanager webhook through the bot's HTTP app and the Slack simulator: firing, repeated,
resolved, unknown, critical (declares an incident), crash-looping (labels fill the buttons), bad
tokens and malformed payloads; the same alerts to two replicas on one PostgreSQL are posted once, as
their group's one message; a change button goes through the same approval flow as the typed command."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.harness import APPROVER, CHANNEL, OPERATOR, VIEWER
from tests.incident_support import ALERT_TOKEN, am_alert, am_payload, button, buttons, post_webhook, start


@pytest.fixture
async def bot(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("CF_ALERTS_TOKEN", ALERT_TOKEN)
    harness = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}")
    yield harness
    await harness.close()


def alert_messages(bot, channel: str = CHANNEL) -> list[dict]:
    return [m for m in bot.messages(channel) if "FIRING" in m["text"] or "RESOLVED" in m["text"]]


async def test_firing_alert_is_posted_once_with_its_runbook_buttons(bot) -> None:
    payload = am_payload(am_alert("GraphQLHighErrorRate", summary="5xx at 7%"))
    status, body = await post_webhook(bot, payload)
    assert status == 200 and body == {"ok": True, "posted": 1, "updated": 0, "duplicate": 0}
    [message] = alert_messages(bot)
    text = json.dumps(message["blocks"])
    assert "GraphQL API: high error rate" in text and "5xx at 7%" in text and "High Error Rate" in text
    assert button(message, "Scale graphql-api to 5")["value"] == "scale graphql-api 5"
    assert button(message, "Scale graphql-api to 5")["text"]["text"].endswith("(approval)")
    assert button(message, "DB pool metrics")["value"] == "metrics graphql-api db_connections"
    assert button(message, "Logs with ERROR")["value"] == "logs graphql-api --since 10m --grep ERROR"

    status, body = await post_webhook(bot, payload)  # Alertmanager's repeat_interval re-send
    assert status == 200 and body["duplicate"] == 1 and len(alert_messages(bot)) == 1


async def test_resolved_alert_updates_its_message(bot, sim) -> None:
    await post_webhook(bot, am_payload(am_alert("RedisHighMemory", fingerprint="fpredis")))
    [firing] = alert_messages(bot)
    assert [b["value"] for b in buttons(firing)][:2] == ["redis memory", "redis bigkeys"]
    status, body = await post_webhook(bot, am_payload(am_alert("RedisHighMemory", "resolved", fingerprint="fpredis")))
    assert status == 200 and body["updated"] == 1
    [resolved] = alert_messages(bot)
    assert resolved["ts"] == firing["ts"] and "RESOLVED" in resolved["text"] and not buttons(resolved)
    assert any("Resolved" in m["text"] for m in sim.thread(CHANNEL, firing["ts"]))
    _, again = await post_webhook(bot, am_payload(am_alert("RedisHighMemory", "resolved", fingerprint="fpredis")))
    assert again["duplicate"] == 1

    # the same alert firing again later is a new occurrence (new startsAt): posted again
    await post_webhook(bot, am_payload(am_alert("RedisHighMemory", fingerprint="fpredis",
                                                starts="2026-01-10T12:00:00Z")))
    assert len(alert_messages(bot)) == 2


def runbook_buttons(message: dict) -> list[dict]:
    """The procedure's buttons (command lines), without the group's own Ack / Silence."""
    return [b for b in buttons(message) if b["action_id"].startswith("cf_run")]


async def test_unknown_alert_gets_generic_triage_and_labels_fill_buttons(bot) -> None:
    # one Alertmanager group per alertname (the shipped route groups by alertname): one message each
    for alert in (am_alert("SomethingOdd"), am_alert("KubePodCrashLooping", labels={"pod": "document-service-7d9f-x2"}),
                  am_alert("NodeHighCPU", labels={"instance": "ip-10-0-1-5:9100"}),
                  am_alert("PodCrashLooping", fingerprint="nolabel")):
        await post_webhook(bot, am_payload(alert, group=f'{{}}:{{alertname="{alert["labels"]["alertname"]}"}}'))
    odd, crash, node, bare = alert_messages(bot)
    assert "generic triage" in json.dumps(odd["blocks"])
    assert {b["value"] for b in runbook_buttons(odd)} <= {"status", "pods", "events --warnings"}
    assert runbook_buttons(odd)
    assert button(crash, "Crash loop report")["value"] == "crashloop document-service-7d9f-x2"
    assert button(crash, "Previous logs")["value"] == "logs document-service-7d9f-x2 --previous"
    assert button(node, "Describe node")["value"] == "describe node ip-10-0-1-5"
    assert button(bare, "Crash loop report")["value"] == "crashloop"  # no pod label: the label-free form
    assert "the alert has no such label" in json.dumps(bare["blocks"])


async def test_bad_token_and_malformed_payloads(bot) -> None:
    good = am_payload(am_alert("GraphQLHighLatency"))
    assert (await post_webhook(bot, good, token="wrong"))[0] == 401
    assert (await post_webhook(bot, good, token=None))[0] == 401
    cases = {
        b"{not json": "not JSON",
        b"[1, 2]": "not a JSON object",
        json.dumps({**good, "version": "3"}).encode(): "unsupported webhook version",
        json.dumps({**good, "alerts": "nope"}).encode(): "alerts",
        json.dumps({**good, "alerts": [{"status": "firing"}]}).encode(): "labels",
        json.dumps({**good, "alerts": [{**good["alerts"][0], "startsAt": "yesterday"}]}).encode(): "startsAt",
        "\udcff".encode("utf-8", "surrogatepass"): "not JSON",
    }
    for raw, reason in cases.items():
        status, body = await post_webhook(bot, None, raw=raw)
        assert status == 400 and reason in body["error"], (raw, body)
    assert alert_messages(bot) == []


async def test_critical_alert_declares_one_incident_per_group(sim, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CF_ALERTS_TOKEN", ALERT_TOKEN)
    bot = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}", config={
        "alerts": {"declare_incident_on_critical": True, "critical_incident_severity": "sev1",
                   "aliases": {"PgConnsHigh": "db-high-connections"}}})
    try:
        group = '{}:{alertname="PgConnsHigh"}'
        await post_webhook(bot, am_payload(am_alert("PgConnsHigh", severity="critical", summary="182 connections"),
                                           group=group))
        incident = (await bot.runtime.ops.incidents.open_incidents())[0]
        assert incident.severity == "sev1" and incident.kind == "database" and incident.title == "182 connections"
        [message] = alert_messages(bot, incident.channel)
        assert [b["value"] for b in runbook_buttons(message)] == ["db connections", "db long-running", "db kill-long"]
        assert "INC-1" in json.dumps(bot.messages(CHANNEL)[-1]["blocks"])  # announced in #incident-response
        await post_webhook(bot, am_payload(am_alert("PgConnsHigh", severity="critical", fingerprint="other"),
                                           group=group))
        assert len(await bot.runtime.ops.incidents.open_incidents()) == 1
        [grouped] = alert_messages(bot, incident.channel)  # the group's one message, now listing both
        assert grouped["ts"] == message["ts"]
        assert "*2 alerts* — 2 firing, 0 resolved" in json.dumps(grouped["blocks"], ensure_ascii=False)
        events = [e.event for e in await bot.runtime.store.audit_for_incident("INC-1")]
        assert events.count("alert_firing") == 2
    finally:
        await bot.close()


async def test_change_button_goes_through_approval(sim, kube, sandbox, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CF_ALERTS_TOKEN", ALERT_TOKEN)
    bot = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}", services={"kube": kube})
    try:
        await post_webhook(bot, am_payload(am_alert("GraphQLHighErrorRate")))
        [message] = alert_messages(bot)
        scale = button(message, "Scale graphql-api to 5")
        await bot.click(message["ts"], scale["action_id"], VIEWER)
        assert any("operator* role" in t for t in bot.private_texts()) and bot.requests() == []
        await bot.click(message["ts"], scale["action_id"], OPERATOR)
        request = bot.last_request()
        assert "Scale deployment/graphql-api in collaboration from 3 to 5" in json.dumps(request["blocks"])
        await bot.click(request["ts"], "cf_approve", APPROVER)
        assert any("Done: 3 replicas → 5 replicas" in t for t in bot.thread_texts(request["ts"]))
    finally:
        await bot.close()


async def test_two_replicas_post_an_alert_once(sim, pg_url, monkeypatch) -> None:
    monkeypatch.setenv("CF_ALERTS_TOKEN", ALERT_TOKEN)
    one = await start(sim, pg_url)
    two = await start(sim, pg_url)
    try:
        payload = am_payload(am_alert("DatabaseSlowQueries"), am_alert("RedisHighMemory"))
        results = await asyncio.gather(*(post_webhook(h, payload) for h in (one, two, one, two)))
        assert all(status == 200 for status, _ in results)
        assert sum(body["posted"] for _, body in results) == 2
        [message] = alert_messages(one)  # both alerts are of one Alertmanager group: one message lists them
        shown = json.dumps(message["blocks"])
        assert "*2 alerts*" in shown and "`DatabaseSlowQueries`" in shown and "`RedisHighMemory`" in shown
    finally:
        await one.close()
        await two.close()


def test_config_refuses_unknown_alias_targets_and_responders() -> None:
    from bot.config import ConfigError, parse_settings

    with pytest.raises(ConfigError, match=r"alerts\.aliases.*'nope' is not a built-in alert rule"):
        parse_settings({"incident_channel": CHANNEL, "alerts": {"aliases": {"MyAlert": "nope"}}})
    with pytest.raises(ConfigError, match=r"incidents\.responders"):
        parse_settings({"incident_channel": CHANNEL, "incidents": {"responders": ["alice"]}})
    with pytest.raises(ConfigError, match="reminder_minutes"):
        parse_settings({"incident_channel": CHANNEL, "incidents": {"reminder_minutes": {"sev9": 5}}})


def test_the_config_knows_exactly_the_built_in_rules() -> None:
    """`alerts.aliases` is checked against `bot.config.ALERT_RULES`; the rules themselves live in incidents."""
    from bot.config import ALERT_RULES
    from incidents.alert_rules import RULES

    assert {r.key for r in RULES} == ALERT_RULES
