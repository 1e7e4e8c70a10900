"""Hostile input: any text gives an answer or a usage message, never a traceback; malformed,
oversized, unsigned or replayed Slack payloads get 4xx, never 500."""

from __future__ import annotations

import io
import json
import urllib.parse

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import Settings
from bot.messenger import Origin
from commands.args import UsageError
from commands.catalog import REGISTRY
from tests.harness import CHANNEL, OPERATOR, SIGNING_SECRET
from tests.slack_sim import sign

SPECS = list(REGISTRY)
WORDS = sorted({w for spec in SPECS for w in spec.title.split()} | {"--since", "-A", "--all-namespaces", "10",
                                                                      "-1", "graphql-api", "'", '"', "--"})
token = st.one_of(st.sampled_from(WORDS), st.text(min_size=0, max_size=12))


@given(index=st.integers(min_value=0, max_value=len(SPECS) - 1), tokens=st.lists(token, max_size=6))
@settings(max_examples=400, deadline=None)
def test_every_parser_returns_values_or_a_usage_error(index: int, tokens: list[str]) -> None:
    spec = SPECS[index]
    try:
        values = spec.parse(tokens)
    except UsageError as exc:
        assert str(exc) and "Traceback" not in str(exc)
    else:
        assert set(values) == {a.param for a in spec.args}
        json.dumps(values)  # what a change stores must round-trip through JSON


@given(text=st.one_of(st.text(max_size=80), st.lists(token, max_size=6).map(" ".join)))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_any_text_gets_an_answer_and_never_a_traceback(bot, text: str) -> None:
    before = len(bot.sim.calls)
    await bot.runtime.dispatcher.handle(Origin(user=OPERATOR, channel=CHANNEL), text)
    await bot.settle()
    new = bot.sim.calls[before:]
    answers = [c for c in new if c.method in ("chat.postMessage", "chat.postEphemeral", "files.completeUploadExternal")]
    assert answers, f"no answer to {text!r}"
    shown = json.dumps([c.args for c in new])
    assert "Traceback" not in shown and "Something went wrong" not in shown, shown[:500]


async def post(bot, body: bytes | str, signed: bool = True, content_type: str = "application/x-www-form-urlencoded"):
    raw = body.decode("latin-1") if isinstance(body, bytes) else body
    headers = {**sign(raw, SIGNING_SECRET), "Content-Type": content_type} if signed else {"Content-Type": content_type}
    return await bot.driver.post_raw(raw, headers)


async def test_malformed_payloads_get_4xx(bot) -> None:
    cases = {
        "not a form at all": "garbage{{",
        "payload that is not JSON": "payload=" + urllib.parse.quote("{not json"),
        "payload of an unknown type": "payload=" + urllib.parse.quote(json.dumps({"type": "mystery"})),
        "block action without actions": "payload=" + urllib.parse.quote(json.dumps({"type": "block_actions"})),
        "slash command with no command": "text=pods&user_id=U1",
        "JSON body": json.dumps({"type": "event_callback", "event": {}}),
    }
    for name, body in cases.items():
        delivery = await post(bot, body)
        assert 400 <= delivery.status < 500, (name, delivery.status, delivery.body)
    await bot.settle()


async def test_oversized_and_undecodable_bodies_get_4xx(bot) -> None:
    huge = ("text=" + "a" * 1_200_000).encode()
    headers = {**sign(huge.decode(), SIGNING_SECRET), "Content-Type": "application/x-www-form-urlencoded"}
    async with aiohttp.ClientSession() as session, session.post(bot.app_url, data=io.BytesIO(huge),
                                                                headers=headers) as resp:
        assert resp.status == 413
    delivery = await post(bot, b"text=\xff\xfe\xfa")
    assert 400 <= delivery.status < 500


async def test_signature_checks_cannot_be_configured_away() -> None:
    assert "signature" not in json.dumps(Settings.model_json_schema()).lower()
    # the only "verify" settings are the change verdict's (how long a change is watched), not the request's
    schema = json.dumps(Settings.model_json_schema()).lower()
    for allowed in ("verify_timeout_seconds", "verify_progress_seconds", "verify timeout seconds",
                    "verify progress seconds"):
        schema = schema.replace(allowed, "")
    assert "verif" not in schema


async def test_unsigned_request_is_refused_whatever_it_says(bot) -> None:
    body = "command=%2Fcf&text=scale+graphql-api+10&user_id=U0OPERATOR&channel_id=C0INCIDENT"
    assert (await post(bot, body, signed=False)).status == 401
    await bot.settle()
    assert bot.requests() == []
