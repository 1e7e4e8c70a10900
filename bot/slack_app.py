"""The Slack transport: a Bolt `AsyncApp` whose listeners ack at once and hand over to the runtime.

Bolt (with `process_before_response=False`) answers Slack as soon as a listener calls `ack()` and
lets the listener carry on in the background, so every slash command and click is acknowledged in
milliseconds and the work happens after. HTTP mode serves Bolt at `/slack/events` next to
`/healthz` and `/readyz` on one aiohttp application; Socket Mode uses Bolt's aiohttp socket handler.
Signature verification is always on in HTTP mode: there is no setting to turn it off.

Every request body on this application (Slack's endpoint and the Alertmanager webhook alike) is capped
at `limits.max_body_bytes` before anything parses it: a Content-Length over the cap is refused before a
byte of the body is read, and a body without one (chunked) is read only up to the cap (aiohttp's
`client_max_size`, which `request.read()` enforces chunk by chunk) — either way 413 and one log line.

`/slack/events` checks the signature itself before anything reads the body (Bolt would parse it
first, and an odd body then failed inside Bolt with a traceback): a missing, bad or stale signature or
a timestamp that is not a number is 401, a replay 409, a signed body whose shape Bolt's routing or our
listeners would trip over (`bot.listening.parse_delivery`) 400 — each with one log line. Only then
does Bolt see the request (and verify it again, as it always does).

Bolt's first middleware of ours is the per-user rate limit (`CommandRateLimit`, see `bot.ratelimit`):
past `limits.commands_per_minute` slash commands and button clicks in a sliding minute, a person's
request is acknowledged as usual but nothing runs; they are told when they can go on. It sits in Bolt
rather than in the HTTP handler so that Socket Mode is limited the same way.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDictProxy
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from base.durations import duration_text
from bot import logs
from bot.blocks import APPROVE, DENY
from bot.change_buttons import change_buttons
from bot.inbox import origin_payload
from bot.listening import action_value, click_origin, parse_delivery, request_key
from bot.messenger import DeliveryError, Origin
from bot.ratelimit import SlidingWindow, Verdict
from bot.runtime import Runtime
from bot.store import StoreUnavailable

log = logging.getLogger(__name__)

RUNTIME_KEY = web.AppKey("runtime", Runtime)
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class SlackBolt(AsyncApp):
    """Bolt's app plus the verifier `build_web_app` checks each request's signature with, before Bolt
    (or anything else) parses the body."""

    def __init__(self, *, signing_secret: str, **kwargs: Any) -> None:
        super().__init__(signing_secret=signing_secret, **kwargs)
        self.verifier = SignatureVerifier(signing_secret)


def group_resolver(client: AsyncWebClient) -> Any:
    async def resolve(group_id: str) -> list[str]:
        resp = await client.usergroups_users_list(usergroup=group_id)
        return list(resp.get("users", []))

    return resolve


ListenerHook = Callable[[AsyncApp, Runtime, Callable[[dict[str, Any]], str | None]], None]
RoutesHook = Callable[[web.Application, Runtime], None]


def build_bolt_app(runtime: Runtime, client: AsyncWebClient, signing_secret: str,
                   extra_listeners: Sequence[ListenerHook] = ()) -> SlackBolt:
    """The platform's listeners (`/cf`, Approve, Deny) plus those a domain adds (incidents: the modal,
    command-line buttons, the Home tab), each registered by its own hook."""
    if not signing_secret:
        raise ValueError("SLACK_SIGNING_SECRET is required")
    logs.register_secrets(signing_secret, client.token)
    app = SlackBolt(
        client=client,
        signing_secret=signing_secret,
        request_verification_enabled=True,
        process_before_response=False,
    )
    app.use(CommandRateLimit(runtime))

    @app.command("/cf")
    async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        origin = Origin(
            user=body.get("user_id", ""),
            channel=body.get("channel_id", ""),
            response_url=body.get("response_url"),
            trigger_id=body.get("trigger_id"),
        )
        payload = origin_payload(origin, text=body.get("text", ""))
        await runtime.deliver("command", payload, request_key(body))  # durable: bot/inbox.py

    @app.action(APPROVE)
    async def on_approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        payload = origin_payload(click_origin(body), value=action_value(body))
        await runtime.deliver("approve", payload, request_key(body), long=True)

    @app.action(DENY)
    async def on_deny(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        payload = origin_payload(click_origin(body), value=action_value(body))
        await runtime.deliver("deny", payload, request_key(body), long=True)

    change_buttons(app, runtime, request_key)  # Undo, Request again: the platform's own
    for hook in extra_listeners:
        hook(app, runtime, request_key)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("unhandled error in a listener", exc_info=error)

    return app



class CommandRateLimit(AsyncMiddleware):
    """At most `limits.commands_per_minute` slash commands and button clicks per person in a sliding
    minute (`bot.ratelimit.SlidingWindow`, in this process). A request past it is acknowledged at once
    and nothing runs: a slash command's ack itself tells the person when they can go on (no Web API
    call, so a flood costs Slack nothing); a click's ack cannot carry text, so the first refused click
    of a burst is answered privately through its response_url and the rest of that burst silently.
    Modal submissions and events are not counted."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.window = SlidingWindow(runtime.settings.limits.commands_per_minute, 60.0, clock=runtime.dispatcher.clock)
        self._answers: set[asyncio.Task[Any]] = set()

    @property
    def name(self) -> str:
        return "CommandRateLimit"

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse,
                            next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse | None:
        body = req.body
        user = counted_user(body)
        verdict = self.window.check(user, request_key(body)) if user is not None else None
        if verdict is None or verdict.allowed:
            await next()
            return resp
        text = slow_down_text(self.window.limit, verdict)
        if verdict.first_refusal:
            log.warning("rate limited a user", extra={"user": user, "limit": self.window.limit,
                                                      "retry_after_s": math.ceil(verdict.retry_after)})
        if "command" in body:
            return BoltResponse(status=200, body={"response_type": "ephemeral", "text": text})
        if verdict.first_refusal:
            task = asyncio.create_task(self.runtime.track(self._tell(click_origin(body), text)))
            self._answers.add(task)
            task.add_done_callback(self._answers.discard)
        return BoltResponse(status=200, body="")

    async def _tell(self, origin: Origin, text: str) -> None:
        try:
            await self.runtime.messenger.respond(origin, text)
        except DeliveryError as exc:
            log.warning("could not tell a rate-limited user to slow down", extra={"user": origin.user,
                                                                                   "error": exc.code})


def counted_user(body: dict[str, Any]) -> str | None:
    """Who sent a request the rate limit counts (a slash command or a button click), else None.
    A slash command without a user id counts for "" (one shared window for all of them)."""
    if "command" in body:
        user = body.get("user_id")
        return user if isinstance(user, str) else ""
    if body.get("type") == "block_actions":
        who = body.get("user")
        user = who.get("id") if isinstance(who, dict) else who
        return user if isinstance(user, str) else ""
    return None


def slow_down_text(limit: int, verdict: Verdict) -> str:
    wait = max(math.ceil(verdict.retry_after), 1)
    at = time.strftime("%H:%M:%S", time.gmtime(verdict.go_on_at + (wait - verdict.retry_after)))
    return (f":hourglass_flowing_sand: Slow down: you have sent {limit} commands and clicks in the last minute, "
            f"the most I take from one person. Nothing was run. You can go on in {duration_text(wait)} "
            f"(at {at} UTC).")


def build_web_app(bolt: SlackBolt, runtime: Runtime, extra_routes: Sequence[RoutesHook] = ()) -> web.Application:
    """One aiohttp application: Slack's endpoint plus health checks."""

    seen = ReplayGuard()

    async def slack_events(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        raw = await request.read()  # at most limits.max_body_bytes (body_limit answers 413 past it)
        text, refused = verified_text(bolt.verifier, raw, request.headers)
        if refused:
            log.warning("refused a Slack request: %s", refused, extra={"remote": request.remote})
            return web.json_response({"error": "invalid request signature"}, status=401)
        signature = request.headers["X-Slack-Signature"]
        if seen.seen(signature):
            runtime.metrics.slack_retries_skipped.labels("replay").inc()
            return web.json_response({"error": "replayed request"}, status=409)
        headers = _first_values(request.headers)
        body, problem = parse_delivery(text, (headers.get("content-type") or "").split(";")[0] or None)
        if problem:
            log.warning("refused a malformed Slack request: %s", problem, extra={"remote": request.remote})
            return web.json_response({"error": "malformed request"}, status=400)
        try:
            bolt_headers: dict[str, str | Sequence[str]] = dict(headers)
            bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=bolt_headers)
            if bolt_request.body != body:  # Bolt reads any form body containing "payload" as a click: not so
                bolt_request.body = body
                bolt_request.context = build_async_context(AsyncBoltContext({}), body)
        except Exception as exc:  # a shape parse_delivery does not know yet: still one line, still 400
            log.warning("refused a Slack request Bolt cannot read: %s", type(exc).__name__,
                        extra={"remote": request.remote})
            return web.json_response({"error": "malformed request"}, status=400)
        bolt_resp = await bolt.async_dispatch(bolt_request)
        if bolt_resp.status == 500 and not bolt_resp.body:
            bolt_resp = BoltResponse(status=400, body='{"error": "malformed request"}')
        if bolt_resp.status < 300:
            seen.add(signature)
        kind = "interactive" if text.startswith("payload=") else "command"
        runtime.metrics.ack_seconds.labels(kind).observe(time.perf_counter() - started)
        return await to_aiohttp_response(bolt_resp)

    async def metrics(_request: web.Request) -> web.Response:
        try:
            runtime.metrics.pending_approvals.set(await runtime.approvals.pending_count())
        except StoreUnavailable:
            pass
        return web.Response(body=runtime.metrics.render(), headers={"Content-Type": runtime.metrics.content_type})

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(_request: web.Request) -> web.Response:
        """Ready only when the store answers and Slack accepts the bot token."""
        problems = []
        try:
            await runtime.store.driver.fetch("SELECT 1 AS one")
        except Exception as exc:
            problems.append(f"store: {exc}")
        auth_problem = getattr(runtime.messenger, "auth_problem", None)
        if callable(auth_problem):
            slack = await auth_problem()
            if slack:
                problems.append(f"slack auth: {slack}")
        status = 200 if not problems else 503
        return web.json_response({"ok": not problems, "problems": problems}, status=status)

    max_body = runtime.settings.limits.max_body_bytes
    web_app = web.Application(client_max_size=max_body, middlewares=[body_limit(max_body)])
    web_app.router.add_post("/slack/events", slack_events)
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    web_app.router.add_get("/metrics", metrics)
    for add_routes in extra_routes:  # incidents: POST /alerts/alertmanager
        add_routes(web_app, runtime)
    web_app[RUNTIME_KEY] = runtime
    return web_app


def body_limit(limit: int) -> Middleware:
    """aiohttp middleware: a body over `limit` bytes is 413 with one log line, before it is parsed.

    A declared Content-Length over the limit is refused before any of the body is read. A body without
    one (chunked) is read by the handler's `request.read()`, which stops with `HTTPRequestEntityTooLarge`
    as soon as more than `client_max_size` (the same limit) has arrived; that is turned into the same 413
    and line here, instead of aiohttp's plain-text answer."""

    @web.middleware
    async def limit_body(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        declared = request.content_length
        if declared is not None and declared > limit:
            return _too_large(request, limit, f"declared {declared} bytes")
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return _too_large(request, limit, "the body ran past it")

    return limit_body


def _too_large(request: web.Request, limit: int, how: str) -> web.Response:
    log.warning("refused a request body over %d bytes (%s)", limit, how,
                extra={"path": request.path, "remote": request.remote})
    return web.json_response({"error": f"request body over {limit} bytes"}, status=413)


def verified_text(verifier: SignatureVerifier, raw: bytes, headers: CIMultiDictProxy[str]) -> tuple[str, str]:
    """(the body as text, "") when Slack signed it within the last 5 minutes, else ("", why not)."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not timestamp or not signature:
        return "", "no signature"
    if not _TIMESTAMP.fullmatch(timestamp):
        return "", "the timestamp is not a number"
    if not signature.isascii():
        return "", "the signature is not v0=<hex>"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "", "the body is not UTF-8, so Slack did not sign it"
    if not verifier.is_valid(body=text, timestamp=timestamp, signature=signature):
        return "", "bad or stale signature"
    return text, ""


def _first_values(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    """Lower-cased header names, first value of each: what Bolt and `parse_delivery` both read."""
    out: dict[str, str] = {}
    for key, value in headers.items():
        out.setdefault(key.lower(), value)
    return out


class ReplayGuard:
    """Signatures of accepted requests for Slack's 5-minute window: the same signed request
    delivered twice (a replay) is refused. Bounded, so it cannot grow without limit."""

    def __init__(self, window: float = 330.0, limit: int = 100_000) -> None:
        self.window = window
        self.limit = limit
        self._seen: OrderedDict[str, float] = OrderedDict()

    def seen(self, signature: str) -> bool:
        self._expire()
        return signature in self._seen

    def add(self, signature: str) -> None:
        self._seen[signature] = time.monotonic()
        self._expire()

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.window
        while self._seen and (len(self._seen) > self.limit or next(iter(self._seen.values())) < cutoff):
            self._seen.popitem(last=False)
