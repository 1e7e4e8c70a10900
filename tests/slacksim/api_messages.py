"""Web API: auth.test, chat.*, pins, reactions, users and usergroups, and the retired methods."""

from __future__ import annotations

import re
from typing import Any

from .registry import check_content, flag, method, need, public
from .workspace import SlackError, Workspace


# ---- auth / chat ------------------------------------------------------------------------------
@method("auth.test")
def auth_test(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "url": f"https://{ws.team_domain}.slack.com/", "team": "Candlefish",
            "user": "cf", "team_id": ws.team_id, "user_id": ws.bot_user_id, "bot_id": ws.bot_id,
            "is_enterprise_install": False}


@method("chat.postMessage")
def chat_post_message(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    ch = ws.channel(args.get("channel"))
    ws.require_bot_member(ch)
    text, blocks, attachments = check_content(args)
    msg = ws.post(ch, user=ws.bot_user_id, text=text, blocks=blocks, attachments=attachments,
                  thread_ts=args.get("thread_ts") or None, reply_broadcast=flag(args.get("reply_broadcast")))
    return {"ok": True, "channel": ch["id"], "ts": msg["ts"], "message": public(msg)}


@method("chat.update")
def chat_update(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    ch = ws.channel(args.get("channel"), create=False)
    msg = ws.find(ch, args.get("ts"))
    if msg.get("user") != ws.bot_user_id:
        raise SlackError("cant_update_message")
    text, _, attachments = check_content(args)
    # Slack keeps the old blocks when none are given, and clears them for an empty list.
    ws.update(ch, msg, text=text if "text" in args else None,
              blocks=args["blocks"] if "blocks" in args else None, attachments=attachments)
    return {"ok": True, "channel": ch["id"], "ts": msg["ts"], "text": msg["text"], "message": public(msg)}


@method("chat.delete")
def chat_delete(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    ch = ws.channel(args.get("channel"), create=False)
    msg = ws.find(ch, args.get("ts"))
    if msg.get("user") != ws.bot_user_id:
        raise SlackError("cant_delete_message")
    ws.delete(ch, msg)
    return {"ok": True, "channel": ch["id"], "ts": args["ts"]}


@method("chat.postEphemeral")
def chat_post_ephemeral(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    ch = ws.channel(args.get("channel"))
    ws.require_bot_member(ch)
    user = need(args, "user")
    if not ws.is_member(ch, user):
        raise SlackError("user_not_in_channel")
    text, blocks, _ = check_content(args)
    eph = ws.post_ephemeral(ch, user, text, blocks, args.get("thread_ts"), "chat.postEphemeral")
    return {"ok": True, "message_ts": eph["ts"]}


@method("chat.getPermalink")
def chat_get_permalink(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    ch = ws.channel(args.get("channel"), create=False)
    msg = ws.find(ch, args.get("message_ts"))
    link = f"https://{ws.team_domain}.slack.com/archives/{ch['id']}/p{msg['ts'].replace('.', '')}"
    if msg.get("thread_ts") and msg["thread_ts"] != msg["ts"]:
        link += f"?thread_ts={msg['thread_ts']}&cid={ch['id']}"
    return {"ok": True, "channel": ch["id"], "permalink": link}


# ---- pins, reactions, users ------------------------------------------------------------------
@method("pins.add")
def pins_add(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    ch = ws.channel(args.get("channel"))
    if not args.get("timestamp"):
        raise SlackError("no_item_specified")
    ws.require_bot_member(ch)
    msg = ws.find(ch, args["timestamp"])
    if msg["ts"] in ch["pins"]:
        raise SlackError("already_pinned")
    ch["pins"].append(msg["ts"])
    msg["pinned_to"] = [ch["id"]]
    ws.note(f"#{ch['name']} (pinned {msg['ts']})")
    return {"ok": True}


@method("reactions.add")
def reactions_add(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    ch = ws.channel(args.get("channel"))
    if not args.get("timestamp"):
        raise SlackError("no_item_specified")
    name = str(args.get("name") or "")
    if not name or ":" in name or " " in name:
        raise SlackError("invalid_name")
    msg = ws.find(ch, args["timestamp"])
    reactions = msg.setdefault("reactions", [])
    entry = next((r for r in reactions if r["name"] == name), None)
    if entry and ws.bot_user_id in entry["users"]:
        raise SlackError("already_reacted")
    if entry is None:
        entry = {"name": name, "users": [], "count": 0}
        reactions.append(entry)
    entry["users"].append(ws.bot_user_id)
    entry["count"] += 1
    ws.note(f"#{ch['name']} (:{name}: on {msg['ts']})")
    return {"ok": True}


@method("usergroups.users.list")
def usergroups_users_list(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    group = need(args, "usergroup")
    if group not in ws.usergroups:
        raise SlackError("no_such_subteam")
    return {"ok": True, "users": list(ws.usergroups[group])}


@method("users.info")
def users_info(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    user = str(args.get("user") or "")
    if not re.match(r"^[UWB][A-Z0-9]{2,}$", user):
        raise SlackError("user_not_found")
    return {"ok": True, "user": ws.user_profile(user)}


@method("apps.connections.open")
def apps_connections_open(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    raise SlackError("not_allowed_token_type")  # needs an xapp- token; Socket Mode isn't simulated


@method("files.upload")
def files_upload(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    raise SlackError("method_deprecated")  # retired by Slack; files_upload_v2 is the path
