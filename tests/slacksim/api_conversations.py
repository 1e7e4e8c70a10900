"""Web API: conversations.* (create, info, join, invite, topic/purpose, members, history, replies, open)."""

from __future__ import annotations

import base64
import re
import time
from decimal import Decimal
from typing import Any

from .registry import flag, method, need, public
from .workspace import SlackError, Workspace

_CHANNEL_NAME = re.compile(r"^[a-z0-9_-]+$")


# ---- conversations ----------------------------------------------------------------------------
@method("conversations.create")
def conversations_create(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    name = str(args.get("name") or "")
    if not name:
        raise SlackError("invalid_name_required")
    if len(name) > 80:
        raise SlackError("invalid_name_maxlength")
    if not _CHANNEL_NAME.match(name):
        raise SlackError("invalid_name_specials")
    if not name.strip("-_"):
        raise SlackError("invalid_name_punctuation")
    if any(ch["name"] == name for ch in ws.channels.values()):
        raise SlackError("name_taken")
    ch = ws.add_channel(name=name, is_private=flag(args.get("is_private")), members=[ws.bot_user_id])
    ws.note(f"(channel #{name} created as {ch['id']})")
    return {"ok": True, "channel": ws.channel_obj(ch)}


@method("conversations.info")
def conversations_info(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    ch = ws.channel(args.get("channel"))
    return {"ok": True, "channel": ws.channel_obj(ch)}


@method("conversations.join")
def conversations_join(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    ch = ws.channel(args.get("channel"))
    if ch["is_private"] or ch["is_im"]:
        raise SlackError("method_not_supported_for_channel_type")
    extra: dict[str, Any] = {}
    if ws.bot_is_member(ch):
        extra = {"warning": "already_in_channel", "response_metadata": {"warnings": ["already_in_channel"]}}
    ws.not_in_channel.discard(ch["id"])
    ch["members"].add(ws.bot_user_id)
    return {"ok": True, "channel": ws.channel_obj(ch), **extra}


@method("conversations.invite")
def conversations_invite(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    ch = ws.channel(args.get("channel"))
    users = [u.strip() for u in str(args.get("users") or "").split(",") if u.strip()]
    if not users:
        raise SlackError("no_user")
    if ws.bot_user_id in users:
        raise SlackError("cant_invite_self")
    ws.require_bot_member(ch)
    if len(users) > 1000:
        raise SlackError("too_many_users")
    new = [u for u in users if u not in ch["members"]]
    if not new:
        raise SlackError("already_in_channel", errors=[
            {"user": u, "ok": False, "error": "already_in_channel"} for u in users])
    ch["members"].update(new)
    ws.note(f"#{ch['name']} (invited {', '.join(new)})")
    return {"ok": True, "channel": ws.channel_obj(ch)}


def _set_field(ws: Workspace, args: dict[str, Any], field: str) -> dict[str, Any]:
    ch = ws.channel(args.get("channel"))
    ws.require_bot_member(ch)
    value = str(args.get(field) or "")
    if len(value) > 250:
        raise SlackError("too_long")
    ch[field] = {"value": value, "creator": ws.bot_user_id, "last_set": int(time.time())}
    ws.note(f"#{ch['name']} ({field} set: {value})")
    return {"ok": True, "channel": ws.channel_obj(ch)}


@method("conversations.setTopic")
def conversations_set_topic(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    return _set_field(ws, args, "topic")


@method("conversations.setPurpose")
def conversations_set_purpose(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    return _set_field(ws, args, "purpose")


def _page(items: list, args: dict[str, Any], default: int = 100) -> tuple[list, dict[str, Any]]:
    """Slack's cursor pagination: an opaque cursor, ``next_cursor`` empty on the last page."""
    limit = max(1, min(int(args.get("limit") or default), 999))
    cursor = args.get("cursor")
    start = int(base64.b64decode(cursor).decode().split(":")[1]) if cursor else 0
    page = items[start : start + limit]
    more = start + limit < len(items)
    nxt = base64.b64encode(f"next:{start + limit}".encode()).decode() if more else ""
    return page, {"has_more": more, "response_metadata": {"next_cursor": nxt}}


@method("conversations.members")
def conversations_members(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    ch = ws.channel(args.get("channel"))
    page, meta = _page(ws.members_of(ch), args)
    meta.pop("has_more")
    return {"ok": True, "members": page, **meta}


def _in_range(ts: str, args: dict[str, Any]) -> bool:
    inclusive = flag(args.get("inclusive"))
    t = Decimal(ts)
    if args.get("oldest"):
        oldest = Decimal(str(args["oldest"]))
        if t < oldest or (t == oldest and not inclusive):
            return False
    if args.get("latest"):
        latest = Decimal(str(args["latest"]))
        if t > latest or (t == latest and not inclusive):
            return False
    return True


@method("conversations.history")
def conversations_history(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    ch = ws.channel(args.get("channel"))
    ws.require_bot_member(ch)
    visible = [public(m) for m in ws.messages(ch["id"]) if _in_range(m["ts"], args)]
    page, meta = _page(list(reversed(visible)), args)
    return {"ok": True, "messages": page, "pin_count": len(ch["pins"]), **meta}


@method("conversations.replies")
def conversations_replies(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    ch = ws.channel(args.get("channel"))
    ws.require_bot_member(ch)
    try:
        parent = ws.find(ch, need(args, "ts"))
    except SlackError:
        raise SlackError("thread_not_found") from None
    root = parent.get("thread_ts") or parent["ts"]
    parent = ws.find(ch, root)
    items = [public(parent)] + [public(m) for m in ws.thread(ch["id"], root) if _in_range(m["ts"], args)]
    page, meta = _page(items, args, default=1000)
    return {"ok": True, "messages": page, **meta}


@method("conversations.open")
def conversations_open(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    users = [u for u in str(args.get("users") or "").split(",") if u]
    if len(users) != 1:
        raise SlackError("not_enough_users" if not users else "method_not_supported_for_channel_type")
    ch = ws.channel(users[0])
    return {"ok": True, "channel": {"id": ch["id"]}}
