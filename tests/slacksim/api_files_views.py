"""Web API: the three-call file upload (files_upload_v2) and views (modals and App Home)."""

from __future__ import annotations

import secrets
import time
from typing import Any

from . import blockkit
from .payloads import API_APP_ID, trigger_issued_at
from .registry import method, need
from .workspace import SlackError, Workspace

TRIGGER_TTL = 3.0  # seconds a trigger_id stays good, as in Slack


# ---- files (the three-call upload) -----------------------------------------------------------
@method("files.getUploadURLExternal")
def files_get_upload_url(ws: Any, args: dict[str, Any]) -> dict[str, Any]:
    filename = need(args, "filename")
    length = int(need(args, "length"))
    file_id = ws.new_id("F")
    ws.uploads[file_id] = {"id": file_id, "filename": filename, "length": length, "content": None,
                           "snippet_type": args.get("snippet_type"), "alt_txt": args.get("alt_txt")}
    return {"ok": True, "upload_url": f"{ws.url}/upload/v1/{file_id}", "file_id": file_id}


@method("files.completeUploadExternal")
def files_complete_upload(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    items = args.get("files")
    if not isinstance(items, list) or not items:
        raise SlackError("invalid_arguments")
    channels = [c for c in str(args.get("channels") or "").split(",") if c] or (
        [args["channel_id"]] if args.get("channel_id") else [])
    targets = [ws.channel(c) for c in channels]
    for ch in targets:
        ws.require_bot_member(ch)
    pending = []
    for item in items:
        upload = ws.uploads.get(str(item.get("id")))
        if upload is None or upload["content"] is None:
            raise SlackError("file_not_found")
        pending.append((upload, item.get("title") or upload["filename"]))
    thread_ts = args.get("thread_ts") or None
    out = []
    for upload, title in pending:
        del ws.uploads[upload["id"]]
        info = _file_obj(ws, upload, title, [c["id"] for c in targets])
        ws.files.append({"id": upload["id"], "filename": upload["filename"], "title": title,
                         "content": upload["content"], "channel": targets[0]["id"] if targets else None,
                         "channels": [c["id"] for c in targets], "thread_ts": thread_ts,
                         "initial_comment": args.get("initial_comment")})
        out.append(info)
    for ch in targets:
        ws.post(ch, user=ws.bot_user_id, text=args.get("initial_comment") or "", thread_ts=thread_ts,
                files=[{"id": f["id"], "name": f["name"], "title": f["title"]} for f in out])
        ws.note(f"#{ch['name']} (files: {', '.join(f['name'] + ' ' + str(f['size']) + 'B' for f in out)})")
    return {"ok": True, "files": out}


def _file_obj(ws: Workspace, upload: dict[str, Any], title: str, channels: list[str]) -> dict[str, Any]:
    name = upload["filename"]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else "text"
    fid = upload["id"]
    return {
        "id": fid, "created": int(time.time()), "timestamp": int(time.time()), "name": name,
        "title": title, "mimetype": "text/plain", "filetype": ext, "pretty_type": ext.upper(),
        "user": ws.bot_user_id, "user_team": ws.team_id, "editable": True, "size": len(upload["content"]),
        "mode": "snippet", "is_external": False, "external_type": "", "is_public": bool(channels),
        "public_url_shared": False, "display_as_bot": False, "username": "",
        "url_private": f"https://files.slack.com/files-pri/{ws.team_id}-{fid}/{name}",
        "permalink": f"https://{ws.team_domain}.slack.com/files/{ws.bot_user_id}/{fid}/{name}",
        "channels": channels, "groups": [], "ims": [], "comments_count": 0,
    }


# ---- views ----------------------------------------------------------------------------------
def _check_view(view: Any) -> dict[str, Any]:
    problems = blockkit.check_view(view)
    if problems:
        raise SlackError("invalid_arguments", **blockkit.problem_details(problems))
    return view


def _check_trigger(ws: Any, trigger_id: Any) -> None:
    issued = trigger_issued_at(str(trigger_id or ""))
    if issued is None:
        raise SlackError("invalid_trigger_id")
    if trigger_id in ws.used_triggers:
        raise SlackError("exchanged_trigger_id")
    if time.time() - issued > TRIGGER_TTL:
        raise SlackError("expired_trigger_id")
    ws.used_triggers.add(trigger_id)


def _store_view(ws: Workspace, view: dict[str, Any], *, view_id: str | None = None,
                previous: dict[str, Any] | None = None) -> dict[str, Any]:
    vid = view_id or ws.new_id("V")
    stored = {
        "id": vid, "team_id": ws.team_id, "type": view.get("type"), "title": view.get("title"),
        "submit": view.get("submit"), "close": view.get("close"), "blocks": view.get("blocks", []),
        "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
        "external_id": view.get("external_id", ""), "state": {"values": {}},
        "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
        "clear_on_close": bool(view.get("clear_on_close")),
        "notify_on_close": bool(view.get("notify_on_close")),
        "root_view_id": (previous or {}).get("root_view_id") or vid,
        "previous_view_id": (previous or {}).get("id") if previous and previous.get("id") != vid else None,
        "app_id": API_APP_ID, "app_installed_team_id": ws.team_id, "bot_id": ws.bot_id,
    }
    ws.views[vid] = stored
    return stored


def _find_view(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    if args.get("view_id"):
        view = ws.views.get(args["view_id"])
    else:
        view = next((v for v in ws.views.values() if args.get("external_id") and
                     v.get("external_id") == args["external_id"]), None)
    if view is None:
        raise SlackError("not_found")
    if args.get("hash") and args["hash"] != view["hash"]:
        raise SlackError("hash_conflict")
    return view


@method("views.open")
def views_open(ws: Any, args: dict[str, Any]) -> dict[str, Any]:
    _check_trigger(ws, args.get("trigger_id"))
    view = _store_view(ws, _check_view(args.get("view")))
    ws.note(f"(modal {view['id']} opened: {(view.get('title') or {}).get('text')})")
    return {"ok": True, "view": view}


@method("views.push")
def views_push(ws: Any, args: dict[str, Any]) -> dict[str, Any]:
    _check_trigger(ws, args.get("trigger_id"))
    view = _store_view(ws, _check_view(args.get("view")))
    ws.note(f"(modal {view['id']} pushed: {(view.get('title') or {}).get('text')})")
    return {"ok": True, "view": view}


@method("views.update")
def views_update(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    old = _find_view(ws, args)
    view = _store_view(ws, _check_view(args.get("view")), view_id=old["id"], previous=old)
    ws.note(f"(view {view['id']} updated)")
    return {"ok": True, "view": view}


@method("views.publish")
def views_publish(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    user = need(args, "user_id")
    view = _check_view(args.get("view"))
    if view.get("type") != "home":
        raise SlackError("invalid_arguments", **blockkit.problem_details(
            ["must be home [json-pointer:/view/type]"]))
    old = ws.home_view(user)
    if old and args.get("hash") and args["hash"] != old["hash"]:
        raise SlackError("hash_conflict")
    stored = _store_view(ws, view, view_id=old["id"] if old else None)
    ws.set_home(user, stored)
    return {"ok": True, "view": stored}
