"""Self-protection (issue 10 §1 and §2): a pattern typed by a viewer cannot freeze the bot, and text the
bot did not write (a user's pattern, a deployment's change cause, an incident title, an alert's summary,
an incident update) never reaches Slack as a live `<!channel>`, `<!here>`, `<!everyone>` or a disguised
`<https://…|label>` link, in blocks, fallback text, topics or purposes."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import aiohttp
import pytest

from base.patterns import UserPattern
from base.text import code, guard, guard_payload, link, literal
from tests.harness import OPERATOR, VIEWER
from tests.incident_support import ALERT_TOKEN, am_alert, am_payload, post_webhook, start
from tests.k8s_support import assert_slack_accepted_everything, k8s_bot, last_reply

CATASTROPHIC = [r"^(.+)+Q", r"(a+)+$", r"(a|aa)+$", r"(x+x+)+y", r"^(\w+\s?)*$", r"(.*a){12}"]

INJECTIONS = [
    "ERROR|` <!channel> <https://evil.example/login|click here> `",
    "&lt;!here&gt; and &lt;https://evil.example|login&gt;",
    "<!everyone> `` <http://evil.example|x> ``",
]
LIVE = re.compile(r"<!(?:channel|here|everyone)\b|<https?://evil\.example[^>]*\|")


def live_mrkdwn(sim: Any, since: int = 0) -> list[str]:
    """Every live broadcast or disguised link in any call the bot made to Slack (since call `since`)."""
    found = []
    for call in sim.calls[since:]:
        shown = json.dumps(call.args, ensure_ascii=False)
        found += [f"{call.method}: {m.group(0)}" for m in LIVE.finditer(shown)]
    return found


# --- §1 patterns ---------------------------------------------------------------------------------


async def test_catastrophic_patterns_answer_quickly_while_the_bot_stays_responsive(sim, tmp_path) -> None:
    async with k8s_bot(sim, tmp_path) as env:
        bot = env.bot
        health = bot.app_url.replace("/slack/events", "/healthz")
        async with aiohttp.ClientSession() as http:
            for pattern in CATASTROPHIC:
                before = len(bot.messages())
                started = time.perf_counter()
                await bot.driver.slash(f"/cf logs graphql-api --tail 2000 --grep '{pattern}'", user=VIEWER)
                # While the filter runs: the health check and another command are answered at once.
                probe = time.perf_counter()
                async with http.get(health, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                    assert resp.status == 200
                healthz_took = time.perf_counter() - probe
                probe = time.perf_counter()
                await bot.driver.slash("/cf help", user=VIEWER)
                help_ack = time.perf_counter() - probe
                await asyncio.wait_for(bot.settle(), timeout=15)
                took = time.perf_counter() - started
                assert healthz_took < 2 and help_ack < 2, (pattern, healthz_took, help_ack)
                assert took < 10, f"{pattern!r} took {took:.1f}s"
                answers = [m for m in bot.messages()[before:] if "lines of logs" in m["text"]
                           or "line of logs" in m["text"]]
                assert answers, f"no answer to logs --grep {pattern!r}"
                assert "matching" in last_reply(bot) or "matching" in answers[-1]["text"]
        assert_slack_accepted_everything(sim)


async def test_patterns_re2_cannot_run_are_refused_with_a_reason(bot) -> None:
    await bot.slash(r"logs graphql-api --grep '(a)\1'", user=VIEWER)
    await bot.slash("logs graphql-api --grep '(?=ERROR)x'", user=VIEWER)
    said = " ".join(bot.private_texts())
    assert "`(a)\\1` is not a valid regular expression" in said
    assert "`(?=ERROR)x` is not a valid regular expression" in said
    assert "RE2" in said and "backreferences" in said
    assert not [m for m in bot.messages() if "lines of logs" in m["text"]]  # nothing ran


async def test_filtering_a_huge_input_stops_at_its_budget() -> None:
    """An exhausted budget stops the filter at its next check, with the count of what it examined."""
    pattern = UserPattern.compile(r"(.*a){12}")
    lines = ["b" * 3000] * 20_000
    found = await pattern.filter(lines, key=str, budget=0.0)
    assert found.items == []
    assert not found.complete and found.examined == 512 and found.total == 20_000
    everything = await pattern.filter(lines[:600], key=str, budget=60.0)
    assert everything.complete and everything.examined == 600


# --- §2 outside text is data -----------------------------------------------------------------------


def test_guard_escapes_everything_but_the_bots_own_sequences() -> None:
    made = f"{link('https://grafana.example/d?a=1&b=2', 'graph')} at {literal('<!here>')} <@U0ABC> <#C0INC>"
    out = guard(made + " <!channel> <https://evil.example|login> &lt;!here&gt;")
    assert "<https://grafana.example/d?a=1&amp;b=2|graph>" in out and "<@U0ABC>" in out and "<#C0INC>" in out
    assert not LIVE.search(out)
    assert "\ue000" not in out and "\ue001" not in out
    assert code("a`b <!here>") == "`a\u02cbb &lt;!here&gt;`"
    payload = guard_payload({"channel": "C1", "text": "<!here>", "blocks": [{"type": "section", "text": {
        "type": "mrkdwn", "text": "<!channel>"}}], "topic": "<!everyone>", "value": "<kept>"})
    assert not LIVE.search(json.dumps(payload)) and payload["value"] == "<kept>"


async def test_injected_text_reaches_no_slack_call_as_live_mrkdwn(sim, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CF_ALERTS_TOKEN", ALERT_TOKEN)
    async with k8s_bot(sim, tmp_path) as env:
        bot = env.bot
        for text in INJECTIONS:
            quoted = text.replace("'", "")
            await bot.slash(f"logs graphql-api --grep '{quoted}'", user=VIEWER)
            await bot.slash(f"metrics graphql-api '{quoted}'", user=VIEWER)
            await bot.slash(f"nosuchcommand {quoted}", user=VIEWER)
            await bot.slash(f"scale graphql-api '{quoted}'", user=OPERATOR)
        # the pattern is shown in the title as typed, inside a code span it cannot close
        shown = [m["text"] for m in bot.messages() if "lines of logs" in m["text"] or "line of logs" in m["text"]]
        assert len(shown) == len(INJECTIONS) and all(t.count("`") == 2 for t in shown), shown
        # cluster objects: a change cause and an image
        cause = INJECTIONS[0]
        await env.kubectl("annotate", "deployment/graphql-api", f"kubernetes.io/change-cause={cause}", "--overwrite")
        await bot.slash("describe deployment graphql-api", user=VIEWER)
        assert "<!channel>" in last_reply(bot)  # shown (as text), not dropped
        await bot.slash("rollout history graphql-api", user=VIEWER)
        assert live_mrkdwn(sim) == []
        assert_slack_accepted_everything(sim)


async def test_incident_and_alert_text_reaches_no_slack_call_as_live_mrkdwn(sim, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CF_ALERTS_TOKEN", ALERT_TOKEN)
    bot = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}")
    try:
        title = "Editor down <!channel> <https://evil.example/login|status page>"
        await bot.slash(f"incident declare sev2 {title}", user=OPERATOR)
        created = [c for c in sim.channels.values() if c["name"].startswith("inc-")]
        assert created, sim.dump_calls()
        inc_channel = created[-1]["id"]
        await bot.slash("incident update ` <!here> <http://evil.example|details> &lt;!everyone&gt;", user=OPERATOR,
                        channel=inc_channel)
        await bot.slash("incident timeline", user=OPERATOR, channel=inc_channel)
        await bot.slash("incident list", user=OPERATOR)
        status, _ = await post_webhook(bot, am_payload(am_alert(
            "Crash<!here>", severity="critical", summary="pods down <!channel> <https://evil.example|fix it>")))
        assert status == 200
        topics = [c.args.get("topic", "") for c in sim.calls_to("conversations.setTopic")]
        purposes = [c.args.get("purpose", "") for c in sim.calls_to("conversations.setPurpose")]
        assert topics and purposes and any("&lt;!channel&gt;" in t for t in topics)
        assert [m for m in bot.messages() if "FIRING" in m["text"]], sim.dump_calls()
        assert live_mrkdwn(sim) == []
        assert_slack_accepted_everything(sim)
    finally:
        await bot.close()


@pytest.mark.parametrize("where", ["preface", "unknown", "usage"])
async def test_what_the_user_typed_is_echoed_escaped(bot, where: str) -> None:
    typed = {"preface": "logs graphql-api --tail 1 --grep 'x` <!channel> `'", "unknown": "`<!here>` <https://evil.example|x>",
             "usage": "scale graphql-api `<!everyone>`"}[where]
    before = len(bot.sim.calls)
    await bot.slash(typed, user=OPERATOR)
    assert bot.sim.calls[before:], "no answer"
    assert live_mrkdwn(bot.sim, before) == []
    if where == "preface":  # the "ran `/cf …`" line shows the whole command, its backticks made harmless
        ran = [m for m in bot.messages() if " ran `/cf logs" in json.dumps(m.get("blocks"))]
        assert ran and "\u02cb" in json.dumps(ran[-1]["blocks"], ensure_ascii=False)


async def test_a_command_whose_text_says_payload_is_still_a_command(bot) -> None:
    """Bolt reads any form body containing "payload" as a click; the bot reads it as the command it is."""
    delivery = await bot.slash("logs graphql-api --tail 5 --grep payload", user=VIEWER)
    assert delivery.status == 200
    assert [m for m in bot.messages() if "matching `payload`" in m["text"]], bot.sim.dump_calls()
