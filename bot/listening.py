"""Small pieces every Slack listener shares: the shape a delivery must have before Bolt sees it, who
clicked where, which delivery this is, and running the work after an ack so that a failure becomes a
private answer instead of a silent drop.

`parse_delivery` reads a (signature-checked) body the way Bolt will and refuses, with a one-line
reason, what Bolt's routing or our listeners would trip over: a payload that is not an object, ids
that are lists, a click without actions. Everything after it may assume those shapes; the helpers
below still read defensively, so a new listener cannot turn an odd field into a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot import jsonbody
from bot.errors import user_message
from bot.messenger import DeliveryError, Messenger, Origin

log = logging.getLogger(__name__)

# objects that Bolt's routing and our listeners read fields from (None or absent is fine)
_OBJECTS = ("container", "view", "message", "previous_message", "event", "state", "item", "assistant_thread",
            "function_data")
# objects Bolt reads as `body.get(key, {})`: absent is fine, present they must be objects (not null)
_NOT_NULL = ("event", "view")
# ids Slack sends as a string or as an object with a string `id`
_IDS = ("user", "team", "channel", "enterprise")
# interactive payloads: who acted is always an object
_INTERACTIVE = {"block_actions", "block_suggestion", "view_submission", "view_closed", "shortcut",
                "message_action", "interactive_message"}
_CALLBACK = {"shortcut": "callback_id", "message_action": "callback_id", "block_suggestion": "action_id"}


def parse_delivery(text: str, content_type: str | None) -> tuple[dict[str, Any], str]:
    """(body, "") as Bolt will read it, or ({}, a one-line reason) for a body we refuse with 400.

    One known difference: Bolt 1.30 reads any form body containing the substring "payload" as an
    interactive payload, so a slash command whose text says "payload" would reach Bolt as {} (404).
    Here it is read as the form it is, and the HTTP endpoint hands Bolt this body instead."""
    if not text:
        return {}, "empty body"
    try:
        if content_type == "application/json" or text.startswith("{"):
            body = jsonbody.loads(text)
        else:
            fields = dict(parse_qsl(text, keep_blank_values=True))
            body = jsonbody.loads(fields["payload"]) if "payload" in fields else fields
    except jsonbody.BodyError as exc:
        return {}, str(exc)
    if not isinstance(body, dict):
        return {}, f"the payload is a JSON {type(body).__name__}, not an object"
    problem = malformed(body)
    return (body, "") if not problem else ({}, problem)


def malformed(body: dict[str, Any]) -> str | None:
    """What is wrong with a parsed delivery's shape, or None."""
    kind = body.get("type")
    if kind is not None and not isinstance(kind, str):
        return "type is not a string"
    for scope_name, scope in (("", body), ("event.", body.get("event")), ("message.", body.get("message")),
                              ("view.", body.get("view"))):
        if not isinstance(scope, dict):
            continue
        for key in _OBJECTS:
            if scope.get(key) is not None and not isinstance(scope[key], dict):
                return f"{scope_name}{key} is not an object"
        for key in _IDS:
            if not _id_shaped(scope.get(key)):
                return f"{scope_name}{key} is neither an id nor an object with one"
    for key in _NOT_NULL:
        if key in body and not isinstance(body[key], dict):
            return f"{key} is not an object"
    if (url := _url_problem(body.get("response_url"))) is not None:
        return f"response_url {url}"
    response_urls = body.get("response_urls")  # Bolt reads response_urls[0].get(...)
    if response_urls is not None and not (isinstance(response_urls, list)
                                          and all(isinstance(u, dict) for u in response_urls)):
        return "response_urls is not a list of objects"
    authorizations = body.get("authorizations")
    if authorizations is not None and not (isinstance(authorizations, list)
                                           and all(isinstance(a, dict) for a in authorizations)):
        return "authorizations is not a list of objects"
    if kind in _INTERACTIVE and not isinstance(body.get("user"), dict):
        return "user is not an object"
    if kind == "block_actions":
        return _actions_problem(body.get("actions"))
    if kind in ("view_submission", "view_closed"):
        return _view_problem(body.get("view"), "workflow_step" in body)
    if kind in _CALLBACK and not isinstance(body.get(_CALLBACK[kind]), str):
        return f"{_CALLBACK[kind]} is not a string"
    if kind == "event_callback" and not isinstance((body.get("event") or {}).get("type"), str):
        return "event.type is not a string"
    return None


def _view_problem(view: Any, has_step: bool) -> str | None:
    if not isinstance(view, dict) or not isinstance(view.get("callback_id"), str):
        return "view.callback_id is not a string"
    if not isinstance(view.get("type"), str):  # Bolt indexes view["type"] (found by the fuzz)
        return "view.type is not a string"
    if view["type"] == "workflow_step" and not has_step:  # Bolt then indexes body["workflow_step"]
        return "a workflow_step view without its workflow_step"
    values = _object(view.get("state")).get("values") or {}
    blocks = values.values() if isinstance(values, dict) else [None]
    if not all(isinstance(b, dict) and all(isinstance(el, dict) for el in b.values()) for b in blocks):
        return "view.state.values is not an object of objects"
    return None


def _url_problem(url: Any) -> str | None:
    """Why a response_url cannot be answered through, or None (absent is fine). Slack always sends one of
    its own https URLs; anything else would fail only later, in the answer after the ack."""
    if url is None or url == "":  # none: answers go through chat.postEphemeral
        return None
    if not isinstance(url, str):
        return "is not a string"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- a port that is not a number raises here, as it would when posting
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an http(s) URL"
    return None


def _id_shaped(value: Any) -> bool:
    if value is None or isinstance(value, str):
        return True
    return isinstance(value, dict) and isinstance(value.get("id", ""), str)


def _actions_problem(actions: Any) -> str | None:
    if not isinstance(actions, list) or not actions:
        return "actions is not a non-empty list"
    for action in actions:
        if not isinstance(action, dict) or not isinstance(action.get("action_id"), str):
            return "an action is not an object with a string action_id"
        if not isinstance(action.get("value", ""), str) or not isinstance(action.get("block_id", ""), str):
            return "an action's value or block_id is not a string"
    return None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def request_key(body: dict[str, Any]) -> str | None:
    """What identifies one delivery: the trigger of a command or click, or the Events API event id."""
    event_id = _text(body.get("event_id"))
    if event_id:
        return f"event:{event_id}"
    trigger = _text(body.get("trigger_id"))
    return f"trigger:{trigger}" if trigger else None


def action_value(body: dict[str, Any]) -> str:
    """The `value` of a click's button (a request or group id; empty when the click carries none)."""
    actions = body.get("actions")
    first = actions[0] if isinstance(actions, list) and actions else None
    return str(first.get("value", "")) if isinstance(first, dict) else ""


def click_origin(body: dict[str, Any]) -> Origin:
    """Where a button click (block_actions) came from; answers go to the clicked message's thread."""
    container = _object(body.get("container"))
    return Origin(
        user=_text(_object(body.get("user")).get("id")) or "",
        channel=_text(_object(body.get("channel")).get("id")) or _text(container.get("channel_id")) or "",
        response_url=_text(body.get("response_url")),
        trigger_id=_text(body.get("trigger_id")),
        thread_ts=_text(container.get("thread_ts")) or _text(container.get("message_ts")),
        message_ts=_text(container.get("message_ts")),
    )


async def guarded(messenger: Messenger, origin: Origin, work: Callable[[], Awaitable[Any]]) -> None:
    """Work after an ack: a failure (the store down, say) becomes a private answer, never a silent drop."""
    try:
        await work()
    except Exception as exc:
        try:
            await messenger.respond(origin, user_message(exc))
        except DeliveryError:
            log.error("could not tell the user about a failure", extra={"user": origin.user})
