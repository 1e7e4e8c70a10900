"""The simulated workspace: channels, messages, threads, ephemerals, files, views.

This is the state the Web API handlers (``webapi.py``) read and change, kept free of HTTP so its
rules are easy to see. Domain failures raise ``SlackError`` carrying Slack's error code; the
server turns that into ``{"ok": false, "error": ...}``. Every visible change also appends a line
to ``self.log``, which ``transcript()`` prints when a test fails.
"""

from __future__ import annotations

import copy
import itertools
import re
import time
from decimal import Decimal
from typing import Any

from .payloads import API_APP_ID, BOT_ID, TEAM_DOMAIN, channel_name_for
from .render import render

_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


class SlackError(Exception):
    """A Web API refusal: ``error`` is Slack's code, ``extra`` goes into the response body."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


class TsClock:
    """Message timestamps as Slack writes them ("1732700000.000100"), strictly increasing."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> str:
        self._last = max(int(time.time() * 1_000_000), self._last + 100)
        return f"{self._last // 1_000_000}.{self._last % 1_000_000:06d}"


class Workspace:
    def __init__(self, team_id: str, bot_user_id: str) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = BOT_ID
        self.team_domain = TEAM_DOMAIN
        self.clock = TsClock()
        self.channels: dict[str, dict[str, Any]] = {}
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self.files: list[dict[str, Any]] = []
        self.uploads: dict[str, dict[str, Any]] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self._home: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.not_in_channel: set[str] = set()
        self.log: list[str] = []
        self._ids = itertools.count(1)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}0SIM{next(self._ids):05d}"

    def note(self, line: str) -> None:
        self.log.append(line)

    # ---- channels -------------------------------------------------------------------------
    def add_channel(
        self,
        channel_id: str | None = None,
        name: str | None = None,
        *,
        is_private: bool = False,
        members: list[str] | None = None,
        creator: str | None = None,
    ) -> dict[str, Any]:
        """Tell the sim about a channel. With ``members`` given, membership is enforced (ephemeral
        posts to non-members fail); otherwise any user counts as a member."""
        cid = channel_id or self.new_id("C")
        ch = {
            "id": cid,
            "name": name or channel_name_for(cid),
            "is_private": is_private,
            "is_im": cid.startswith("D"),
            "created": int(time.time()),
            "creator": creator or self.bot_user_id,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "members": set(members or ()),
            "open_membership": members is None,
            "pins": [],
        }
        self.channels[cid] = ch
        self._history.setdefault(cid, [])
        return ch

    def channel(self, ref: Any, *, create: bool = True) -> dict[str, Any]:
        """Resolve an id, ``#name``, name or user id (-> DM) the way chat.postMessage does."""
        ref = str(ref or "").strip()
        if not ref:
            raise SlackError("channel_not_found")
        if ref in self.channels:
            return self.channels[ref]
        name = ref.lstrip("#")
        for ch in self.channels.values():
            if ch["name"] == name and not ch["is_im"]:
                return ch
        if _USER_ID.match(ref):
            dm_id = "D" + ref[1:]
            if dm_id not in self.channels:
                ch = self.add_channel(dm_id, members=[ref, self.bot_user_id])
                ch["user"] = ref
            return self.channels[dm_id]
        if create and (_CHANNEL_ID.match(ref) or re.match(r"^D[A-Z0-9]{2,}$", ref)):
            return self.add_channel(ref)
        raise SlackError("channel_not_found")

    def bot_is_member(self, ch: dict[str, Any]) -> bool:
        return ch["id"] not in self.not_in_channel

    def require_bot_member(self, ch: dict[str, Any]) -> None:
        if not self.bot_is_member(ch):
            raise SlackError("not_in_channel")

    def is_member(self, ch: dict[str, Any], user: str) -> bool:
        if user == self.bot_user_id:
            return self.bot_is_member(ch)
        return ch["open_membership"] or user in ch["members"]

    def members_of(self, ch: dict[str, Any]) -> list[str]:
        members = set(ch["members"])
        members.discard(self.bot_user_id)
        if self.bot_is_member(ch):
            members.add(self.bot_user_id)
        return sorted(members)

    def channel_obj(self, ch: dict[str, Any]) -> dict[str, Any]:
        """The conversation object Slack returns from conversations.* methods."""
        if ch["is_im"]:
            return {"id": ch["id"], "created": ch["created"], "is_im": True, "is_org_shared": False,
                    "user": ch.get("user"), "is_user_deleted": False, "priority": 0}
        return {
            "id": ch["id"], "name": ch["name"], "is_channel": True, "is_group": False, "is_im": False,
            "is_mpim": False, "is_private": ch["is_private"], "created": ch["created"],
            "is_archived": False, "is_general": False, "unlinked": 0, "name_normalized": ch["name"],
            "is_shared": False, "is_ext_shared": False, "is_org_shared": False, "pending_shared": [],
            "is_pending_ext_shared": False, "is_member": self.bot_is_member(ch), "creator": ch["creator"],
            "topic": dict(ch["topic"]), "purpose": dict(ch["purpose"]), "previous_names": [],
            "num_members": len(self.members_of(ch)),
        }

    # ---- messages -------------------------------------------------------------------------
    def history(self, channel_id: str) -> list[dict[str, Any]]:
        return self._history.setdefault(channel_id, [])

    def find(self, ch: dict[str, Any], ts: Any) -> dict[str, Any]:
        for msg in self.history(ch["id"]):
            if msg["ts"] == ts:
                return msg
        raise SlackError("message_not_found")

    def post(
        self,
        ch: dict[str, Any],
        *,
        user: str,
        text: str = "",
        blocks: list | None = None,
        attachments: list | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        files: list | None = None,
        ts: str | None = None,
    ) -> dict[str, Any]:
        if thread_ts:
            parent = next((m for m in self.history(ch["id"]) if m["ts"] == thread_ts), None)
            if parent is not None and parent.get("thread_ts"):
                thread_ts = parent["thread_ts"]  # a reply's ts means its thread, as in Slack
        msg: dict[str, Any] = {
            "type": "message",
            "ts": ts or self.clock.next(),
            "thread_ts": thread_ts or None,
            "user": user,
            "text": text or "",
            "blocks": blocks or [],
            "edited": None,
            "team": self.team_id,
        }
        if user == self.bot_user_id:
            msg.update(bot_id=self.bot_id, app_id=API_APP_ID)
        if attachments:
            msg["attachments"] = attachments
        if files:
            msg["files"] = files
            msg["upload"] = True
        if thread_ts and reply_broadcast:
            msg["subtype"] = "thread_broadcast"
        history = self.history(ch["id"])
        history.append(msg)
        history.sort(key=lambda m: Decimal(m["ts"]))
        if thread_ts:
            self._touch_parent(ch, thread_ts, msg)
        where = f"#{ch['name']}" + (f" thread {thread_ts}" if thread_ts else "")
        self.note(f"[{msg['ts']}] {where} <{user}>: {render(text, blocks)}")
        return msg

    def _touch_parent(self, ch: dict[str, Any], thread_ts: str, reply: dict[str, Any]) -> None:
        parent = next((m for m in self.history(ch["id"]) if m["ts"] == thread_ts), None)
        if parent is None:
            return
        parent["thread_ts"] = thread_ts
        replies = self.thread(ch["id"], thread_ts)
        parent["reply_count"] = len(replies)
        parent["reply_users"] = sorted({r["user"] for r in replies})
        parent["reply_users_count"] = len(parent["reply_users"])
        parent["latest_reply"] = reply["ts"]

    def update(self, ch: dict[str, Any], msg: dict[str, Any], **changes: Any) -> None:
        msg.update({k: v for k, v in changes.items() if v is not None})
        msg["edited"] = {"user": self.bot_user_id, "ts": self.clock.next()}
        self.note(f"[{msg['ts']}] #{ch['name']} (edited): {render(msg['text'], msg['blocks'])}")

    def delete(self, ch: dict[str, Any], msg: dict[str, Any]) -> None:
        ts = msg["ts"]
        if msg.get("reply_count") and msg.get("thread_ts") == ts:
            # A parent with replies leaves a tombstone so the thread survives, as in Slack.
            kept = {k: msg[k] for k in ("reply_count", "reply_users", "reply_users_count", "latest_reply")}
            msg.clear()
            msg.update(type="message", subtype="tombstone", ts=ts, thread_ts=ts, user="USLACKBOT",
                       text="This message was deleted.", hidden=True, blocks=[], edited=None, **kept)
        else:
            self.history(ch["id"]).remove(msg)
            if msg.get("thread_ts") and msg["thread_ts"] != ts:
                parent = next((m for m in self.history(ch["id"]) if m["ts"] == msg["thread_ts"]), None)
                replies = self.thread(ch["id"], msg["thread_ts"])
                if parent is not None:
                    parent["reply_count"] = len(replies)
        self.note(f"[{ts}] #{ch['name']} (deleted)")

    def _known(self, channel: str) -> str | None:
        """The id of a channel the sim has seen (by id, name or DM user), for read-only helpers."""
        try:
            return self.channel(channel, create=False)["id"]
        except SlackError:
            return None

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """What the channel shows: top-level messages and broadcast replies, oldest first."""
        cid = self._known(channel)
        return [
            copy.deepcopy(m)
            for m in (self.history(cid) if cid else [])
            if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"
        ]

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Replies in the thread under ``ts`` (the parent excluded), oldest first."""
        cid = self._known(channel)
        return [copy.deepcopy(m) for m in (self.history(cid) if cid else [])
                if m.get("thread_ts") == ts and m["ts"] != ts]

    def add_message(self, channel: str, text: str, user: str = "U0HUMAN", **kw: Any) -> dict[str, Any]:
        """Seed a message as if a person had posted it (for history, threads, reactions)."""
        return self.post(self.channel(channel), user=user, text=text, **kw)

    # ---- ephemerals -----------------------------------------------------------------------
    def post_ephemeral(self, ch: dict[str, Any], user: str, text: str, blocks: list | None,
                       thread_ts: str | None, source: str) -> dict[str, Any]:
        eph = {"type": "message", "ts": self.clock.next(), "channel": ch["id"], "user": user,
               "text": text or "", "blocks": blocks or [], "thread_ts": thread_ts or None,
               "source": source, "edited": None}
        self._ephemerals.append(eph)
        self.note(f"[{eph['ts']}] #{ch['name']} (only {user} sees, via {source}): {render(text, blocks)}")
        return eph

    def ephemerals(self, channel: str, user: str | None = None) -> list[dict[str, Any]]:
        cid = self._known(channel)
        return [copy.deepcopy(e) for e in self._ephemerals if e["channel"] == cid and user in (None, e["user"])]

    def find_ephemeral(self, channel_id: str, ts: str) -> dict[str, Any] | None:
        return next((e for e in self._ephemerals if e["channel"] == channel_id and e["ts"] == ts), None)

    def drop_ephemeral(self, eph: dict[str, Any]) -> None:
        self._ephemerals.remove(eph)

    # ---- pins, home -----------------------------------------------------------------------
    def pins(self, channel: str) -> list[str]:
        cid = self._known(channel)
        return list(self.channels[cid]["pins"]) if cid else []

    def home_view(self, user: str) -> dict[str, Any] | None:
        return self._home.get(user)

    def set_home(self, user: str, view: dict[str, Any]) -> None:
        self._home[user] = view
        self.note(f"(home tab of {user} published: {render('', view.get('blocks'))})")

    def user_profile(self, user_id: str) -> dict[str, Any]:
        known = self.users.get(user_id, {})
        is_bot = user_id == self.bot_user_id
        name = known.get("name") or ("cf" if is_bot else user_id.lower())
        real = known.get("real_name") or ("cf" if is_bot else f"User {user_id}")
        tz = known.get("tz", "UTC")
        profile = {"real_name": real, "display_name": known.get("display_name", name),
                   "email": known.get("email", f"{name}@candlefish.example"), "team": self.team_id}
        user = {
            "id": user_id, "team_id": self.team_id, "name": name, "deleted": False, "real_name": real,
            "tz": tz, "tz_label": known.get("tz_label", tz), "tz_offset": known.get("tz_offset", 0),
            "is_admin": known.get("is_admin", False), "is_owner": False, "is_bot": is_bot,
            "is_app_user": False, "updated": int(time.time()), "profile": profile,
        }
        user.update({k: v for k, v in known.items() if k != "profile"})
        profile.update(known.get("profile", {}))
        return user
