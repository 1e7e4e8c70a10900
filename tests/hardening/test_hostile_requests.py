"""Hostile HTTP requests against the real web app (`build_web_application` on a local port): unsigned or
malformed Slack deliveries, absurdly deep JSON, broken headers. Each one gets a 4xx and at most one
log line without a traceback, and no configured secret value reaches any log line, aiohttp's own
lines (a rejected header, the access log) included.

Logs are captured through the handler `cfbot run` installs (`bot.logs.setup`), pointed at a buffer.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot import logs
from bot.config import Secrets, parse_settings
from bot.messenger import web_client
from incidents.assemble import build_web_application
from tests.harness import BOT_TOKEN, CHANNEL, OPERATOR, SIGNING_SECRET, BotHarness
from tests.incident_support import ALERT_TOKEN, alerts_url, am_alert, am_payload, start
from tests.slack_sim import block_actions_body, sign, slash_body

SECRETS = (SIGNING_SECRET, BOT_TOKEN, ALERT_TOKEN)


class LogBuffer:
    """What the production log handler wrote, line by line."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream
        self.mark = 0

    def all(self) -> str:
        return self.stream.getvalue()

    def since_mark(self) -> list[str]:
        text = self.stream.getvalue()[self.mark:]
        self.mark = len(self.stream.getvalue())
        return [line for line in text.splitlines() if line.strip()]


@pytest.fixture
def log_buffer() -> Iterator[LogBuffer]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in
             ("apscheduler", "urllib3", "kubernetes", "aiohttp.access", "slack_bolt", "slack_sdk")}
    logs.setup(json_logs=True, level=logging.INFO)
    [handler] = root.handlers
    stream = io.StringIO()
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield LogBuffer(stream)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in noisy.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
async def bot(sim, tmp_path, monkeypatch, log_buffer):
    monkeypatch.setenv("CF_ALERTS_TOKEN", ALERT_TOKEN)
    harness = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}")
    log_buffer.since_mark()  # start-up lines are not what these tests judge
    yield harness
    await harness.close()


def assert_clean(lines: list[str], what: str) -> None:
    """At most one line, no traceback, no secret."""
    assert len(lines) <= 1, (what, lines)
    for line in lines:
        assert "Traceback" not in line, (what, line)
        for secret in SECRETS:
            assert secret not in line, (what, secret, line)


async def post(url: str, body: bytes | str, headers: dict[str, str]) -> tuple[int, str]:
    data = body.encode() if isinstance(body, str) else body
    async with aiohttp.ClientSession() as session, session.post(url, data=data, headers=headers) as resp:
        return resp.status, await resp.text()


def form(payload: Any) -> str:
    return "payload=" + urllib.parse.quote(payload if isinstance(payload, str) else json.dumps(payload))


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ODD_BODIES = {
    "payload=null": form("null"),
    "payload=[1,2]": form("[1,2]"),
    "payload=123": form("123"),
    "payload 5,000 deep": form(deep(5000)),
    "JSON body 5,000 deep": "{" + '"a":' * 1 + deep(5000) + "}",
    "JSON object 5,000 deep": '{"type":' + '{"a":' * 5000 + "1" + "}" * 5001,
}


async def test_unsigned_odd_bodies_get_401_and_one_line(bot: BotHarness, log_buffer: LogBuffer) -> None:
    for name, body in ODD_BODIES.items():
        status, _ = await post(bot.app_url, body, FORM)
        assert status == 401, (name, status)
        lines = log_buffer.since_mark()
        assert_clean(lines, name)
        assert len(lines) == 1, (name, lines)  # the refusal is on record


async def test_bad_timestamps_and_signatures_get_401(bot: BotHarness, log_buffer: LogBuffer) -> None:
    body = form({"type": "block_actions"})
    good = sign(body, SIGNING_SECRET)
    cases = {
        "timestamp abc": {**good, "X-Slack-Request-Timestamp": "abc"},
        "timestamp empty": {**good, "X-Slack-Request-Timestamp": ""},
        "timestamp huge": {**good, "X-Slack-Request-Timestamp": "9" * 400},
        "stale (ten minutes old)": sign(body, SIGNING_SECRET, timestamp=int(time.time()) - 600),
        "wrong secret": sign(body, "not-the-secret"),
        "signature only": {"X-Slack-Signature": good["X-Slack-Signature"]},
        "garbage signature": {**good, "X-Slack-Signature": "v0=\u00e9\u00e9"},
    }
    for name, headers in cases.items():
        status, _ = await post(bot.app_url, body, {**FORM, **headers})
        assert status == 401, (name, status)
        assert_clean(log_buffer.since_mark(), name)
    # a good request still passes, and the same signed request again is a replay
    body = slash_body("help", OPERATOR, CHANNEL, "/cf")
    headers = {**FORM, **sign(body, SIGNING_SECRET)}
    assert (await post(bot.app_url, body, headers))[0] == 200
    assert (await post(bot.app_url, body, headers))[0] == 409
    await bot.settle()
    for secret in SECRETS:
        assert secret not in log_buffer.all()


async def test_signed_odd_bodies_get_400_and_one_line(bot: BotHarness, log_buffer: LogBuffer) -> None:
    for name, body in ODD_BODIES.items():
        status, _ = await post(bot.app_url, body, {**FORM, **sign(body, SIGNING_SECRET)})
        assert status == 400, (name, status)
        assert_clean(log_buffer.since_mark(), name)


def click_payload() -> dict[str, Any]:
    message = {"ts": "1700000000.000100", "text": "x", "blocks": []}
    raw = block_actions_body(OPERATOR, CHANNEL, message, "cf_approve", "A-1")
    payload: dict[str, Any] = json.loads(urllib.parse.parse_qs(raw)["payload"][0])
    return payload


async def test_signed_block_actions_with_odd_shapes_get_400(bot: BotHarness, log_buffer: LogBuffer) -> None:
    cases: dict[str, dict[str, Any]] = {
        "user as a list": {"user": ["U0OPERATOR"]},
        "user as a string": {"user": "U0OPERATOR"},
        "actions empty": {"actions": []},
        "actions an object": {"actions": {}},
        "actions [null]": {"actions": [None]},
        "actions [1]": {"actions": [1]},
        "action_id a list": {"actions": [{"action_id": ["approve"], "block_id": "b", "value": "1"}]},
        "container a list": {"container": [1]},
        "team a number": {"team": 7},
    }
    for name, change in cases.items():
        body = form({**click_payload(), **change})
        status, _ = await post(bot.app_url, body, {**FORM, **sign(body, SIGNING_SECRET)})
        assert status == 400, (name, status)
        assert_clean(log_buffer.since_mark(), name)
    await bot.settle()
    assert [c.method for c in bot.sim.calls if c.method in ("chat.postMessage", "chat.postEphemeral",
                                                            "response_url")] == []


async def test_alert_webhook_deep_json_gets_400(bot: BotHarness, log_buffer: LogBuffer) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ALERT_TOKEN}"}
    for name, body in {"30k-deep array (under the body limit)": deep(30_000),
                       "deep inside a valid payload": json.dumps(am_payload(am_alert("X")))[:-1]
                       + ', "extra": ' + deep(5000) + "}",
                       "not UTF-8": b'{"version": "4", "x": "\xff"}'}.items():
        status, text = await post(alerts_url(bot), body, headers)
        assert status == 400, (name, status, text[:200])
        assert_clean(log_buffer.since_mark(), name)
    status, _ = await post(alerts_url(bot), deep(30_000), {"Content-Type": "application/json"})
    assert status == 401
    assert_clean(log_buffer.since_mark(), "unauthorized deep")


async def raw_request(url: str, head: bytes, body: bytes = b"") -> bytes:
    parsed = urllib.parse.urlparse(url)
    reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port)
    writer.write(head + b"\r\n" + body)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), timeout=10)
    writer.close()
    return answer


async def test_nul_in_a_header_logs_one_line_without_the_token(bot: BotHarness, log_buffer: LogBuffer) -> None:
    path = urllib.parse.urlparse(alerts_url(bot)).path
    for secret in SECRETS:
        head = (f"POST {path} HTTP/1.1\r\nHost: cf\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {secret}\x00\r\nContent-Length: 2\r\n").encode()
        answer = await raw_request(alerts_url(bot), head, b"{}")
        assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n", 1)[0], answer[:200]
        await asyncio.sleep(0.05)
        lines = log_buffer.since_mark()
        assert_clean(lines, f"NUL after {secret}")


async def test_access_log_lines_are_masked(sim, tmp_path, monkeypatch, log_buffer: LogBuffer) -> None:
    """With aiohttp's access log switched on, a secret in a URL or a header is masked in its line."""
    monkeypatch.setenv("CF_ALERTS_TOKEN", ALERT_TOKEN)
    harness = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}")
    logging.getLogger("aiohttp.access").setLevel(logging.INFO)
    client = web_client(BOT_TOKEN, sim.api_url)
    web_app = build_web_application(harness.runtime, client, SIGNING_SECRET)
    runner = web.AppRunner(web_app, access_log_format='%r %s "%{Authorization}i"')
    try:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log_buffer.since_mark()
        url = f"http://127.0.0.1:{port}/healthz?token={ALERT_TOKEN}&sig={SIGNING_SECRET}"
        async with aiohttp.ClientSession() as session, \
                session.get(url, headers={"Authorization": f"Bearer {ALERT_TOKEN}"}) as resp:
            assert resp.status == 200
        await asyncio.sleep(0.05)
        lines = log_buffer.since_mark()
        assert any("/healthz" in line for line in lines), lines  # the access line was written
        assert_clean(lines, "access log")
    finally:
        await runner.cleanup()
        await harness.close()


def test_every_configured_secret_is_collected_for_masking(monkeypatch) -> None:
    settings = parse_settings({"incident_channel": CHANNEL, "alerts": {"token_env": "MY_AM_TOKEN"}}, "test")
    env = {
        "SLACK_BOT_TOKEN": "xoxb-bot-token-value",
        "SLACK_SIGNING_SECRET": "signing-secret-value",
        "SLACK_APP_TOKEN": "xapp-app-token-value",
        "DATABASE_URL": "postgresql://cf:store-password@db/cf",
        "MY_AM_TOKEN": "am-token-value",
        "CF_TARGET_DATABASE_URL": "postgresql://app:target-db-password@db/app",
        "CF_TARGET_REDIS_URL": "redis://:target-redis-password@cache:6379/0",
        "STATUSPAGE_API_KEY": "statuspage-key-value",
    }
    values = set(logs.configured_secrets(settings, Secrets.from_env(env), env))
    assert {"xoxb-bot-token-value", "signing-secret-value", "xapp-app-token-value", "store-password",
            "am-token-value", "target-db-password", "target-redis-password", "statuspage-key-value"} <= values
    logs.register_secrets(*values)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logs.setup_handler(handler, json_logs=False)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "connecting with %s", ("am-token-value",), None)
    handler.handle(record)
    assert "am-token-value" not in stream.getvalue() and "connecting with" in stream.getvalue()
