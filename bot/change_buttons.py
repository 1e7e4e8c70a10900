"""The buttons a change request shows once it has run: Undo, and Request again (when it went stale).

Both are durable deliveries (`bot.inbox`: answered even if this replica dies), and both turn a click
into a typed command of the clicker's — `/cf undo ID`, or the stale request's own
command line — and hand it to the dispatcher, so a click gets exactly the roles, validation and
approval the typed form gets, and nothing else travels in the button but the request's id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.blocks import AGAIN, UNDO
from bot.inbox import origin_of, origin_payload
from bot.listening import action_value, click_origin, guarded
from bot.messenger import Origin
from bot.runtime import Runtime


async def ask_again(runtime: Runtime, action_id: str, origin: Origin) -> None:
    """Request again: the stale request's command line, as the clicker, validated against today's state."""
    action = await runtime.store.get_action(action_id)
    if action is None:
        await runtime.messenger.respond(origin, "That request no longer exists.")
        return
    await runtime.dispatcher.handle(origin, action.request_text or action.command)


def change_buttons(app: AsyncApp, runtime: Runtime, request_key: Callable[[dict[str, Any]], str | None]) -> None:
    """Register the Undo and Request again listeners (a `bot.slack_app` listener hook)."""

    runtime.replayers["undo"] = lambda p: runtime.dispatcher.handle(origin_of(p), f"undo {p['value']}")
    runtime.replayers["again"] = lambda p: guarded(runtime.messenger, origin_of(p),
                                                   lambda: ask_again(runtime, str(p["value"]), origin_of(p)))

    @app.action(UNDO)
    async def on_undo(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await runtime.deliver("undo", origin_payload(click_origin(body), value=action_value(body)), request_key(body))

    @app.action(AGAIN)
    async def on_again(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await runtime.deliver("again", origin_payload(click_origin(body), value=action_value(body)), request_key(body))

