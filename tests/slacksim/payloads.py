"""What Slack sends *to* an app: request signatures and the three interaction payloads we use.

Each builder reproduces Slack's wire format field for field (slash commands are
``application/x-www-form-urlencoded``; interactions are a form with one ``payload=`` JSON field),
so slack_bolt parses them exactly as it parses Slack's own. They are pure functions: a test can
build a body, tamper with it, and post it with ``SlackDriver.post_raw``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

TEAM_DOMAIN = "candlefish"
API_APP_ID = "A0CFBOT"
BOT_ID = "B0CFBOT"
# The deprecated verification token Slack still puts in every payload; Bolt ignores it.
VERIFICATION_TOKEN = "simVerificationToken0"
# A response_url nobody listens on: a standalone body must never make a bot talk to the internet.
_DEAD_HOOKS = "http://127.0.0.1:9"

_serial = itertools.count(1)


def sign(body: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 request signature: HMAC-SHA256 of ``v0:{ts}:{body}`` keyed by the signing secret."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


def new_trigger_id() -> str:
    """A trigger id shaped like Slack's; its first part is the issue time in ms, so the sim can
    refuse it after Slack's 3 seconds without having to have seen it issued."""
    return f"{int(time.time() * 1000)}.{next(_serial)}.{secrets.token_hex(16)}"


def trigger_issued_at(trigger_id: str) -> float | None:
    """The issue time (epoch seconds) encoded by ``new_trigger_id``; None if it is not one of ours."""
    head, _, rest = str(trigger_id).partition(".")
    if not head.isdigit() or not rest:
        return None
    return int(head) / 1000


def dead_response_url(kind: str = "commands", team_id: str = "T0CANDLE") -> str:
    return f"{_DEAD_HOOKS}/{kind}/{team_id}/{next(_serial)}/{secrets.token_urlsafe(18)}"


def channel_name_for(channel_id: str) -> str:
    """The name Slack would report for an id the sim invents a channel for (C0INCIDENT -> incident)."""
    if channel_id.startswith("D"):
        return "directmessage"
    if channel_id.startswith("G"):
        return "privategroup"
    stem = channel_id[2:] if channel_id.startswith("C0") and len(channel_id) > 2 else channel_id[1:]
    return (stem or channel_id).lower()


def user_name_for(user_id: str) -> str:
    return user_id.lower()


def _user(user_id: str, team_id: str, user_name: str | None) -> dict[str, str]:
    name = user_name or user_name_for(user_id)
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def slash_body(
    text: str,
    user_id: str,
    channel_id: str = "C0INCIDENT",
    command: str = "/cf",
    response_url: str | None = None,
    trigger_id: str | None = None,
    team_id: str = "T0CANDLE",
    user_name: str | None = None,
    channel_name: str | None = None,
) -> str:
    """A slash command invocation, in the field order Slack sends."""
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name or channel_name_for(channel_id),
        "user_id": user_id,
        "user_name": user_name or user_name_for(user_id),
        "command": command,
        "text": text,
        "api_app_id": API_APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url or dead_response_url("commands", team_id),
        "trigger_id": trigger_id or new_trigger_id(),
    }
    return urlencode(fields)


def iter_elements(blocks: list[dict[str, Any]] | None):
    """(block, element) for every interactive element: actions elements and section accessories."""
    for block in blocks or []:
        if not isinstance(block, dict):
            continue
        elements = block.get("elements") if block.get("type") == "actions" else None
        for element in elements or []:
            if isinstance(element, dict):
                yield block, element
        accessory = block.get("accessory")
        if isinstance(accessory, dict):
            yield block, accessory


def find_button(message: dict[str, Any], action_id: str) -> tuple[dict, dict] | None:
    for block, element in iter_elements(message.get("blocks")):
        if element.get("type") == "button" and element.get("action_id") == action_id:
            return block, element
    return None


def _form_payload(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})


def block_actions_body(
    user_id: str,
    channel_id: str,
    message: dict[str, Any],
    action_id: str,
    value: str,
    response_url: str | None = None,
    trigger_id: str | None = None,
    block_id: str | None = None,
    *,
    team_id: str = "T0CANDLE",
    user_name: str | None = None,
    channel_name: str | None = None,
    is_ephemeral: bool = False,
    state_values: dict[str, Any] | None = None,
) -> str:
    """A button click on ``message`` (a Slack message dict with ``ts`` and ``blocks``).

    The action's block_id, text and style are taken from the button in the message when it is
    there, as Slack does. For an ephemeral message Slack sends no ``message``, only the container.
    """
    found = find_button(message, action_id)
    button = found[1] if found else {}
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id or (found[0].get("block_id") if found else None) or secrets.token_hex(3),
        "text": button.get("text") or {"type": "plain_text", "text": action_id, "emoji": True},
        "value": value,
        "type": "button",
        "action_ts": f"{time.time():.6f}",
    }
    if button.get("style"):
        action["style"] = button["style"]
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message.get("ts"),
        "channel_id": channel_id,
        "is_ephemeral": is_ephemeral,
    }
    if message.get("thread_ts") and message.get("thread_ts") != message.get("ts"):
        container["thread_ts"] = message["thread_ts"]
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user_id, team_id, user_name),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name or channel_name_for(channel_id)},
    }
    if not is_ephemeral:
        payload["message"] = {"type": "message", **message}
    payload["state"] = {"values": state_values or {}}
    payload["response_url"] = response_url or dead_response_url("actions", team_id)
    payload["actions"] = [action]
    return _form_payload(payload)


def normalize_values(values: dict[str, Any]) -> dict[str, Any]:
    """Accept ``{block_id: {action_id: "text"}}`` as shorthand for plain_text_input state."""
    out: dict[str, Any] = {}
    for block_id, actions in values.items():
        out[block_id] = {
            action_id: v if isinstance(v, dict) else {"type": "plain_text_input", "value": v}
            for action_id, v in actions.items()
        }
    return out


def view_submission_body(
    user_id: str,
    view: dict[str, Any],
    values: dict[str, Any],
    private_metadata: str = "",
    callback_id: str | None = None,
    *,
    team_id: str = "T0CANDLE",
    user_name: str | None = None,
) -> str:
    """A modal's Submit. ``values`` is the ``view.state.values`` map (or its string shorthand)."""
    view_id = view.get("id") or f"V{secrets.token_hex(5).upper()}"
    full_view = {
        "id": view_id,
        "team_id": team_id,
        "type": view.get("type", "modal"),
        "blocks": view.get("blocks", []),
        "private_metadata": private_metadata or view.get("private_metadata", ""),
        "callback_id": callback_id if callback_id is not None else view.get("callback_id", ""),
        "state": {"values": normalize_values(values)},
        "hash": view.get("hash") or f"{int(time.time())}.{secrets.token_hex(4)}",
        "title": view.get("title") or {"type": "plain_text", "text": "Modal", "emoji": True},
        "clear_on_close": view.get("clear_on_close", False),
        "notify_on_close": view.get("notify_on_close", False),
        "close": view.get("close"),
        "submit": view.get("submit"),
        "previous_view_id": view.get("previous_view_id"),
        "root_view_id": view.get("root_view_id") or view_id,
        "app_id": API_APP_ID,
        "external_id": view.get("external_id", ""),
        "app_installed_team_id": team_id,
        "bot_id": BOT_ID,
    }
    payload = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "user": _user(user_id, team_id, user_name),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": new_trigger_id(),
        "view": full_view,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return _form_payload(payload)
