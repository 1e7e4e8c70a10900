"""Small pieces every Slack listener shares: who clicked where, which delivery this is, and running the
work after an ack so that a failure becomes a private answer instead of a silent drop."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.errors import user_message
from bot.messenger import DeliveryError, Messenger, Origin

log = logging.getLogger(__name__)


def request_key(body: dict[str, Any]) -> str | None:
    """What identifies one delivery: the trigger of a command or click, or the Events API event id."""
    if body.get("event_id"):
        return f"event:{body['event_id']}"
    trigger = body.get("trigger_id")
    return f"trigger:{trigger}" if trigger else None


def click_origin(body: dict[str, Any]) -> Origin:
    """Where a button click (block_actions) came from; answers go to the clicked message's thread."""
    container = body.get("container") or {}
    return Origin(
        user=(body.get("user") or {}).get("id", ""),
        channel=(body.get("channel") or {}).get("id") or container.get("channel_id", ""),
        response_url=body.get("response_url"),
        trigger_id=body.get("trigger_id"),
        thread_ts=container.get("thread_ts") or container.get("message_ts"),
        message_ts=container.get("message_ts"),
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
