"""``SlackDriver``: plays Slack's side towards the app under test.

It builds the payload Slack would send for a person's action (slash command, button click, modal
submit), signs it, posts it to the app's request URL, and then does what Slack does with the
answer: a slash command's ack body is shown to the user (or the channel), a modal's
``response_action`` updates or closes the view, and a slow or failed ack is noted in the
transcript the way Slack would report it to the user.
"""

from __future__ import annotations

import json
import time
from typing import Any, NamedTuple

import aiohttp

from .payloads import (
    block_actions_body,
    find_button,
    iter_elements,
    new_trigger_id,
    slash_body,
    view_submission_body,
)
from .render import render
from .server import SlackSim
from .webapi import public

ACK_DEADLINE = 3.0  # seconds Slack waits for the app's HTTP answer
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


class Delivery(NamedTuple):
    """The app's answer to one request: unpacks as ``(status, body, elapsed)``."""

    status: int
    body: str
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class SlackDriver:
    def __init__(self, sim: SlackSim, app_url: str, signing_secret: str, *, timeout: float = 10.0) -> None:
        self.sim = sim
        self.app_url = app_url
        self.signing_secret = signing_secret
        self.timeout = timeout

    def _user_name(self, user: str) -> str:
        return str(self.sim.users.get(user, {}).get("name") or user.lower())

    async def slash(self, command_line: str, user: str, channel: str = "C0INCIDENT") -> Delivery:
        """Type ``command_line`` (e.g. ``"/cf scale graphql-api 10"``) as ``user`` in ``channel``."""
        parts = command_line.strip().split(None, 1)
        if not parts or not parts[0].startswith("/"):
            raise ValueError(f"a slash command starts with '/': {command_line!r}")
        command, text = parts[0], parts[1] if len(parts) > 1 else ""
        ch = self.sim.channel(channel)
        ch["members"].add(user)
        body = slash_body(
            text, user, ch["id"], command,
            response_url=self.sim.new_response_url(channel=ch["id"], user=user),
            trigger_id=new_trigger_id(), team_id=self.sim.team_id,
            user_name=self._user_name(user), channel_name=ch["name"],
        )
        self.sim.note(f"> {user} in #{ch['name']}: {command_line}")
        delivery = await self.post_raw(body)
        if self._acked(delivery, command):
            self._show_ack(ch, user, delivery)
        return delivery

    async def click(self, channel: str, message_ts: str, action_id: str, user: str) -> Delivery:
        """Click the button ``action_id`` on the stored message ``message_ts`` as ``user``."""
        ch = self.sim.channel(channel, create=False)
        message = next((m for m in self.sim.history(ch["id"]) if m["ts"] == message_ts), None)
        is_ephemeral = message is None
        if message is None:
            message = self.sim.find_ephemeral(ch["id"], message_ts)
        if message is None:
            listing = "\n  ".join(
                f"{m['ts']} {render(m['text'], m['blocks'], 80)}" for m in self.sim.history(ch["id"]))
            raise AssertionError(f"no message {message_ts} in #{ch['name']}; it has:\n  {listing}")
        if is_ephemeral and message["user"] != user:
            raise AssertionError(f"ephemeral {message_ts} is shown only to {message['user']}, not {user}")
        found = find_button(message, action_id)
        if found is None:
            buttons = [f"{el.get('action_id')} ({(el.get('text') or {}).get('text')})"
                       for _, el in iter_elements(message.get("blocks")) if el.get("type") == "button"]
            raise AssertionError(
                f"no button {action_id!r} on message {message_ts}; buttons: {buttons or 'none'}")
        as_sent = {k: v for k, v in public(message).items() if k not in {"channel", "source"}}
        body = block_actions_body(
            user, ch["id"], as_sent, action_id, found[1].get("value", ""),
            response_url=self.sim.new_response_url(ch["id"], user, message_ts, is_ephemeral),
            trigger_id=new_trigger_id(), team_id=self.sim.team_id, user_name=self._user_name(user),
            channel_name=ch["name"], is_ephemeral=is_ephemeral,
        )
        label = (found[1].get("text") or {}).get("text")
        self.sim.note(f"> {user} clicked [{label}] ({action_id}) on {message_ts} in #{ch['name']}")
        delivery = await self.post_raw(body)
        self._acked(delivery, f"button {action_id}")
        return delivery

    async def submit_view(self, view: dict[str, Any], values: dict[str, Any], user: str) -> Delivery:
        """Submit a modal (usually ``sim.views[view_id]``) with ``values`` as its state."""
        body = view_submission_body(user, view, values, team_id=self.sim.team_id,
                                    user_name=self._user_name(user))
        self.sim.note(f"> {user} submitted modal {view.get('id')} ({view.get('callback_id')}): {values}")
        delivery = await self.post_raw(body)
        if self._acked(delivery, "modal") and delivery.body:
            self._apply_response_action(view, delivery)
        return delivery

    async def post_raw(self, body: str, headers: dict[str, str] | None = None) -> Delivery:
        """POST ``body`` as is. Without ``headers`` it is signed like Slack; with them, only
        those headers are sent (plus a form Content-Type unless given), for forged requests."""
        if headers is None:
            from .payloads import sign

            headers = sign(body, self.signing_secret)
        sent = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": USER_AGENT}
        sent.update(headers)
        started = time.perf_counter()
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(self.app_url, data=body.encode(), headers=sent) as resp:
                text = await resp.text()
        return Delivery(resp.status, text, time.perf_counter() - started)

    # ---- what Slack does with the app's answer ------------------------------------------
    def _acked(self, delivery: Delivery, what: str) -> bool:
        if delivery.status != 200:
            self.sim.note(f"(Slack would show: {what} failed with the error \"dispatch_failed\"; "
                          f"HTTP {delivery.status} {delivery.body[:200]})")
            return False
        if delivery.elapsed > ACK_DEADLINE:
            self.sim.note(f"(Slack would show: {what} failed with the error \"operation_timeout\"; "
                          f"ack took {delivery.elapsed:.2f}s)")
            return False
        return True

    def _show_ack(self, ch: dict[str, Any], user: str, delivery: Delivery) -> None:
        if not delivery.body.strip():
            return
        try:
            message = json.loads(delivery.body)
        except ValueError:
            message = {"text": delivery.body}
        if not isinstance(message, dict):
            return
        text, blocks = message.get("text") or "", message.get("blocks")
        if message.get("response_type") == "in_channel":
            self.sim.post(ch, user=self.sim.bot_user_id, text=text, blocks=blocks)
        else:
            self.sim.post_ephemeral(ch, user, text, blocks, None, "ack")

    def _apply_response_action(self, view: dict[str, Any], delivery: Delivery) -> None:
        try:
            answer = delivery.json()
        except ValueError:
            return
        if not isinstance(answer, dict):
            return
        action, view_id = answer.get("response_action"), view.get("id")
        if action == "update" and view_id in self.sim.views and isinstance(answer.get("view"), dict):
            self.sim.views[view_id].update(answer["view"])
            self.sim.note(f"(modal {view_id} updated by response_action)")
        elif action == "errors":
            self.sim.note(f"(modal {view_id} shows errors: {answer.get('errors')})")
        elif action == "push" and isinstance(answer.get("view"), dict):
            new_id = self.sim.new_id("V")
            self.sim.views[new_id] = {**answer["view"], "id": new_id, "previous_view_id": view_id}
            self.sim.note(f"(modal {new_id} pushed by response_action)")
        elif action == "clear":
            self.sim.note("(all modals closed by response_action clear)")
