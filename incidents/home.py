"""The App Home tab: open incidents, approvals waiting for someone, and the last health check.

Published with `views.publish` when a user opens the tab (`app_home_opened`). Everything is read
from the store, so any replica shows the same picture; lists are cut to fit one view.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from slack_sdk.models.blocks import Block

from base.text import clip, escape
from bot.config import Settings
from bot.messenger import Messenger
from bot.render import context, divider, header, section
from bot.store import PENDING, Action, Store
from incidents.jobs import HEALTH, RPO
from incidents.store import Incident, IncidentStore
from incidents.views import person, when

LIST_LIMIT = 15
_CHECK_ICON = {"ok": ":large_green_circle:", "warn": ":large_yellow_circle:", "fail": ":red_circle:",
               "skip": ":white_circle:"}


class HomeTab:
    def __init__(self, settings: Settings, store: Store, records: IncidentStore, messenger: Messenger,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.records = records
        self.messenger = messenger
        self.clock = clock

    async def publish(self, user: str) -> None:
        await self.messenger.publish_home(user, await self.view())

    async def view(self) -> dict[str, Any]:
        incidents = await self.records.open_incidents()
        pending = await self.store.actions_in(PENDING)
        health = await self.records.get_state(HEALTH)
        rpo = await self.records.get_state(RPO)
        blocks: list[Block] = [
            header("cf — Candlefish operations"),
            section(f"*Open incidents ({len(incidents)})*\n" + _lines([_incident(i) for i in incidents],
                                                                       "None. :sunny:")),
            divider(),
            section(f"*Waiting for approval ({len(pending)})*\n" + _lines([_action(a) for a in pending],
                                                                          "Nothing is waiting.")),
            divider(),
            section(_health(health)),
        ]
        if rpo is not None:
            blocks.append(context(f"RPO check {when(float(rpo['at']))}: {rpo.get('detail', rpo.get('verdict'))}"))
        blocks.append(context(f"Updated {when(self.clock())}. Type `/cf help` in any channel for commands."))
        return {"type": "home", "blocks": [b.to_dict() for b in blocks]}


def _lines(lines: list[str], empty: str) -> str:
    if not lines:
        return empty
    shown = lines[:LIST_LIMIT]
    more = f"\n…and {len(lines) - LIST_LIMIT} more" if len(lines) > LIST_LIMIT else ""
    return clip("\n".join(shown) + more, 2900)


def _incident(i: Incident) -> str:
    where = f"<#{i.channel}>" if i.channel else "no channel"
    return (f"• *{i.id}* {i.severity.upper()} · {i.status} · {escape(clip(i.title, 80))} — {where}, "
            f"commander {person(i.commander)}, since {when(i.declared_at)}")


def _action(a: Action) -> str:
    return (f"• `{escape(a.command)}` {escape(clip(a.summary, 100))} — asked by <@{a.requester}> in <#{a.channel}>, "
            f"expires {when(a.expires_at, '{time}')}")


def _health(state: dict[str, Any] | None) -> str:
    if state is None:
        return "*Last health check*\nNot run yet."
    verdict = ":red_circle: SLA breached" if state.get("breached") else ":large_green_circle: Within SLA"
    lines = [f"*Last health check* {when(float(state['at']))} — {verdict}"]
    for check in state.get("checks", [])[:LIST_LIMIT]:
        took = f" ({check['latency_ms']:.0f} ms)" if check.get("latency_ms") is not None else ""
        lines.append(f"{_CHECK_ICON.get(check['status'], '')} *{escape(check['name'])}* — "
                     f"{escape(clip(str(check['detail']), 150))}{took}")
    for reason in state.get("reasons", [])[:5]:
        lines.append(f"> {escape(reason)}")
    return clip("\n".join(lines), 2900)
