"""The Slack side of incidents and alerts: the declare modal, command-line buttons, the Home tab,
and the Alertmanager route. `bot.slack_app` calls `register` and `add_routes`.

- `/cf incident declare` alone opens the modal with the slash command's trigger_id (valid for 3 s,
  so it is opened before anything else); every other `/cf` line goes to the dispatcher.
- A click on an alert group's Ack, Silence or Unsilence button goes to `incidents.alert_actions`.
- A click on a `cf_run:N` button runs the button's command line as if the clicker had typed it in
  that channel (same parser, roles and approval flow); its answer goes to the message's thread.
- `app_home_opened` publishes the Home tab.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web
from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.listening import action_value, click_origin, guarded
from bot.messenger import DeliveryError, Origin
from bot.runtime import Runtime
from bot.store import StoreUnavailable
from incidents.alert_views import ACK, SILENCE, UNSILENCE
from incidents.alerts import webhook_handler
from incidents.views import DECLARE_CALLBACK, RUN, declare_modal, read_modal
from incidents.wiring import operations

log = logging.getLogger(__name__)

KeyFn = Callable[[dict[str, Any]], str | None]


DECLARE = "incident declare"  # typed alone, it opens the declare modal (Runtime.forms)


async def open_declare_modal(runtime: Runtime, origin: Origin) -> bool:
    """The declare form, for someone who may declare; False (answer with usage instead) otherwise."""
    if not origin.trigger_id or not await _may_declare(runtime, origin.user):
        return False
    try:
        await runtime.messenger.open_view(origin.trigger_id, declare_modal(origin.channel))
    except DeliveryError as exc:
        log.warning("declare modal not opened; answering with usage", extra={"error": exc.code})
        return False
    return True


async def _may_declare(runtime: Runtime, user: str) -> bool:
    spec = runtime.dispatcher.registry.get(DECLARE)
    return spec is not None and runtime.policy.may_run(spec, await runtime.policy.roles_of(user))


def register(app: AsyncApp, runtime: Runtime, request_key: KeyFn) -> None:
    @app.action(re.compile(f"^{RUN}(:|$)"))
    async def on_run(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        origin = click_origin(body)
        line = action_value(body)
        await runtime.track(guarded(runtime.messenger, origin, lambda: runtime.dispatcher.handle(origin, line)),
                            key=request_key(body))

    @app.action(re.compile(f"^({ACK}|{SILENCE}:[0-9]+|{UNSILENCE})$"))
    async def on_alert_control(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        origin = click_origin(body)
        action = (body.get("actions") or [{}])[0]
        ops = operations(runtime)
        if ops is None:
            return
        team = body.get("team") or {}
        domain = team.get("domain") if isinstance(team, dict) else None
        action_id, group_id = str(action.get("action_id", "")), str(action.get("value", ""))
        controls = ops.controls
        await runtime.track(guarded(runtime.messenger, origin, lambda: controls.handle(
            action_id, group_id, origin, str(domain) if domain else None)), key=request_key(body))

    @app.view(DECLARE_CALLBACK)
    async def on_declare(ack: AsyncAck, body: dict[str, Any]) -> None:
        view = body.get("view") or {}
        values, errors = read_modal(view)
        user = (body.get("user") or {}).get("id", "")
        if not errors and not await _may_declare(runtime, user):
            errors = {"title": "You need the operator role to declare an incident."}
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        origin = Origin(user=user, channel=str(view.get("private_metadata") or runtime.settings.incident_channel))
        work = guarded(runtime.messenger, origin, lambda: _declare(runtime, origin, values))
        await runtime.track(work, key=request_key(body))

    @app.event("app_home_opened")
    async def on_home(body: dict[str, Any]) -> None:
        event = body.get("event") or {}
        ops = operations(runtime)
        if event.get("tab", "home") != "home" or ops is None:
            return
        user = str(event.get("user", ""))

        async def publish() -> None:  # Slack's or the store's failure is one line, not a listener traceback
            try:
                await ops.home.publish(user)
            except (DeliveryError, StoreUnavailable) as exc:
                log.warning("Home tab not published", extra={"user": user, "error": str(exc)})

        await runtime.track(publish(), key=request_key(body))


async def _declare(runtime: Runtime, origin: Origin, values: dict[str, str]) -> None:
    ops = operations(runtime)
    assert ops is not None
    incident, problems = await ops.incidents.declare_steps(
        title=values["title"], severity=values["severity"], kind=values["kind"], user=origin.user)
    lines = "".join(f"\n{f.line()}" for f in problems)  # the Slack steps that failed, one line each
    await runtime.messenger.respond(origin, f":rotating_light: {incident.id} declared: <#{incident.channel}>{lines}")



def add_routes(web_app: web.Application, runtime: Runtime) -> None:
    """`POST /alerts/alertmanager`, when the runtime has the alert service."""
    ops = operations(runtime)
    if ops is None:
        return
    handler = webhook_handler(ops.alerts, runtime.track, runtime.settings.alerts.token_env)
    web_app.router.add_post("/alerts/alertmanager", handler)
