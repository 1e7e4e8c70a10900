"""``SlackSim``: the workspace served over HTTP as Slack's Web API, hooks and upload URLs.

Routes: ``/api/{method}`` (GET or POST; form, multipart or JSON bodies; ``Authorization: Bearer``
or a ``token`` field), ``/upload/v1/{file_id}`` (step two of ``files_upload_v2``) and
``/hooks/...`` (response_urls). Every request is recorded as a ``Call`` before anything else
happens, then failures queued by ``fail_next`` are served, then opt-in ``chaos`` (``chaos.py``; off
unless a soak sets it), then auth, then the handler.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import secrets
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import blockkit
from .chaos import HOLD, Chaos, Fate
from .render import render
from .webapi import METHODS, flag
from .workspace import SlackError, Workspace

SCOPES = ("chat:write,chat:write.public,commands,channels:manage,channels:read,channels:history,"
          "groups:read,groups:write,files:write,pins:write,reactions:write,usergroups:read,users:read")
_JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata", "unfurls")


@dataclass
class Call:
    """One request the sim received. ``error`` is the Slack error code it answered with, if any."""

    method: str
    args: dict[str, Any]
    at: float
    status: int = 200
    error: str | None = None


@dataclass
class _Failure:
    error: str
    status: int
    retry_after: int
    remaining: int


class _BadRequest(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class SlackSim(Workspace):
    def __init__(self, bot_token: str = "xoxb-test", team_id: str = "T0CANDLE",
                 bot_user_id: str = "U0CFBOT") -> None:
        super().__init__(team_id, bot_user_id)
        self.bot_token = bot_token
        self.calls: list[Call] = []
        self.internal_errors: list[str] = []
        self.used_triggers: set[str] = set()
        self.response_url_max_uses = 5
        self.response_url_ttl = 30 * 60
        self.url = ""
        self._failures: dict[str, list[_Failure]] = {}
        self.chaos: Chaos | None = None  # opt-in: a share of calls fail or hang (chaos.py); None for every test
        self._hooks: dict[str, dict[str, Any]] = {}
        self._runner: web.AppRunner | None = None

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    # ---- lifecycle ------------------------------------------------------------------------
    async def start(self) -> SlackSim:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        app.router.add_post("/hooks/{kind}/{team}/{serial}/{rid}", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackSim:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- test-facing helpers --------------------------------------------------------------
    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def fail_next(self, method: str, error: str = "ratelimited", status: int = 429,
                  retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with a failure instead of the handler.

        429 carries ``Retry-After`` (what slack_sdk's rate-limit handler reads); 200 gives an
        ``ok: false`` body with ``error``; 5xx gives ``internal_error`` unless another error is named.
        ``method`` may also be ``"response_url"`` or ``"upload_url"``.
        """
        if status >= 500 and error == "ratelimited":
            error = "internal_error"
        self._failures.setdefault(method, []).append(_Failure(error, status, retry_after, times))

    def clear_failures(self, method: str | None = None) -> None:
        """Forget the failures still queued by `fail_next` (for one method, or all): Slack answers again."""
        if method is None:
            self._failures.clear()
        else:
            self._failures.pop(method, None)

    def new_response_url(self, channel: str | None = None, user: str | None = None,
                         message_ts: str | None = None, is_ephemeral: bool = False) -> str:
        """A response_url under the sim; ``message_ts`` makes it an action's (replace/delete work)."""
        kind = "actions" if message_ts else "commands"
        rid = secrets.token_urlsafe(16)
        self._hooks[rid] = {"channel": channel, "user": user, "message_ts": message_ts,
                            "is_ephemeral": is_ephemeral, "created": time.time(), "uses": 0}
        return f"{self.url}/hooks/{kind}/{self.team_id}/{len(self._hooks)}/{rid}"

    async def wait_for(self, predicate: Callable[[SlackSim], Any], timeout: float = 5.0,
                       interval: float = 0.02) -> Any:
        """Poll ``predicate(sim)`` (sync or async) until it is truthy and return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"condition not met within {timeout}s\n{self.dump_calls()}")
            await asyncio.sleep(interval)

    def dump_calls(self, last: int = 25) -> str:
        lines = [f"last {min(last, len(self.calls))} of {len(self.calls)} calls:"]
        for c in self.calls[-last:]:
            where = c.args.get("channel") or c.args.get("channel_id") or c.args.get("user_id") or ""
            outcome = f" -> {c.error}" if c.error else ""
            text = render(c.args.get("text") if isinstance(c.args.get("text"), str) else "",
                          c.args.get("blocks") if isinstance(c.args.get("blocks"), list) else None, 100)
            lines.append(f"  {c.method} {where}{outcome} {text}".rstrip())
        lines += [f"  SIM ERROR: {e.splitlines()[-1]}" for e in self.internal_errors]
        return "\n".join(lines)

    def transcript(self) -> str:
        """Everything people in the workspace would have seen, in order, one line each."""
        return "\n".join(self.log + [f"SIM ERROR: {e}" for e in self.internal_errors])

    # ---- /api/{method} --------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        fate = self.chaos.draw(method) if self.chaos is not None else None
        response = await self._api_call(request, method, fate)
        if fate is not None and fate.kind == HOLD:
            await asyncio.sleep(fate.hold_seconds)  # applied, answered too late (chaos.py)
        return response

    async def _api_call(self, request: web.Request, method: str, fate: Fate | None) -> web.Response:
        try:
            args, token = await _read_args(request)
        except _BadRequest as bad:
            self.calls.append(Call(method, {}, time.time(), 200, bad.error))
            return _json({"ok": False, "error": bad.error})
        call = Call(method, args, time.time())
        self.calls.append(call)
        failure = self._take_failure(method)
        if failure is None and fate is not None and fate.kind != HOLD:
            failure = _Failure(fate.error, fate.status, fate.retry_after, 1)
        if failure is not None:
            return self._fail(call, failure)
        if token is None:
            return self._answer(call, {"ok": False, "error": "not_authed"})
        if token != self.bot_token:
            return self._answer(call, {"ok": False, "error": "invalid_auth"})
        handler = METHODS.get(method)
        if handler is None:
            return self._answer(call, {"ok": False, "error": "unknown_method", "req_method": method})
        try:
            body = handler(self, args)
        except SlackError as refusal:
            body = {"ok": False, "error": refusal.error, **refusal.extra}
        except Exception:
            self.internal_errors.append(f"{method}: {traceback.format_exc()}")
            call.status, call.error = 500, "internal_error"
            return _json({"ok": False, "error": "internal_error"}, status=500)
        return self._answer(call, body)

    def _answer(self, call: Call, body: dict[str, Any]) -> web.Response:
        if not body.get("ok"):
            call.error = body.get("error")
        return _json(body, headers={"x-oauth-scopes": SCOPES, "x-accepted-oauth-scopes": ""})

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return failure

    def _fail(self, call: Call, failure: _Failure) -> web.Response:
        call.status, call.error = failure.status, failure.error
        headers = {"Retry-After": str(failure.retry_after)} if failure.status == 429 else {}
        return _json({"ok": False, "error": failure.error}, status=failure.status, headers=headers)

    # ---- upload URL (files_upload_v2 step two) --------------------------------------------
    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if request.content_type == "multipart/form-data":
            form = await request.post()
            part = next((v for v in form.values() if isinstance(v, web.FileField)), None)
            content = part.file.read() if part is not None else b""
        else:
            content = await request.read()
        call = Call("upload_url", {"file_id": file_id, "length": len(content)}, time.time())
        self.calls.append(call)
        failure = self._take_failure("upload_url")
        if failure is not None:
            call.status, call.error = failure.status, failure.error
            return web.Response(status=failure.status, text=failure.error, content_type="text/plain")
        upload = self.uploads.get(file_id)
        if upload is None:
            call.status, call.error = 404, "file_not_found"
            return web.Response(status=404, text="file_not_found", content_type="text/plain")
        upload["content"] = content
        return web.Response(text=f"OK - {len(content)}", content_type="text/plain")

    # ---- response_url ---------------------------------------------------------------------
    async def _hook(self, request: web.Request) -> web.Response:
        fate = self.chaos.draw("response_url") if self.chaos is not None else None
        response = await self._hook_call(request, fate)
        if fate is not None and fate.kind == HOLD:
            await asyncio.sleep(fate.hold_seconds)
        return response

    async def _hook_call(self, request: web.Request, fate: Fate | None) -> web.Response:
        url = self.url + request.path
        try:
            payload = json.loads(await request.text() or "{}")
        except ValueError:
            payload = None
        args = {**(payload if isinstance(payload, dict) else {}), "url": url}
        call = Call("response_url", args, time.time())
        self.calls.append(call)
        failure = self._take_failure("response_url")
        if failure is None and fate is not None and fate.kind != HOLD:
            failure = _Failure(fate.error, fate.status, fate.retry_after, 1)
        if failure is not None:
            return self._fail(call, failure)
        hook = self._hooks.get(request.match_info["rid"])
        error, status = self._hook_refusal(hook, payload)
        if error:
            call.status, call.error = status, error
            return _json({"ok": False, "error": error}, status=status)
        assert hook is not None and isinstance(payload, dict)
        hook["uses"] += 1
        try:
            self._apply_response(hook, payload)
        except SlackError as refusal:
            call.status, call.error = 404, refusal.error
            return _json({"ok": False, "error": refusal.error}, status=404)
        return _json({"ok": True})

    def _hook_refusal(self, hook: dict[str, Any] | None, payload: Any) -> tuple[str | None, int]:
        if hook is None:
            return "invalid_url", 404
        if time.time() - hook["created"] > self.response_url_ttl:
            return "expired_url", 404
        if hook["uses"] >= self.response_url_max_uses:
            return "used_url", 404
        if not isinstance(payload, dict):
            return "invalid_payload", 400
        if flag(payload.get("delete_original")):
            return None, 200
        blocks = payload.get("blocks")
        if not payload.get("text") and not blocks and not payload.get("attachments"):
            return "no_text", 400
        if blocks is not None and (not isinstance(blocks, list) or blockkit.check_blocks(blocks)):
            return "invalid_blocks", 400
        return None, 200

    def _apply_response(self, hook: dict[str, Any], payload: dict[str, Any]) -> None:
        text, blocks = payload.get("text") or "", payload.get("blocks")
        if not hook["channel"]:
            self.note(f"(response_url, no channel known): {render(text, blocks)}")
            return
        ch = self.channel(hook["channel"])
        original = self._original(ch, hook)
        if flag(payload.get("delete_original")):
            if original is None:
                raise SlackError("message_not_found")
            if hook["is_ephemeral"]:
                self.drop_ephemeral(original)
                self.note(f"#{ch['name']} (ephemeral {original['ts']} deleted)")
            else:
                self.delete(ch, original)
        elif flag(payload.get("replace_original")) and original is not None:
            if hook["is_ephemeral"]:
                original.update(text=text, blocks=blocks or [])
                self.note(f"#{ch['name']} (only {original['user']} sees, replaced): {render(text, blocks)}")
            else:
                self.update(ch, original, text=text, blocks=blocks or [])
        elif payload.get("response_type") == "in_channel":
            self.post(ch, user=self.bot_user_id, text=text, blocks=blocks, thread_ts=payload.get("thread_ts"))
        else:
            thread_ts = payload.get("thread_ts")
            self.post_ephemeral(ch, hook["user"] or "", text, blocks, thread_ts, "response_url")

    def _original(self, ch: dict[str, Any], hook: dict[str, Any]) -> dict[str, Any] | None:
        ts = hook["message_ts"]
        if not ts:
            return None
        if hook["is_ephemeral"]:
            return self.find_ephemeral(ch["id"], ts)
        return next((m for m in self.history(ch["id"]) if m["ts"] == ts), None)


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, headers=headers,
                        content_type="application/json", charset="utf-8")


async def _read_args(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """Arguments from the query string and body, and the token. A ``token`` inside a JSON body is
    dropped unread, as Slack does: JSON callers must send ``Authorization: Bearer``."""
    args: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = json.loads(await request.text() or "{}")
            except ValueError:
                raise _BadRequest("invalid_json") from None
            if not isinstance(body, dict):
                raise _BadRequest("invalid_json")
            body.pop("token", None)
            args.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                args[key] = value.file.read() if isinstance(value, web.FileField) else value
    token = args.pop("token", None)
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        token = auth[len("Bearer "):].strip()
    for key in _JSON_FIELDS:
        if isinstance(args.get(key), str) and args[key][:1] in "[{":
            try:
                args[key] = json.loads(args[key])
            except ValueError:
                pass  # left as a string: the handler answers invalid_blocks_format / invalid_arguments
    return args, token
