"""Bad input and abuse, counted (issue 15 §4): a body over `limits.max_body_bytes` is refused with 413 before
it is parsed, on Slack's endpoint and on the Alertmanager webhook, whether it declares its length or comes
chunked; a body at the limit is served. The webhook's token is compared in constant time and its alerts per
request are capped. All through the real web app on a local port, signed as Slack and Alertmanager send."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.harness import CHANNEL, VIEWER, BotHarness
from tests.incident_support import ALERT_TOKEN, alerts_url, am_alert, am_payload, start
from tests.slack_sim import sign, slash_body

LIMIT = 64 * 1024
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def bot(sim, tmp_path, monkeypatch) -> AsyncIterator[BotHarness]:
    monkeypatch.setenv("CF_ALERTS_TOKEN", ALERT_TOKEN)
    harness = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}")
    assert harness.runtime.settings.limits.max_body_bytes == LIMIT  # the default is what is tested
    yield harness
    await harness.close()


def slash_of_size(bot: BotHarness, size: int) -> str:
    """A real `/cf help` from a viewer, padded with spaces (one byte each, `+`) to exactly `size` bytes."""
    url = bot.sim.new_response_url(CHANNEL, VIEWER)
    bare = slash_body("help", VIEWER, CHANNEL, "/cf", response_url=url)
    pad = size - len(bare)
    assert pad >= 0
    body = slash_body("help" + " " * pad, VIEWER, CHANNEL, "/cf", response_url=url)
    assert len(body.encode()) == size
    return body


def webhook_of_size(size: int) -> bytes:
    """A valid Alertmanager webhook of exactly `size` bytes (the padding is in one alert's description)."""
    alert = am_alert("BodyLimitProbe", fingerprint="fpbodylimit")
    alert["annotations"]["description"] = ""
    bare = json.dumps(am_payload(alert)).encode()
    alert["annotations"]["description"] = "x" * (size - len(bare))
    body = json.dumps(am_payload(alert)).encode()
    assert len(body) == size
    return body


async def chunks(data: bytes, size: int = 8192) -> AsyncIterator[bytes]:
    for start_at in range(0, len(data), size):
        yield data[start_at:start_at + size]


async def send(url: str, body: bytes, headers: dict[str, str], chunked: bool) -> tuple[int, str]:
    """POST `body` with its Content-Length, or chunked (no Content-Length: aiohttp streams an async iterator)."""
    data: Any = chunks(body) if chunked else body
    async with aiohttp.ClientSession() as session, session.post(url, data=data, headers=headers) as resp:
        if chunked:
            assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
        return resp.status, await resp.text()


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "refused a request body over" in r.getMessage()]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_slack_body_over_the_limit_is_413_and_one_line(bot: BotHarness, caplog, chunked: bool) -> None:
    caplog.set_level(logging.INFO)
    before = len(bot.sim.calls)
    body = slash_of_size(bot, LIMIT + 1)
    status, text = await send(bot.app_url, body.encode(), {**FORM, **sign(body, "test-signing-secret")}, chunked)
    await bot.settle()
    assert status == 413, text
    assert f"over {LIMIT} bytes" in text
    [line] = refusals(caplog)
    assert line.exc_info is None and line.levelno == logging.WARNING
    assert bot.sim.calls[before:] == []  # nothing ran, nothing was said
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_slack_body_at_the_limit_is_served(bot: BotHarness, caplog, chunked: bool) -> None:
    body = slash_of_size(bot, LIMIT)
    status, text = await send(bot.app_url, body.encode(), {**FORM, **sign(body, "test-signing-secret")}, chunked)
    await bot.settle()
    assert status == 200, text
    said = " ".join(bot.private_texts())
    assert "/cf help" in said or "Commands" in said, bot.sim.dump_calls()
    assert refusals(caplog) == []


async def test_a_declared_length_over_the_limit_is_refused_before_the_body_arrives(bot: BotHarness, caplog) -> None:
    """The client announces 10 MB and sends nothing: the answer comes at once, without waiting for the body."""
    for url in (bot.app_url, alerts_url(bot)):
        parsed = urllib.parse.urlparse(url)
        reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port)
        head = (f"POST {parsed.path} HTTP/1.1\r\nHost: cf\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {ALERT_TOKEN}\r\nContent-Length: 10000000\r\n\r\n").encode()
        started = time.perf_counter()
        writer.write(head)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(4096), timeout=5)
        writer.close()
        assert answer.split(b"\r\n", 1)[0].endswith(b" 413 Request Entity Too Large"), answer[:200]
        assert time.perf_counter() - started < 2
    assert len(refusals(caplog)) == 2


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_alert_body_over_the_limit_is_413_and_one_line(bot: BotHarness, caplog, chunked: bool) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ALERT_TOKEN}"}
    status, text = await send(alerts_url(bot), webhook_of_size(LIMIT + 1), headers, chunked)
    await bot.settle()
    assert status == 413, text
    assert len(refusals(caplog)) == 1
    assert bot.messages() == []
    status, text = await send(alerts_url(bot), webhook_of_size(LIMIT), headers, chunked)
    await bot.settle()
    assert status == 200 and json.loads(text)["ok"], text
    assert [m for m in bot.messages() if "BodyLimitProbe" in m["text"]], bot.sim.dump_calls()
    assert len(refusals(caplog)) == 1


# --- the alert webhook's token and its cap -------------------------------------------------------------


async def post_alerts(bot: BotHarness, payload: Any, authorization: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    status, text = await send(alerts_url(bot), json.dumps(payload).encode(), headers, chunked=False)
    await bot.settle()
    return status, json.loads(text)


async def test_alert_token_is_compared_in_constant_time(bot: BotHarness, monkeypatch) -> None:
    """Only the exact token passes, and every comparison goes through `hmac.compare_digest` with inputs of
    one length whatever was sent (digests), so neither the content nor the length of the token leaks."""
    compared: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def watching(a: Any, b: Any) -> bool:
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", watching)
    wrong = ["", "Bearer", f"Bearer {ALERT_TOKEN[:-1]}", f"Bearer {ALERT_TOKEN}x", f"Bearer {ALERT_TOKEN[:-1]}X",
             f"Bearer {ALERT_TOKEN.upper()}", f"Basic {ALERT_TOKEN}", f"Bearer {'x' * 5000}", ALERT_TOKEN]
    for header in wrong:
        status, answer = await post_alerts(bot, am_payload(am_alert("TokenProbe")), header)
        assert status == 401 and answer["error"] == "unauthorized", header
    assert bot.messages() == []
    status, answer = await post_alerts(bot, am_payload(am_alert("TokenProbe")), f"bearer {ALERT_TOKEN}")
    assert status == 200 and answer["ok"], answer
    assert compared and len(set(compared)) == 1, compared  # one comparison shape for every header
    assert compared[0][0] == compared[0][1]


async def test_alerts_per_request_are_capped(sim, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CF_ALERTS_TOKEN", ALERT_TOKEN)
    bot = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}", config={"alerts": {"max_alerts_per_request": 5}})
    try:
        many = [am_alert(f"Cap{i}", fingerprint=f"fpcap{i}") for i in range(6)]
        status, answer = await post_alerts(bot, am_payload(*many), f"Bearer {ALERT_TOKEN}")
        assert status == 400 and "too many alerts in one request (6 > 5)" in answer["error"], answer
        assert bot.messages() == []  # none of them posted
        status, answer = await post_alerts(bot, am_payload(*many[:5]), f"Bearer {ALERT_TOKEN}")
        assert status == 200 and answer["ok"], answer
        shown = json.dumps(bot.messages())
        assert all(f"Cap{i}" in shown for i in range(5)), bot.sim.dump_calls()  # all five reached Slack
        # the count is checked before each alert is validated: a huge list of junk is refused for its size
        junk = {**am_payload(), "alerts": [{"status": "nonsense"}] * 500}
        status, answer = await post_alerts(bot, junk, f"Bearer {ALERT_TOKEN}")
        assert status == 400 and "too many alerts in one request (500 > 5)" in answer["error"], answer
    finally:
        await bot.close()
